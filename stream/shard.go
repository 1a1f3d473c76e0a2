package stream

import (
	"math"
	"strings"
	"time"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/detectors/anomaly"
	"github.com/augur-ops/augur/detectors/gpu"
	"github.com/augur-ops/augur/detectors/grayfailure"
	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/models/bank"
	"github.com/augur-ops/augur/proto"
)

// StaleNaN is the bit pattern of Prometheus' stale marker: a sample with this
// value ends its series.
const StaleNaN uint64 = 0x7ff0000000000002

// Series flags, one byte per series.
const (
	fHasPrev uint8 = 1 << iota // lastV is a real previous sample (rates can be computed)
	fCounter                   // the series is a counter: watched and aggregated as a rate
	fEnded                     // a stale marker ended the series; evicted at the next sweep
	fAlarmed                   // the anomaly score detected or the band is in alarm (decisions fire on the rising edge)
	fDirty                     // changed since the last checkpoint
	fGPU                       // selected by a gpu rule: DCGM blank values are dropped
)

// shard is the state of one partition of augur.samples: a series table in
// struct-of-arrays layout, the workload groups and the partition watermark.
// It is owned by one goroutine at a time and needs no locks.
type shard struct {
	part int32
	env  *env

	// index maps a series key (tenant 0xff name 0xfe value ...) to its row.
	// The key string is the series' label set, stored once and shared with
	// keys.
	index map[string]int32

	// Series table, one entry per row.
	keys   []string
	lastTs []int64
	lastV  []float64
	flags  []uint8
	group  []int32           // index into groups, -1 when no workload rule selects the series
	watch  []int32           // anomaly rule index, -1 when not watched
	det    []*anomaly.Series // nil when not watched

	groups     []*group
	groupIndex map[string]int32

	// refTables are the receivers' series dictionaries this partition's
	// blocks number series in, by dictionary id (refs.go).
	refTables map[uint64]*refTable

	lblBytes int // bytes of all keys (the label sets)

	restoredEnd int64 // end offset of augur.state the shard was restored from
	// wholeAt is when the shard last checkpointed its whole durable state
	// (Config.StateTrimInterval); zero: never.
	wholeAt time.Time

	hasMax    bool
	maxTs     int64 // max event time seen, ms
	nextSweep int64 // watermark at which idle series are swept next

	// Pending output of the current transaction.
	tombs  []string
	gtombs []string // keys of groups evicted
	out    []*proto.Decision
	// points are the forecast points of the windows closed since the last
	// job, for augur.forecasts.
	points []*proto.ForecastPoint
	stats  shardStats

	// Scratch buffers reused across blocks.
	lbls  []proto.Label
	klbls []proto.Label // labels of row klRow parsed from its key (keyLabels)
	klRow int32
	kbuf  []byte
	pt    Point
}

// shardStats counts what a shard did since the counters were last read.
type shardStats struct {
	records, samples, duplicates, late, stale, notFinite, negative, badRecords, created, evicted, unresolved uint64
}

// group is the state of one workload group: a scaling, gray-failure or GPU
// rule, a tenant and the rule's group_by values.
type group struct {
	key       string
	rule      int
	tenant    string
	windows   []window        // scaling: open aggregation windows, by start
	fc        *bank.Bank      // scaling: forecaster bank of the summed rate
	sc        *scaling.Scaler // scaling: replicas from the forecast
	last      int32           // scaling: replicas of the last decision, 0 when none
	lastID    string          // scaling: id of the last decision ("" none)
	lastExp   int64           // scaling: its expiry, unix ms
	opened    bool            // scaling: a window was closed (the first is dropped, see closeWindow)
	closed    int64           // scaling: end of the last window closed, 0 none (the dropped first one included)
	refits    uint64          // scaling: bank refits already counted in the metrics
	repairs   uint64          // scaling: bank member repairs already counted in the metrics
	det       GroupDetector   // gray-failure and GPU groups
	nextClose int64           // end of the detector's current window, 0 before the first sample
	dirty     bool
}

type window struct {
	start int64
	sum   float64 // sum of counter increases in the window
}

