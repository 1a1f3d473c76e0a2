package models

import (
	"math"
	"unsafe"

	"github.com/augur-ops/augur/internal/wire"
)

// Forecast is a point forecast with its 80% prediction interval.
type Forecast struct {
	// Point is the forecast value.
	Point float64
	// Lower and Upper bound the central 80% interval: the forecaster aims
	// for 10% of actual values below Lower and 10% above Upper.
	Lower, Upper float64
}

// Interval miss rates the Tracker steers towards: 10% below, 10% above.
const (
	tailTarget = 0.10
	// aciGain is the step of the adaptive conformal update of the interval
	// multipliers per scored forecast (Gibbs and Candès, 2021). Larger
	// reacts faster to a change of regime but makes the width noisier.
	aciGain = 0.005
	// initK is the starting multiplier: a normal 80% interval is ±1.28σ and
	// σ ≈ 1.25 × mean absolute error.
	initK = 1.6
	// maxK caps the multipliers so one long outage cannot make intervals
	// unbounded.
	maxK = 50
	// scaleSpeed makes the interval scales forget this many times faster
	// than the scores, so intervals widen within the hour volatility rises.
	scaleSpeed = 6
)

// Tracker scores one forecaster online and turns its past errors into
// intervals at any horizon.
//
// Each step the owner calls Observe with the actual value (before updating
// its own state) and then Issue with its new 1-step and H-step point
// forecasts. Tracker keeps the last H issued H-step forecasts, so every
// forecast is scored exactly H steps after it was made, against the value it
// predicted. The interval half-width at horizon h interpolates the squared
// 1-step and H-step mean absolute errors linearly in h (error variance grows
// with the horizon), and two multipliers, one per side, are steered by
// adaptive conformal inference so that each side misses 10% of the time.
//
// The zero Tracker is not usable; call Init.
type Tracker struct {
	h      int       // decision horizon in steps, ≥ 1
	alpha  float64   // EWMA weight of the scores
	alphaS float64   // EWMA weight of the interval scales (faster)
	points []float64 // ring: H-step point forecast issued at step i, index i mod h
	scales []float64 // ring: interval scale at horizon h at issue time
	valid  int       // how many entries of the rings hold live forecasts (≤ h)
	pos    int       // ring index of the next forecast to issue
	prev1  float64   // 1-step forecast issued last step
	has1   bool

	mae1, maeH float64 // EWMA absolute error at horizon 1 and h
	n1, nH     float64 // counts for the startup averages (capped)
	kLo, kHi   float64 // interval multipliers below and above

	// Scores at horizon h, EWMA.
	absErr   float64 // mean absolute error
	absPct   float64 // mean absolute percentage error, in percent
	nPct     float64
	cover    float64 // share of actual values inside the interval
	naiveAbs float64 // mean absolute error of the naive forecast at h (MASE scale)
	scored   float64 // number of scored forecasts (capped at 1e9)
}

// Init resets t for decision horizon h (steps, ≥ 1) and score memory of
// about memory scored forecasts.
func (t *Tracker) Init(h int, memory float64) {
	if h < 1 {
		h = 1
	}
	if memory < 1 {
		memory = 1
	}
	*t = Tracker{h: h, alpha: 1 / memory, alphaS: scaleSpeed / memory, kLo: initK, kHi: initK}
	t.points = make([]float64, h)
	t.scales = make([]float64, h)
}

// Horizon returns the decision horizon in steps.
func (t *Tracker) Horizon() int { return t.h }

func ewma(avg, x, n, alpha float64) float64 {
	w := alpha
	// Once n·alpha exceeds 1 by more than rounding, 1/n ≤ alpha: the
	// division, the costly part, is needed only during the startup.
	if !(n*alpha > 1+1e-9) && n > 0 && 1/n > w {
		w = 1 / n
	}
	return avg + w*(x-avg)
}

// aciStep is the adaptive conformal step of a multiplier after a hit (0)
// or a miss (1) of its side, aciGain*(miss-tailTarget)/tailTarget computed
// once.
var aciStep = func() (s [2]float64) {
	for miss := range s {
		s[miss] = aciGain * (float64(miss) - tailTarget) / tailTarget
	}
	return s
}()

