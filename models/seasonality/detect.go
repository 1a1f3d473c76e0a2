// Package seasonality detects daily and weekly cycles in a metric's recent
// history the way gocrane/crane's DSP predictor does: a candidate period must
// stand out in the periodogram (gonum's FFT) and be confirmed by the
// autocorrelation at its lag, so a spectral peak from a one-off burst is not
// taken for a cycle.
package seasonality

import (
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Day and Week are the candidate periods.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// Thresholds of the tests. A period needs at least MinCycles full cycles of
// history, a periodogram peak near its frequency at least MinPeakRatio times
// the median power, and an autocorrelation at its lag of at least MinACF.
// Weekly must also beat the daily autocorrelation by WeekMargin, since any
// daily cycle repeats after a week too.
const (
	MinCycles    = 2
	MinPeakRatio = 8
	MinACF       = 0.3
	WeekMargin   = 0.05
)

// Result is what Detect found.
type Result struct {
	// Daily and Weekly report which cycles were found.
	Daily, Weekly bool
	// ACF is the autocorrelation at each candidate's lag, NaN when there was
	// too little history (index 0 Day, 1 Week).
	ACF [2]float64
	// PeakRatio is the periodogram peak near each candidate over the median
	// power (same indexing), NaN when not computed.
	PeakRatio [2]float64
}

// Detect looks for daily and weekly cycles in values, regularly spaced by
// bucket, oldest first. NaN values are filled with the previous value. It
// allocates; a caller that detects repeatedly should keep a Detector.
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
	res := Result{ACF: [2]float64{math.NaN(), math.NaN()}, PeakRatio: [2]float64{math.NaN(), math.NaN()}}
	n := len(values)
	if n < 16 || bucket <= 0 {
		return res
	}
	d.x = detrend(d.x, values)
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
	for i, per := range [2]time.Duration{Day, Week} {
		lag := int(per / bucket)
		if lag < 4 || n < MinCycles*lag {
			continue
		}
		if pw == nil {
			pw = power()
			d.sorted = append(d.sorted[:0], pw[1:]...)
			slices.Sort(d.sorted)
			med = d.sorted[len(d.sorted)/2]
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
	res.Daily = res.PeakRatio[0] >= MinPeakRatio && res.ACF[0] >= MinACF
	res.Weekly = res.PeakRatio[1] >= MinPeakRatio && res.ACF[1] >= MinACF &&
		(math.IsNaN(res.ACF[0]) || res.ACF[1] >= res.ACF[0]+WeekMargin)
	return res
}

// Periods returns the cycles found, shortest first.
func (r Result) Periods() []time.Duration {
	var out []time.Duration
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
