package grayfailure

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

// ZoneStats is one zone's aggregate over one window, built by the stream from
// the service's series carrying that zone's label (the AZ ID, e.g.
// use1-az1, the identifier ARC shifts by).
type ZoneStats struct {
	// Zone is the AZ ID.
	Zone string
	// Instances is the number of instances (pods, targets) that reported in
	// the window. Zones with fewer than Config.MinInstances are skipped.
	Instances int
	// Requests completed in the window (increase of a request counter, or
	// the _count of the latency histogram).
	Requests float64
	// Errors among those requests (5xx, faults, timeouts).
	Errors float64
	// LatencySum and LatencyCount give the mean latency in seconds
	// (increase of a histogram's _sum and _count). When LatencyCount is 0,
	// LatencyMean is used instead (a gauge).
	LatencySum   float64
	LatencyCount float64
	// LatencyMean in seconds, used only when LatencyCount is 0.
	LatencyMean float64
	// LatencyP99 in seconds (histogram_quantile over the zone's buckets, or
	// a gauge); 0 or NaN when unknown.
	LatencyP99 float64
	// LatencyMax in seconds; 0 or NaN when unknown. Only checked against
	// Config.MaxLatencyLimit (a maximum is too noisy to compare).
	LatencyMax float64
	// PacketLoss is the share of packets lost or retransmitted in [0,1]
	// (e.g. rate of TCP retransmitted segments over sent segments, or a
	// prober's loss); NaN when not measured.
	PacketLoss float64
}

// Signals compared between zones, in the order they are reported.
const (
	sigMean = iota
	sigP99
	sigErr
	sigLoss
	nSignals
)

// signalNames names the signals in Evidence.Signal.
var signalNames = [nSignals]string{"latency_mean", "latency_p99", "error_share", "packet_loss"}

// zoneState is what the detector remembers about one zone. The histories are
// bit sets over the last windows, bit 0 the latest.
type zoneState struct {
	name   string
	valid  uint16 // the window had enough instances and requests
	warn   uint16 // worse than peers by WarnRatio
	breach uint16 // above an absolute limit
	// ev is each signal's evidence of impairment (log-ratio-seconds), and
	// mu and vr the mean and variance of its increments while healthy
	// (exponentially weighted over about an hour of windows), nObs how
	// many windows they hold.
	ev, mu, vr [nSignals]float64
	nObs       [nSignals]uint32
	// pend is the previous window's increment, added to mu and vr only if
	// this window leaves the evidence below half the threshold (so that
	// the first window of a degradation is not taken for noise); NaN when
	// none.
	pend [nSignals]float64
	// healthy counts consecutive valid windows with nothing wrong; windows
	// without data neither add nor reset.
	healthy uint32
	// warned and alerted make warnings and no-shift alerts edge-triggered.
	warned  bool
	alerted bool
	// shiftedUntil is when the zonal shift decided away from this zone
	// expires at AWS (unix ms), 0 when not shifted.
	shiftedUntil int64
}

// window holds one window's per-zone values, indexed like Detector.zones.
type window struct {
	ok     [MaxZones]bool
	req    [MaxZones]float64
	errs   [MaxZones]float64
	val    [nSignals][MaxZones]float64 // NaN when unknown
	max    [MaxZones]float64
	ratio  [nSignals][MaxZones]float64 // to peers, NaN when not computed
	thresh [nSignals][MaxZones]float64 // evidence threshold
	chi    [MaxZones]float64
	worse  [MaxZones]bool // gained evidence on some signal
	first  [MaxZones]int  // the signal nearest its threshold (or first warn), -1 none
}

// Detector decides zonal shifts for one service (one ARC resource). It is not
// safe for concurrent use; the stream's partition owner calls it.
type Detector struct {
	cfg      Config
	target   string
	mask     uint16
	crit     [MaxZones + 1]float64 // chi-squared(1) critical value for k zones
	zones    []zoneState
	lastEnd  int64 // unix ms of the last window, 0 before the first
	regional bool
	rhist    uint16 // windows with two or more zones degraded
	w        window
}

// New returns a Detector for cfg (validated, defaults applied).
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Detector{cfg: cfg, target: "aws/zonalshift/" + cfg.Resource,
		mask: uint16(1<<cfg.Windows - 1), zones: make([]zoneState, 0, 6)}
	chi1 := distuv.ChiSquared{K: 1}
	for k := 1; k <= MaxZones; k++ {
		d.crit[k] = chi1.Quantile(1 - cfg.Significance/float64(k))
	}
	return d, nil
}

