package grayfailure

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/proto"
)

// Group is a Detector fed as a detectors.Group: it builds each zone's
// statistics per window from the raw samples the stream hands it (see
// "Gray-failure signals" in internal/rules/README.md: which series feed
// which signal, by name) and calls Update when a window closes.
type Group struct {
	zoneLabel, instanceLabel string
	det                      *Detector
	step                     int64 // ms
	wins                     []grayWindow
	stats                    []ZoneStats // scratch for Close
	bucketsc                 []bucket    // scratch for p99
}

// grayWindow is the open aggregation of one window.
type grayWindow struct {
	start int64
	zones []zoneAcc
	// pending counts the instances of the window (of all its zones) not
	// yet seen in the same zone of a later window: the window is complete
	// (closeEarly) at 0.
	pending int
}

// zoneAcc accumulates one zone's signals over a window. Counter fields are
// sums of increases; gauge fields sums and counts of samples.
type zoneAcc struct {
	zone      string
	instances []string // in the order they first reported
	// index maps an instance to its position in instances; later[i] is
	// whether instances[i] reported in the same zone of a later window.
	// A sample's lookup and the completeness of a window are O(1) in the
	// zone's instances (thousands in one zone made a window O(n²)).
	index               map[string]int32
	later               []bool
	requests, errors    float64 // request and error counters
	hasRequests         bool
	latSum, latCount    float64 // histogram or summary _sum / _count
	probes, probeFails  float64 // probe_success samples
	gaugeLat, gaugeLatN float64 // latency gauges
	latMax              float64
	p99Gauge, p99GaugeN float64
	loss, lossN         float64 // loss gauges
	retrans, outSegs    float64
	buckets             []bucket
}

type bucket struct {
	le    float64
	count float64
}

// NewGroup returns the Group of a Detector configured by cfg (its Step is
// the window) over series whose zone is the label zoneLabel and whose
// instances are counted by instanceLabel (by pod when a series lacks it).
func NewGroup(cfg Config, zoneLabel, instanceLabel string) (*Group, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Group{zoneLabel: zoneLabel, instanceLabel: instanceLabel, det: d, step: d.cfg.Step.Milliseconds()}, nil
}

// Signal kinds of gray-failure series.
const (
	gsNone = iota
	gsBucket
	gsLatSum
	gsLatCount
	gsErrors
	gsRequests
	gsProbe
	gsP99Gauge
	gsLatGauge
	gsLossGauge
	gsRetrans
	gsOutSegs
)

// Counter reports whether series of metric name are counters whatever type
// they arrive with: node_exporter exposes the TCP segment counters untyped
// (and remote-write 1.0 carries no type), so they would be read as gauges
// and the packet loss never computed.
func Counter(name string) bool {
	return name == "node_netstat_Tcp_RetransSegs" || name == "node_netstat_Tcp_OutSegs"
}

// graySignal classifies a series by its name and labels.
func graySignal(name string, lbls []proto.Label) int {
	switch {
	case name == "node_netstat_Tcp_RetransSegs":
		return gsRetrans
	case name == "node_netstat_Tcp_OutSegs":
		return gsOutSegs
	case name == "probe_success":
		return gsProbe
	case strings.HasSuffix(name, "_bucket"):
		if _, ok := proto.LabelValue(lbls, "le"); ok {
			return gsBucket
		}
		return gsNone
	case strings.HasSuffix(name, "_sum"):
		return gsLatSum
	case strings.HasSuffix(name, "_count"):
		return gsLatCount
	case strings.HasSuffix(name, "_total"):
		if strings.Contains(name, "error") || strings.Contains(name, "fault") || strings.Contains(name, "fail") {
			return gsErrors
		}
		return gsRequests
	case strings.Contains(name, "loss"):
		return gsLossGauge
	}
	if q, ok := proto.LabelValue(lbls, "quantile"); ok {
		if q == "0.99" {
			return gsP99Gauge
		}
		return gsNone
	}
	if strings.HasSuffix(name, "_seconds") {
		return gsLatGauge
	}
	return gsNone
}

