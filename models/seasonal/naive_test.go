package seasonal

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/augur-ops/augur/internal/wire"
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

// TestReadBinaryBoundsTheWidth: a checkpoint whose slot width times its
// slots wraps around to its period (width 1<<62, 4 slots, period 0) is
// refused; accepted, the next Update divided by zero.
func TestReadBinaryBoundsTheWidth(t *testing.T) {
	var m Naive
	m.Init(4, 1, 100, 0)
	m.Update(1, math.NaN())
	valid := m.AppendBinary(nil)
	ring := int(binary.LittleEndian.Uint64(valid[16:]))
	crafted := wire.AppendInt64(nil, 0)
	crafted = wire.AppendInt64(crafted, 1<<62)
	crafted = wire.AppendFloats(crafted, make([]float64, 4))
	crafted = append(crafted, valid[24+8*ring:]...)
	var back Naive
	r := wire.NewReader(crafted)
	back.ReadBinary(r)
	if r.Err() == nil {
		t.Fatal("a checkpoint of width 1<<62 and 4 slots for period 0 was accepted")
	}
}