// Config returns the validated configuration.
func (d *Detector) Config() Config { return d.cfg }

// Target is the decision target, "aws/zonalshift/<resource>".
func (d *Detector) Target() string { return d.target }

// zone returns the index of the named zone, adding it if there is room, or -1.
func (d *Detector) zone(name string) int {
	for i := range d.zones {
		if d.zones[i].name == name {
			return i
		}
	}
	if len(d.zones) == MaxZones || name == "" || len(name) > maxZoneName {
		return -1
	}
	d.zones = append(d.zones, newZone(name))
	return len(d.zones) - 1
}

func newZone(name string) zoneState {
	z := zoneState{name: name}
	for s := range z.pend {
		z.pend[s] = math.NaN()
	}
	return z
}

// Update takes the stats of every zone for the window ending at windowEnd and
// returns the decisions it leads to, unsigned, in a new slice the caller owns
// (nil when there are none, which is the common case and allocates nothing).
// Windows must come in order; a window at or before the previous one is
// ignored. Missing windows count as windows without data. Zones beyond
// MaxZones and zones listed twice (after the first) are ignored.
func (d *Detector) Update(windowEnd time.Time, stats []ZoneStats) []*proto.Decision {
	end := windowEnd.UnixMilli()
	step := d.cfg.Step.Milliseconds()
	gap := int64(1)
	if d.lastEnd != 0 {
		if end <= d.lastEnd {
			return nil
		}
		gap = (end - d.lastEnd + step/2) / step
		if gap < 1 {
			gap = 1
		}
	}
	d.lastEnd = end
	if gap >= maxWindows {
		d.rhist = 0
	} else {
		d.rhist <<= gap
	}
	for i := range d.zones {
		z := &d.zones[i]
		if gap >= maxWindows {
			z.valid, z.warn, z.breach = 0, 0, 0
		} else {
			z.valid <<= gap
			z.warn <<= gap
			z.breach <<= gap
		}
		if z.valid&d.mask == 0 {
			// No data for Windows windows: old evidence is stale.
			z.ev = [nSignals]float64{}
		}
	}
	d.collect(stats)
	d.compare()
	return d.decide(windowEnd)
}

// collect fills d.w from stats.
func (d *Detector) collect(stats []ZoneStats) {
	w := &d.w
	for i := range w.ok {
		w.ok[i] = false
	}
	for _, s := range stats {
		i := d.zone(s.Zone)
		if i < 0 || w.ok[i] {
			continue
		}
		if s.Instances < d.cfg.MinInstances || !(s.Requests >= d.cfg.MinRequests*d.cfg.Step.Minutes()) || s.Requests <= 0 {
			continue
		}
		mean := s.LatencyMean
		if s.LatencyCount > 0 {
			mean = s.LatencySum / s.LatencyCount
		}
		w.ok[i] = true
		w.req[i] = s.Requests
		w.errs[i] = math.Min(math.Max(s.Errors, 0), s.Requests)
		w.val[sigMean][i] = positiveOrNaN(mean)
		w.val[sigP99][i] = positiveOrNaN(s.LatencyP99)
		if s.Requests < d.cfg.MinRequestsP99 {
			w.val[sigP99][i] = math.NaN() // a p99 of few requests is noise
		}
		w.val[sigErr][i] = w.errs[i] / s.Requests
		w.val[sigLoss][i] = s.PacketLoss
		if s.PacketLoss < 0 || s.PacketLoss > 1 {
			w.val[sigLoss][i] = math.NaN()
		}
		w.max[i] = positiveOrNaN(s.LatencyMax)
		d.zones[i].valid |= 1
	}
}

// logRatioFloor bounds how much better than its peers a window weighs: a
// zone with no packet loss against peers with some has a ratio of 0, whose
// log (-Inf) became the zone's healthy mean, then NaN, and a NaN threshold
// never shifted it again (and its checkpoint no longer decoded). A zone 100
// times better than its peers weighs as 100 times better.
var logRatioFloor = -math.Log(100)

