package fourier

// The covariance is stored in row pairs: rows 2r and 2r+1 interleaved, so
// that entry (i, j) is at ci(i, j) and the entries (2r, j), (2r+1, j) are
// adjacent. p is always even (level and slope, then sine and cosine per
// harmonic), so every row has its pair. The kernels below then update two
// rows with each pair of adjacent values (two independent chains of
// operations per loop); every entry still gets the same operations in the
// same order as the row-major loops
//
//	px[i] = Σ_j cov[i][j]·x[j]                     (j ascending)
//	cov[i][j] = (cov[i][j] - (px[i]·inv)·px[j])·il
//
// so the results are bit-for-bit those of the plain loops, wherever the
// compiler rounds every multiplication and addition (amd64 at the default
// GOAMD64=v1 or v2; where it fuses a*b+c, as on arm64 or with v3, it may
// fuse differently in differently shaped loops, a last-bit difference).

// ci returns the index in Fourier.cov of entry (i, j) of the p×p matrix.
func (m *Fourier) ci(i, j int) int { return (i&^1)*m.p + 2*j + (i & 1) }

// mulCov sets px = cov·x for the p×p cov in row pairs, p = len(x), each
// entry summing its products in ascending column order.
func mulCov(px, cov, x []float64) {
	p := len(x)
	px = px[:p]
	for i := 0; i+1 < p; i += 2 {
		rr := cov[i*p : i*p+2*p]
		rr = rr[:2*len(x)]
		var s0, s1 float64
		for j, v := range x {
			s0 += rr[2*j] * v
			s1 += rr[2*j+1] * v
		}
		px[i], px[i+1] = s0, s1
	}
}

// updateCov applies the rank-one update cov[i][j] = (cov[i][j] -
// (px[i]·inv)·px[j])·il to the p×p cov in row pairs, p = len(px) (il is
// 1/lambda). updateCovNext does the same and also sets next = cov·xn for
// the updated cov, each entry summing its products in ascending column
// order.
func updateCov(cov, px []float64, inv, il float64) {
	p := len(px)
	for i := 0; i+1 < p; i += 2 {
		rr := cov[i*p : i*p+2*p]
		rr = rr[:2*len(px)]
		k0, k1 := px[i]*inv, px[i+1]*inv
		for j, v := range px {
			rr[2*j] = (rr[2*j] - k0*v) * il
			rr[2*j+1] = (rr[2*j+1] - k1*v) * il
		}
	}
}

// updateCovNext is updateCov that also sets next = cov·xn for the updated
// cov; len(cov) ≥ p*p, len(xn) ≥ p and len(next) ≥ p for p = len(px),
// even.
func updateCovNext(cov, px []float64, inv, il float64, xn, next []float64) {
	p := len(px)
	xn = xn[:p]
	next = next[:p]
	for i := 0; i+1 < p; i += 2 {
		rr := cov[i*p : i*p+2*p]
		rr = rr[:2*len(px)]
		k0, k1 := px[i]*inv, px[i+1]*inv
		var s0, s1 float64
		for j, v := range px {
			a0 := (rr[2*j] - k0*v) * il
			a1 := (rr[2*j+1] - k1*v) * il
			rr[2*j], rr[2*j+1] = a0, a1
			s0 += a0 * xn[j]
			s1 += a1 * xn[j]
		}
		next[i], next[i+1] = s0, s1
	}
}