func newShard(part int32, e *env) *shard {
	return &shard{part: part, env: e, index: map[string]int32{}, groupIndex: map[string]int32{}, refTables: map[uint64]*refTable{}}
}

// watermark returns the partition watermark: max event time minus the
// allowed lateness. Windows ending at or before it are closed.
func (sh *shard) watermark() int64 {
	if !sh.hasMax {
		return math.MinInt64
	}
	return sh.maxTs - sh.env.lateness
}

// processBlock applies one decoded samples block. It allocates only for new
// series, new groups and decisions.
func (sh *shard) processBlock(r *proto.BlockReader) {
	tenant := r.Tenant()
	wm := sh.watermark()
	refs := sh.refs(r.Dict())
	for i := range r.Len() {
		ts, vs := r.Samples(i)
		if r.IsReference(i) {
			row, ok := sh.resolve(refs, r.Ref(i))
			if !ok {
				sh.stats.unresolved += uint64(len(ts))
				continue
			}
			sh.samples(row, wm, ts, vs)
			continue
		}
		// The block's series column is the series key without its
		// tenant: labels are parsed only for a series not seen before.
		sh.kbuf = r.AppendSeries(append(sh.kbuf[:0], tenant...), i)
		row, ok := sh.index[string(sh.kbuf)]
		if !ok {
			sh.lbls = r.AppendLabels(sh.lbls[:0], i)
			row = sh.create(string(sh.kbuf), tenant, sh.lbls, r.Metadata(i).Type)
		}
		if ref := r.Ref(i); ref != 0 {
			refs.define(ref, sh.keys[row], row, r.Metadata(i).Type)
		}
		sh.samples(row, wm, ts, vs)
	}
	if refs != nil {
		refs.used = max(refs.used, sh.maxTs)
	}
	sh.stats.records++
	sh.advance()
}

// series applies the samples of one series (labels sorted by name) under the
// watermark wm.
func (sh *shard) series(tenant string, lbls []proto.Label, metricType string, wm int64, ts []int64, vs []float64) {
	sh.kbuf = proto.AppendSeriesKey(sh.kbuf[:0], tenant, lbls)
	row, ok := sh.index[string(sh.kbuf)]
	if !ok {
		row = sh.create(string(sh.kbuf), tenant, lbls, metricType)
	}
	sh.samples(row, wm, ts, vs)
}

// create adds a series row and returns it.
func (sh *shard) create(key, tenant string, lbls []proto.Label, metricType string) int32 {
	row := int32(len(sh.keys))
	sh.index[key] = row
	sh.keys = append(sh.keys, key)
	sh.lblBytes += len(key)
	sh.lastTs = append(sh.lastTs, math.MinInt64)
	sh.lastV = append(sh.lastV, 0)
	g, w, counter, gpuRule := sh.bind(tenant, lbls, metricType)
	var f uint8
	if counter {
		f |= fCounter
	}
	if gpuRule {
		f |= fGPU
	}
	sh.flags = append(sh.flags, f|fDirty)
	sh.group = append(sh.group, g)
	sh.watch = append(sh.watch, w)
	var d *anomaly.Series
	if w >= 0 {
		d = sh.env.newDetector(w)
	}
	sh.det = append(sh.det, d)
	sh.stats.created++
	return row
}