// positiveOrNaN maps unknown (0, negative, NaN, Inf) to NaN.
func positiveOrNaN(v float64) float64 {
	if v > 0 && !math.IsInf(v, 0) {
		return v
	}
	return math.NaN()
}

// medianOthers is the median of vals over ok zones except skip and skip2
// (-1: none) and with a known value; NaN when there is none.
func medianOthers(vals *[MaxZones]float64, ok *[MaxZones]bool, n, skip, skip2 int) float64 {
	var buf [MaxZones]float64
	m := 0
	for j := 0; j < n; j++ {
		if j == skip || j == skip2 || !ok[j] || math.IsNaN(vals[j]) {
			continue
		}
		v := vals[j]
		k := m
		for k > 0 && buf[k-1] > v { // insertion sort: at most 15 values
			buf[k] = buf[k-1]
			k--
		}
		buf[k] = v
		m++
	}
	switch {
	case m == 0:
		return math.NaN()
	case m%2 == 1:
		return buf[m/2]
	default:
		return (buf[m/2-1] + buf[m/2]) / 2
	}
}

// compare updates every zone's warn and breach bits and its evidence.
func (d *Detector) compare() {
	w := &d.w
	c := &d.cfg
	n := len(d.zones)
	k := 0
	var totReq, totErr float64
	for i := 0; i < n; i++ {
		if w.ok[i] {
			k++
			totReq += w.req[i]
			totErr += w.errs[i]
		}
	}
	limits, _ := d.limits()
	lnShift := math.Log(c.ShiftRatio)
	for i := 0; i < n; i++ {
		z := &d.zones[i]
		w.first[i] = -1
		w.chi[i] = 0
		w.worse[i] = false
		for s := range nSignals {
			w.ratio[s][i] = math.NaN()
			w.thresh[s][i] = d.threshold(z, s)
		}
		if !w.ok[i] {
			continue
		}
		// Seconds this window stands for: since the zone's previous valid
		// window (a scrape interval longer than the window), at most 4.
		dt := c.Step.Seconds()
		if prev := z.valid &^ 1; prev != 0 {
			dt *= float64(min(bits.TrailingZeros16(prev), 4))
		}
		breach := c.MaxLatencyLimit > 0 && w.max[i] > c.MaxLatencyLimit
		for s := range nSignals {
			if limits[s] > 0 && w.val[s][i] > limits[s] {
				breach = true
			}
		}
		var warn bool
		bestFrac := 0.0
		if k >= 2 {
			for s := range nSignals {
				v := w.val[s][i]
				var peer float64
				significant := true
				if s == sigErr {
					othReq, othErr := totReq-w.req[i], totErr-w.errs[i]
					if othReq <= 0 {
						continue
					}
					peer = othErr / othReq
					significant, w.chi[i] = d.errorsSignificant(w.errs[i], w.req[i], totErr, totReq, k)
				} else {
					peer = medianOthers(&w.val[s], &w.ok, n, i, -1)
				}
				if math.IsNaN(v) || math.IsNaN(peer) {
					continue
				}
				ratio, x, counts := d.excess(s, v, peer, significant)
				w.ratio[s][i] = ratio
				// The evidence is weighed on x, capped at 0 (a ratio of
				// 1) unless the excess counts.
				if !counts {
					x = min(x, 0)
				}
				d.weigh(z, s, (x-lnShift)*dt, w.thresh[s][i])
				if x > lnShift {
					w.worse[i] = true
				}
				if f := z.ev[s] / w.thresh[s][i]; f > bestFrac {
					bestFrac = f
					w.first[i] = s
				}
				if counts && ratio >= c.WarnRatio {
					if !warn && bestFrac == 0 {
						w.first[i] = s
					}
					warn = true
				}
			}
		}
		if warn {
			z.warn |= 1
		}
		if breach {
			z.breach |= 1
		}
		if w.worse[i] || breach {
			z.healthy = 0
		} else if z.healthy < math.MaxUint32 {
			z.healthy++
		}
	}
	// A window in which one zone is worse than its peers is no healthy
	// window for the others: their ratios are against a peer median that
	// zone moved, and learned as noise they would raise the others'
	// thresholds for hours after it recovered.
	worse := 0
	for i := range n {
		if w.worse[i] {
			worse++
		}
	}
	for i := range n {
		if worse > 1 || (worse == 1 && !w.worse[i]) {
			for s := range nSignals {
				d.zones[i].pend[s] = math.NaN()
			}
		}
	}
}

