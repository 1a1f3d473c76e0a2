package fourier

import (
	"math"
	"testing"
)

func params() Params {
	return Params{Periods: []int{96}, Harmonics: []int{3}, Memory: 500, TrendUnit: 96, ClipK: 4}
}

// TestShiftAnchorKeepsForecasts checks the trend re-anchoring is exact up
// to rounding: a model past several shifts forecasts a linear trend plus
// season with no jump.
func TestShiftAnchorKeepsForecasts(t *testing.T) {
	var m Fourier
	m.Init(params(), 4, 100, 0)
	f := func(q int) float64 { return 5 + 0.01*float64(q) + 3*math.Sin(2*math.Pi*float64(q)/96) }
	for q := 0; q < 1000; q++ {
		m.Update(f(q), math.NaN())
	}
	if m.anchor == 0 {
		t.Fatal("anchor never moved")
	}
	for _, h := range []int{1, 4, 50} {
		got := m.Forecast(h).Point
		if want := f(999 + h); math.Abs(got-want) > 1e-3 {
			t.Errorf("h=%d: forecast %.5f, want %.5f", h, got, want)
		}
	}
	before := m.Forecast(10).Point
	m.shiftAnchor(3)
	if after := m.Forecast(10).Point; math.Abs(after-before) > 1e-9 {
		t.Errorf("shift changed the forecast: %.12f -> %.12f", before, after)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Params)
		ok   bool
	}{
		{"ok", func(*Params) {}, true},
		{"too many harmonics", func(p *Params) { p.Harmonics = []int{9} }, false},
		{"unpaired", func(p *Params) { p.Harmonics = nil }, false},
		{"short memory", func(p *Params) { p.Memory = 1 }, false},
		{"no trend unit", func(p *Params) { p.TrendUnit = 0 }, false},
	}
	for _, tt := range tests {
		p := params()
		tt.mod(&p)
		if err := p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
