package seasonality

import (
	"math"
	"math/rand/v2"
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
		if r.Daily != tt.daily || r.Weekly != tt.weekly {
			t.Errorf("%s: daily %v weekly %v (acf %.2f, peak %.1f), want %v %v", tt.name, r.Daily, r.Weekly, r.ACF, r.PeakRatio, tt.daily, tt.weekly)
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