// Observe implements detectors.Group.
func (g *Group) Observe(p *detectors.Point) []*proto.Decision {
	zone, ok := proto.LabelValue(p.Labels, g.zoneLabel)
	if !ok || zone == "" {
		return nil
	}
	name, _ := proto.LabelValue(p.Labels, "__name__")
	sig := graySignal(name, p.Labels)
	if sig == gsNone {
		return nil
	}
	start := detectors.WindowStart(p.Ts, g.step)
	if last := g.det.lastEnd; last != 0 && start < last {
		// Its window was judged early (closeEarly): the sample counts in
		// the next one, not in a window rebuilt and thrown away, where a
		// counter's increase was lost (the next sample's increase starts
		// from this one).
		start = last
	}
	wi, z := g.zone(start, zone)
	inst, ok := proto.LabelValue(p.Labels, g.instanceLabel)
	if !ok {
		inst, _ = proto.LabelValue(p.Labels, "pod")
	}
	var ds []*proto.Decision
	if _, seen := z.index[inst]; !seen {
		g.addInstance(wi, z, inst)
		ds = g.closeEarly()
	}
	inc := p.Increase
	counter := !math.IsNaN(inc)
	v := p.Value
	switch sig {
	case gsBucket:
		if counter {
			le, _ := proto.LabelValue(p.Labels, "le")
			if b, err := strconv.ParseFloat(le, 64); err == nil {
				z.addBucket(b, inc)
			}
		}
	case gsLatSum:
		if counter {
			z.latSum += inc
		}
	case gsLatCount:
		if counter {
			z.latCount += inc
		}
	case gsErrors:
		if counter {
			z.errors += inc
		}
	case gsRequests:
		if counter {
			z.requests += inc
			z.hasRequests = true
			if c, ok := proto.LabelValue(p.Labels, "code"); ok && strings.HasPrefix(c, "5") {
				z.errors += inc
			} else if c, ok := proto.LabelValue(p.Labels, "status"); ok && strings.HasPrefix(c, "5") {
				z.errors += inc
			}
		}
	case gsProbe:
		z.probes++
		if v == 0 {
			z.probeFails++
		}
	case gsP99Gauge:
		if finite(v) {
			z.p99Gauge += v
			z.p99GaugeN++
		}
	case gsLatGauge:
		if finite(v) {
			z.gaugeLat += v
			z.gaugeLatN++
			z.latMax = max(z.latMax, v)
		}
	case gsLossGauge:
		if finite(v) {
			z.loss += v
			z.lossN++
		}
	case gsRetrans:
		if counter {
			z.retrans += inc
		}
	case gsOutSegs:
		if counter {
			z.outSegs += inc
		}
	}
	return ds
}

// closeEarly judges the oldest open windows whose every instance has
// reported in a later window: their data is complete, so the decision need
// not wait for the watermark (allowed_lateness past the window's end). With
// the window equal to the scrape interval, a window is judged as soon as
// the next scrape of its last instance arrives. A sample of a window judged
// early that still arrives (another remote-write shard of the instance,
// retried or lagging) counts in the next window (Observe). The watermark's
// Close remains for windows an instance stops reporting in.
func (g *Group) closeEarly() []*proto.Decision {
	var out []*proto.Decision
	for len(g.wins) >= 2 && g.complete(&g.wins[0]) {
		out = append(out, g.judge(g.wins[0].start+g.step, 1)...)
	}
	return out
}

// complete reports whether every instance of w reported in a later window.
func (g *Group) complete(w *grayWindow) bool { return w.pending == 0 }

// addInstance adds inst, not yet in z, to z, the accumulator of its zone in
// window wi (-1: a zone beyond MaxZones, in no window), and keeps the
// windows' completeness: inst counts as pending in wi unless a later
// window has it, and is no longer pending in the earlier windows that
// have it.
func (g *Group) addInstance(wi int, z *zoneAcc, inst string) {
	if wi < 0 {
		return // the accumulator is thrown away
	}
	z.index[inst] = int32(len(z.instances))
	z.instances = append(z.instances, inst)
	seen := g.seenLater(wi, z.zone, inst)
	z.later = append(z.later, seen)
	if !seen {
		g.wins[wi].pending++
	}
	for j := range wi {
		if o := g.wins[j].find(z.zone); o != nil {
			if k, ok := o.index[inst]; ok && !o.later[k] {
				o.later[k] = true
				g.wins[j].pending--
			}
		}
	}
}

// seenLater reports whether inst reported in zone in a window after
// window wi.
func (g *Group) seenLater(wi int, zone, inst string) bool {
	for j := wi + 1; j < len(g.wins); j++ {
		if o := g.wins[j].find(zone); o != nil {
			if _, ok := o.index[inst]; ok {
				return true
			}
		}
	}
	return false
}

// find returns the accumulator of zone in w, nil when w has none.
func (w *grayWindow) find(zone string) *zoneAcc {
	for i := range w.zones {
		if w.zones[i].zone == zone {
			return &w.zones[i]
		}
	}
	return nil
}