// limits returns each signal's absolute limit (0: none) and the least
// excess over peers that can make a zone worse.
func (d *Detector) limits() (limits, mins [nSignals]float64) {
	c := &d.cfg
	return [nSignals]float64{c.MeanLatencyLimit, c.P99LatencyLimit, c.ErrorShareLimit, c.PacketLossLimit},
		[nSignals]float64{c.MinLatencyDelta, c.MinLatencyDelta, c.MinErrorShareDelta, c.MinPacketLossDelta}
}

// degradedWithout returns a zone other than i, reporting in the window, that
// is worse than the zones other than it and i (ShiftRatio worse on its mean
// latency, error share or packet loss, significant, material and above the
// limit, as compare weighs a window), or -1. Zone i, about to be shifted
// away from, is in every other zone's peers, and a zone half as bad as it
// then looks healthy: with three zones the median of two peers is their
// mean, and a zone 2x slower than the third is faster than the mean of
// the third and one 5x slower; with four, a second slow zone moves every
// median. The p99 is left out: one window of it is too noisy to judge on.
func (d *Detector) degradedWithout(i int) int {
	w := &d.w
	n := len(d.zones)
	lnShift := math.Log(d.cfg.ShiftRatio)
	for j := range n {
		if j == i || !w.ok[j] {
			continue
		}
		k := 0
		var othReq, othErr float64
		for l := range n {
			if l != i && w.ok[l] {
				k++
				if l != j {
					othReq += w.req[l]
					othErr += w.errs[l]
				}
			}
		}
		if k < 2 {
			continue
		}
		for _, s := range [...]int{sigMean, sigErr, sigLoss} {
			v := w.val[s][j]
			var peer float64
			significant := true
			if s == sigErr {
				if othReq <= 0 {
					continue
				}
				peer = othErr / othReq
				significant, _ = d.errorsSignificant(w.errs[j], w.req[j], w.errs[j]+othErr, w.req[j]+othReq, k)
			} else {
				peer = medianOthers(&w.val[s], &w.ok, n, i, j)
			}
			if math.IsNaN(v) || math.IsNaN(peer) {
				continue
			}
			if _, x, counts := d.excess(s, v, peer, significant); counts && x > lnShift {
				return j
			}
		}
	}
	return -1
}

// weigh adds one window's increment inc to signal s's evidence of zone z:
// at most half the threshold th per window, never below zero, never above
// twice the threshold (so that a long episode does not take as long to
// forget). While the zone is not shifted, the previous window's increment
// is added to the estimate of its healthy increments if the evidence stays
// below half the threshold (winsorised at 4 deviations once the estimate
// holds 8 windows).
func (d *Detector) weigh(z *zoneState, s int, inc, th float64) {
	if math.IsNaN(inc) {
		return
	}
	z.ev[s] = min(max(0, z.ev[s]+min(inc, th/2)), 2*th)
	prev := z.pend[s]
	z.pend[s] = inc
	if z.shiftedUntil != 0 || z.ev[s] >= th/2 {
		z.pend[s] = math.NaN()
		return
	}
	if math.IsNaN(prev) {
		return
	}
	n := z.nObs[s]
	x := prev
	if n >= 8 {
		sd := math.Sqrt(z.vr[s])
		x = min(max(x, z.mu[s]-4*sd), z.mu[s]+4*sd)
	}
	a := max(1/float64(n+1), 1.0/healthyWindows)
	if n == 0 {
		z.mu[s], z.vr[s] = x, 0
	} else {
		dlt := x - z.mu[s]
		z.mu[s] += a * dlt
		z.vr[s] = (1 - a) * (z.vr[s] + a*dlt*dlt)
	}
	if n < math.MaxUint32 {
		z.nObs[s]++
	}
}

// healthyWindows is the horizon of the healthy-noise estimate, in windows
// (an hour at 15 s).
const healthyWindows = 240

// priorWindows and priorSD shape the noise estimate of a zone seen for few
// windows: as if it had priorWindows windows of log ratios with a standard
// deviation of priorSD around 1 (a noisy zone), so that a new zone is not
// given a low threshold.
const (
	priorWindows = 10
	priorSD      = 0.25
)

