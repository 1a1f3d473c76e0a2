package drift

import (
	"math"
	"testing"

	"github.com/augur-ops/augur/internal/wire"
)

// feed plays ys into a new Drift of horizon h, passing each value the one
// h steps before it, as a bank does.
func feed(h int, ys []float64) *Drift {
	var m Drift
	m.Init(h, 100, math.NaN())
	for i, y := range ys {
		naiveH := math.NaN()
		if i >= h {
			naiveH = ys[i-h]
		}
		m.Update(y, naiveH)
	}
	return &m
}

// TestDriftCarriesTheRiseOn: on a line the forecast is exact once a
// horizon of values is known; before that it is the last value; after a
// gap the slope is forgotten.
func TestDriftCarriesTheRiseOn(t *testing.T) {
	const h = 4
	line := func(n int) []float64 {
		ys := make([]float64, n)
		for i := range ys {
			ys[i] = 10 + 2*float64(i)
		}
		return ys
	}
	if got := feed(h, line(h)).Forecast(h).Point; got != 16 {
		t.Errorf("before a horizon is known: %v, want the last value 16", got)
	}
	m := feed(h, line(3*h))
	for k := 1; k <= 2*h; k++ {
		if got, want := m.Forecast(k).Point, 10+2*float64(3*h-1+k); got != want {
			t.Errorf("%d steps ahead: %v, want %v", k, got, want)
		}
	}
	// Scored: h forecasts made before a horizon was known (the last
	// value, a horizon's rise short: 8), then h exact ones.
	if s := m.Tracker.Scores(); s.N != 2*h || math.Abs(s.MAE-4) > 1e-9 {
		t.Errorf("scores %+v: want %d scored, mean absolute error 4", s, 2*h)
	}
	m.Skip(5)
	if got := m.Forecast(h).Point; got != 10+2*float64(3*h-1) {
		t.Errorf("after a gap: %v, want the last value", got)
	}
}

// TestDriftCheckpoint: the state round-trips; a non-finite slope is refused.
func TestDriftCheckpoint(t *testing.T) {
	m := feed(3, []float64{1, 2, 4, 8, 16, 32})
	data := m.AppendBinary(nil)
	var back Drift
	back.Init(3, 100, 0)
	r := wire.NewReader(data)
	back.ReadBinary(r)
	if r.Err() != nil || len(r.Rest()) != 0 {
		t.Fatalf("restore: %v, %d bytes left", r.Err(), len(r.Rest()))
	}
	if got, want := back.Forecast(2), m.Forecast(2); got != want {
		t.Errorf("restored forecast %+v, want %+v", got, want)
	}
	m.slope = math.Inf(1)
	r = wire.NewReader(m.AppendBinary(nil))
	back.ReadBinary(r)
	if r.Err() == nil {
		t.Error("an infinite slope restored")
	}
}
