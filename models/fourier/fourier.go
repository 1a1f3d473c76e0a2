// Package fourier implements the structure Prophet uses, a piecewise-smooth
// trend plus Fourier series for each seasonality, fitted online: recursive
// least squares with exponential forgetting updates the coefficients once
// per sample instead of refitting the whole history, and an AR(1) term on
// the model's residual carries short-lived deviations into the near-term
// forecast.
package fourier

import (
	"errors"
	"math"
	"unsafe"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/models"
)

// MaxSeasons is the number of seasonalities a model can carry.
const MaxSeasons = 2

// MaxHarmonics bounds the Fourier order per seasonality (Prophet's defaults
// are 4 daily and 3 weekly).
const MaxHarmonics = 4

// maxParams is the largest coefficient vector: level, slope and two
// harmonics terms per order and season.
const maxParams = 2 + 2*MaxSeasons*MaxHarmonics

// Params configure a model.
type Params struct {
	// Periods are the season lengths in steps (0 or 1 entries ignored), at
	// most MaxSeasons.
	Periods []int
	// Harmonics is the Fourier order per period (same index), 1..MaxHarmonics.
	Harmonics []int
	// Memory is the RLS forgetting time constant in steps: the weight of a
	// sample halves after about 0.69*Memory steps. ≥ 2.
	Memory float64
	// TrendUnit is the number of steps per unit of the trend feature (one
	// day of steps works well); the time origin moves by one unit whenever
	// it is one unit behind, which keeps the least-squares problem well
	// conditioned for ever.
	TrendUnit int64
	// ClipK down-weights a sample whose error exceeds ClipK times the running
	// mean absolute error to the weight that brings it to that bound (Huber's
	// weight); 0 disables it.
	ClipK float64
}

// Validate reports whether p is usable.
func (p Params) Validate() error {
	if len(p.Periods) != len(p.Harmonics) || len(p.Periods) > MaxSeasons {
		return errors.New("fourier periods and harmonics must pair up, at most 2")
	}
	for i, k := range p.Harmonics {
		if p.Periods[i] > 1 && (k < 1 || k > MaxHarmonics) {
			return errors.New("fourier harmonics must be in 1..4")
		}
	}
	if !(p.Memory >= 2) {
		return errors.New("fourier memory must be ≥ 2 steps")
	}
	if p.TrendUnit < 1 {
		return errors.New("fourier trend unit must be ≥ 1 step")
	}
	if !(p.ClipK >= 0) {
		return errors.New("fourier clip must be ≥ 0")
	}
	return nil
}

// initP is the prior variance of every coefficient: large, so data
// dominates from the first samples.
const initP = 1e4

// Fourier is the online trend + Fourier-seasonality model.
//
// The zero value is not usable; call Init.
type Fourier struct {
	periods   [MaxSeasons]int64
	harmonics [MaxSeasons]int
	nSeasons  int
	p         int // number of coefficients
	lambda    float64
	unit      int64
	clipK     float64

	theta  [maxParams]float64
	cov    [maxParams * maxParams]float64 // p×p, in row pairs (see ci)
	anchor int64                          // step with trend feature 0
	n      int64                          // next step index
	scale  float64                        // EWMA of the absolute error
	seen   float64
	// AR(1) on the residual u = y - structural fit.
	u, c0, c1 float64

	x, px [maxParams]float64 // scratch; see fit
	// next reports that x and px hold the features of step n and cov·x,
	// prepared by the last live fit; anything that moves the step, the
	// anchor or the covariance clears it.
	next bool
	// Derived, not state: per season the phasor and the phase (step mod
	// period) of the last fitted step, the rotation by H steps and the
	// shared table of the base phasors (nil for a season too long to
	// tabulate), so that the forecasts and fits need no trigonometry.
	ph, rotH [MaxSeasons]complex128
	phase    [MaxSeasons]int64
	tab      [MaxSeasons]*[]complex128
	rhoCache float64 // rho when rhoH was computed
	rhoH     float64 // rho^H
	// Tracker scores the forecasts and supplies intervals.
	Tracker models.Tracker
}