// threshold is the evidence that impairs zone z on signal s: MinEvidence,
// or more when the zone's healthy increments are noisy enough to cross
// less by chance less rarely than once per FalseAlarmDays (Siegmund's
// approximation of the average run length of a CUSUM with increments of
// mean mu < 0 and deviation sd: ARL = (e^(2|m|b) - 2|m|b - 1) / (2m^2),
// m = mu/sd, b = h/sd + 1.166).
func (d *Detector) threshold(z *zoneState, s int) float64 {
	c := &d.cfg
	dt := c.Step.Seconds()
	priorMu, priorVar := -math.Log(c.ShiftRatio)*dt, priorSD*dt*priorSD*dt
	n := float64(z.nObs[s])
	wn := min(n, healthyWindows)
	mu := (z.mu[s]*wn + priorMu*priorWindows) / (wn + priorWindows)
	vr := (z.vr[s]*wn + priorVar*priorWindows) / (wn + priorWindows)
	if n == 0 {
		mu, vr = priorMu, priorVar
	}
	least := c.MinEvidence
	if s == sigP99 {
		// A window's p99 is its slowest pod's: one pod stalling for a
		// minute or two makes it 2-3x the peers'. The tail alone needs
		// five times the evidence (a zone whose p99 is 2.5x its peers'
		// for 4 minutes); a zonal slowdown moves the mean as well.
		least *= 5
	}
	if mu >= 0 || vr <= 0 {
		return least
	}
	sd := math.Sqrt(vr)
	m := -mu / sd
	// Bonferroni over the signals, and a factor 2 for the approximation:
	// on simulated quiet days (skewed latencies, few samples per window)
	// the false shifts were up to 1.2x what it predicts without it
	// (bench/RESULTS-grayfailure-gpu.md).
	arl := c.FalseAlarmDays * 86400 / dt * nSignals * 2
	// Solve (e^(2mb) - 2mb - 1)/(2m^2) = arl for b by fixed point.
	b := 1.0
	for range 8 {
		b = math.Log(2*m*m*arl+2*m*b+1) / (2 * m)
	}
	return max(least, (b-1.166)*sd)
}

// fraction is zone z's largest evidence as a share of its threshold, and
// the signal.
func (d *Detector) fraction(i int) (float64, int) {
	z := &d.zones[i]
	best, sig := 0.0, -1
	for s := range nSignals {
		th := d.w.thresh[s][i]
		if th == 0 {
			th = d.threshold(z, s)
		}
		if f := z.ev[s] / th; f > best {
			best, sig = f, s
		}
	}
	return best, sig
}

// excess weighs a zone's value v of signal s against its peers' value peer:
// ratio is v / peer (+Inf when only the peer is 0, 1 when both are); x the
// log ratio the evidence is weighed on (floored at logRatioFloor, the
// error share's smoothed); counts whether the excess may make the zone
// worse: significant, at least the signal's least excess over peers and
// above its absolute limit.
func (d *Detector) excess(s int, v, peer float64, significant bool) (ratio, x float64, counts bool) {
	c := &d.cfg
	ratio = v / peer
	if peer <= 0 {
		ratio = math.Inf(1)
		if v <= 0 {
			ratio = 1
		}
	}
	x = max(math.Log(ratio), logRatioFloor)
	if s == sigErr {
		x = math.Log((v + c.ErrorShareSmoothing) / (peer + c.ErrorShareSmoothing))
	}
	limits, mins := d.limits()
	return ratio, x, significant && v-peer >= mins[s] && (limits[s] == 0 || v > limits[s])
}

// errorsSignificant reports whether o errors among req requests are
// significantly more than the zone's share of tot errors among totReq
// requests of it and its peers, k zones in all (chi-squared with one degree
// of freedom, Bonferroni over the zones; the exact Poisson tail when fewer
// than 5 errors are expected), and the chi-squared statistic.
func (d *Detector) errorsSignificant(o, req, tot, totReq float64, k int) (bool, float64) {
	exp := tot * req / totReq
	chi := chiSquared(o, exp, tot)
	significant := o > exp && chi > d.crit[k]
	if significant && exp < 5 {
		// Too few expected errors for the chi-squared approximation: use
		// the exact Poisson tail.
		significant = distuv.Poisson{Lambda: exp}.Survival(o-1) < d.cfg.Significance/float64(k)
	}
	return significant, chi
}

