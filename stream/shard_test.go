package stream

import (
	"flag"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func block(t testing.TB, tenant string, series ...func(*proto.BlockBuilder)) *proto.BlockReader {
	t.Helper()
	var b proto.BlockBuilder
	b.Reset(tenant)
	for _, s := range series {
		s(&b)
	}
	v, err := b.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	var r proto.BlockReader
	if err := r.Reset(v); err != nil {
		t.Fatal(err)
	}
	return &r
}

func add(lbls []proto.Label, ts []int64, vs []float64) func(*proto.BlockBuilder) {
	return func(b *proto.BlockBuilder) { b.AddSeries(lbls, ts, vs) }
}

func TestSeriesSemantics(t *testing.T) {
	cfg := testConfig(t)
	stale := math.Float64frombits(StaleNaN)
	cnt := lbl("__name__", "x_total", "a", "1")
	gauge := lbl("__name__", "temp", "a", "1")
	tests := []struct {
		name      string
		blocks    [][]func(*proto.BlockBuilder)
		samples   uint64
		dups      uint64
		late      uint64
		series    int
		wantLastV float64
		notFinite uint64
	}{
		{"duplicates of a retried request", [][]func(*proto.BlockBuilder){
			{add(cnt, []int64{1000, 2000}, []float64{1, 2})},
			{add(cnt, []int64{1000, 2000}, []float64{1, 2})},
		}, 2, 2, 0, 1, 2, 0},
		{"late within the series", [][]func(*proto.BlockBuilder){
			{add(gauge, []int64{1000, 3000, 2000}, []float64{1, 3, 2})},
		}, 2, 0, 1, 1, 3, 0},
		{"late behind the watermark", [][]func(*proto.BlockBuilder){
			{add(gauge, []int64{100_000}, []float64{1})},
			{add(lbl("__name__", "temp", "a", "2"), []int64{90_000, 100_000}, []float64{5, 6})},
		}, 2, 0, 1, 2, 1, 0},
		{"NaN and Inf are dropped, the rate spans from the last finite value", [][]func(*proto.BlockBuilder){
			{add(cnt, []int64{1000, 2000, 3000, 4000, 5000}, []float64{1, math.Inf(1), math.NaN(), math.Inf(-1), 5})},
		}, 2, 0, 0, 1, 5, 3},
		{"stale marker ends the series", [][]func(*proto.BlockBuilder){
			{add(gauge, []int64{1000, 2000}, []float64{1, stale})},
			{add(gauge, []int64{1_000_000}, []float64{1})}, // watermark moves on: sweep
		}, 3, 0, 0, 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := newShard(0, mustEnv(t, &cfg))
			for _, b := range tt.blocks {
				sh.processBlock(block(t, "", b...))
			}
			if sh.stats.samples != tt.samples || sh.stats.duplicates != tt.dups || sh.stats.late != tt.late {
				t.Errorf("samples/dups/late = %d/%d/%d, want %d/%d/%d", sh.stats.samples, sh.stats.duplicates,
					sh.stats.late, tt.samples, tt.dups, tt.late)
			}
			if len(sh.keys) != tt.series {
				t.Errorf("%d series, want %d", len(sh.keys), tt.series)
			}
			if sh.lastV[0] != tt.wantLastV {
				t.Errorf("last value %v, want %v", sh.lastV[0], tt.wantLastV)
			}
			if sh.stats.notFinite != tt.notFinite {
				t.Errorf("%d samples dropped as not finite, want %d", sh.stats.notFinite, tt.notFinite)
			}
		})
	}
}