// bind matches a series against the rules: its workload group, its anomaly
// watch and whether it is a counter.
func (sh *shard) bind(tenant string, lbls []proto.Label, metricType string) (g, w int32, counter, gpuRule bool) {
	set := sh.env.rules
	g, w = -1, -1
	name := ""
	for i := range lbls {
		if lbls[i].Name == "__name__" {
			name = lbls[i].Value
			break
		}
	}
	switch metricType {
	case "counter":
		counter = true
	case "histogram", "summary":
		// Prometheus gives a classic histogram's (or summary's) _bucket,
		// _sum and _count series the family's type in remote-write 2.0
		// metadata: they are counters all the same (read as gauges, a
		// gray-failure rule had no p99 or mean latency). A summary's
		// quantile series are gauges.
		counter = strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_bucket")
	case "":
		counter = strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_count") ||
			strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_bucket")
	}
	ri := set.Match(tenant, lbls)
	if ri >= 0 {
		switch set.Kind(ri) {
		case rules.KindScaling:
			counter = true // scaling aggregates sum of rates
		case rules.KindGPU:
			gpuRule = true
			counter = counter || gpu.Counter(name)
		case rules.KindGrayFailure:
			counter = counter || grayfailure.Counter(name)
		}
		gk := string(set.GroupKey(nil, ri, tenant, lbls))
		gi, ok := sh.groupIndex[gk]
		if !ok {
			gi = sh.newGroup(gk, ri, tenant)
		}
		g = gi
	}
	if wi := set.MatchWatch(tenant, lbls); wi >= 0 {
		w = int32(wi)
	}
	return g, w, counter, gpuRule
}

func (sh *shard) newGroup(key string, rule int, tenant string) int32 {
	gi := int32(len(sh.groups))
	g := &group{key: key, rule: rule, tenant: tenant, dirty: true}
	if sh.env.rules.Kind(rule) == rules.KindScaling {
		g.fc, g.sc = sh.env.newScaling(rule, tenant)
	} else {
		_, _, vals, _ := rules.ParseGroupKey([]byte(key), nil)
		g.det = sh.env.newGroup(sh.env.rules.Rule(rule), tenant, vals)
	}
	sh.groups = append(sh.groups, g)
	sh.groupIndex[key] = gi
	return gi
}

// samples applies the samples of one series, in time order; wm is the
// watermark at the start of the record (samples before it are late). Each
// sample takes the same three steps, in this order:
//
//  1. accept: a sample not newer than the series' last (a retried request's
//     duplicate, or late) or older than the watermark is dropped; a stale
//     marker ends the series; a NaN or infinite value, and a counter's
//     negative one, is dropped; a DCGM blank is skipped (accept);
//  2. delta: a counter's increase since its previous sample, reset-corrected,
//     becomes its rate and goes into its scaling window (delta);
//  3. feed: the group detector gets the point, the anomaly watch the value
//     (a counter's rate), and the sample becomes the series' previous one
//     (feed).
func (sh *shard) samples(row int32, wm int64, ts []int64, vs []float64) {
	sh.klRow = -1 // rows are reused after a sweep: parse the key again
	retry := sh.retried(row, ts)
	for j := range ts {
		t, v := ts[j], vs[j]
		if !sh.accept(row, t, v, wm, retry) {
			continue
		}
		rate, inc := sh.delta(row, t, v)
		sh.feed(row, t, v, rate, inc)
	}
}

// retried reports whether ts resend the series' last applied sample: a
// retried remote-write request resends every sample of the series, so the
// older ones in front of it are duplicates too, not late.
func (sh *shard) retried(row int32, ts []int64) bool {
	last := sh.lastTs[row]
	if len(ts) == 0 || ts[0] > last {
		return false
	}
	for _, t := range ts {
		if t == last {
			return true
		}
	}
	return false
}