// chiSquared is the one-degree-of-freedom goodness-of-fit statistic of
// observed errors o in a zone against expected e, with total errors t split
// into this zone and the rest.
func chiSquared(o, e, t float64) float64 {
	if e <= 0 || t-e <= 0 {
		return 0
	}
	dlt := o - e
	return dlt * dlt * t / (e * (t - e))
}

// count returns how many of the last Windows bits of h are set.
func (d *Detector) count(h uint16) int { return bits.OnesCount16(h & d.mask) }

// decide turns the zones' evidence and histories into decisions.
func (d *Detector) decide(at time.Time) []*proto.Decision {
	c := &d.cfg
	now := at.UnixMilli()
	var out []*proto.Decision
	impaired, degraded, healthy, shifted := -1, 0, 0, -1
	nImpaired, othersSick, halfSick := 0, 0, 0
	for i := range d.zones {
		z := &d.zones[i]
		if z.shiftedUntil != 0 && now >= z.shiftedUntil {
			// Expired at AWS: its traffic is back, and the zone is shifted
			// again only on evidence gathered from it (the evidence it had
			// froze while it was drained).
			z.shiftedUntil = 0
			z.ev = [nSignals]float64{}
		}
		if z.shiftedUntil != 0 {
			shifted = i
		}
	}
	for i := range d.zones {
		z := &d.zones[i]
		frac, _ := d.fraction(i)
		breached := d.count(z.breach) >= c.Required
		if frac >= 1 {
			impaired = i
			nImpaired++
		}
		if i != shifted && (frac >= 1 || breached) {
			othersSick++
		}
		if frac >= 1 || breached {
			degraded++
		}
		if frac >= 0.5 || breached {
			halfSick++
		}
		if z.valid&1 != 0 && frac < 0.5 && z.breach&1 == 0 && z.shiftedUntil == 0 {
			// Healthy now: reporting, under no limit, with less than half
			// its threshold of evidence (a zone that starts to degrade is
			// no safe place to move traffic to).
			healthy++
		}
	}

	// Several zones impaired (or above a limit) together: a regional
	// event. Alert once, and stay in it (no shift) until no zone is
	// degraded or for Windows windows fewer than two were, so that the last
	// zone of a regional event to recover is not shifted away from at once.
	// A shift in force is cancelled: the other zones are no better place.
	now2 := degraded >= 2
	if shifted >= 0 {
		now2 = othersSick >= 1
	}
	if now2 {
		d.rhist |= 1
	}
	switch {
	case now2 && !d.regional:
		d.regional = true
		out = append(out, d.regionalAlert(at, degraded, othersSick, shifted))
		if shifted >= 0 {
			d.zones[shifted].shiftedUntil = 0
			out = append(out, d.shift(at, shifted, proto.KindCancelZonalShift, "regional"))
			shifted = -1
		}
	case d.regional && (degraded == 0 || d.count(d.rhist) == 0):
		d.regional = false
	}

	// Exactly one impaired zone: shift away from it if safe.
	for i := range d.zones {
		z := &d.zones[i]
		if i != impaired || nImpaired != 1 || d.regional || z.shiftedUntil != 0 {
			if f, _ := d.fraction(i); f == 0 {
				z.alerted = false
			}
			continue
		}
		// No shift while another zone is degrading too (half its
		// threshold, or above a limit: halfSick counts this zone as
		// well), nor while one is worse than the zones that would be
		// left: the traffic would move to a zone no better, and the
		// shift be cancelled as regional a few windows later.
		var why string
		switch {
		case shifted >= 0:
			why = "zone " + d.zones[shifted].name + " is already shifted away"
		case healthy < 2:
			why = fmt.Sprintf("only %d healthy zones would remain", healthy)
		case halfSick == 2:
			why = "another zone is degrading too"
		case halfSick > 2:
			why = fmt.Sprintf("%d other zones are degrading too", halfSick-1)
		default:
			if j := d.degradedWithout(i); j >= 0 {
				why = "zone " + d.zones[j].name + " is worse than the other zones that would take the traffic"
			}
		}
		if why == "" {
			z.shiftedUntil = now + c.ShiftExpiry.Milliseconds()
			z.healthy = 0
			shifted = i
			out = append(out, d.shift(at, i, proto.KindZonalShift, "impaired"))
			continue
		}
		if !z.alerted {
			z.alerted = true
			out = append(out, d.noShiftAlert(at, i, why))
		}
	}

	// The shifted zone: cancel after the hold-down, extend while measured
	// and not yet healthy for the hold-down. A zone drained of its traffic
	// (too few requests or instances to count) is not extended: with no
	// window measured it never recovered either, and was extended for
	// ever; its shift expires and the zone is judged on its traffic again.
	if shifted >= 0 {
		z := &d.zones[shifted]
		switch {
		case time.Duration(z.healthy)*c.Step >= c.HoldDown:
			z.shiftedUntil = 0
			out = append(out, d.shift(at, shifted, proto.KindCancelZonalShift, "recovered"))
			z.ev = [nSignals]float64{}
		case z.valid&1 != 0 && time.Duration(z.shiftedUntil-now)*time.Millisecond < c.ShiftExpiry/2:
			z.shiftedUntil = now + c.ShiftExpiry.Milliseconds()
			out = append(out, d.shift(at, shifted, proto.KindZonalShift, "extend"))
		}
	}

	// Warnings: a zone worse than peers by WarnRatio, once per episode.
	for i := range d.zones {
		z := &d.zones[i]
		if d.count(z.warn) == 0 {
			z.warned = false // re-arm only after a clean Windows span (hysteresis)
		}
		if d.count(z.warn) < c.Required {
			continue
		}
		if f, _ := d.fraction(i); !z.warned && f < 0.5 && z.shiftedUntil == 0 && !d.regional {
			z.warned = true
			out = append(out, d.warning(at, i))
		}
	}
	return out
}

