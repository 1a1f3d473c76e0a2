package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTrackerCalibrates feeds a forecaster that is always off by heavy
// tailed noise and checks the intervals converge to 80% coverage.
func TestTrackerCalibrates(t *testing.T) {
	tests := []struct {
		name  string
		noise func(*rand.Rand) float64
	}{
		{"normal", func(r *rand.Rand) float64 { return r.NormFloat64() }},
		{"skewed", func(r *rand.Rand) float64 { return r.ExpFloat64() - 1 }},
		{"heavy tails", func(r *rand.Rand) float64 { return r.NormFloat64() / math.Max(0.05, math.Abs(r.NormFloat64())) }},
	}
	for _, tt := range tests {
		rng := rand.New(rand.NewPCG(1, 2))
		var tr Tracker
		tr.Init(5, 2000)
		in, n := 0, 0
		var pending [5]Forecast
		for i := 0; i < 40000; i++ {
			y := 100 + tt.noise(rng)
			if i >= 5 {
				f := pending[i%5]
				if i > 20000 {
					n++
					if y >= f.Lower && y <= f.Upper {
						in++
					}
				}
			}
			tr.Observe(y, math.NaN())
			tr.Issue(100, 100)
			pending[i%5] = tr.Interval(100, 5)
		}
		if cov := float64(in) / float64(n); cov < 0.77 || cov > 0.83 {
			t.Errorf("%s: coverage %.3f, want 0.8 ± 0.03", tt.name, cov)
		}
	}
}

func TestSlotLayout(t *testing.T) {
	tests := []struct{ period, slots, width int }{
		{1, 1, 1}, {1440, 1440, 1}, {2016, 2016, 1}, {10080, 2016, 5}, {20160, 2016, 10}, {2880, 1440, 2},
	}
	for _, tt := range tests {
		if s, w := SlotLayout(tt.period); s != tt.slots || w != tt.width {
			t.Errorf("SlotLayout(%d) = %d, %d, want %d, %d", tt.period, s, w, tt.slots, tt.width)
		}
	}
}
