package stream

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/proto"
)

// TestReplayerIsTheStream feeds the golden input (retries, a stale marker,
// a late sample) to a Replayer, block by block as remote write carried it,
// and gets the decisions the stream makes on it, to the byte.
func TestReplayerIsTheStream(t *testing.T) {
	cfg := testConfig(t)
	in := genInput(t, cfg.Rules, 1, 400)
	want := runGolden(t, &cfg, in)

	rp, err := NewReplayer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rd proto.BlockReader
	var names proto.SeriesNames
	var lbls []proto.Label
	var got []string
	for _, v := range in[0] {
		if err := rd.Reset(v); err != nil {
			t.Fatal(err)
		}
		for i := range rd.Len() {
			var ok bool
			if lbls, ok = names.AppendLabels(lbls[:0], 0, &rd, i); !ok {
				t.Fatalf("series %d refers to number %d, not defined before", i, rd.Ref(i))
			}
			ts, vs := rd.Samples(i)
			if err := rp.Add(rd.Tenant(), lbls, rd.Metadata(i).Type, ts, vs); err != nil {
				t.Fatal(err)
			}
		}
		rp.Advance()
		ds, _ := rp.Drain()
		for _, d := range ds {
			b, err := proto.MarshalJSON(d.Decision)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(b))
		}
	}
	sort.Strings(got)
	if len(want.decisions) == 0 {
		t.Fatal("the golden run decided nothing")
	}
	if strings.Join(got, "\n") != strings.Join(want.decisions, "\n") {
		a, b := diffLines(got, want.decisions)
		t.Errorf("replayer made %d decisions, the stream %d; only the replayer: %q; only the stream: %q", len(got), len(want.decisions), a, b)
	}
	if st := rp.Stats(); st.Samples != want.stats.samples || st.Late != want.stats.late || st.Duplicates != want.stats.duplicates || st.Future != 0 {
		t.Errorf("replayer samples/late/duplicates/future %d/%d/%d/%d, stream %d/%d/%d/0", st.Samples, st.Late, st.Duplicates, st.Future, want.stats.samples, want.stats.late, want.stats.duplicates)
	}
	if err := rp.Add("", []proto.Label{{Name: "b"}, {Name: "a"}}, "", nil, nil); err == nil {
		t.Error("unsorted labels accepted")
	}
}

func diffLines(a, b []string) (onlyA, onlyB []string) {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		if m[x] > 0 {
			m[x]--
		} else {
			onlyB = append(onlyB, x)
		}
	}
	for x, n := range m {
		for range n {
			onlyA = append(onlyA, x)
		}
	}
	return onlyA, onlyB
}

// TestLastScaleDownIsCheckpointed restores a scaling group's last scale
// down (the reversal guard's memory) from its state record.
func TestLastScaleDownIsCheckpointed(t *testing.T) {
	cfg := testConfig(t)
	e := mustEnv(t, &cfg)
	sh := newShard(0, e)
	key := string(cfg.Rules.GroupKey(nil, 0, "", nil))
	gi := sh.newGroup(key, 0, "")
	sh.groups[gi].sc.SetLastDown(1_700_000_123_000)
	sh.groups[gi].dirty = true
	recs, err := sh.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back := newShard(0, e)
	for _, r := range recs {
		if err := back.apply(r.key, r.value); err != nil {
			t.Fatal(err)
		}
	}
	back.finishRestore()
	bi, ok := back.groupIndex[key]
	if !ok {
		t.Fatalf("group %q not restored", key)
	}
	if got := back.groups[bi].sc.LastDown(); got != 1_700_000_123_000 {
		t.Errorf("restored last scale down %d, want 1700000123000", got)
	}
}

// replayCounter feeds one payment pod's counter, rising 100 a second
// (10 pods of load under payment-rps), sampled every second for n
// seconds with bad[i] in place of sample i, and returns the decisions and
// forecast points.
func replayCounter(t *testing.T, n int, bad map[int]float64) (*Replayer, []Replayed, []*proto.ForecastPoint) {
	t.Helper()
	rp, err := NewReplayer(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	pod := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "payment-0")
	const t0 = int64(1_700_000_000_000)
	var ds []Replayed
	var pts []*proto.ForecastPoint
	for i := range n {
		v, ok := bad[i]
		if !ok {
			v = float64(i) * 100
		}
		if err := rp.Add("", pod, "counter", []int64{t0 + int64(i)*1000}, []float64{v}); err != nil {
			t.Fatal(err)
		}
		rp.Advance()
		d, p := rp.Drain()
		ds, pts = append(ds, d...), append(pts, p...)
	}
	return rp, ds, pts
}

