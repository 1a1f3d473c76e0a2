package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ewmaPlain is ewma without the shortcut that skips the division.
func ewmaPlain(avg, x, n, alpha float64) float64 {
	w := alpha
	if n > 0 && 1/n > w {
		w = 1 / n
	}
	return avg + w*(x-avg)
}

// TestEwmaShortcut checks ewma against the plain formula bit for bit,
// around the point where 1/n falls below alpha and at special values, and
// aciStep against the expression it replaces.
func TestEwmaShortcut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specials := []float64{0, math.Copysign(0, -1), 1, -1, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64, math.MaxFloat64, 1e9, 1440, 360, 60, 0.5, 2}
	alphas := []float64{1.0 / 360, 6.0 / 360, 1.0 / 1440, 6.0 / 1440, 1.0 / 72, 6.0 / 72, 1, 1.0 / 3, 1.0 / 7, 0.1}
	check := func(n, a float64) {
		avg, x := rng.NormFloat64(), rng.NormFloat64()
		o, nw := ewmaPlain(avg, x, n, a), ewma(avg, x, n, a)
		if math.Float64bits(o) != math.Float64bits(nw) && !(math.IsNaN(o) && math.IsNaN(nw)) {
			t.Fatalf("n=%v a=%v: %v vs %v", n, a, o, nw)
		}
	}
	for _, a := range append(alphas, specials...) {
		for _, n := range specials {
			check(n, a)
			check(n, -a)
		}
		for n := 0.0; n < 100000; n++ {
			check(n, a)
		}
		if a > 0 && !math.IsInf(a, 0) {
			c := 1 / a
			for i := -2000; i < 2000; i++ {
				check(math.Nextafter(c, math.Inf(1))+float64(i)*1e-12*c, a)
			}
		}
	}
	for i := 0; i < 200000; i++ {
		a := math.Exp(-rng.Float64() * 20)
		check(math.Floor(rng.Float64()*2/a), a)
		check(rng.Float64()*2/a, a)
	}
	var want [2]float64
	for miss := range want {
		m := float64(miss)
		want[miss] = aciGain * (m - tailTarget) / tailTarget
	}
	if want != aciStep {
		t.Fatal(want, aciStep)
	}
}
