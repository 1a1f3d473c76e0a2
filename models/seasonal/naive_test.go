package seasonal

import (
	"math"
	"testing"
)

func TestNaiveForecastsOneSeasonBack(t *testing.T) {
	tests := []struct {
		name   string
		period int
		h      int
		want   float64
	}{
		{"naive", 1, 3, 99},
		{"season of 10, h 1", 10, 1, 90},
		{"season of 10, h 10", 10, 10, 99},
		{"season of 10, h 25", 10, 25, 94},
	}
	for _, tt := range tests {
		var m Naive
		m.Init(tt.period, 1, 100, 0)
		for q := 0; q < 100; q++ { // values 0..99, last step 99
			m.Update(float64(q), math.NaN())
		}
		if got := m.Forecast(tt.h).Point; got != tt.want {
			t.Errorf("%s: forecast %v, want %v", tt.name, got, tt.want)
		}
	}
}