// TestReplayerDropsAFarFutureSample: a history with one sample ten years
// ahead in the middle of it. Applied, it moved the partition's newest time
// ten years on: every later sample was late against the watermark and
// dropped, and the replay decided nothing more. As augur ingest refuses it
// (limits.max_future_skew past its clock), the Replayer drops it against
// the replay's clock and counts it; the samples after it are replayed and
// the decisions and forecasts are those of the history without it.
func TestReplayerDropsAFarFutureSample(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	const future = t0 + 10*365*24*3600_000
	pod := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "payment-0")
	run := func(withFuture bool) ([]string, ReplayStats) {
		rp, err := NewReplayer(testConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := range 900 {
			now := t0 + int64(i)*1000
			rp.SetNow(now)
			ts, vs := []int64{now}, []float64{float64(i) * 100}
			if withFuture && i == 300 {
				ts, vs = append(ts, future), append(vs, float64(i)*100+50)
			}
			if err := rp.Add("", pod, "counter", ts, vs); err != nil {
				t.Fatal(err)
			}
			rp.Advance()
			ds, pts := rp.Drain()
			for _, d := range ds {
				b, err := proto.MarshalJSON(d.Decision)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%d %s", d.MadeAt, b))
			}
			for _, p := range pts {
				out = append(out, fmt.Sprintf("point %+v", p))
			}
		}
		rp.Flush()
		ds, _ := rp.Drain()
		for _, d := range ds {
			out = append(out, d.Decision.GetSummary())
		}
		return out, rp.Stats()
	}
	want, wantStats := run(false)
	got, gotStats := run(true)
	if len(want) == 0 {
		t.Fatal("the history decided nothing")
	}
	if gotStats != (ReplayStats{Samples: wantStats.Samples, Future: 1}) {
		t.Errorf("stats %+v, want the %d samples of the history applied, none late, and 1 too far in the future", gotStats, wantStats.Samples)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		a, b := diffLines(got, want)
		t.Errorf("with a sample ten years ahead: %d decisions and points, without it %d; only with it: %q; only without: %q", len(got), len(want), a, b)
	}
}

// TestHugeCounterSampleLeavesFiniteForecasts: one counter sample of 1e160
// (its increase, and the forecast errors it causes, are finite; their
// squares are not) must leave the forecast intervals finite. They were
// NaN from then on, and the scaler, reading the NaN bound as no load,
// sized the workload at min_replicas while it needed 10 pods.
func TestHugeCounterSampleLeavesFiniteForecasts(t *testing.T) {
	_, ds, pts := replayCounter(t, 900, map[int]float64{300: 1e160})
	for _, p := range pts {
		for _, x := range []float64{p.Observed, p.Forecast, p.Lower, p.Upper} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("window ending %d: forecast point %+v is not finite", p.WindowEnd, p)
			}
		}
	}
	for _, d := range ds {
		if d.MadeAt > 1_700_000_000_000+400_000 && d.Decision.Desired.Replicas < 10 {
			t.Errorf("%s", d.Decision.Summary)
		}
	}
	if last := pts[len(pts)-1]; last.Recommended < 10 {
		t.Errorf("last window recommends %d replicas for a load of %g/s (10 per pod)", last.Recommended, last.Observed)
	}
}

// TestNegativeCounterSampleIsDropped: a counter's -1 (an exporter's
// "unknown") is dropped and counted. Read as a reset, the next sample's
// increase was the whole counter: max_replicas for a steady load.
func TestNegativeCounterSampleIsDropped(t *testing.T) {
	rp, ds, _ := replayCounter(t, 600, map[int]float64{309: -1})
	if rp.sh.stats.negative != 1 {
		t.Errorf("%d negative counter samples counted, want 1", rp.sh.stats.negative)
	}
	for _, d := range ds {
		if r := d.Decision.Desired.Replicas; r > 12 {
			t.Errorf("%d replicas for a steady 100/s (10 per pod): %s", r, d.Decision.Summary)
		}
	}
}

// TestPodBackAfterAGapIsNotASurge: of two payment pods serving 50/s each,
// one goes unsampled for 10 minutes (its counter still counting) and comes
// back. Its increase over the gap went into one 10-s window: 31 times the
// load, and a scale to max_replicas; the windows in the gap were closed
// on the other pod's load already.
func TestPodBackAfterAGapIsNotASurge(t *testing.T) {
	cfg := testConfig(t)
	cfg.IdleTimeout = 15 * time.Minute // the default: the pod is not evicted in the gap
	rp, err := NewReplayer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "payment-0")
	b := lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment", "pod", "payment-1")
	const t0 = int64(1_700_000_000_000)
	for i := range 2400 {
		ts := []int64{t0 + int64(i)*1000}
		v := []float64{float64(i) * 50}
		if err := rp.Add("", a, "counter", ts, v); err != nil {
			t.Fatal(err)
		}
		if i < 1000 || i > 1600 {
			if err := rp.Add("", b, "counter", ts, v); err != nil {
				t.Fatal(err)
			}
		}
		rp.Advance()
		ds, pts := rp.Drain()
		for _, p := range pts {
			if p.Observed > 200 {
				t.Errorf("window ending %d: observed %g/s, the pods serve 100/s", p.WindowEnd, p.Observed)
			}
		}
		for _, d := range ds {
			if d.Decision.Desired.Replicas > 20 {
				t.Errorf("step %d: %s", i, d.Decision.Summary)
			}
		}
	}
}