func TestCounterRateAndReset(t *testing.T) {
	cfg := testConfig(t)
	sh := newShard(0, mustEnv(t, &cfg))
	// Two payment pods; pod b's counter resets between 2s and 3s.
	a := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "a")
	b := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "b")
	sh.processBlock(block(t, "", add(a, []int64{0, 1000, 2000, 3000}, []float64{0, 10, 20, 30}),
		add(b, []int64{0, 1000, 2000, 3000}, []float64{100, 105, 110, 4})))
	if len(sh.groups) != 1 {
		t.Fatalf("%d groups, want 1", len(sh.groups))
	}
	w := sh.groups[0].windows
	// Increases: a 10+10+10, b 5+5+4 (reset counts the new value).
	if len(w) != 1 || w[0].start != 0 || w[0].sum != 44 {
		t.Fatalf("windows %+v, want one window at 0 with sum 44", w)
	}
	// The watermark passes the window: a group's first window lacks the
	// increase up to each series' first sample, so it closes without
	// reaching the forecaster bank; the next one reaches it.
	sh.env.fm = newForecastMetrics()
	sh.processBlock(block(t, "", add(a, []int64{16_000}, []float64{40})))
	g := sh.groups[0]
	if len(g.windows) != 1 || g.fc.Steps() != 0 {
		t.Fatalf("windows %+v, bank steps %d; want the first window closed and dropped", g.windows, g.fc.Steps())
	}
	sh.processBlock(block(t, "", add(a, []int64{26_000}, []float64{50})))
	if len(g.windows) != 1 || g.fc.Steps() != 1 {
		t.Fatalf("windows %+v, bank steps %d; want the second window closed into the bank", g.windows, g.fc.Steps())
	}
	if v := testutil.ToFloat64(sh.env.fm.value.WithLabelValues("payment-rps", "observed")); v != 1 {
		t.Fatalf("observed signal %v, want 1/s (a's increase of 10 in the window at 10s)", v)
	}
}

// TestScrapeSlowerThanTheWindow: a counter scraped every 20 s under a 10-s
// window reports each increase in every other window; the rate the bank
// takes is over the time since the last window it took, not the window
// alone (which doubled it), and the decision sizes for the real load.
func TestScrapeSlowerThanTheWindow(t *testing.T) {
	cfg := testConfig(t)
	sh := newShard(0, mustEnv(t, &cfg))
	sh.env.fm = newForecastMetrics()
	pod := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "a")
	// 25 requests a second, 10 per pod: 3 pods.
	for i := range 60 {
		ts := int64(i) * 20_000
		sh.processBlock(block(t, "", add(pod, []int64{ts}, []float64{25 * float64(ts) / 1000})))
		sh.advance()
	}
	if v := testutil.ToFloat64(sh.env.fm.value.WithLabelValues("payment-rps", "observed")); v != 25 {
		t.Errorf("observed signal %v/s, want 25/s", v)
	}
	if g := sh.groups[0]; g.last != 3 {
		t.Errorf("last decision %d replicas, want 3 (25/s at 10 per pod)", g.last)
	}
}

// TestFirstWindowAfterASlowScrape: the window after the dropped first one
// spans from that one's end, not one window. With a 20-s scrape under a
// 10-s window its increase covers 20 s: divided by 10 s, the bank's first
// value was 50/s for a 25/s load, and the first decisions asked for 5, then
// 6 replicas instead of 3.
func TestFirstWindowAfterASlowScrape(t *testing.T) {
	cfg := testConfig(t)
	sh := newShard(0, mustEnv(t, &cfg))
	pod := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "a")
	points := 0
	for i := range 8 {
		ts := int64(i) * 20_000
		sh.processBlock(block(t, "", add(pod, []int64{ts}, []float64{25 * float64(ts) / 1000})))
		for _, p := range sh.points {
			points++
			if p.Observed != 25 {
				t.Errorf("window ending %d: observed %v/s, want 25/s", p.WindowEnd, p.Observed)
			}
		}
		sh.points = nil
		for _, d := range sh.out {
			if d.Desired.Replicas != 3 {
				t.Errorf("decision at %d: %d replicas, want 3 (25/s at 10 per pod)", ts, d.Desired.Replicas)
			}
		}
		sh.out = nil
		if i == 2 {
			// Restored between the dropped window and the next: the
			// checkpoint keeps where the dropped one ended.
			snap, err := sh.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			sh = newShard(0, sh.env)
			for _, r := range snap {
				if err := sh.apply(r.key, r.value); err != nil {
					t.Fatal(err)
				}
			}
			sh.finishRestore()
		}
	}
	if points == 0 {
		t.Fatal("no window closed")
	}
}