// Init resets m with params p (which must be valid), decision horizon h
// steps and score memory of memory forecasts, starting at step index start.
func (m *Fourier) Init(p Params, h int, memory float64, start int64) {
	*m = Fourier{lambda: 1 - 1/p.Memory, unit: p.TrendUnit, clipK: p.ClipK, n: start, anchor: start}
	m.p = 2
	for i, per := range p.Periods {
		if per > 1 {
			m.periods[m.nSeasons] = int64(per)
			m.harmonics[m.nSeasons] = p.Harmonics[i]
			m.nSeasons++
			m.p += 2 * p.Harmonics[i]
		}
	}
	m.resetCov()
	m.Tracker.Init(h, memory)
	m.rhoCache = math.NaN()
	m.derive()
}

// derive computes the cached rotations from the periods and horizon.
func (m *Fourier) derive() {
	h := float64(m.Tracker.Horizon())
	for s := 0; s < m.nSeasons; s++ {
		w := 2 * math.Pi / float64(m.periods[s])
		sn, cs := math.Sincos(w * math.Mod(h, float64(m.periods[s])))
		m.rotH[s] = complex(cs, sn)
		m.tab[s] = phasorTable(m.periods[s])
	}
}

func (m *Fourier) resetCov() {
	clear(m.cov[:])
	for i := 0; i < m.p; i++ {
		m.cov[m.ci(i, i)] = initP
	}
}

// Periods returns the season lengths in use, in steps.
func (m *Fourier) Periods() []int64 { return m.periods[:m.nSeasons] }

// features fills x with the regressors of step q and remembers the base
// phasors and phases in m.ph and m.phase.
func (m *Fourier) features(x []float64, q int64) {
	for s := 0; s < m.nSeasons; s++ {
		m.phase[s] = models.FloorMod(q, m.periods[s])
		m.ph[s] = m.phasor(s, m.phase[s])
	}
	m.featuresFrom(x, q, &m.ph)
}

// phasors sets ph to the base phasors of step q.
func (m *Fourier) phasors(ph *[MaxSeasons]complex128, q int64) {
	for s := 0; s < m.nSeasons; s++ {
		ph[s] = m.phasor(s, models.FloorMod(q, m.periods[s]))
	}
}

// phasor returns the base phasor of season s at phase r in [0, period).
func (m *Fourier) phasor(s int, r int64) complex128 {
	if t := m.tab[s]; t != nil {
		return (*t)[r]
	}
	return basePhasor(r, m.periods[s])
}

// basePhasor is the phasor of phase r of a season of per steps. The
// tables hold exactly these values.
func basePhasor(r, per int64) complex128 {
	sn, cs := math.Sincos(2 * math.Pi * float64(r) / float64(per))
	return complex(cs, sn)
}

// featuresFrom fills x with the regressors of step q whose base phasors
// are ph.
func (m *Fourier) featuresFrom(x []float64, q int64, ph *[MaxSeasons]complex128) {
	x[0] = 1
	x[1] = float64(q-m.anchor) / float64(m.unit)
	j := 2
	for s := 0; s < m.nSeasons; s++ {
		cs, sn := real(ph[s]), imag(ph[s])
		ck, sk := cs, sn
		for k := 0; k < m.harmonics[s]; k++ {
			x[j], x[j+1] = ck, sk
			j += 2
			ck, sk = ck*cs-sk*sn, sk*cs+ck*sn
		}
	}
}

func (m *Fourier) dot(x []float64) float64 {
	th := m.theta[:m.p]
	x = x[:len(th)]
	var s float64
	for i, v := range th {
		s += v * x[i]
	}
	return s
}

// rho returns the lag-1 autocorrelation of the residual, in [0, 0.999].
func (m *Fourier) rho() float64 {
	if m.c0 <= 0 {
		return 0
	}
	return min(max(m.c1/m.c0, 0), 0.999)
}

// point is the forecast for step n-1+h.
func (m *Fourier) point(h int, rhoH float64) float64 {
	// Local scratch: m.x may hold the features of the next step.
	var x [maxParams]float64
	var ph [MaxSeasons]complex128
	q := m.n - 1 + int64(h)
	m.phasors(&ph, q)
	m.featuresFrom(x[:m.p], q, &ph)
	return m.dot(x[:m.p]) + rhoH*m.u
}

