package ingest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

func TestKnownSeriesGetAllAndBound(t *testing.T) {
	const max = 16 * 100
	k := newKnownSeries(max)
	tid := tenantID("", 1)
	ids := make([]seriesHash, 1000)
	for i := range ids {
		ids[i] = wireID(tid, fmt.Appendf(nil, "series-%d", i))
		k.put(ids[i], int32(i%8), 7, uint32(i+1))
	}
	places := make([]knownSlot, len(ids))
	k.getAll(ids, places, nil)
	for i, pl := range places {
		if pl.id != ids[i] || pl.part != int32(i%8) || pl.dict != 7 || pl.ref != uint32(i+1) {
			t.Fatalf("series %d: place %+v, want partition %d, dictionary 7, number %d", i, pl, i%8, i+1)
		}
	}
	// Another tenant's or protocol's identical bytes are another series.
	other := []seriesHash{wireID(tenantID("team-a", 1), []byte("series-0")), wireID(tenantID("", 2), []byte("series-0"))}
	k.getAll(other, places[:2], nil)
	if places[0].ref != 0 || places[1].ref != 0 {
		t.Fatalf("series-0 of another tenant or protocol found: %+v", places[:2])
	}
	// Past max series a shard begins again: never more than max held.
	for i := range 10 * max {
		k.put(wireID(tid, fmt.Appendf(nil, "more-%d", i)), 0, 7, 1)
	}
	held := 0
	for i := range k.shards {
		held += k.shards[i].n
	}
	if held > max+knownShards || held == 0 {
		t.Fatalf("%d series held, bound %d", held, max)
	}
}

func TestGroupBy(t *testing.T) {
	keys := []int{2, 0, 2, 1, 0, 2}
	starts := make([]int32, 4)
	order := groupBy(nil, starts, len(keys), func(i int) int { return keys[i] })
	if fmt.Sprint(order, starts) != "[1 4 3 0 2 5] [0 2 3 6]" {
		t.Fatalf("order %v starts %v", order, starts)
	}
}

// TestKnownSeriesStillValidated: a row takes the known path only for a
// series whose exact bytes (with tenant and protocol) passed validation
// before; anything else is checked in full, however alike.
func TestKnownSeriesStillValidated(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.now.UnixMilli()
	long := strings.Repeat("v", 200) // a length of two bytes: 1.0 falls back to the labels
	v2 := func(symbols ...string) []byte {
		refs := make([]uint32, len(symbols))
		for i := range refs {
			refs[i] = uint32(i + 1)
		}
		return encodeV2(t, &writev2.Request{Symbols: append([]string{""}, symbols...), Timeseries: []writev2.TimeSeries{
			{LabelsRefs: refs, Samples: []writev2.Sample{{Value: 1, Timestamp: ts}}},
		}})
	}
	ctype2 := "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	for range 3 { // unsorted 2.0 labels are sorted, and known after the first
		if resp := e.post(t, post{body: v2("job", long, "__name__", "up"), ctype: ctype2}); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("2.0 unsorted: status %d: %s", resp.StatusCode, body(t, resp))
		}
	}
	unsorted := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbl("job", long, "__name__", "up"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
	}}
	resp := e.post(t, post{body: encodeV1(t, unsorted)})
	if msg := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "(labels_not_sorted)") {
		t.Errorf("1.0, the same unsorted labels: status %d: %s", resp.StatusCode, msg)
	}
	// A value holding the bytes that separate labels elsewhere.
	for range 2 {
		if resp := e.post(t, post{body: v2("__name__", "up", "a", "x", "b", "c"), ctype: ctype2}); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("2.0 valid: status %d", resp.StatusCode)
		}
	}
	resp = e.post(t, post{body: v2("__name__", "up", "a", "x\xffb\xfec"), ctype: ctype2})
	if msg := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "(invalid_label_value)") {
		t.Errorf("2.0, a value spelling two labels: status %d: %s", resp.StatusCode, msg)
	}
	got := e.readAllSeries(t, 5)
	var names []string
	for _, g := range got {
		names = append(names, fmt.Sprint(g.labels))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) != 2 {
		t.Fatalf("series written %v, want the two valid ones", names)
	}
}