func TestIdleEviction(t *testing.T) {
	cfg := testConfig(t) // idle timeout 1m
	sh := newShard(0, mustEnv(t, &cfg))
	old := lbl("__name__", "temp", "a", "old")
	live := lbl("__name__", "temp", "a", "live")
	sh.processBlock(block(t, "", add(old, []int64{1000}, []float64{1}), add(live, []int64{1000}, []float64{1})))
	for ts := int64(10_000); ts <= 200_000; ts += 10_000 {
		sh.processBlock(block(t, "", add(live, []int64{ts}, []float64{1})))
	}
	if len(sh.keys) != 1 || sh.keys[0] != string(proto.AppendSeriesKey(nil, "", live)) {
		t.Fatalf("series %q, want only the live one", sh.keys)
	}
	ck, err := sh.appendCheckpoint(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ck) == 0 || ck[0].value != nil || string(ck[0].key[1:]) != string(proto.AppendSeriesKey(nil, "", old)) {
		t.Fatalf("first checkpoint record %q=%x, want the tombstone of the evicted series", ck[0].key, ck[0].value)
	}
}

// TestOnlyWhatRulesReadIsCheckpointed: a series in a scaling group gets a
// state record; a series no rule reads is tracked (late and duplicate
// samples are counted) but writes none, checkpoint after checkpoint.
func TestOnlyWhatRulesReadIsCheckpointed(t *testing.T) {
	cfg := testConfig(t)
	sh := newShard(0, mustEnv(t, &cfg))
	pod := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "a")
	node := lbl("__name__", "node_cpu_seconds_total", "instance", "n1", "cpu", "0")
	for ts := int64(1000); ts <= 3000; ts += 1000 {
		sh.processBlock(block(t, "", add(pod, []int64{ts}, []float64{float64(ts)}), add(node, []int64{ts}, []float64{float64(ts)})))
		ck, err := sh.appendCheckpoint(nil)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range ck {
			if r.key[0] == keySeries {
				keys = append(keys, string(r.key[1:]))
			}
		}
		if want := string(proto.AppendSeriesKey(nil, "", pod)); len(keys) != 1 || keys[0] != want {
			t.Fatalf("checkpoint at %d: series records %q, want only %q", ts, keys, want)
		}
	}
	sh.processBlock(block(t, "", add(node, []int64{3000}, []float64{3000})))
	if len(sh.keys) != 2 || sh.stats.duplicates != 1 {
		t.Fatalf("%d series, %d duplicates; want both series tracked and the node's repeat counted", len(sh.keys), sh.stats.duplicates)
	}
}

// TestCheckpointRestore replays the input with a checkpoint every few
// records and a restore from the accumulated state log at irregular points:
// the result must equal one uninterrupted run.
func TestCheckpointRestore(t *testing.T) {
	cfg := testConfig(t)
	set := cfg.Rules
	in := genInput(t, set, 3, 300)
	want := runGolden(t, &cfg, in)
	e := mustEnv(t, &cfg)
	var got []string
	var rd proto.BlockReader
	for p, recs := range in {
		sh := newShard(p, e)
		var log []stateRecord
		for i, v := range recs {
			if err := rd.Reset(v); err != nil {
				t.Fatal(err)
			}
			sh.processBlock(&rd)
			if i%7 == 3 || i == len(recs)-1 {
				var err error
				if log, err = sh.appendCheckpoint(log); err != nil {
					t.Fatal(err)
				}
				got = append(got, decisionsJSON(t, sh.out)...)
				sh.out = nil
				if i%3 == 0 {
					sh = newShard(p, e)
					for _, r := range log {
						if err := sh.apply(r.key, r.value); err != nil {
							t.Fatal(err)
						}
					}
					sh.finishRestore()
					// As the stream does: the series numbers defined
					// before the restored offset (learnRefsBefore).
					for _, v := range recs[:i+1] {
						if err := rd.Reset(v); err != nil {
							t.Fatal(err)
						}
						sh.learnRefs(&rd)
					}
				}
			}
		}
		snap, err := sh.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		equalSnapshots(t, p, snap, want.snapshots[p])
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want.decisions, "\n") {
		t.Fatalf("decisions after restores differ from the uninterrupted run:\n%d got, %d want", len(got), len(want.decisions))
	}
}