// Update scores the pending forecasts against y, fits y and issues new
// forecasts. naiveH is the value observed h steps ago (NaN when unknown).
func (m *Fourier) Update(y, naiveH float64) {
	m.Tracker.Observe(y, naiveH)
	if m.n&(symEvery-1) == 0 {
		m.symmetrize()
	}
	u := m.fit(m.n, y, 1, true)
	m.n++
	// AR(1) statistics of the residual, about a day of memory.
	w := 1 / 1440.0
	if !(m.seen >= 1440) { // 1/seen ≤ 1/1440 from there on
		w = max(1/m.seen, w)
	}
	m.c0 += w * (u*u - m.c0)
	m.c1 += w * (u*m.u - m.c1)
	m.u = u
	r := m.rho()
	h := m.Tracker.Horizon()
	// rho moves slowly; recompute rho^H only when it moved noticeably.
	if !(math.Abs(r-m.rhoCache) < 1e-4) {
		m.rhoCache, m.rhoH = r, math.Pow(r, float64(h))
	}
	// The forecasts for steps n and n-1+h, from the base phasors rotated:
	// each is θ·x, its features made as featuresFrom makes them and summed
	// in the same order as dot sums them, without storing them.
	p := m.p
	th := m.theta[:p]
	var d1, dH float64
	d1 += th[0] * 1
	dH += th[0] * 1
	d1 += th[1] * (float64(m.n-m.anchor) / float64(m.unit))
	dH += th[1] * (float64(m.n-1+int64(h)-m.anchor) / float64(m.unit))
	j := 2
	for s := 0; s < m.nSeasons; s++ {
		p1 := m.ph[s] * m.phasor(s, 1) // the rotation by one step
		pH := m.ph[s] * m.rotH[s]
		c1, s1 := real(p1), imag(p1)
		cH, sH := real(pH), imag(pH)
		ck1, sk1, ckH, skH := c1, s1, cH, sH
		for k := 0; k < m.harmonics[s]; k++ {
			d1 += th[j] * ck1
			dH += th[j] * ckH
			d1 += th[j+1] * sk1
			dH += th[j+1] * skH
			j += 2
			ck1, sk1 = ck1*c1-sk1*s1, sk1*c1+ck1*s1
			ckH, skH = ckH*cH-skH*sH, skH*cH+ckH*sH
		}
	}
	m.Tracker.Issue(d1+r*m.u, dH+m.rhoH*m.u)
}

// symEvery is how often, in steps, Update makes the covariance exactly
// symmetric again (a power of two).
//
// The update cov = (cov - k·px')/lambda keeps the covariance symmetric
// only up to rounding, and the antisymmetric part of the rounding errors
// is not contracted by the data: it grows by 1/lambda every step. With a
// memory of 3 days at 1-minute steps it grew tenfold every 10,000 steps
// and the model turned to NaN after about 75,000 (52 days), on any series.
// Averaging the two triangles every 256 steps bounds that growth to
// 1/lambda^256 (at most a factor e^(256/Memory)) over rounding.
const symEvery = 256

// symmetrize replaces the covariance by the mean of it and its transpose.
func (m *Fourier) symmetrize() {
	p := m.p
	for i := 0; i < p; i++ {
		for j := i + 1; j < p; j++ {
			a, b := m.ci(i, j), m.ci(j, i)
			v := (m.cov[a] + m.cov[b]) / 2
			m.cov[a], m.cov[b] = v, v
		}
	}
	m.next = false // m.px was computed from the covariance
}

// Fit folds the value y of step q into the coefficients with forgetting
// applied weight times (weight is the number of steps the value stands for,
// when fitting history kept at a coarser resolution). It does not move the
// model's step index; Update calls it for live samples. It returns the prior
// residual: the AR(1) term must see a level shift whole, while the
// coefficients see it down-weighted.
func (m *Fourier) Fit(q int64, y, weight float64) float64 { return m.fit(q, y, weight, false) }