// Shifted returns the zone currently shifted away from, or "".
func (d *Detector) Shifted() string {
	for i := range d.zones {
		if d.zones[i].shiftedUntil != 0 {
			return d.zones[i].name
		}
	}
	return ""
}

// evidence describes every zone's latest window and zone i's ratios.
func (d *Detector) evidence(i int) *proto.Evidence {
	w := &d.w
	ev := &proto.Evidence{Peers: make(map[string]float64, 4*len(d.zones)), Values: make(map[string]float64, 12)}
	for j := range d.zones {
		if !w.ok[j] {
			continue
		}
		name := d.zones[j].name
		ev.Peers[name+"/latency_mean_seconds"] = proto.Finite(w.val[sigMean][j])
		ev.Peers[name+"/latency_p99_seconds"] = proto.Finite(w.val[sigP99][j])
		ev.Peers[name+"/error_share"] = proto.Finite(w.val[sigErr][j])
		ev.Peers[name+"/packet_loss"] = proto.Finite(w.val[sigLoss][j])
		ev.Peers[name+"/requests"] = w.req[j]
	}
	if i < 0 {
		return ev
	}
	z := &d.zones[i]
	for s := range nSignals {
		ev.Values[signalNames[s]+"_ratio"] = proto.Finite(w.ratio[s][i])
	}
	ev.Values["chi_squared"] = w.chi[i]
	for s := range nSignals {
		ev.Values[signalNames[s]+"_evidence"] = proto.Finite(z.ev[s])
		ev.Values[signalNames[s]+"_threshold"] = proto.Finite(w.thresh[s][i])
	}
	ev.Values["false_alarm_days"] = d.cfg.FalseAlarmDays
	ev.Values["warn_windows"] = float64(d.count(z.warn))
	ev.Values["windows"] = float64(d.cfg.Windows)
	ev.Values["healthy_windows"] = float64(z.healthy)
	if w.first[i] >= 0 {
		ev.Signal = signalNames[w.first[i]]
		ev.Observed = proto.Finite(w.val[w.first[i]][i])
	}
	return ev
}

// decision fills the fields every decision has.
func (d *Detector) decision(at time.Time, kind string, ch *proto.Change, ev *proto.Evidence, conf float64, summary string) *proto.Decision {
	return &proto.Decision{
		Id:         proto.DecisionID(d.cfg.Rule, kind, d.target, ch, at.UnixMilli()),
		Kind:       kind,
		Target:     d.target,
		Rule:       d.cfg.Rule,
		Desired:    ch,
		Evidence:   ev,
		Confidence: conf,
		CreatedAt:  timestamppb.New(at),
		ExpiresAt:  timestamppb.New(at.Add(d.cfg.DecisionTTL)),
		Tenant:     d.cfg.Tenant,
		Summary:    summary,
	}
}