// TestGoldenDecisions pins the decisions of the synthetic workload
// (testdata/decisions.golden, regenerate with -update).
func TestGoldenDecisions(t *testing.T) {
	cfg := testConfig(t)
	in := genInput(t, cfg.Rules, 3, 300)
	g := runGolden(t, &cfg, in)
	kinds := map[string]int{}
	var lines []string
	for _, s := range g.decisions {
		d, err := proto.UnmarshalDecision([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Verify(d, testKey); err != nil {
			t.Fatalf("decision %s: %v", d.Id, err)
		}
		kinds[d.Kind]++
		lines = append(lines, d.CreatedAt.AsTime().UTC().Format("15:04:05")+" "+d.Kind+" "+d.Target+" "+d.Summary)
	}
	sort.Strings(lines)
	for _, k := range []string{proto.KindScale, proto.KindSetHPAMin, proto.KindAlert} {
		if kinds[k] == 0 {
			t.Errorf("no %s decision", k)
		}
	}
	if g.stats.duplicates == 0 || g.stats.late == 0 {
		t.Errorf("input has %d duplicates and %d late samples, want some of each", g.stats.duplicates, g.stats.late)
	}
	got := strings.Join(lines, "\n") + "\n"
	const path = "testdata/decisions.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("decisions differ from %s (run with -update if intended):\n%s", path, got)
	}
}

// TestMemoryPerSeries measures the heap held per active series, without
// the label set (measured separately): the budget is 256 bytes.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a large table")
	}
	const n = 100_000
	for _, tc := range []struct {
		name    string
		metric  string
		watched bool
	}{{"plain", "node_memory_bytes", false}, {"watched", "queue_depth", true}} {
		t.Run(tc.name, func(t *testing.T) {
			base, labels := measureSeries(t, n, tc.metric)
			perSeries := float64(base) / n
			budget := 256.0
			if tc.watched {
				// The anomaly detector's state has its own budget (2 KiB,
				// detectors/anomaly) on top of the base state.
				budget += 2048
			}
			t.Logf("%s: %.0f bytes per series of state, %.0f bytes of labels per series", tc.name, perSeries, float64(labels)/n)
			if perSeries > budget {
				t.Errorf("%.0f bytes per series, budget %.0f", perSeries, budget)
			}
		})
	}
}