// fit folds y into the coefficients. A live fit (from Update, q = m.n,
// weight 1) also prepares the next one: it leaves the features of step q+1
// in m.x and cov·m.x in m.px, computed while the covariance is updated
// (the same products and sums, in the same order, as computing them at the
// next fit), and sets m.next. Everything else that moves the step, the
// anchor or the covariance, or uses m.x, clears it.
func (m *Fourier) fit(q int64, y, weight float64, live bool) float64 {
	if d := q - m.anchor; d >= m.unit && d-m.unit >= m.unit { // (q-anchor)/unit ≥ 2
		m.shiftAnchor(d/m.unit - 1)
	}
	p := m.p
	x := m.x[:p]
	px := m.px[:p]
	cached := live && m.next
	if cached {
		// The base phasors are the first harmonic of each season.
		j := 2
		for s := 0; s < m.nSeasons; s++ {
			m.ph[s] = complex(x[j], x[j+1])
			m.phase[s] = models.AddMod(m.phase[s], 1, m.periods[s])
			j += 2 * m.harmonics[s]
		}
	} else {
		m.features(x, q)
	}
	e := y - m.dot(x)
	ae := math.Abs(e)
	m.seen = min(m.seen+1, 1e9)
	// A large error counts as a sample of weight c = lim/|e| < 1 (Huber's
	// weight) in the coefficients and in the covariance alike: the update
	// is then exact weighted least squares. Clipping only the error while
	// the covariance shrinks as if the whole sample had been used breaks
	// that: the model believes it learnt what it did not, and with several
	// seasons and a trend it drifts without bound (after a refit, on the
	// crane traces, to forecasts of 1e7 for a series below 30).
	c := 1.0
	if m.clipK > 0 && m.seen > 10 {
		if lim := m.clipK * m.scale; ae > lim {
			c = lim / ae
			ae = lim
		}
	}
	w := 1 / 1440.0
	if !(m.seen >= 1440) { // 1/seen ≤ 1/1440 from there on
		w = max(1/m.seen, w)
	}
	m.scale += w * (ae - m.scale)
	lam := m.lambda
	if weight != 1 {
		lam = math.Pow(lam, weight)
	}
	if m.cov[m.ci(0, 0)] > 1e9 { // no information arrives in some direction: stop forgetting
		lam = 1
	}
	if !cached {
		mulCov(px, m.cov[:p*p], x)
	}
	var xpx float64
	for i, v := range x {
		xpx += v * px[i]
	}
	// The gain of a sample of weight c: c/(lam + c·x'Px), exactly
	// 1/(lam + x'Px) for a whole one (c = 1).
	inv := c / (lam + c*xpx)
	theta := m.theta[:p]
	for i := range theta {
		theta[i] += px[i] * inv * e
	}
	il := 1 / lam
	if d := q + 1 - m.anchor; live && (d < m.unit || d-m.unit < m.unit) {
		// The next fit, of step q+1, keeps the anchor.
		var ph [MaxSeasons]complex128
		for s := 0; s < m.nSeasons; s++ {
			ph[s] = m.phasor(s, models.AddMod(m.phase[s], 1, m.periods[s]))
		}
		m.featuresFrom(x, q+1, &ph)
		var next [maxParams]float64
		updateCovNext(m.cov[:p*p], px, inv, il, x, next[:p])
		m.px = next
		m.next = true
	} else {
		updateCov(m.cov[:p*p], px, inv, il)
		m.next = false
	}
	return e
}

// shiftAnchor moves the trend origin k units forward and rewrites the
// coefficients and their covariance so that every forecast is unchanged.
// In live use k is 1 once a day; a larger k follows a long gap.
func (m *Fourier) shiftAnchor(k int64) {
	p := m.p
	d := float64(k)
	m.next = false // depends on the anchor and the covariance
	m.anchor += k * m.unit
	m.theta[0] += d * m.theta[1]
	for i := 0; i < p; i++ { // column 0 += d × column 1
		m.cov[m.ci(i, 0)] += d * m.cov[m.ci(i, 1)]
	}
	for j := 0; j < p; j++ { // row 0 += d × row 1
		m.cov[m.ci(0, j)] += d * m.cov[m.ci(1, j)]
	}
}

// Forecast returns the forecast h ≥ 1 steps after the last observed step.
func (m *Fourier) Forecast(h int) models.Forecast {
	if h < 1 {
		h = 1
	}
	return m.Tracker.Interval(m.point(h, math.Pow(m.rho(), float64(h))), h)
}

