// Package seasonal implements the seasonal naive forecaster: the forecast
// for a step is the value one season earlier. With a period of one step it
// is the plain naive forecast (the last value).
package seasonal

import (
	"math"
	"unsafe"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/models"
)

// Naive is a seasonal naive forecaster. The season is kept in
// models.SlotLayout slots; a slot wider than one step holds the mean of the
// values that fell into it.
//
// The zero value is not usable; call Init.
type Naive struct {
	period int // steps, slots*width
	width  int // steps per slot
	ring   []float64
	n      int64 // steps observed (the next step's index)
	accSum float64
	accN   float64
	// Tracker scores the forecasts and supplies intervals.
	Tracker models.Tracker
}

// Init resets m to a season of period steps (1 for the naive forecaster),
// decision horizon h steps and score memory of memory forecasts. The step
// index restarts at start.
func (m *Naive) Init(period, h int, memory float64, start int64) {
	slots, width := models.SlotLayout(period)
	m.period, m.width = slots*width, width
	if cap(m.ring) >= slots {
		m.ring = m.ring[:slots]
		clear(m.ring)
	} else {
		m.ring = make([]float64, slots)
	}
	m.n, m.accSum, m.accN = start, 0, 0
	m.Tracker.Init(h, memory)
}

// Period returns the season length in steps.
func (m *Naive) Period() int { return m.period }

// slot returns the slot of step q.
func (m *Naive) slot(q int64) int { return m.slotOf(models.FloorMod(q, int64(m.period))) }

// Update scores the pending forecasts against y, stores y as the value of
// the next step and issues new forecasts. naiveH is the value observed h
// steps ago (NaN when unknown).
func (m *Naive) Update(y, naiveH float64) {
	m.Tracker.Observe(y, naiveH)
	// One division for the phase of this step; the forecasts' steps, 1 and
	// h later, are the same seasons back as point computes them.
	p := int64(m.period)
	ph := models.FloorMod(m.n, p)
	m.observe(y, ph)
	h := m.Tracker.Horizon()
	m.Tracker.Issue(m.ring[m.slotOf(models.AddMod(ph, 1, p))], m.ring[m.slotOf(models.AddMod(ph, int64(h), p))])
}

// slotOf returns the slot of phase ph in [0, period).
func (m *Naive) slotOf(ph int64) int {
	if m.width == 1 {
		return int(ph)
	}
	return int(ph) / m.width
}

// observe stores y as the value of step m.n, whose phase is ph.
func (m *Naive) observe(y float64, ph int64) {
	if m.width == 1 {
		m.ring[ph] = y
		m.n++
		return
	}
	if ph%int64(m.width) == 0 { // the period is a multiple of the width
		m.accSum, m.accN = 0, 0
	}
	m.accSum += y
	m.accN++
	m.ring[m.slotOf(ph)] = m.accSum / m.accN
	m.n++
}

// point is the forecast for step n-1+h.
func (m *Naive) point(h int) float64 {
	p := int64(m.period)
	k := (int64(h) + p - 1) / p
	return m.ring[m.slot(m.n-1+int64(h)-k*p)]
}

// Forecast returns the forecast h ≥ 1 steps after the last observed step.
func (m *Naive) Forecast(h int) models.Forecast {
	if h < 1 {
		h = 1
	}
	return m.Tracker.Interval(m.point(h), h)
}

// Skip advances the step index over k unobserved steps.
func (m *Naive) Skip(k int64) {
	m.n += k
	m.accSum, m.accN = 0, 0
	m.Tracker.Skip()
}

// Seed fills the season from history: at(q) returns the value of step q, or
// false when unknown. Steps n-period .. n-1 are read.
func (m *Naive) Seed(at func(q int64) (float64, bool)) {
	for i := range m.ring {
		m.ring[i] = math.NaN()
	}
	last := math.NaN()
	for q := m.n - int64(m.period); q < m.n; q++ {
		v, ok := at(q)
		if !ok {
			continue
		}
		last = v
		m.ring[m.slot(q)] = v
	}
	for i, v := range m.ring {
		if math.IsNaN(v) {
			m.ring[i] = last
		}
	}
	for i, v := range m.ring {
		if math.IsNaN(v) {
			m.ring[i] = 0
		}
	}
	m.accSum, m.accN = 0, 0
}

// AppendBinary appends m's state.
func (m *Naive) AppendBinary(dst []byte) []byte {
	dst = wire.AppendInt64(dst, int64(m.period))
	dst = wire.AppendInt64(dst, int64(m.width))
	dst = wire.AppendFloats(dst, m.ring)
	dst = wire.AppendInt64(dst, m.n)
	dst = wire.AppendFloat64(dst, m.accSum)
	dst = wire.AppendFloat64(dst, m.accN)
	return m.Tracker.AppendBinary(dst)
}

// ReadBinary restores m from r, reusing m's buffers.
func (m *Naive) ReadBinary(r *wire.Reader) {
	m.period = int(r.Int64())
	m.width = int(r.Int64())
	m.ring = r.Floats(m.ring, models.MaxSlots)
	// width is bounded before the product, which a crafted width made
	// wrap around to the period (and a later Update divide by zero).
	if r.Err() == nil && (m.width < 1 || m.width > models.MaxPeriod || len(m.ring) < 1 || m.period != m.width*len(m.ring)) {
		r.Fail(wire.ErrInvalid)
	}
	if r.Err() == nil && m.period > models.MaxPeriod {
		r.Fail(wire.ErrInvalid)
	}
	m.n = r.Int64()
	m.accSum = r.Float64()
	m.accN = r.Float64()
	m.Tracker.ReadBinary(r)
}

// MemoryBytes returns the memory m holds, itself included.
func (m *Naive) MemoryBytes() int {
	return int(unsafe.Sizeof(*m)) + 8*cap(m.ring) + m.Tracker.MemoryBytes() - int(unsafe.Sizeof(m.Tracker))
}