// reindex rebuilds the instance indexes and completeness of the open
// windows from their instance lists (a restored checkpoint). An instance
// listed twice in a zone counts once, at its first entry.
func (g *Group) reindex() {
	for wi := range g.wins {
		for zi := range g.wins[wi].zones {
			z := &g.wins[wi].zones[zi]
			z.index = make(map[string]int32, len(z.instances))
			z.later = make([]bool, len(z.instances))
			for k, inst := range z.instances {
				if _, dup := z.index[inst]; !dup {
					z.index[inst] = int32(k)
				}
			}
		}
	}
	for wi := range g.wins {
		w := &g.wins[wi]
		w.pending = 0
		for zi := range w.zones {
			z := &w.zones[zi]
			for k, inst := range z.instances {
				if z.index[inst] != int32(k) {
					continue // a repeat, counted at its first entry
				}
				seen := g.seenLater(wi, z.zone, inst)
				z.later[k] = seen
				if !seen {
					w.pending++
				}
			}
		}
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// zone returns the accumulator of zone in the window starting at start,
// and the window's index (-1 with an accumulator in no window, for a zone
// beyond MaxZones).
func (g *Group) zone(start int64, zone string) (int, *zoneAcc) {
	i := len(g.wins)
	for i > 0 && g.wins[i-1].start > start {
		i--
	}
	if i == 0 || g.wins[i-1].start != start {
		g.wins = append(g.wins, grayWindow{})
		copy(g.wins[i+1:], g.wins[i:])
		g.wins[i] = grayWindow{start: start}
	} else {
		i--
	}
	w := &g.wins[i]
	if z := w.find(zone); z != nil {
		return i, z
	}
	if len(w.zones) >= MaxZones {
		// The detector ignores zones beyond MaxZones; so does the
		// aggregation, which keeps a hostile label from growing the state.
		return -1, &zoneAcc{}
	}
	w.zones = append(w.zones, zoneAcc{zone: zone, index: map[string]int32{}})
	return i, &w.zones[len(w.zones)-1]
}

// maxBuckets bounds the histogram buckets kept per zone and window.
const maxBuckets = 64

func (z *zoneAcc) addBucket(le, inc float64) {
	for i := range z.buckets {
		if z.buckets[i].le == le {
			z.buckets[i].count += inc
			return
		}
	}
	if len(z.buckets) < maxBuckets {
		z.buckets = append(z.buckets, bucket{le: le, count: inc})
	}
}

// Close implements detectors.Group: the window ending at end is turned into
// zone statistics and judged.
func (g *Group) Close(end int64) []*proto.Decision {
	n := 0
	for n < len(g.wins) && g.wins[n].start <= end-g.step {
		n++
	}
	return g.judge(end, n)
}

// judge drops the first n open windows and judges the one of them ending at
// end (the detector ignores a window it has judged already).
func (g *Group) judge(end int64, n int) []*proto.Decision {
	start := end - g.step
	g.stats = g.stats[:0]
	for i := range n {
		if g.wins[i].start == start {
			for j := range g.wins[i].zones {
				g.stats = append(g.stats, g.zoneStats(&g.wins[i].zones[j]))
			}
		}
	}
	g.wins = append(g.wins[:0], g.wins[n:]...)
	// Zones in a fixed order so that equal inputs give equal decisions.
	sort.Slice(g.stats, func(i, j int) bool { return g.stats[i].Zone < g.stats[j].Zone })
	return g.det.Update(time.UnixMilli(end), g.stats)
}

// zoneStats turns a zone's accumulator into the detector's statistics.
func (g *Group) zoneStats(z *zoneAcc) ZoneStats {
	s := ZoneStats{
		Zone:         z.zone,
		Instances:    len(z.instances),
		Errors:       z.errors + z.probeFails,
		LatencySum:   z.latSum,
		LatencyCount: z.latCount,
		LatencyMax:   z.latMax,
		PacketLoss:   math.NaN(),
	}
	switch {
	case z.hasRequests:
		s.Requests = z.requests
	case z.latCount > 0:
		s.Requests = z.latCount
	case z.probes > 0:
		s.Requests = z.probes
	default:
		s.Requests = z.gaugeLatN
	}
	if z.gaugeLatN > 0 {
		s.LatencyMean = z.gaugeLat / z.gaugeLatN
	}
	if z.p99GaugeN > 0 {
		s.LatencyP99 = z.p99Gauge / z.p99GaugeN
	}
	if len(z.buckets) > 0 {
		g.bucketsc = append(g.bucketsc[:0], z.buckets...)
		s.LatencyP99 = histogramQuantile(0.99, g.bucketsc)
	}
	switch {
	case z.lossN > 0:
		s.PacketLoss = z.loss / z.lossN
	case z.outSegs > 0:
		s.PacketLoss = min(z.retrans/z.outSegs, 1)
	}
	return s
}

// histogramQuantile is PromQL's histogram_quantile over cumulative bucket
// increases (sorted in place): linear interpolation within the bucket that
// holds the rank, the highest finite bound when the rank falls in +Inf, NaN
// without observations.
func histogramQuantile(q float64, bs []bucket) float64 {
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].le, 1) {
		return math.NaN()
	}
	// Cumulative counts must not decrease (summed increases of several
	// instances can, by scrape timing).
	for i := 1; i < len(bs); i++ {
		bs[i].count = max(bs[i].count, bs[i-1].count)
	}
	total := bs[len(bs)-1].count
	if !(total > 0) {
		return math.NaN()
	}
	rank := q * total
	i := sort.Search(len(bs), func(i int) bool { return bs[i].count >= rank })
	if i == len(bs)-1 {
		if len(bs) < 2 {
			return math.NaN()
		}
		return bs[len(bs)-2].le
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bs[i-1].le, bs[i-1].count
	}
	in := bs[i].count - below
	if in <= 0 {
		return bs[i].le
	}
	return lo + (bs[i].le-lo)*(rank-below)/in
}