// Observe scores the forecasts that targeted this step against actual y.
// naiveH is the value observed h steps ago (the naive H-step forecast), used
// for the MASE scale; pass NaN when unknown.
func (t *Tracker) Observe(y, naiveH float64) {
	if t.has1 {
		t.n1 = min(t.n1+1, 1e9)
		t.mae1 = ewma(t.mae1, math.Abs(y-t.prev1), t.n1, t.alphaS)
	}
	if t.valid < t.h {
		return
	}
	i := t.pos // the oldest entry was issued h steps ago
	p, s := t.points[i], t.scales[i]
	if math.IsNaN(p) {
		return // voided: see Void
	}
	e := y - p
	t.nH = min(t.nH+1, 1e9)
	t.maeH = ewma(t.maeH, math.Abs(e), t.nH, t.alphaS)
	t.scored = min(t.scored+1, 1e9)
	t.absErr = ewma(t.absErr, math.Abs(e), t.scored, t.alpha)
	if y != 0 {
		t.nPct = min(t.nPct+1, 1e9)
		t.absPct = ewma(t.absPct, min(100*math.Abs(e/y), 1000), t.nPct, t.alpha)
	}
	if !math.IsNaN(naiveH) {
		t.naiveAbs = ewma(t.naiveAbs, math.Abs(y-naiveH), t.scored, t.alpha)
	}
	lo, hi := p-t.kLo*s, p+t.kHi*s
	in := 0.0
	if y >= lo && y <= hi {
		in = 1
	}
	t.cover = ewma(t.cover, in, t.scored, t.alpha)
	if s > 0 {
		missLo, missHi := 0, 0
		if y < lo {
			missLo = 1
		}
		if y > hi {
			missHi = 1
		}
		t.kLo = min(max(t.kLo+aciStep[missLo], 0), maxK)
		t.kHi = min(max(t.kHi+aciStep[missHi], 0), maxK)
	}
}

// Issue records the forecasts made this step: f1 for the next step and fH
// for h steps ahead.
func (t *Tracker) Issue(f1, fH float64) {
	t.prev1, t.has1 = f1, true
	t.points[t.pos] = fH
	t.scales[t.pos] = t.Scale(t.h)
	t.pos++
	if t.pos == t.h {
		t.pos = 0
	}
	if t.valid < t.h {
		t.valid++
	}
}

// Issued returns the forecasts issued last: for the next step and for h
// steps ahead.
func (t *Tracker) Issued() (f1, fH float64) {
	i := t.pos - 1
	if i < 0 {
		i = t.h - 1
	}
	return t.prev1, t.points[i]
}

// Void withdraws the forecasts issued last from scoring: the owner made
// them from a value it did not have yet at that step (a step filled by
// interpolation towards the sample after a gap), so scoring them would
// credit the forecaster with knowing the future. Issued returns NaN for
// the H-step forecast until the next Issue.
func (t *Tracker) Void() {
	i := t.pos - 1
	if i < 0 {
		i = t.h - 1
	}
	t.points[i] = math.NaN()
	t.has1 = false
}

// Skip forgets the forecasts in flight, after a gap in the input.
func (t *Tracker) Skip() {
	t.valid, t.pos, t.has1 = 0, 0, false
}

// Scale returns the interval scale (an absolute error) at horizon h steps.
func (t *Tracker) Scale(h int) float64 {
	a, b := t.mae1, t.maeH
	if t.nH == 0 {
		b = a * math.Sqrt(float64(t.h))
	}
	// The squares are taken in units of the larger error: errors above
	// about 1e154 (one sample of 1e160 in the series) overflow a square,
	// and Inf - Inf made every later interval NaN.
	m := max(a, b)
	if !(m > 0) || math.IsInf(m, 0) {
		m = 1
	}
	a, b = a/m, b/m
	v1, vH := a*a, b*b
	if t.h == 1 {
		return m * math.Sqrt(vH*float64(h))
	}
	v := v1 + (vH-v1)*float64(h-1)/float64(t.h-1)
	if v < 0 {
		v = 0
	}
	return m * math.Sqrt(v)
}

// Interval returns the forecast at horizon h steps around point p.
func (t *Tracker) Interval(p float64, h int) Forecast {
	s := t.Scale(h)
	return Forecast{Point: p, Lower: p - t.kLo*s, Upper: p + t.kHi*s}
}

