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
	name     string
	valid    uint16 // the window had enough instances and requests
	warn     uint16 // worse than peers by WarnRatio
	bad      uint16 // worse than peers by ShiftRatio (and above the limit)
	degraded uint16 // bad, or above an absolute limit
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
	ok    [MaxZones]bool
	req   [MaxZones]float64
	errs  [MaxZones]float64
	val   [nSignals][MaxZones]float64 // NaN when unknown
	max   [MaxZones]float64
	ratio [nSignals][MaxZones]float64 // to peers, NaN when not computed
	chi   [MaxZones]float64
	first [MaxZones]int // first bad (or warn) signal, -1 none
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
	d.zones = append(d.zones, zoneState{name: name})
	return len(d.zones) - 1
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
	for i := range d.zones {
		z := &d.zones[i]
		if gap >= maxWindows {
			z.valid, z.warn, z.bad, z.degraded = 0, 0, 0, 0
		} else {
			z.valid <<= gap
			z.warn <<= gap
			z.bad <<= gap
			z.degraded <<= gap
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
		if s.Instances < d.cfg.MinInstances || !(s.Requests >= d.cfg.MinRequests) || s.Requests <= 0 {
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

// positiveOrNaN maps unknown (0, negative, NaN, Inf) to NaN.
func positiveOrNaN(v float64) float64 {
	if v > 0 && !math.IsInf(v, 0) {
		return v
	}
	return math.NaN()
}

// medianOthers is the median of vals over ok zones except skip and with a
// known value; NaN when there is none.
func medianOthers(vals *[MaxZones]float64, ok *[MaxZones]bool, n, skip int) float64 {
	var buf [MaxZones]float64
	m := 0
	for j := 0; j < n; j++ {
		if j == skip || !ok[j] || math.IsNaN(vals[j]) {
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

// compare sets this window's warn, bad and degraded bits of every zone.
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
	limits := [nSignals]float64{c.MeanLatencyLimit, c.P99LatencyLimit, c.ErrorShareLimit, c.PacketLossLimit}
	mins := [nSignals]float64{c.MinLatencyDelta, c.MinLatencyDelta, c.MinErrorShareDelta, c.MinPacketLossDelta}
	for i := 0; i < n; i++ {
		z := &d.zones[i]
		w.first[i] = -1
		w.chi[i] = 0
		for s := range nSignals {
			w.ratio[s][i] = math.NaN()
		}
		if !w.ok[i] {
			continue
		}
		breach := c.MaxLatencyLimit > 0 && w.max[i] > c.MaxLatencyLimit
		for s := range nSignals {
			if limits[s] > 0 && w.val[s][i] > limits[s] {
				breach = true
			}
		}
		var warn, bad bool
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
					exp := totErr * w.req[i] / totReq
					w.chi[i] = chiSquared(w.errs[i], exp, totErr)
					significant = w.errs[i] > exp && w.chi[i] > d.crit[k]
					if significant && exp < 5 {
						// Too few expected errors for the chi-squared
						// approximation: use the exact Poisson tail.
						significant = distuv.Poisson{Lambda: exp}.Survival(w.errs[i]-1) < d.cfg.Significance/float64(k)
					}
				} else {
					peer = medianOthers(&w.val[s], &w.ok, n, i)
				}
				if math.IsNaN(v) || math.IsNaN(peer) {
					continue
				}
				ratio := v / peer
				if peer <= 0 {
					ratio = math.Inf(1)
					if v <= 0 {
						ratio = 1
					}
				}
				w.ratio[s][i] = ratio
				if !significant || v-peer < mins[s] || (limits[s] > 0 && v <= limits[s]) {
					continue
				}
				if ratio >= c.WarnRatio {
					if !warn && !bad {
						w.first[i] = s
					}
					warn = true
				}
				if ratio >= c.ShiftRatio {
					if !bad {
						w.first[i] = s
					}
					bad = true
				}
			}
		}
		if warn {
			z.warn |= 1
		}
		if bad {
			z.bad |= 1
		}
		if bad || breach {
			z.degraded |= 1
		}
		if bad || breach {
			z.healthy = 0
		} else if z.healthy < math.MaxUint32 {
			z.healthy++
		}
	}
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

// decide turns the zones' histories into decisions.
func (d *Detector) decide(at time.Time) []*proto.Decision {
	c := &d.cfg
	now := at.UnixMilli()
	var out []*proto.Decision
	impaired, degraded, healthy, shifted := -1, 0, 0, -1
	nImpaired := 0
	for i := range d.zones {
		z := &d.zones[i]
		if z.shiftedUntil != 0 && now >= z.shiftedUntil {
			z.shiftedUntil = 0 // expired at AWS
		}
		if z.shiftedUntil != 0 {
			shifted = i
		}
		isDegraded := d.count(z.degraded) >= c.Required
		if d.count(z.bad) >= c.Required {
			impaired = i
			nImpaired++
		}
		if isDegraded {
			degraded++
		} else if z.valid&1 != 0 && z.degraded&1 == 0 && z.shiftedUntil == 0 {
			// Healthy now, not only over the m-of-n: a zone that starts to
			// degrade is no safe place to move traffic to.
			healthy++
		}
	}

	// Several zones degraded together: a regional event. Alert once, and
	// stay in it (no shift) until no zone is degraded, so that the last zone
	// of a regional event to recover is not shifted away from.
	if degraded >= 2 {
		if !d.regional {
			d.regional = true
			out = append(out, d.regionalAlert(at, degraded))
		}
	} else if degraded == 0 {
		d.regional = false
	}

	// Exactly one impaired zone: shift away from it if safe.
	for i := range d.zones {
		z := &d.zones[i]
		if i != impaired || nImpaired != 1 || d.regional || z.shiftedUntil != 0 {
			if d.count(z.bad) == 0 {
				z.alerted = false
			}
			continue
		}
		if shifted < 0 && healthy >= 2 {
			z.shiftedUntil = now + c.ShiftExpiry.Milliseconds()
			z.healthy = 0
			shifted = i
			out = append(out, d.shift(at, i, proto.KindZonalShift, "impaired"))
			continue
		}
		if !z.alerted {
			z.alerted = true
			out = append(out, d.noShiftAlert(at, i, healthy, shifted))
		}
	}

	// The shifted zone: cancel after the hold-down, extend while unhealthy.
	if shifted >= 0 {
		z := &d.zones[shifted]
		switch {
		case time.Duration(z.healthy)*c.Step >= c.HoldDown:
			z.shiftedUntil = 0
			out = append(out, d.shift(at, shifted, proto.KindCancelZonalShift, "recovered"))
		case time.Duration(z.shiftedUntil-now)*time.Millisecond < c.ShiftExpiry/2:
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
		if !z.warned && d.count(z.bad) < c.Required && z.shiftedUntil == 0 && !d.regional {
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
	ev.Values["bad_windows"] = float64(d.count(z.bad))
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
	conf := float64(d.count(z.bad)) / float64(d.cfg.Windows)
	switch {
	case kind == proto.KindCancelZonalShift:
		conf = 1
		summary = fmt.Sprintf("zone %s healthy for %v: cancel the zonal shift", z.name, time.Duration(z.healthy)*d.cfg.Step)
	case why == "extend":
		summary = fmt.Sprintf("zone %s still not healthy: extend the zonal shift by %v", z.name, d.cfg.ShiftExpiry)
	default:
		summary = fmt.Sprintf("zone %s worse than its peers (%s) in %d of %d windows while the other zones are healthy: shift traffic away",
			z.name, ev.Signal, d.count(z.bad), d.cfg.Windows)
	}
	return d.decision(at, kind, ch, ev, conf, summary)
}

// alert builds an alert decision.
func (d *Detector) alert(at time.Time, i int, severity, reason string, conf float64, summary string) *proto.Decision {
	ch := &proto.Change{Alert: &proto.Alert{Severity: severity, Reason: reason}}
	return d.decision(at, proto.KindAlert, ch, d.evidence(i), conf, summary)
}

func (d *Detector) regionalAlert(at time.Time, degraded int) *proto.Decision {
	ev := d.evidence(-1)
	ev.Values["zones_degraded"] = float64(degraded)
	ev.Values["zones"] = float64(len(d.zones))
	ev.Signal = "regional"
	return d.decision(at, proto.KindAlert, &proto.Change{Alert: &proto.Alert{Severity: "critical", Reason: "regional_degradation"}},
		ev, float64(degraded)/float64(len(d.zones)),
		fmt.Sprintf("%d of %d zones degraded together: regional event, no zonal shift", degraded, len(d.zones)))
}

func (d *Detector) noShiftAlert(at time.Time, i, healthy, shifted int) *proto.Decision {
	why := fmt.Sprintf("only %d healthy zones would remain", healthy)
	if shifted >= 0 {
		why = "zone " + d.zones[shifted].name + " is already shifted away"
	}
	return d.alert(at, i, "critical", "zonal_impairment_no_shift", float64(d.count(d.zones[i].bad))/float64(d.cfg.Windows),
		fmt.Sprintf("zone %s impaired but not shifted: %s", d.zones[i].name, why))
}

func (d *Detector) warning(at time.Time, i int) *proto.Decision {
	z := &d.zones[i]
	return d.alert(at, i, "warning", "zone_outlier", float64(d.count(z.warn))/float64(d.cfg.Windows),
		fmt.Sprintf("zone %s at least %.0f%% worse than its peers in %d of %d windows", z.name,
			(d.cfg.WarnRatio-1)*100, d.count(z.warn), d.cfg.Windows))
}
