package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/augur-ops/augur/models/backtest"
)

// Generated traces (-synthetic): load shapes a fleet shows, each at three
// levels of minute-to-minute noise, none of them data any setting was chosen
// on. They ask whether the policy keeps its gains and its calm away from the
// shared traces: a scaler that flaps on noise the HPA rides out, or
// over-provisions a flat load, shows here.
const (
	synthStep = 60    // seconds: the crane traces' step
	synthDays = 8     // the first is the warm-up
	synthBase = 100.0 // mean load
)

// synthShapes are the load shapes, each a function of the minute and a
// random source seeded per trace.
var synthShapes = []struct {
	name  string
	shape func(r *rand.Rand, n int) []float64
}{
	{"flat", func(_ *rand.Rand, n int) []float64 { return constant(n, 1) }},
	{"daily", func(_ *rand.Rand, n int) []float64 { return daily(n) }},
	{"daily-bursts", func(r *rand.Rand, n int) []float64 {
		// Three bursts a day on average, 2 to 3 times the load for 10 to 40
		// minutes, reached over 3 minutes.
		v := daily(n)
		for i := 0; i < n; i++ {
			if r.Float64() < 3.0/1440 {
				k, d := 2+r.Float64(), 10+r.IntN(31)
				for j := 0; j < d && i+j < n; j++ {
					ramp := min(float64(j+1)/3, 1)
					v[i+j] *= 1 + (k-1)*ramp
				}
				i += d
			}
		}
		return v
	}},
	{"daily-spikes", func(r *rand.Rand, n int) []float64 {
		// One minute in a hundred at three times the load, alone.
		v := daily(n)
		for i := range v {
			if r.Float64() < 0.01 {
				v[i] *= 3
			}
		}
		return v
	}},
	{"steps", func(r *rand.Rand, n int) []float64 {
		// A new level every 12 to 36 hours, half to twice the last.
		v := make([]float64, n)
		lvl, next := 1.0, 0
		for i := range v {
			if i == next {
				lvl = min(max(lvl*math.Exp2(2*r.Float64()-1), 0.25), 4)
				next += 720 + r.IntN(1440)
			}
			v[i] = lvl
		}
		return v
	}},
}

// synthNoise are the minute-to-minute noise levels (relative standard
// deviation): the crane traces' step noise runs from 3% to 45% of their mean.
var synthNoise = []float64{0.05, 0.15, 0.30}

func constant(n int, c float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = c
	}
	return v
}

// daily is a day's cycle from 0.4 to 1.6 of the mean, peaking at 14:00.
func daily(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 1 + 0.6*math.Sin(2*math.Pi*(float64(i%1440)/1440-8.0/24))
	}
	return v
}

// syntheticTraces returns every shape at every noise level, seeded so that
// each run plays the same traces.
func syntheticTraces() []trace {
	var out []trace
	const t0 = 1_700_006_400 // a Wednesday, 00:00 UTC
	n := synthDays * 1440
	for si, s := range synthShapes {
		for ni, noise := range synthNoise {
			// The same shape (bursts, spikes, levels) at every noise level.
			v := s.shape(rand.New(rand.NewPCG(uint64(si), 0)), n)
			r := rand.New(rand.NewPCG(uint64(si), uint64(ni)+1))
			pts := make([]backtest.Point, n)
			for i := range pts {
				pts[i] = backtest.Point{Ts: (t0 + int64(i)*synthStep) * 1000, Value: synthBase * v[i] * max(1+noise*r.NormFloat64(), 0)}
			}
			out = append(out, newTrace(fmt.Sprintf("%s-noise%.0f%%", s.name, 100*noise), pts))
		}
	}
	return out
}
