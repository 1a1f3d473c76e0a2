// Package holtwinters implements robust additive Holt-Winters (level, damped
// trend and a seasonal profile, with clipped updates so one spike cannot
// wreck the season) and the plain Holt double exponential smoothing that
// Prometheus' double_exponential_smoothing computes, used as a baseline.
package holtwinters

import (
	"errors"
	"math"
	"unsafe"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/models"
)

// Params are the smoothing weights per step.
type Params struct {
	// Alpha is the level weight in (0,1].
	Alpha float64
	// Beta is the trend weight in [0,1], relative to Alpha (error-correction
	// form: the trend moves by Alpha*Beta*error).
	Beta float64
	// Gamma is the seasonal weight in [0,1] per visit of a slot.
	Gamma float64
	// Phi damps the trend per step, in (0,1]; 1 is an undamped trend.
	Phi float64
	// ClipK clips each one-step error at ClipK times the running mean
	// absolute error before it updates the state; 0 disables clipping.
	ClipK float64
}

// Validate reports whether p is usable.
func (p Params) Validate() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha <= 1):
		return errors.New("holt-winters alpha must be in (0,1]")
	case !(p.Beta >= 0 && p.Beta <= 1):
		return errors.New("holt-winters beta must be in [0,1]")
	case !(p.Gamma >= 0 && p.Gamma <= 1):
		return errors.New("holt-winters gamma must be in [0,1]")
	case !(p.Phi > 0 && p.Phi <= 1):
		return errors.New("holt-winters phi must be in (0,1]")
	case !(p.ClipK >= 0):
		return errors.New("holt-winters clip must be ≥ 0")
	}
	return nil
}

// HoltWinters is a robust additive Holt-Winters forecaster. Without a season
// (period 0) it is damped Holt.
//
// The zero value is not usable; call Init.
type HoltWinters struct {
	p      Params
	period int // steps; 0 when there is no season
	width  int
	season []float64
	level  float64
	trend  float64
	scale  float64 // EWMA of the clipped absolute one-step error
	n      int64   // next step index
	seen   float64 // steps observed since Init (saturating)
	d1, dH float64 // cached damped-trend sums for horizons 1 and H
	// Tracker scores the forecasts and supplies intervals.
	Tracker models.Tracker
}

// Init resets m with params p, a season of period steps (0 for none),
// decision horizon h steps and score memory of memory forecasts. The step
// index restarts at start.
func (m *HoltWinters) Init(p Params, period, h int, memory float64, start int64) {
	season := m.season
	*m = HoltWinters{p: p, n: start}
	m.Tracker.Init(h, memory)
	m.setPeriod(period, season)
	m.cacheDamp()
}

func (m *HoltWinters) setPeriod(period int, buf []float64) {
	if period <= 1 {
		m.period, m.width, m.season = 0, 1, buf[:0]
		return
	}
	slots, width := models.SlotLayout(period)
	m.period, m.width = slots*width, width
	if cap(buf) >= slots {
		m.season = buf[:slots]
		clear(m.season)
	} else {
		m.season = make([]float64, slots)
	}
}

func (m *HoltWinters) cacheDamp() {
	m.d1 = m.damp(1)
	m.dH = m.damp(m.Tracker.Horizon())
}

// damp returns sum_{i=1..h} phi^i.
func (m *HoltWinters) damp(h int) float64 {
	phi := m.p.Phi
	if phi == 1 {
		return float64(h)
	}
	return phi * (1 - math.Pow(phi, float64(h))) / (1 - phi)
}

// SetParams replaces m's weights by p (which must be valid), keeping its
// state.
func (m *HoltWinters) SetParams(p Params) {
	m.p = p
	m.cacheDamp()
}

// Params returns m's weights.
func (m *HoltWinters) Params() Params { return m.p }

// Period returns the season length in steps, 0 when there is none.
func (m *HoltWinters) Period() int { return m.period }