// accept counts a sample and reports whether it goes on to delta and feed.
// It moves the partition's newest time, and applies a stale marker (the
// series ends; its next sample starts a new rate).
func (sh *shard) accept(row int32, t int64, v float64, wm int64, retry bool) bool {
	if last := sh.lastTs[row]; t <= last {
		if t == last || retry {
			sh.stats.duplicates++
		} else {
			sh.stats.late++
		}
		return false
	}
	if t < wm {
		sh.stats.late++
		return false
	}
	if (math.IsNaN(v) && math.Float64bits(v) != StaleNaN) || math.IsInf(v, 0) {
		// Not a value any consumer can use (a gauge's NaN, an overflowed
		// counter): dropped, and the series' previous sample stays the
		// last finite one, so a counter's next rate spans from it. Fed on,
		// +Inf sized a workload at max_replicas and the next sample read
		// as a reset; NaN made every later rate NaN.
		sh.stats.notFinite++
		return false
	}
	if v < 0 && sh.flags[row]&fCounter != 0 {
		// A counter is never negative (an exporter's -1 for "unknown", a
		// gauge read as a counter): dropped like a value that is not
		// finite. Read as a reset, its next sample's increase was the
		// whole counter, and one -1 sized a workload at max_replicas.
		sh.stats.negative++
		return false
	}
	if !sh.hasMax || t > sh.maxTs {
		sh.maxTs, sh.hasMax = t, true
	}
	sh.stats.samples++
	f := sh.flags[row] | fDirty
	if math.Float64bits(v) == StaleNaN {
		sh.stats.stale++
		sh.lastTs[row] = t
		sh.flags[row] = (f | fEnded) &^ fHasPrev
		return false
	}
	if f&fGPU != 0 && v >= gpu.BlankFloat64 && sh.gpuBlank(row, v) {
		// DCGM's "no value": neither a sample nor a counter value (the
		// next rate spans from the last real value).
		return false
	}
	sh.flags[row] = f &^ fEnded
	return true
}

// delta returns a counter's per-second rate and increase since its
// previous sample (reset-corrected: a counter that fell restarted from 0);
// NaN for a gauge and for a counter's first sample.
func (sh *shard) delta(row int32, t int64, v float64) (rate, inc float64) {
	if f := sh.flags[row]; f&fCounter == 0 || f&fHasPrev == 0 {
		return math.NaN(), math.NaN()
	}
	d := v - sh.lastV[row]
	if d < 0 {
		d = v
	}
	return d * 1000 / float64(t-sh.lastTs[row]), d
}

// feed hands an accepted sample to the series' consumers: its group (a
// scaling group's window sums the increase; a detector gets the point),
// then its anomaly watch (a counter is watched as its rate, from its second
// sample), and keeps it as the series' previous sample.
func (sh *shard) feed(row int32, t int64, v, rate, inc float64) {
	if gi := sh.group[row]; gi >= 0 {
		switch g := sh.groups[gi]; {
		case g.fc != nil && !math.IsNaN(inc):
			g.add(t, g.share(sh.lastTs[row], t, inc), sh.env.windowMs(g.rule))
		case g.det != nil:
			sh.observe(g, row, t, v, rate, inc)
		}
	}
	sh.lastTs[row], sh.lastV[row] = t, v
	f := sh.flags[row] | fHasPrev
	sig, ok := v, true
	if f&fCounter != 0 {
		sig, ok = rate, !math.IsNaN(rate)
	}
	if d := sh.det[row]; d != nil && ok {
		res := d.Update(t, sig)
		w := int(sh.watch[row])
		alarm := res.Detected
		if sh.env.onBand[w] {
			alarm = res.Alarm
		}
		switch {
		case alarm && f&fAlarmed == 0:
			f |= fAlarmed
			sh.out = append(sh.out, sh.env.alertDecision(sh.keys[row], w, t, sig, res))
		case !alarm:
			f &^= fAlarmed
		}
	}
	sh.flags[row] = f
}

// staleAfter is how long a series may go without a sample before its next
// increase is spread over the gap: Prometheus' lookback delta, after which
// PromQL takes a series without samples as gone.
const staleAfter = 5 * 60_000

// share returns the part of a counter's increase inc over (prev, t] that
// goes into the window of t. A series silent for more than staleAfter while
// the group closed windows without it gives only the part since the last
// window closed, at its mean rate over the gap: all of it put minutes of a
// pod's requests in one window (a pod back after 10 minutes sized the
// workload at max_replicas). When the whole group was silent no window
// closed in the gap, and the window's rate is taken over the gap (advance).
func (g *group) share(prev, t int64, inc float64) float64 {
	if t-prev <= staleAfter || g.closed <= prev {
		return inc
	}
	return inc * float64(t-g.closed) / float64(t-prev)
}

