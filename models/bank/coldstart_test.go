package bank

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestColdStartFollowsTheLoad: a new bank serves the last value, so on a
// flat load whose first window was partial its forecast is within 5% of the
// load one horizon after the first sample (Holt-Winters, served from the
// start before, crawled from 10 toward a flat 17.3 for minutes); on a
// steady ramp it stays within one horizon's rise of the load, and from two
// horizons on, when drift has been scored, within 5% of the load one
// horizon ahead (the last value alone stays a horizon's rise short).
func TestColdStartFollowsTheLoad(t *testing.T) {
	const step = 10 * time.Second
	cfg := Config{Step: step, Horizon: time.Minute, NonNegative: true}
	h := int(cfg.Horizon / step)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	t.Run("flat", func(t *testing.T) {
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// The first window started part-way through: 10.0, then a flat 17.3.
		b.Update(t0, 10)
		for i := 1; i <= h; i++ {
			b.Update(t0+int64(i)*step.Milliseconds(), 17.3)
		}
		if f := b.Forecast(cfg.Horizon); math.Abs(f.Point-17.3) > 0.05*17.3 {
			t.Fatalf("one horizon after the first sample the forecast is %.2f (%s), want within 5%% of 17.3", f.Point, f.Model)
		}
	})
	t.Run("ramp", func(t *testing.T) {
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rise := 0.5 // per step
		for i := range 4 * h {
			y := 10 + rise*float64(i)
			b.Update(t0+int64(i)*step.Milliseconds(), y)
			if i < h {
				continue
			}
			want := y + rise*float64(h)
			f := b.Forecast(cfg.Horizon)
			if math.Abs(f.Point-want) > rise*float64(h)+1e-9 {
				t.Fatalf("step %d: forecast %.2f (%s) for %.2f one horizon ahead: off by more than the horizon's rise", i, f.Point, f.Model, want)
			}
			// From two horizons on, drift has been scored and is exact.
			if i >= 2*h && math.Abs(f.Point-want) > 0.05*want {
				t.Fatalf("step %d, two horizons in: forecast %.2f (%s) for %.2f one horizon ahead, want within 5%%", i, f.Point, f.Model, want)
			}
		}
	})
}

// TestNonNegativeBounds: the forecast and bounds of a non-negative series
// never go below zero, however spiky it is; without the setting they do.
func TestNonNegativeBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	series := make([]float64, 2000)
	for i := range series {
		series[i] = 1 + rng.Float64()
		if rng.IntN(20) == 0 {
			series[i] = 200 * rng.Float64() // bursts widen the interval
		}
	}
	lowest := func(nonNeg bool) float64 {
		b, err := New(Config{Step: time.Minute, Horizon: 5 * time.Minute, NonNegative: nonNeg})
		if err != nil {
			t.Fatal(err)
		}
		low := math.Inf(1)
		for i, v := range series {
			b.Update(int64(i)*60_000, v)
			f := b.Forecast(5 * time.Minute)
			low = min(low, f.Lower, f.Point)
		}
		return low
	}
	if low := lowest(true); low < 0 {
		t.Fatalf("lowest bound %v of a non-negative series", low)
	}
	if low := lowest(false); low >= 0 {
		t.Fatalf("lowest bound %v without the setting: the test series does not exercise the floor", low)
	}
}
