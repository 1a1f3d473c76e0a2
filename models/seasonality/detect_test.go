package seasonality

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func series(n int, bucket time.Duration, f func(t time.Duration) float64, noise float64) []float64 {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = f(time.Duration(i)*bucket) + noise*rng.NormFloat64()
	}
	return out
}

func TestDetect(t *testing.T) {
	const bucket = 10 * time.Minute
	day := func(t time.Duration) float64 { return 10 * math.Sin(2*math.Pi*float64(t)/float64(Day)) }
	week := func(t time.Duration) float64 {
		if (t/Day)%7 >= 5 { // weekend
			return -15
		}
		return 0
	}
	tests := []struct {
		name          string
		values        []float64
		daily, weekly bool
	}{
		{"daily", series(2016, bucket, day, 2), true, false},
		{"daily and weekly", series(2016, bucket, func(t time.Duration) float64 { return day(t) + week(t) }, 2), true, true},
		{"noise", series(2016, bucket, func(time.Duration) float64 { return 0 }, 2), false, false},
		{"trend only", series(2016, bucket, func(t time.Duration) float64 { return t.Hours() }, 1), false, false},
		{"too short for a day", series(200, bucket, day, 0), false, false},
		{"one day spike", series(2016, bucket, func(t time.Duration) float64 {
			if t > 3*Day && t < 3*Day+time.Hour {
				return 100
			}
			return 0
		}, 1), false, false},
	}
	var d Detector
	for _, tt := range tests {
		r := d.Detect(tt.values, bucket)
		if r.Hourly {
			t.Errorf("%s: hourly (acf %.2f, peak %.1f), want not", tt.name, r.ACF, r.PeakRatio)
		}
		if r.Daily != tt.daily || r.Weekly != tt.weekly {
			t.Errorf("%s: daily %v weekly %v (acf %.2f, peak %.1f), want %v %v", tt.name, r.Daily, r.Weekly, r.ACF, r.PeakRatio, tt.daily, tt.weekly)
		}
	}
}

// TestDetectHourly checks an hourly job is found, also under a burst
// thousands of times its size, and that persistence (a slowly wandering
// series, highly autocorrelated at every short lag) is not taken for it.
// TestConstantHasNoCycle: on a constant series the detrended values are
// rounding residue, whose spectrum has a "peak" thousands of times its
// median: no cycle is found in it.
func TestConstantHasNoCycle(t *testing.T) {
	for _, c := range []float64{0, 100.1, 1e9 / 3} {
		values := make([]float64, 2016)
		for i := range values {
			values[i] = c
		}
		for _, n := range []int{288, 2016} {
			if res := Detect(values[:n], 10*time.Minute); res.Daily || res.Weekly || res.Hourly {
				t.Errorf("constant %v over %d buckets: %+v", c, n, res)
			}
		}
	}
}

func TestDetectHourly(t *testing.T) {
	const bucket = 10 * time.Minute
	job := func(t time.Duration) float64 { // 10 minutes at 12× the base every hour
		if t%Hour < 10*time.Minute {
			return 12
		}
		return 1
	}
	withBurst := series(2016, bucket, job, 0.1)
	withBurst[1000] = 50000
	rng := rand.New(rand.NewPCG(3, 3))
	ar := make([]float64, 2016)
	for i := 1; i < len(ar); i++ {
		ar[i] = 0.98*ar[i-1] + rng.NormFloat64()
	}
	tests := []struct {
		name          string
		values        []float64
		hourly, daily bool
	}{
		{"hourly job", series(2016, bucket, job, 0.1), true, false},
		{"hourly job and one huge burst", withBurst, true, false},
		// Over exactly two days the daily test passes too; the hour comes
		// first.
		{"hourly job two days", series(288, bucket, job, 0.1), true, true},
		{"hourly job on a daily cycle", series(2016, bucket, func(t time.Duration) float64 {
			return 4*job(t) + 40*math.Sin(2*math.Pi*float64(t)/float64(Day))
		}, 0.5), false, true},
		{"persistence", ar, false, false},
	}
	var d Detector
	for _, tt := range tests {
		r := d.Detect(tt.values, bucket)
		if r.Hourly != tt.hourly || r.Daily != tt.daily || r.Weekly {
			t.Errorf("%s: hourly %v daily %v weekly %v (acf %.2f, peak %.1f), want %v %v false",
				tt.name, r.Hourly, r.Daily, r.Weekly, r.ACF, r.PeakRatio, tt.hourly, tt.daily)
		}
		if p := r.Periods(); tt.hourly && (len(p) == 0 || p[0] != Hour) {
			t.Errorf("%s: periods %v, want the hour first", tt.name, p)
		}
	}
}

func TestDetectorReusesBuffers(t *testing.T) {
	v := series(2016, 10*time.Minute, func(t time.Duration) float64 { return math.Sin(2 * math.Pi * float64(t) / float64(Day)) }, 0.1)
	var d Detector
	d.Detect(v, 10*time.Minute)
	if n := testing.AllocsPerRun(5, func() { d.Detect(v, 10*time.Minute) }); n != 0 {
		t.Errorf("Detect allocates %v times per run after the first", n)
	}
}

func TestSelectK(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for n := 1; n < 300; n += 7 {
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Floor(rng.NormFloat64() * 3) // ties
		}
		sorted := slices.Clone(a)
		slices.Sort(sorted)
		for _, k := range []int{0, n / 100, n / 2, n - 1 - n/100, n - 1} {
			b := slices.Clone(a)
			if got := selectK(b, k); got != sorted[k] {
				t.Fatalf("n %d k %d: %v, want %v", n, k, got, sorted[k])
			}
		}
	}
}
