package holtwinters

import "github.com/augur-ops/augur/models"

// Holt is plain double exponential smoothing exactly as Prometheus'
// double_exponential_smoothing (formerly holt_winters) computes it: the
// first value starts the level, the first difference starts the trend, and
// the forecast h steps ahead is level + h*trend. It is a baseline.
//
// The zero value is not usable; call Init.
type Holt struct {
	sf, tf       float64
	level, trend float64
	seen         int
	// Tracker scores the forecasts and supplies intervals.
	Tracker models.Tracker
}

// Init resets m with smoothing factor sf and trend factor tf (both in
// (0,1), as Prometheus requires), decision horizon h and score memory.
func (m *Holt) Init(sf, tf float64, h int, memory float64) {
	*m = Holt{sf: sf, tf: tf}
	m.Tracker.Init(h, memory)
}

// Update scores the pending forecasts against y, folds y in and issues new
// forecasts.
func (m *Holt) Update(y, naiveH float64) {
	m.Tracker.Observe(y, naiveH)
	switch m.seen {
	case 0:
		m.level = y
	case 1:
		m.trend = y - m.level
		m.level = y
	default:
		x := m.sf*y + (1-m.sf)*(m.level+m.trend)
		m.trend = m.tf*(x-m.level) + (1-m.tf)*m.trend
		m.level = x
	}
	if m.seen < 2 {
		m.seen++
	}
	h := m.Tracker.Horizon()
	m.Tracker.Issue(m.level+m.trend, m.level+float64(h)*m.trend)
}

// Forecast returns the forecast h ≥ 1 steps after the last observed step.
func (m *Holt) Forecast(h int) models.Forecast {
	if h < 1 {
		h = 1
	}
	return m.Tracker.Interval(m.level+float64(h)*m.trend, h)
}
