// Package seasonality detects hourly, daily and weekly cycles in a metric's
// recent history the way gocrane/crane's DSP predictor does: a candidate period must
// stand out in the periodogram (gonum's FFT) and be confirmed by the
// autocorrelation at its lag, so a spectral peak from a one-off burst is not
// taken for a cycle.
package seasonality

import (
	"math"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Hour, Day and Week are the candidate periods.
const (
	Hour = time.Hour
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// Candidate indexes in Result.ACF and Result.PeakRatio.
const (
	HourIdx = iota
	DayIdx
	WeekIdx
	numCandidates
)

// Thresholds of the tests. A period needs at least MinCycles full cycles of
// history, a periodogram peak near its frequency at least MinPeakRatio times
// the median power, and an autocorrelation at its lag of at least MinACF.
// Weekly must also beat the daily autocorrelation by WeekMargin, since any
// daily cycle repeats after a week too. Hourly must come within the same
// margin of the daily autocorrelation (an hourly cycle repeats after a day,
// so a purely hourly one has both about equal, while a daily shape on top of
// it makes the daily one clearly higher) and beat the autocorrelation at
// half an hour by MinACF, so that a slowly moving series, whose
// autocorrelation is high at every short lag, is not taken for an hourly
// cycle (an hourly job, a cron, a scrape).
//
// Before the tests the values are clipped to their 1st and 99th
// percentiles, so that a few outliers (one burst a thousand times the usual
// load) do not hide a cycle from the periodogram and the autocorrelation.
const (
	MinCycles    = 2
	MinPeakRatio = 8
	MinACF       = 0.3
	WeekMargin   = 0.05
)

// Result is what Detect found.
type Result struct {
	// Hourly, Daily and Weekly report which cycles were found.
	Hourly, Daily, Weekly bool
	// ACF is the autocorrelation at each candidate's lag, NaN when there was
	// too little history (indexed by HourIdx, DayIdx, WeekIdx).
	ACF [numCandidates]float64
	// PeakRatio is the periodogram peak near each candidate over the median
	// power (same indexing), NaN when not computed.
	PeakRatio [numCandidates]float64
}

// Detect looks for hourly, daily and weekly cycles in values, regularly
// spaced by bucket, oldest first. NaN values are filled with the previous
// value. It allocates; a caller that detects repeatedly should keep a
// Detector.
func Detect(values []float64, bucket time.Duration) Result {
	var d Detector
	return d.Detect(values, bucket)
}

// Detector keeps the work buffers of Detect between calls, so detecting
// again on history of the same length allocates only the result's Periods.
// The zero value is ready to use. It is not safe for concurrent use.
type Detector struct {
	fft    *fourier.FFT
	x      []float64
	coeff  []complex128
	power  []float64
	sorted []float64
}

// Detect is like the package function Detect.
func (d *Detector) Detect(values []float64, bucket time.Duration) Result {
	nan := math.NaN()
	res := Result{ACF: [numCandidates]float64{nan, nan, nan}, PeakRatio: [numCandidates]float64{nan, nan, nan}}
	n := len(values)
	if n < 16 || bucket <= 0 {
		return res
	}
	d.x = detrend(d.x, values)
	if flat(d.x, values) {
		// A constant series: its detrended values are rounding residue,
		// whose spectrum has a "peak" thousands of times its median.
		return res
	}
	d.sorted = clip(d.x, d.sorted)
	x := d.x
	power := func() []float64 {
		if d.fft == nil || d.fft.Len() != n {
			d.fft = fourier.NewFFT(n)
		}
		if cap(d.coeff) < n/2+1 {
			d.coeff = make([]complex128, n/2+1)
		}
		d.coeff = d.fft.Coefficients(d.coeff[:n/2+1], x)
		d.power = d.power[:0]
		for _, v := range d.coeff {
			d.power = append(d.power, real(v)*real(v)+imag(v)*imag(v))
		}
		return d.power
	}
	var pw []float64
	var med float64
	for i, per := range [numCandidates]time.Duration{Hour, Day, Week} {
		lag := int(per / bucket)
		if lag < 4 || n < MinCycles*lag {
			continue
		}
		if pw == nil {
			pw = power()
			d.sorted = append(d.sorted[:0], pw[1:]...)
			med = selectK(d.sorted, len(d.sorted)/2)
		}
		k := float64(n) / float64(lag) // frequency bin of the period
		peak := 0.0
		for b := int(math.Floor(k)) - 1; b <= int(math.Ceil(k))+1; b++ {
			if b >= 1 && b < len(pw) {
				peak = max(peak, pw[b])
			}
		}
		if med > 0 {
			res.PeakRatio[i] = peak / med
		} else if peak > 0 {
			res.PeakRatio[i] = math.Inf(1)
		} else {
			res.PeakRatio[i] = 0
		}
		res.ACF[i] = acf(x, lag)
	}
	found := func(i int) bool { return res.PeakRatio[i] >= MinPeakRatio && res.ACF[i] >= MinACF }
	res.Daily = found(DayIdx)
	res.Weekly = found(WeekIdx) && (math.IsNaN(res.ACF[DayIdx]) || res.ACF[WeekIdx] >= res.ACF[DayIdx]+WeekMargin)
	if half := int(Hour / 2 / bucket); found(HourIdx) && half >= 1 {
		res.Hourly = (math.IsNaN(res.ACF[DayIdx]) || res.ACF[HourIdx] >= res.ACF[DayIdx]-WeekMargin) &&
			res.ACF[HourIdx] >= acf(x, half)+MinACF
	}
	return res
}

// flat reports whether the detrended x moves less than a billionth of the
// values' size: nothing but rounding left.
func flat(x, values []float64) bool {
	lo, hi, size := math.Inf(1), math.Inf(-1), 0.0
	for i, v := range x {
		lo, hi = min(lo, v), max(hi, v)
		if !math.IsNaN(values[i]) {
			size = max(size, math.Abs(values[i]))
		}
	}
	return !(hi-lo > 1e-9*size)
}

// clip clips x in place to its 1st and 99th percentiles, using buf as
// scratch, and returns buf.
func clip(x, buf []float64) []float64 {
	buf = append(buf[:0], x...)
	lo := selectK(buf, len(buf)/100)
	hi := selectK(buf, len(buf)-1-len(buf)/100)
	for i, v := range x {
		x[i] = min(max(v, lo), hi)
	}
	return buf
}

// selectK returns the k-th smallest value of a (a[k] once sorted), which it
// reorders: quickselect, linear time on average where sorting would cost
// n log n. a holds no NaN. With slices.Sort in its place the bank's
// per-sample cost (BenchmarkUpdate, BenchmarkUpdate5m) rose by 100-150 ns,
// about 15 %: detection sorts 2000 values three times.
func selectK(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for lo < hi {
		// Median of three as the pivot.
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}

// Periods returns the cycles found, shortest first.
func (r Result) Periods() []time.Duration {
	var out []time.Duration
	if r.Hourly {
		out = append(out, Hour)
	}
	if r.Daily {
		out = append(out, Day)
	}
	if r.Weekly {
		out = append(out, Week)
	}
	return out
}

// detrend returns values with NaN filled forward and the least-squares line
// removed.
func detrend(x, values []float64) []float64 {
	n := len(values)
	if cap(x) < n {
		x = make([]float64, n)
	}
	x = x[:n]
	last := 0.0
	for _, v := range values {
		if !math.IsNaN(v) {
			last = v
			break
		}
	}
	for i, v := range values {
		if math.IsNaN(v) {
			v = last
		}
		x[i], last = v, v
	}
	var st, sy, stt, sty float64
	for i, v := range x {
		t := float64(i)
		st += t
		sy += v
		stt += t * t
		sty += t * v
	}
	fn := float64(n)
	den := fn*stt - st*st
	b := 0.0
	if den != 0 {
		b = (fn*sty - st*sy) / den
	}
	a := (sy - b*st) / fn
	for i := range x {
		x[i] -= a + b*float64(i)
	}
	return x
}

// acf returns the Pearson correlation of x with itself lag values later.
func acf(x []float64, lag int) float64 {
	a, b := x[:len(x)-lag], x[lag:]
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= float64(len(a))
	mb /= float64(len(b))
	var sab, saa, sbb float64
	for i := range a {
		da, db := a[i]-ma, b[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	if saa == 0 || sbb == 0 {
		return 0
	}
	return sab / math.Sqrt(saa*sbb)
}
