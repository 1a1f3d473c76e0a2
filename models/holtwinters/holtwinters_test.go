package holtwinters

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/models"
)

// TestHoltMatchesPrometheus compares with double_exponential_smoothing of
// Prometheus computed by hand for sf=0.5, tf=0.5 over 1, 3, 2, 4.
func TestHoltMatchesPrometheus(t *testing.T) {
	var m Holt
	m.Init(0.5, 0.5, 1, 100)
	for _, v := range []float64{1, 3, 2, 4} {
		m.Update(v, math.NaN())
	}
	// s1=3 b=2; v=2: s=0.5*2+0.5*(3+2)=3.5, b=0.5*0.5+0.5*2=1.25;
	// v=4: s=0.5*4+0.5*(3.5+1.25)=4.375, b=0.5*0.875+0.5*1.25=1.0625.
	if m.level != 4.375 || m.trend != 1.0625 {
		t.Errorf("level %v trend %v, want 4.375 1.0625", m.level, m.trend)
	}
	if got := m.Forecast(2).Point; got != 4.375+2*1.0625 {
		t.Errorf("forecast %v", got)
	}
}

// TestClippedUpdateResistsSpike checks one spike moves the robust model's
// season and level far less than the spike.
func TestClippedUpdateResistsSpike(t *testing.T) {
	p := Params{Alpha: 0.2, Beta: 0.1, Gamma: 0.3, Phi: 0.98, ClipK: 4}
	var m HoltWinters
	m.Init(p, 24, 1, 100, 0)
	season := func(q int) float64 { return 10 * math.Sin(2*math.Pi*float64(q)/24) }
	for q := 0; q < 24*30; q++ {
		y := 50 + season(q) + 0.5*math.Sin(float64(q)*1.7)
		if q == 24*29+5 {
			y += 1000
		}
		m.Update(y, math.NaN())
	}
	for h := 1; h <= 24; h++ {
		want := 50 + season(24*30-1+h)
		if got := m.Forecast(h).Point; math.Abs(got-want) > 3 {
			t.Errorf("h=%d: forecast %.2f, want %.2f ± 3 after a spike of 1000", h, got, want)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		p  Params
		ok bool
	}{
		{Params{Alpha: 0.5, Phi: 1}, true},
		{Params{Alpha: 0, Phi: 1}, false},
		{Params{Alpha: 0.5, Phi: 0}, false},
		{Params{Alpha: 0.5, Phi: 1, Gamma: 2}, false},
		{Params{Alpha: 0.5, Phi: 1, ClipK: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: %v", tt.p, err)
		}
	}
}

// TestReadBinaryRejectsLongSeason checks a checkpoint whose season is
// longer than MaxPeriod (width × slots) is refused, and one within it
// restores.
func TestReadBinaryRejectsLongSeason(t *testing.T) {
	var m HoltWinters
	m.Init(Params{Alpha: 0.5, Phi: 1, Gamma: 0.1}, 10080, 4, 100, 0) // 2016 slots of 5 steps
	for i := 0; i < 100; i++ {
		m.Update(float64(i%7), math.NaN())
	}
	good := m.AppendBinary(nil)
	var back HoltWinters
	r := wire.NewReader(good)
	if back.ReadBinary(r); r.Err() != nil {
		t.Fatalf("valid checkpoint: %v", r.Err())
	}
	// period and width follow the five parameters.
	bad := slices.Clone(good)
	width := int64(models.MaxPeriod/2016 + 1)
	binary.LittleEndian.PutUint64(bad[40:], uint64(width*2016))
	binary.LittleEndian.PutUint64(bad[48:], uint64(width))
	r = wire.NewReader(bad)
	if back.ReadBinary(r); !errors.Is(r.Err(), wire.ErrInvalid) {
		t.Errorf("season of %d steps: error %v, want ErrInvalid", width*2016, r.Err())
	}
}