// seasonAt returns the seasonal component of step q and the two slots and
// weights that produce it.
func (m *HoltWinters) seasonAt(q int64) (v float64, i0, i1 int, f float64) {
	if m.period == 0 {
		return 0, 0, 0, 0
	}
	return m.seasonAtPhase(models.FloorMod(q, int64(m.period)))
}

// seasonAtPhase is seasonAt for a step of phase ph in [0, period), period
// > 0.
func (m *HoltWinters) seasonAtPhase(phase int64) (v float64, i0, i1 int, f float64) {
	if m.width == 1 {
		i0 = int(phase)
		return m.season[i0], i0, i0, 0
	}
	ph := float64(phase)
	x := (ph - float64(m.width-1)/2) / float64(m.width)
	fl := math.Floor(x)
	f = x - fl
	n := len(m.season)
	k := int64(fl) // -1 before the first slot's centre, else a slot
	if k < 0 || k >= int64(n) {
		k = models.FloorMod(k, int64(n))
	}
	i0 = int(k)
	i1 = i0 + 1
	if i1 == n {
		i1 = 0
	}
	return (1-f)*m.season[i0] + f*m.season[i1], i0, i1, f
}

func (m *HoltWinters) point(h int, d float64) float64 {
	s, _, _, _ := m.seasonAt(m.n - 1 + int64(h))
	return m.level + d*m.trend + s
}

// Update scores the pending forecasts against y, folds y into the state and
// issues new forecasts. naiveH is the value observed h steps ago (NaN when
// unknown).
func (m *HoltWinters) Update(y, naiveH float64) {
	m.Tracker.Observe(y, naiveH)
	p := int64(m.period)
	if p == 0 {
		m.observe(y, 0, 0, 0, 0)
		m.Tracker.Issue(m.point(1, m.d1), m.point(m.Tracker.Horizon(), m.dH))
		return
	}
	// One division for the phase of this step; the forecasts' phases, 1
	// and h steps later, follow from it.
	ph := models.FloorMod(m.n, p)
	s0, i0, i1, f := m.seasonAtPhase(ph)
	m.observe(y, s0, i0, i1, f)
	s1, _, _, _ := m.seasonAtPhase(models.AddMod(ph, 1, p))
	sH, _, _, _ := m.seasonAtPhase(models.AddMod(ph, int64(m.Tracker.Horizon()), p))
	m.Tracker.Issue(m.level+m.d1*m.trend+s1, m.level+m.dH*m.trend+sH)
}

// observe folds y, the value of step m.n, into the state; s, i0, i1, f
// are seasonAt(m.n).
func (m *HoltWinters) observe(y, s float64, i0, i1 int, f float64) {
	m.n++
	if m.seen == 0 {
		m.level, m.trend = y-s, 0
		m.seen = 1
		return
	}
	m.seen = min(m.seen+1, 1e9)
	e := y - (m.level + m.p.Phi*m.trend + s)
	ae := math.Abs(e)
	if m.p.ClipK > 0 && m.seen > 3 {
		lim := m.p.ClipK * m.scale
		if ae > lim {
			e = math.Copysign(lim, e)
			ae = lim
		}
	}
	w := m.p.Alpha
	// Once seen·alpha exceeds 1 by more than rounding, seen ≥ 1/alpha:
	// the division is needed only during the startup.
	if !(m.seen*w > 1+1e-9) && m.seen < 1/w {
		w = 1 / m.seen
	}
	m.scale += w * (ae - m.scale)
	m.level += m.p.Phi*m.trend + m.p.Alpha*e
	m.trend = m.p.Phi*m.trend + m.p.Alpha*m.p.Beta*e
	if m.period > 0 {
		g := m.p.Gamma * (1 - m.p.Alpha) * e
		m.season[i0] += (1 - f) * g
		if f > 0 {
			m.season[i1] += f * g
		}
	}
}

// Forecast returns the forecast h ≥ 1 steps after the last observed step.
func (m *HoltWinters) Forecast(h int) models.Forecast {
	if h < 1 {
		h = 1
	}
	return m.Tracker.Interval(m.point(h, m.damp(h)), h)
}