// Skip advances the step index over k unobserved steps.
func (m *Fourier) Skip(k int64) {
	m.n += k
	m.u = 0
	m.next = false // for another step
	m.Tracker.Skip()
}

// Refit forgets the coefficients' confidence so the next samples move them
// quickly, after accuracy fell.
func (m *Fourier) Refit() {
	p := m.p
	m.next = false // depends on the covariance
	for i := 0; i < p; i++ {
		m.cov[m.ci(i, i)] = max(m.cov[m.ci(i, i)], initP/100)
	}
}

// AppendBinary appends m's state.
func (m *Fourier) AppendBinary(dst []byte) []byte {
	dst = wire.AppendInt64(dst, int64(m.nSeasons))
	for s := 0; s < MaxSeasons; s++ {
		dst = wire.AppendInt64(dst, m.periods[s])
		dst = wire.AppendInt64(dst, int64(m.harmonics[s]))
	}
	dst = wire.AppendFloat64(dst, m.lambda)
	dst = wire.AppendInt64(dst, m.unit)
	dst = wire.AppendFloat64(dst, m.clipK)
	dst = wire.AppendFloats(dst, m.theta[:m.p])
	// Row-major, as wire.AppendFloats of the matrix: row i is every
	// second value of its row pair.
	dst = wire.AppendUint64(dst, uint64(m.p*m.p))
	for i := 0; i < m.p; i++ {
		dst = wire.AppendStrided(dst, m.cov[:m.p*m.p], m.ci(i, 0), m.p, 2)
	}
	dst = wire.AppendInt64(dst, m.anchor)
	dst = wire.AppendInt64(dst, m.n)
	for _, v := range [...]float64{m.scale, m.seen, m.u, m.c0, m.c1, m.rhoCache, m.rhoH} {
		dst = wire.AppendFloat64(dst, v)
	}
	return m.Tracker.AppendBinary(dst)
}

// ReadBinary restores m from r.
func (m *Fourier) ReadBinary(r *wire.Reader) {
	m.next = false
	m.tab = [MaxSeasons]*[]complex128{} // until derive, for the new periods
	m.nSeasons = r.Len(MaxSeasons)
	m.p = 2
	for s := 0; s < MaxSeasons; s++ {
		m.periods[s] = r.Int64()
		m.harmonics[s] = int(r.Int64())
		if s < m.nSeasons {
			if m.periods[s] < 2 || m.harmonics[s] < 1 || m.harmonics[s] > MaxHarmonics {
				r.Fail(wire.ErrInvalid)
				return
			}
			m.p += 2 * m.harmonics[s]
		}
	}
	m.lambda = r.Float64()
	m.unit = r.Int64()
	m.clipK = r.Float64()
	if r.Err() == nil && (m.unit < 1 || !(m.lambda > 0 && m.lambda <= 1)) {
		r.Fail(wire.ErrInvalid)
	}
	theta := r.Floats(m.px[:0], maxParams) // decode into scratch, then copy
	if r.Err() == nil && len(theta) != m.p {
		r.Fail(wire.ErrInvalid)
	}
	copy(m.theta[:], theta)
	n := r.Len(maxParams * maxParams)
	if r.Err() == nil && n != m.p*m.p {
		r.Fail(wire.ErrInvalid)
	}
	for i := 0; i < n && r.Err() == nil; i++ { // row-major
		m.cov[m.ci(i/m.p, i%m.p)] = r.Float64()
	}
	m.anchor = r.Int64()
	m.n = r.Int64()
	for _, p := range [...]*float64{&m.scale, &m.seen, &m.u, &m.c0, &m.c1, &m.rhoCache, &m.rhoH} {
		*p = r.Float64()
	}
	m.Tracker.ReadBinary(r)
	if r.Err() == nil {
		m.derive()
		// ph is the phasor of the last fitted step, n-1.
		x := m.x[:m.p]
		m.features(x, m.n-1)
	}
}

// MemoryBytes returns the memory m holds, itself included.
func (m *Fourier) MemoryBytes() int {
	return int(unsafe.Sizeof(*m)) + m.Tracker.MemoryBytes() - int(unsafe.Sizeof(m.Tracker))
}
