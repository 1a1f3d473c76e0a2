package stream

import (
	"sort"
	"strings"
	"testing"

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
	if s, late, dup := rp.Stats(); s != want.stats.samples || late != want.stats.late || dup != want.stats.duplicates {
		t.Errorf("replayer samples/late/duplicates %d/%d/%d, stream %d/%d/%d", s, late, dup, want.stats.samples, want.stats.late, want.stats.duplicates)
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