// Skip advances the step index over k unobserved steps.
func (m *HoltWinters) Skip(k int64) {
	m.n += k
	m.Tracker.Skip()
}

// Start sets the level of a model that has seen no sample yet to y, so
// that it forecasts y (not 0) until its first sample, which starts it as
// before.
func (m *HoltWinters) Start(y float64) {
	if m.seen == 0 {
		m.level, m.trend = y, 0
	}
}

// Seed sets the season and level from history: at(q) returns the value of
// step q, or false when unknown. The last two periods are read (one when
// less is known); each slot gets the mean deviation of its values from the
// mean of the period they fall in.
func (m *HoltWinters) Seed(at func(q int64) (float64, bool)) {
	if m.period == 0 {
		return
	}
	n := len(m.season)
	sum := make([]float64, n)
	cnt := make([]float64, n)
	for c := int64(2); c >= 1; c-- {
		from := m.n - c*int64(m.period)
		var tot, k float64
		for q := from; q < from+int64(m.period); q++ {
			if v, ok := at(q); ok {
				tot += v
				k++
			}
		}
		if k < float64(m.period)/2 {
			continue
		}
		mean := tot / k
		for q := from; q < from+int64(m.period); q++ {
			if v, ok := at(q); ok {
				i := int(models.FloorMod(q, int64(m.period))) / m.width
				sum[i] += v - mean
				cnt[i]++
			}
		}
		m.level = mean
	}
	var tot float64
	for i := range m.season {
		if cnt[i] > 0 {
			m.season[i] = sum[i] / cnt[i]
		}
		tot += m.season[i]
	}
	for i := range m.season {
		m.season[i] -= tot / float64(n)
	}
	m.trend = 0
	if m.seen == 0 {
		m.seen = 1
	}
}

// AppendBinary appends m's state.
func (m *HoltWinters) AppendBinary(dst []byte) []byte {
	for _, v := range [...]float64{m.p.Alpha, m.p.Beta, m.p.Gamma, m.p.Phi, m.p.ClipK} {
		dst = wire.AppendFloat64(dst, v)
	}
	dst = wire.AppendInt64(dst, int64(m.period))
	dst = wire.AppendInt64(dst, int64(m.width))
	dst = wire.AppendFloats(dst, m.season)
	for _, v := range [...]float64{m.level, m.trend, m.scale, m.seen} {
		dst = wire.AppendFloat64(dst, v)
	}
	dst = wire.AppendInt64(dst, m.n)
	return m.Tracker.AppendBinary(dst)
}

// ReadBinary restores m from r, reusing m's buffers.
func (m *HoltWinters) ReadBinary(r *wire.Reader) {
	for _, p := range [...]*float64{&m.p.Alpha, &m.p.Beta, &m.p.Gamma, &m.p.Phi, &m.p.ClipK} {
		*p = r.Float64()
	}
	if r.Err() == nil && m.p.Validate() != nil {
		r.Fail(wire.ErrInvalid)
	}
	m.period = int(r.Int64())
	m.width = int(r.Int64())
	m.season = r.Floats(m.season, models.MaxSlots)
	if r.Err() == nil && (m.period < 0 || m.period > models.MaxPeriod || m.width < 1 || m.width > models.MaxPeriod ||
		(m.period == 0) != (len(m.season) == 0) || m.period != m.width*len(m.season)) {
		r.Fail(wire.ErrInvalid)
	}
	for _, p := range [...]*float64{&m.level, &m.trend, &m.scale, &m.seen} {
		*p = r.Float64()
	}
	m.n = r.Int64()
	m.Tracker.ReadBinary(r)
	if r.Err() == nil {
		m.cacheDamp()
	}
}

// MemoryBytes returns the memory m holds, itself included.
func (m *HoltWinters) MemoryBytes() int {
	return int(unsafe.Sizeof(*m)) + 8*cap(m.season) + m.Tracker.MemoryBytes() - int(unsafe.Sizeof(m.Tracker))
}
