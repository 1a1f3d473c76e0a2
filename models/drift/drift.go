// Package drift implements the local drift forecaster: the last value plus
// the rise over the last decision horizon, carried on at the same rate. On
// a load that ramps it is right where the last value lags by the horizon's
// rise; on noise it errs more than the last value (it extrapolates the
// noise too), so a bank that serves the member with the lowest recent
// error serves it only while the load keeps a trend.
package drift

import (
	"math"
	"unsafe"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/models"
)

// Drift is a local drift forecaster.
//
// The zero value is not usable; call Init.
type Drift struct {
	last  float64 // the last value, NaN before the first
	slope float64 // rise per step over the last horizon; 0 until known
	// Tracker scores the forecasts and supplies intervals.
	Tracker models.Tracker
}

// Init resets m to decision horizon h steps and a score memory of memory
// forecasts; last is the last value seen (NaN when none).
func (m *Drift) Init(h int, memory, last float64) {
	m.last, m.slope = last, 0
	m.Tracker.Init(h, memory)
}

// Update scores the pending forecasts against y, folds y in and issues new
// forecasts. naiveH is the value observed h steps before y (NaN when
// unknown): the slope is the rise since then over h.
func (m *Drift) Update(y, naiveH float64) {
	m.Tracker.Observe(y, naiveH)
	m.last = y
	m.slope = 0
	if h := m.Tracker.Horizon(); !math.IsNaN(naiveH) {
		m.slope = (y - naiveH) / float64(h)
	}
	m.Tracker.Issue(m.point(1), m.point(m.Tracker.Horizon()))
}

func (m *Drift) point(h int) float64 { return m.last + float64(h)*m.slope }

// Forecast returns the forecast h ≥ 1 steps after the last observed step.
func (m *Drift) Forecast(h int) models.Forecast {
	return m.Tracker.Interval(m.point(max(h, 1)), max(h, 1))
}

// Skip forgets the slope and the forecasts in flight after k unobserved
// steps.
func (m *Drift) Skip(int64) {
	m.slope = 0
	m.Tracker.Skip()
}

// AppendBinary appends m's state.
func (m *Drift) AppendBinary(dst []byte) []byte {
	dst = wire.AppendFloat64(dst, m.last)
	dst = wire.AppendFloat64(dst, m.slope)
	return m.Tracker.AppendBinary(dst)
}

// ReadBinary restores m from r.
func (m *Drift) ReadBinary(r *wire.Reader) {
	m.last = r.Float64()
	m.slope = r.Float64()
	if r.Err() == nil && (math.IsInf(m.slope, 0) || math.IsNaN(m.slope)) {
		r.Fail(wire.ErrInvalid)
	}
	m.Tracker.ReadBinary(r)
}

// MemoryBytes returns the memory m holds, itself included.
func (m *Drift) MemoryBytes() int {
	return int(unsafe.Sizeof(*m)) + m.Tracker.MemoryBytes() - int(unsafe.Sizeof(m.Tracker))
}
