package bank

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestFilledStepsAreNotScored: a series sampled every third step (a
// scrape slower than the window) has two steps filled by interpolation
// towards each next sample. The forecasts issued at those steps were made
// from a sample they had not seen: they must not be scored, so the bank
// scores one forecast per sample, and the intervals are calibrated on the
// forecasts it could have made: 80% of the samples fall inside the
// interval of the forecast made a horizon before them (it was 72% when
// the interpolations, smoother than the samples, were scored too).
func TestFilledStepsAreNotScored(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	b, err := New(Config{Step: time.Minute, Horizon: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	type made struct{ lo, hi float64 }
	pending := map[int]made{}
	var in, scored float64
	y := 100.0
	const n, warm = 60_000, 15_000
	samples := 0
	for i := 0; i < n; i++ {
		y += rng.NormFloat64()
		if i%3 != 0 {
			continue
		}
		b.Update(int64(i)*60_000, y)
		samples++
		if m, ok := pending[i]; ok && i > warm {
			scored++
			if y >= m.lo && y <= m.hi {
				in++
			}
		}
		delete(pending, i)
		f := b.Forecast(3 * time.Minute)
		pending[i+3] = made{f.Lower, f.Upper}
	}
	if got := b.Scores().N; got > float64(samples) {
		t.Errorf("bank scored %.0f forecasts over %d samples: forecasts issued at filled steps were scored", got, samples)
	}
	if cov := in / scored; math.Abs(cov-0.8) > 0.03 {
		t.Errorf("coverage of the 80%% interval at the horizon: %.3f over %.0f samples, want 0.80 ± 0.03", cov, scored)
	}
}
