package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/augur-ops/augur/detectors/anomaly"
)

// The generated series are sampled every 5 minutes: step in ms, and
// day samples a day.
const (
	step = 300_000
	day  = 288
)

// syntheticReport scores augur on generated series the shared corpus has
// few of, with no labels to tune on: clean series, daily or flat (where
// every detection is false), and counts per 5-minute interval with a
// daily swing and three 12-sample bursts at 4x the rate. Seeds are fixed,
// so the numbers repeat.
func syntheticReport(out io.Writer, cfg anomaly.Config) error {
	d, err := anomaly.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "clean series: 50 + amp sin(day) + N(0, noise), 20 series of 8000 samples (27 days); detections after sample 600 are all false")
	for _, c := range []struct{ amp, noise float64 }{{10, 1}, {10, 3}, {0, 1}} {
		n := cleanDetections(d, c.amp, c.noise)
		fmt.Fprintf(out, "  amp %2.0f noise %.0f: %3d false detections (one per %.0f samples)\n", c.amp, c.noise, n, 20*7400/math.Max(float64(n), 1))
	}
	fmt.Fprintln(out, "counts: Poisson(base (1 + swing sin(day))) per 5 minutes, 10 series of 15000 samples each, three bursts of 12 samples at 4x; a burst is found by a detection inside it or within 12 samples after")
	for _, swing := range []float64{0.8, 0.3} {
		for _, base := range []float64{2, 10, 50, 500} {
			found, falses := countBursts(d, swing, base)
			fmt.Fprintf(out, "  swing ±%2.0f%% base %3.0f: bursts found %2d / 30, false detections %3d\n", 100*swing, base, found, falses)
		}
	}
	return nil
}

// cleanDetections plays 20 clean series of 5-minute samples, a daily sine
// of amplitude amp (0: flat) with Gaussian noise, and returns the
// detections after the first 600 samples.
func cleanDetections(d *anomaly.Detector, amp, noise float64) int {
	detections := 0
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed+1, 9))
		var s anomaly.State
		for i := range 8000 {
			v := 50 + amp*math.Sin(2*math.Pi*float64(i)/day) + noise*r.NormFloat64()
			if d.Update(&s, int64(i)*step, v).Detected && i > 600 {
				detections++
			}
		}
	}
	return detections
}

// countBursts plays 10 count series and returns the bursts found and the
// detections outside bursts (after the first 1000 samples).
func countBursts(d *anomaly.Detector, swing, base float64) (found, falses int) {
	const n, burst = 15000, 12
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed+1, uint64(base)))
		starts := [3]int{3000 + r.IntN(3000), 7000 + r.IntN(3000), 11000 + r.IntN(3000)}
		// in returns the burst that sample i is in or follows by less
		// than a burst's length, or -1; inside reports whether i is in it.
		in := func(i int) (b int, inside bool) {
			for k, s := range starts {
				if i >= s && i < s+2*burst {
					return k, i < s+burst
				}
			}
			return -1, false
		}
		var hit [3]bool
		var s anomaly.State
		for i := range n {
			l := base * (1 + swing*math.Sin(2*math.Pi*float64(i)/day))
			b, inside := in(i)
			if inside {
				l *= 4
			}
			if !d.Update(&s, int64(i)*step, poisson(r, l)).Detected || i < 1000 {
				continue
			}
			if b >= 0 {
				hit[b] = true
			} else {
				falses++
			}
		}
		for _, h := range hit {
			if h {
				found++
			}
		}
	}
	return found, falses
}

// poisson draws from Poisson(l): Knuth's product of uniforms, and the
// normal approximation above 50.
func poisson(r *rand.Rand, l float64) float64 {
	if l > 50 {
		return math.Max(0, math.Round(l+math.Sqrt(l)*r.NormFloat64()))
	}
	limit, k, p := math.Exp(-l), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}
