package fourier

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestUpdateCovNext checks the row-pair kernels against the plain
// row-major formulas, bit for bit.
func TestUpdateCovNext(t *testing.T) {
	if !exactFloat {
		t.Skip("the compiler may fuse multiply-adds differently in the two loops on this platform")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 5e-324, 1e-310, 1e300, -1e300}
	val := func() float64 {
		if rng.IntN(50) == 0 {
			return specials[rng.IntN(len(specials))]
		}
		return rng.NormFloat64() * math.Exp(rng.NormFloat64()*5)
	}
	same := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b) }
	for iter := 0; iter < 3000; iter++ {
		p := 2 * (1 + rng.IntN(maxParams/2))
		m := Fourier{p: p}
		cov := make([]float64, p*p)
		px, xn := make([]float64, p), make([]float64, p)
		for i := range cov {
			cov[i] = val()
		}
		for i := range px {
			px[i], xn[i] = val(), val()
		}
		inv, il := val(), val()
		// Row-major reference.
		ref := make([][]float64, p)
		refNext := make([]float64, p)
		for i := range ref {
			ref[i] = make([]float64, p)
			k := px[i] * inv
			var s float64
			for j := range ref[i] {
				ref[i][j] = (cov[m.ci(i, j)] - k*px[j]) * il
				s += ref[i][j] * xn[j]
			}
			refNext[i] = s
		}
		c1, n1 := append([]float64(nil), cov...), make([]float64, p)
		updateCovNext(c1, px, inv, il, xn, n1)
		for i := 0; i < p; i++ {
			if !same(n1[i], refNext[i]) {
				t.Fatalf("p=%d next[%d]: ref %v kernel %v", p, i, refNext[i], n1[i])
			}
			for j := 0; j < p; j++ {
				if !same(c1[m.ci(i, j)], ref[i][j]) {
					t.Fatalf("p=%d cov[%d][%d]: ref %v kernel %v", p, i, j, ref[i][j], c1[m.ci(i, j)])
				}
			}
		}
		// mulCov against the row-major product.
		got := make([]float64, p)
		mulCov(got, cov, xn)
		for i := 0; i < p; i++ {
			var s float64
			for j := 0; j < p; j++ {
				s += cov[m.ci(i, j)] * xn[j]
			}
			if !same(got[i], s) {
				t.Fatalf("p=%d mulCov[%d]: %v, want %v", p, i, got[i], s)
			}
		}
	}
}

// TestPhasorTables checks a model using the shared phasor tables and one
// computing every phasor (as for a season too long to tabulate) forecast
// and checkpoint identically, through anchor shifts, a gap and a refit.
func TestPhasorTables(t *testing.T) {
	p := Params{Periods: []int{96, 672}, Harmonics: []int{4, 3}, Memory: 500, TrendUnit: 96, ClipK: 4}
	var a, b Fourier
	a.Init(p, 4, 100, 0)
	b.Init(p, 4, 100, 0)
	if a.tab[0] == nil || a.tab[1] == nil {
		t.Fatal("no tables")
	}
	b.tab = [MaxSeasons]*[]complex128{}
	rng := rand.New(rand.NewPCG(7, 8))
	for q := 0; q < 3000; q++ {
		y := 10 + 0.01*float64(q) + 3*math.Sin(2*math.Pi*float64(q)/96) + rng.NormFloat64()
		switch q {
		case 1000:
			a.Skip(50)
			b.Skip(50)
		case 2000:
			a.Refit()
			b.Refit()
		}
		a.Update(y, math.NaN())
		b.Update(y, math.NaN())
		for _, h := range []int{1, 4, 30} {
			if fa, fb := a.Forecast(h), b.Forecast(h); fa != fb {
				t.Fatalf("step %d h %d: %+v with tables, %+v without", q, h, fa, fb)
			}
		}
	}
	if string(a.AppendBinary(nil)) != string(b.AppendBinary(nil)) {
		t.Fatal("states differ")
	}
}