// errGroupState is a Group checkpoint that does not decode.
var errGroupState = errors.New("gray-failure group state: bad record")

// maxOpenWindows bounds the open windows a Group checkpoint may hold.
const maxOpenWindows = 1 << 10

// grayStateVersion versions the adapter's checkpoint.
const grayStateVersion = 1

// AppendBinary implements detectors.Group: the detector's state, then the open
// windows.
func (g *Group) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, grayStateVersion)
	det, err := g.det.AppendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("gray failure detector: %w", err)
	}
	b = wire.AppendBlob(b, det)
	b = wire.AppendUvarint(b, uint64(len(g.wins)))
	for _, w := range g.wins {
		b = wire.AppendVarint(b, w.start)
		b = wire.AppendUvarint(b, uint64(len(w.zones)))
		for i := range w.zones {
			z := &w.zones[i]
			b = wire.AppendString(b, z.zone)
			b = wire.AppendUvarint(b, uint64(len(z.instances)))
			for _, s := range z.instances {
				b = wire.AppendString(b, s)
			}
			hr := byte(0)
			if z.hasRequests {
				hr = 1
			}
			b = append(b, hr)
			for _, f := range z.floats() {
				b = wire.AppendFloat64(b, *f)
			}
			b = wire.AppendUvarint(b, uint64(len(z.buckets)))
			for _, k := range z.buckets {
				b = wire.AppendFloat64(b, k.le)
				b = wire.AppendFloat64(b, k.count)
			}
		}
	}
	return b, nil
}

// floats lists the float fields of a zone accumulator in checkpoint order.
func (z *zoneAcc) floats() [15]*float64 {
	return [...]*float64{&z.requests, &z.errors, &z.latSum, &z.latCount, &z.probes, &z.probeFails,
		&z.gaugeLat, &z.gaugeLatN, &z.latMax, &z.p99Gauge, &z.p99GaugeN, &z.loss, &z.lossN, &z.retrans, &z.outSegs}
}

// UnmarshalBinary implements detectors.Group.
func (g *Group) UnmarshalBinary(b []byte) error {
	r := wire.NewReader(b)
	if v := r.Bytes(1); r.Err() != nil || v[0] != grayStateVersion {
		return errGroupState
	}
	det := r.Blob()
	if r.Err() != nil {
		return r.Err()
	}
	nw := r.Uvarint()
	if nw > maxOpenWindows {
		return errGroupState
	}
	var wins []grayWindow
	for range nw {
		w := grayWindow{start: r.Varint()}
		nz := r.Uvarint()
		if nz > MaxZones {
			return errGroupState
		}
		for range nz {
			z := zoneAcc{zone: r.Str()}
			ni := r.Uvarint()
			if ni > uint64(len(r.Rest())) {
				return errGroupState
			}
			for range ni {
				z.instances = append(z.instances, r.Str())
			}
			if hr := r.Bytes(1); r.Err() == nil {
				z.hasRequests = hr[0] == 1
			}
			for _, f := range z.floats() {
				*f = r.Float64()
			}
			nb := r.Uvarint()
			if nb > maxBuckets {
				return errGroupState
			}
			for range nb {
				z.buckets = append(z.buckets, bucket{le: r.Float64(), count: r.Float64()})
			}
			if r.Err() != nil {
				return r.Err()
			}
			w.zones = append(w.zones, z)
		}
		wins = append(wins, w)
	}
	if r.Err() != nil || len(r.Rest()) != 0 {
		return errGroupState
	}
	if err := g.det.UnmarshalBinary(det); err != nil {
		return err
	}
	// A state of another window length (the rule's window changed): the
	// last window judged ends on this window's grid, and open windows off
	// it are dropped (Close would never judge them).
	g.det.lastEnd = detectors.WindowCeil(g.det.lastEnd, g.step)
	wins = slices.DeleteFunc(wins, func(w grayWindow) bool { return w.start%g.step != 0 })
	g.wins = wins
	g.reindex()
	return nil
}