// add counts an increase d at time t into its window.
func (g *group) add(t int64, d float64, w int64) {
	start := detectors.WindowStart(t, w)
	n := len(g.windows)
	if n > 0 && g.windows[n-1].start == start {
		g.windows[n-1].sum += d
		g.dirty = true
		return
	}
	i := n
	for i > 0 && g.windows[i-1].start > start {
		i--
	}
	if i > 0 && g.windows[i-1].start == start {
		g.windows[i-1].sum += d
	} else {
		g.windows = append(g.windows, window{})
		copy(g.windows[i+1:], g.windows[i:])
		g.windows[i] = window{start: start, sum: d}
	}
	g.dirty = true
}

// advance closes the windows the watermark has passed and sweeps idle
// series. It depends only on the partition's records, so a replay after a
// crash makes the same decisions as the run it replaces.
func (sh *shard) advance() {
	wm := sh.watermark()
	if wm == math.MinInt64 {
		return
	}
	for _, g := range sh.groups {
		w := sh.env.windowMs(g.rule)
		if g.det != nil {
			sh.closeDetector(g, w, wm)
			continue
		}
		for len(g.windows) > 0 && g.windows[0].start+w <= wm {
			win := g.windows[0]
			g.windows = append(g.windows[:0], g.windows[1:]...)
			// The increases in a window cover the time since each
			// series' previous sample. When no sample at all came in the
			// windows before it (samples further apart than the window,
			// or an outage), they cover those windows too: the rate is
			// over the time since the last window the bank took, not
			// the window alone, which would multiply it (a 60-s scrape
			// interval under a 30-s window doubled the load).
			// Before the bank's first step that is the end of the
			// window dropped as the group's first (closeWindow): a
			// 60-s scrape under a 30-s window otherwise sized the first
			// decision on twice the load.
			span := w
			last, ok := g.fc.Last()
			if !ok && g.closed != 0 {
				last, ok = g.closed, true
			}
			if ok && win.start+w-last > w {
				span = win.start + w - last
			}
			g.closed = win.start + w
			ds, pt := sh.env.closeWindow(g, win.start+w, win.sum*1000/float64(span))
			sh.out = append(sh.out, ds...)
			if pt != nil {
				sh.points = append(sh.points, pt)
			}
			g.dirty = true
		}
	}
	if wm >= sh.nextSweep {
		sh.sweep(wm)
		sh.sweepRefs()
		sh.nextSweep = wm + sh.env.sweepEvery
	}
}

// observe feeds a sample to a group detector.
func (sh *shard) observe(g *group, row int32, t int64, v, rate, inc float64) {
	if g.nextClose == 0 {
		w := sh.env.windowMs(g.rule)
		g.nextClose = detectors.WindowStart(t, w) + w
	}
	if lbls := sh.keyLabels(row); lbls != nil {
		sh.pt = Point{Labels: lbls, Ts: t, Value: v, Rate: rate, Increase: inc}
		sh.out = append(sh.out, sh.env.groupDecisions(g, g.det.Observe(&sh.pt))...)
		sh.pt.Labels = nil
	}
	g.dirty = true
}

// keyLabels returns the labels of row parsed from its series key, once per
// samples call (nil for a key that does not parse). The strings alias the
// key, which the shard keeps, so a detector may keep them; the block's
// labels are only valid until the next block.
func (sh *shard) keyLabels(row int32) []proto.Label {
	if sh.klRow != row {
		var ok bool
		_, sh.klbls, ok = proto.ParseSeriesKey(sh.keys[row], sh.klbls[:0])
		if !ok {
			sh.klbls = sh.klbls[:0]
		}
		sh.klRow = row
	}
	if len(sh.klbls) == 0 {
		return nil
	}
	return sh.klbls
}

// gpuBlank reports whether v is a DCGM blank value for the series' metric
// (only called for values at or above the smaller sentinel).
func (sh *shard) gpuBlank(row int32, v float64) bool {
	name, _ := proto.LabelValue(sh.keyLabels(row), "__name__")
	return gpu.Blank(name, v)
}

// maxEmptyWindows bounds the windows closed at once after a jump in event
// time; the ones in between had no samples.
const maxEmptyWindows = 16