// measureSeries returns the heap bytes held by a shard of n series, minus
// the bytes of their label sets, and the label bytes.
func measureSeries(t testing.TB, n int, metric string) (base, labels int64) {
	cfg := testConfig(t)
	e := mustEnv(t, &cfg)
	var bs []*proto.BlockReader
	for i := 0; i < n; i += 1000 {
		var fs []func(*proto.BlockBuilder)
		for j := i; j < i+1000 && j < n; j++ {
			fs = append(fs, add(lbl("__name__", metric, "instance", "host-"+strconv.Itoa(j), "job", "node"), []int64{1000}, []float64{1}))
		}
		bs = append(bs, block(t, "", fs...))
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	sh := newShard(0, e)
	for _, b := range bs {
		sh.processBlock(b)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	held := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	labels = int64(sh.lblBytes)
	runtime.KeepAlive(sh)
	runtime.KeepAlive(bs)
	return held - labels, labels
}

func decisionsJSON(t testing.TB, ds []*proto.Decision) []string {
	t.Helper()
	var out []string
	for _, d := range ds {
		b, err := proto.MarshalJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// TestUntypedSegmentCountersAreCounters: node_exporter exposes the TCP
// segment counters a gray-failure rule reads packet loss from untyped, and
// remote-write 1.0 carries no type: they are bound as counters (their
// increase is the loss's numerator and denominator), not as gauges.
func TestUntypedSegmentCountersAreCounters(t *testing.T) {
	sh := grayFailureShard(t, `{__name__=~"node_netstat_Tcp_RetransSegs|node_netstat_Tcp_OutSegs|node_load1"}`)
	for name, want := range map[string]bool{"node_netstat_Tcp_RetransSegs": true, "node_netstat_Tcp_OutSegs": true, "node_load1": false} {
		g, _, counter, _ := sh.bind("", lbl("__name__", name, "zone_id", "use1-az1", "instance", "i1"), "")
		if g < 0 || counter != want {
			t.Errorf("%s: group %d, counter %v; want a group and counter %v", name, g, counter, want)
		}
	}
}

// TestGroupsOfEndedJobsAreEvicted: a gpu rule's groups are split by job;
// once every series of a job's group was evicted, the group goes too (and a
// tombstone removes it from augur.state). Kept, a training cluster's groups
// grew by one detector per job, each closed every window and written in
// every whole checkpoint, forever.
func TestGroupsOfEndedJobsAreEvicted(t *testing.T) {
	sh := newShard(0, rulesEnv(t, `
rules:
- name: training-gpus
  gpu:
    selector: '{__name__=~"DCGM_FI_.*",cluster="train"}'
    node_label: Hostname
    group_by: [job]
    window: 10s
`))
	var state []stateRecord
	const jobs = 20
	for j := range jobs {
		// Each job runs 5 minutes, one after the other.
		util := lbl("__name__", "DCGM_FI_DEV_GPU_UTIL", "cluster", "train", "Hostname", "node-1", "gpu", "0", "job", "job-"+strconv.Itoa(j))
		for i := range 30 {
			ts := int64(j*30+i) * 10_000
			sh.processBlock(block(t, "", add(util, []int64{ts}, []float64{90})))
			var err error
			if state, err = sh.appendCheckpoint(state); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(sh.groups) > 2 {
		t.Errorf("%d groups after %d jobs ran one after the other, want at most 2", len(sh.groups), jobs)
	}
	// The state log restores to the same groups.
	re := newShard(0, sh.env)
	for _, r := range state {
		if err := re.apply(r.key, r.value); err != nil {
			t.Fatal(err)
		}
	}
	re.finishRestore()
	if len(re.groups) != len(sh.groups) {
		t.Errorf("restored %d groups, want %d", len(re.groups), len(sh.groups))
	}
	for gi, g := range sh.groups {
		if _, ok := re.groupIndex[g.key]; !ok {
			t.Errorf("group %q not restored", g.key)
		}
		if sh.groupIndex[g.key] != int32(gi) {
			t.Errorf("group %q at %d, indexed at %d", g.key, gi, sh.groupIndex[g.key])
		}
	}
	for row, gi := range sh.group {
		_, lbls, _ := proto.ParseSeriesKey(sh.keys[row], nil)
		job, _ := proto.LabelValue(lbls, "job")
		if _, _, vals, _ := rules.ParseGroupKey([]byte(sh.groups[gi].key), nil); len(vals) != 1 || vals[0] != job {
			t.Errorf("series %q bound to group %q", sh.keys[row], sh.groups[gi].key)
		}
	}
}

// TestTypedHistogramSeriesAreCounters: remote-write 2.0 gives a classic
// histogram's _bucket, _sum and _count series the family's type,
// "histogram" (a summary's, "summary"), not "counter". They are counters
// all the same: read as gauges, they had no increase, and a gray-failure
// rule lost its p99 (the _bucket increases) and its mean latency (_sum /
// _count) whenever Prometheus sent metadata. A summary's quantile series
// stay gauges.
func TestTypedHistogramSeriesAreCounters(t *testing.T) {
	sh := grayFailureShard(t, `{__name__=~"http_request_duration_seconds.*|rpc_duration_seconds.*"}`)
	for _, tc := range []struct {
		name, typ, le, quantile string
		want                    bool
	}{
		{"http_request_duration_seconds_bucket", "histogram", "0.25", "", true},
		{"http_request_duration_seconds_sum", "histogram", "", "", true},
		{"http_request_duration_seconds_count", "histogram", "", "", true},
		{"rpc_duration_seconds_sum", "summary", "", "", true},
		{"rpc_duration_seconds_count", "summary", "", "", true},
		{"rpc_duration_seconds", "summary", "", "0.99", false},
	} {
		kv := []string{"__name__", tc.name, "zone_id", "use1-az1", "instance", "i1"}
		if tc.le != "" {
			kv = append(kv, "le", tc.le)
		}
		if tc.quantile != "" {
			kv = append(kv, "quantile", tc.quantile)
		}
		g, _, counter, _ := sh.bind("", lbl(kv...), tc.typ)
		if g < 0 || counter != tc.want {
			t.Errorf("%s of type %s: group %d, counter %v; want a group and counter %v", tc.name, tc.typ, g, counter, tc.want)
		}
	}
}

// grayFailureShard returns a shard of one gray_failure rule over selector,
// zones in label zone_id.
func grayFailureShard(t *testing.T, selector string) *shard {
	t.Helper()
	set, err := rules.Parse(strings.NewReader(`
rules:
- name: checkout-zones
  gray_failure:
    selector: '` + selector + `'
    zone_label: zone_id
    resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/checkout/1
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Rules = set
	return newShard(0, mustEnv(t, &cfg))
}