// shift builds a zonal_shift or cancel_zonal_shift decision for zone i.
func (d *Detector) shift(at time.Time, i int, kind, why string) *proto.Decision {
	z := &d.zones[i]
	ch := &proto.Change{ZonalShift: &proto.ZonalShift{ResourceIdentifier: d.cfg.Resource, AwayFrom: z.name,
		ExpiresInSeconds: int64(d.cfg.ShiftExpiry / time.Second)}}
	ev := d.evidence(i)
	var summary string
	frac, _ := d.fraction(i)
	conf := min(frac, 1)
	switch {
	case kind == proto.KindCancelZonalShift && why == "regional":
		conf = 1
		summary = fmt.Sprintf("other zones degraded too (a regional event): cancel the zonal shift away from zone %s", z.name)
	case kind == proto.KindCancelZonalShift:
		conf = 1
		summary = fmt.Sprintf("zone %s healthy for %v: cancel the zonal shift", z.name, time.Duration(z.healthy)*d.cfg.Step)
	case why == "extend" && z.healthy > 0:
		summary = fmt.Sprintf("zone %s healthy for %v, within the %v hold-down: extend the zonal shift by %v",
			z.name, time.Duration(z.healthy)*d.cfg.Step, d.cfg.HoldDown, d.cfg.ShiftExpiry)
	case why == "extend":
		summary = fmt.Sprintf("zone %s still not healthy: extend the zonal shift by %v", z.name, d.cfg.ShiftExpiry)
	default:
		ratio := ev.GetValues()[ev.GetSignal()+"_ratio"]
		summary = fmt.Sprintf("zone %s %.1fx worse than its peers (%s), beyond its false-alarm threshold (one per %g days), while the other zones are healthy: shift traffic away",
			z.name, ratio, ev.GetSignal(), d.cfg.FalseAlarmDays)
	}
	return d.decision(at, kind, ch, ev, conf, summary)
}

// alert builds an alert decision.
func (d *Detector) alert(at time.Time, i int, severity, reason string, conf float64, summary string) *proto.Decision {
	ch := &proto.Change{Alert: &proto.Alert{Severity: severity, Reason: reason}}
	return d.decision(at, proto.KindAlert, ch, d.evidence(i), conf, summary)
}

// regionalAlert says that several zones are degraded together, or, when
// traffic is shifted away from a zone, that others are degraded too (the
// shifted traffic may be what hurts them).
func (d *Detector) regionalAlert(at time.Time, degraded, othersSick, shifted int) *proto.Decision {
	ev := d.evidence(-1)
	ev.Values["zones_degraded"] = float64(degraded)
	ev.Values["zones"] = float64(len(d.zones))
	ev.Signal = "regional"
	summary := fmt.Sprintf("%d of %d zones degraded together: regional event, no zonal shift", degraded, len(d.zones))
	if shifted >= 0 {
		others := "another zone"
		if othersSick > 1 {
			others = fmt.Sprintf("%d other zones", othersSick)
		}
		summary = fmt.Sprintf("%s degraded while traffic is shifted away from zone %s: regional event, the shift is cancelled",
			others, d.zones[shifted].name)
	}
	return d.decision(at, proto.KindAlert, &proto.Change{Alert: &proto.Alert{Severity: "critical", Reason: "regional_degradation"}},
		ev, float64(degraded)/float64(len(d.zones)), summary)
}

func (d *Detector) noShiftAlert(at time.Time, i int, why string) *proto.Decision {
	frac, _ := d.fraction(i)
	return d.alert(at, i, "critical", "zonal_impairment_no_shift", min(frac, 1),
		fmt.Sprintf("zone %s impaired but not shifted: %s", d.zones[i].name, why))
}

func (d *Detector) warning(at time.Time, i int) *proto.Decision {
	z := &d.zones[i]
	return d.alert(at, i, "warning", "zone_outlier", float64(d.count(z.warn))/float64(d.cfg.Windows),
		fmt.Sprintf("zone %s at least %.0f%% worse than its peers in %d of %d windows", z.name,
			(d.cfg.WarnRatio-1)*100, d.count(z.warn), d.cfg.Windows))
}