// MemoryBytes returns the memory t holds, itself included.
func (t *Tracker) MemoryBytes() int {
	return int(unsafe.Sizeof(*t)) + 8*(cap(t.points)+cap(t.scales))
}

// Scores are a forecaster's recent accuracy at the decision horizon.
type Scores struct {
	// MAE is the mean absolute error.
	MAE float64
	// MASE is MAE over the naive forecast's MAE at the same horizon; below
	// 1 beats "the value an horizon ago". NaN until known.
	MASE float64
	// MAPE is the mean absolute percentage error in percent (each term
	// capped at 1000%; zero actual values skipped).
	MAPE float64
	// Accuracy is 100 - MAPE, floored at 0.
	Accuracy float64
	// Coverage is the share of actual values inside the 80% interval.
	Coverage float64
	// N is how many forecasts were scored (saturating).
	N float64
}

// Scores returns the recent accuracy at the decision horizon.
func (t *Tracker) Scores() Scores {
	s := Scores{MAPE: t.absPct, Coverage: t.cover, Accuracy: t.Accuracy(), MASE: math.NaN()}
	s.MAE, s.N = t.MAE()
	if t.naiveAbs > 0 {
		s.MASE = s.MAE / t.naiveAbs
	}
	return s
}

// MAE returns Scores().MAE and Scores().N, without computing the rest.
func (t *Tracker) MAE() (mae, n float64) { return t.absErr, t.scored }

// Accuracy returns Scores().Accuracy, without computing the rest.
func (t *Tracker) Accuracy() float64 { return max(100-t.absPct, 0) }

// Reset keeps the forecasts in flight but restarts the interval multipliers
// and the error averages' startup, after a refit changed the forecaster.
func (t *Tracker) Reset() {
	t.kLo, t.kHi = initK, initK
	t.n1, t.nH = min(t.n1, 10), min(t.nH, 10)
}

// AppendBinary appends t's state.
func (t *Tracker) AppendBinary(dst []byte) []byte {
	dst = wire.AppendInt64(dst, int64(t.h))
	dst = wire.AppendFloat64(dst, t.alpha)
	dst = wire.AppendFloat64(dst, t.alphaS)
	dst = wire.AppendFloats(dst, t.points)
	dst = wire.AppendFloats(dst, t.scales)
	dst = wire.AppendInt64(dst, int64(t.valid))
	dst = wire.AppendInt64(dst, int64(t.pos))
	dst = wire.AppendFloat64(dst, t.prev1)
	b := 0.0
	if t.has1 {
		b = 1
	}
	for _, v := range [...]float64{b, t.mae1, t.maeH, t.n1, t.nH, t.kLo, t.kHi,
		t.absErr, t.absPct, t.nPct, t.cover, t.naiveAbs, t.scored} {
		dst = wire.AppendFloat64(dst, v)
	}
	return dst
}

// maxHorizonSteps bounds decoded ring lengths.
const maxHorizonSteps = 1 << 16

// ReadBinary restores t from r, reusing t's buffers.
func (t *Tracker) ReadBinary(r *wire.Reader) {
	h := int(r.Int64())
	if h < 1 || h > maxHorizonSteps {
		h = 1
		r.Fail(wire.ErrInvalid)
	}
	t.h = h
	t.alpha = r.Float64()
	t.alphaS = r.Float64()
	t.points = r.Floats(t.points, h)
	t.scales = r.Floats(t.scales, h)
	t.valid = int(r.Int64())
	t.pos = int(r.Int64())
	if r.Err() == nil && (len(t.points) != h || len(t.scales) != h || t.valid < 0 || t.valid > h || t.pos < 0 || t.pos >= h) {
		r.Fail(wire.ErrInvalid)
	}
	t.prev1 = r.Float64()
	t.has1 = r.Float64() == 1
	for _, p := range [...]*float64{&t.mae1, &t.maeH, &t.n1, &t.nH, &t.kLo, &t.kHi,
		&t.absErr, &t.absPct, &t.nPct, &t.cover, &t.naiveAbs, &t.scored} {
		*p = r.Float64()
	}
}