// closeDetector closes the detector windows the watermark has passed.
func (sh *shard) closeDetector(g *group, w, wm int64) {
	if g.nextClose == 0 || wm < g.nextClose {
		return
	}
	if gap := (wm - g.nextClose) / w; gap > maxEmptyWindows {
		g.nextClose += (gap - maxEmptyWindows) * w
	}
	for g.nextClose <= wm {
		sh.out = append(sh.out, sh.env.groupDecisions(g, sh.env.madeAtClose(g.det.Close(g.nextClose)))...)
		g.nextClose += w
	}
	g.dirty = true
}

// sweep evicts series idle for longer than the idle timeout (event time) and
// series a stale marker ended, recording a tombstone for the checkpoint.
func (sh *shard) sweep(wm int64) {
	limit := wm - sh.env.idle
	for row := int32(0); row < int32(len(sh.keys)); {
		if sh.flags[row]&fEnded == 0 && sh.lastTs[row] >= limit {
			row++
			continue
		}
		sh.tombs = append(sh.tombs, sh.keys[row])
		sh.remove(row)
		sh.stats.evicted++
		// row now holds what was the last row: look at it again.
	}
	sh.sweepGroups()
}

// sweepGroups evicts the gray-failure and GPU groups no series belongs to
// any more (each of them was idle or ended), recording a tombstone: a gpu
// rule's groups are split by job, and those of finished jobs would pile
// up, each closed every window and checkpointed whole. A scaling group is
// kept: its forecaster's history outlives a gap in the data, and scaling
// groups are bounded by the rules and tenants.
func (sh *shard) sweepGroups() {
	used := make([]bool, len(sh.groups))
	for _, gi := range sh.group {
		if gi >= 0 {
			used[gi] = true
		}
	}
	for gi := int32(0); gi < int32(len(sh.groups)); {
		if g := sh.groups[gi]; used[gi] || g.det == nil {
			gi++
			continue
		}
		sh.gtombs = append(sh.gtombs, sh.groups[gi].key)
		last := int32(len(sh.groups) - 1)
		used[gi] = used[last]
		sh.removeGroup(gi)
		// gi now holds what was the last group: look at it again.
	}
}

// removeGroup deletes a group no series belongs to by moving the last
// group into its place.
func (sh *shard) removeGroup(gi int32) {
	last := int32(len(sh.groups) - 1)
	delete(sh.groupIndex, sh.groups[gi].key)
	if gi != last {
		sh.groups[gi] = sh.groups[last]
		sh.groupIndex[sh.groups[gi].key] = gi
		for row, g := range sh.group {
			if g == last {
				sh.group[row] = gi
			}
		}
	}
	sh.groups[last] = nil
	sh.groups = sh.groups[:last]
}

// remove deletes a row by moving the last row into its place.
func (sh *shard) remove(row int32) {
	last := int32(len(sh.keys) - 1)
	delete(sh.index, sh.keys[row])
	sh.lblBytes -= len(sh.keys[row])
	if row != last {
		sh.keys[row] = sh.keys[last]
		sh.lastTs[row] = sh.lastTs[last]
		sh.lastV[row] = sh.lastV[last]
		sh.flags[row] = sh.flags[last]
		sh.group[row] = sh.group[last]
		sh.watch[row] = sh.watch[last]
		sh.det[row] = sh.det[last]
		sh.index[sh.keys[row]] = row
	}
	sh.keys[last] = ""
	sh.det[last] = nil
	sh.keys = sh.keys[:last]
	sh.lastTs = sh.lastTs[:last]
	sh.lastV = sh.lastV[:last]
	sh.flags = sh.flags[:last]
	sh.group = sh.group[:last]
	sh.watch = sh.watch[:last]
	sh.det = sh.det[:last]
}

// stateBytes estimates the memory of the shard's series table: the base
// per-series columns, the index and the label sets.
func (sh *shard) stateBytes() int {
	return len(sh.keys)*baseSeriesBytes + sh.lblBytes
}

// baseSeriesBytes is the per-series cost of the columns and the index
// entry, measured by TestMemoryPerSeries (including map overhead and the
// EWMABand of a watched series).
const baseSeriesBytes = 160
