package proto

import (
	"bytes"
	"errors"
	"math"
	"os"
	"slices"
	"testing"
)

// staleNaN is Prometheus' stale marker; its bits must survive a block.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

type testSeries struct {
	labels  []Label
	md      Metadata
	start   int64
	ts      []int64
	vs      []float64
	hists   [][]byte
	exLbls  []Label
	exValue float64
}

func buildBlock(t testing.TB, tenant string, series []testSeries) []byte {
	t.Helper()
	var b BlockBuilder
	b.Reset(tenant)
	for _, s := range series {
		b.StartSeries(s.labels, s.md)
		for i := range s.ts {
			b.AppendSampleStart(s.ts[i], s.start, s.vs[i])
		}
		for _, h := range s.hists {
			b.AppendHistogram(h)
		}
		if s.exLbls != nil {
			b.AppendExemplar(s.exLbls, s.exValue, 7)
		}
	}
	out, err := b.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// roundTripSeries are the series of TestBlockRoundTrip and of the version 1
// golden, testdata/block-v1.bin (written by version 1's builder).
var roundTripSeries = []testSeries{
	{
		labels: []Label{{"__name__", "http_requests_total"}, {"job", "api"}, {"zone", "use1-az1"}},
		md:     Metadata{Type: "counter", Help: "Requests.", Unit: "requests"},
		start:  1000,
		ts:     []int64{1_700_000_000_000, 1_700_000_015_000},
		vs:     []float64{1, staleNaN},
		exLbls: []Label{{"trace_id", "abc"}}, exValue: 0.5,
	},
	{labels: []Label{{"__name__", "up"}}},
	{
		labels: []Label{{"__name__", "latency"}, {"a", ""}},
		hists:  [][]byte{{0x08, 0x01}, {}},
		ts:     []int64{5}, vs: []float64{math.Inf(1)},
	},
}

func TestBlockRoundTrip(t *testing.T) {
	checkRoundTrip(t, buildBlock(t, "team-a", roundTripSeries))
}

// TestBlockVersion1 reads a block written by version 1 (labels as a map):
// a topic written before an upgrade reads the same as one written after.
func TestBlockVersion1(t *testing.T) {
	b, err := os.ReadFile("testdata/block-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, b)
}

// checkRoundTrip reads block and compares it with roundTripSeries of tenant
// team-a.
func checkRoundTrip(t *testing.T, block []byte) {
	t.Helper()
	series := roundTripSeries
	var r BlockReader
	if err := r.Reset(block); err != nil {
		t.Fatal(err)
	}
	if r.Tenant() != "team-a" || r.Len() != len(series) || r.NumSamples() != 3 {
		t.Fatalf("tenant %q len %d samples %d", r.Tenant(), r.Len(), r.NumSamples())
	}
	for i, s := range series {
		if got := r.AppendLabels(nil, i); !slices.Equal(got, s.labels) {
			t.Errorf("series %d labels %v, want %v", i, got, s.labels)
		}
		if got, want := r.AppendSeries(nil, i), AppendSeriesKey(nil, "", s.labels); !bytes.Equal(got, want) {
			t.Errorf("series %d key %q, want %q", i, got, want)
		}
		ts, vs := r.Samples(i)
		if !slices.Equal(ts, s.ts) && (len(ts) != 0 || len(s.ts) != 0) {
			t.Errorf("series %d ts %v, want %v", i, ts, s.ts)
		}
		for j := range vs {
			if math.Float64bits(vs[j]) != math.Float64bits(s.vs[j]) {
				t.Errorf("series %d value %d bits %x, want %x", i, j, math.Float64bits(vs[j]), math.Float64bits(s.vs[j]))
			}
		}
		if r.Metadata(i) != s.md {
			t.Errorf("series %d metadata %+v", i, r.Metadata(i))
		}
		for _, st := range r.StartTimestamps(i) {
			if st != s.start {
				t.Errorf("series %d start timestamp %d, want %d", i, st, s.start)
			}
		}
		if r.NumHistograms(i) != len(s.hists) {
			t.Errorf("series %d: %d histograms, want %d", i, r.NumHistograms(i), len(s.hists))
		}
		for j, h := range s.hists {
			if !slices.Equal(r.Histogram(i, j), h) {
				t.Errorf("series %d histogram %d = %x, want %x", i, j, r.Histogram(i, j), h)
			}
		}
		wantEx := 0
		if s.exLbls != nil {
			wantEx = 1
			want := AppendExemplarProto(nil, s.exLbls, s.exValue, 7)
			if !slices.Equal(r.Exemplar(i, 0), want) {
				t.Errorf("series %d exemplar %x, want %x", i, r.Exemplar(i, 0), want)
			}
		}
		if r.NumExemplars(i) != wantEx {
			t.Errorf("series %d: %d exemplars, want %d", i, r.NumExemplars(i), wantEx)
		}
	}
}

func TestBlockEmpty(t *testing.T) {
	var r BlockReader
	if err := r.Reset(buildBlock(t, "", nil)); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("len %d", r.Len())
	}
}

func TestBlockRejectsGarbage(t *testing.T) {
	good := buildBlock(t, "", []testSeries{{labels: []Label{{"__name__", "x"}}, ts: []int64{1}, vs: []float64{2}}})
	for name, in := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("hello, world"),
		"truncated": good[:len(good)/2],
	} {
		var r BlockReader
		if err := r.Reset(in); !errors.Is(err, ErrBadBlock) {
			t.Errorf("%s: err %v, want ErrBadBlock", name, err)
		}
	}
}

// version is the block version r holds.
func version(r *BlockReader) string {
	if r.v1 {
		return blockVersion1
	}
	return BlockVersion
}

func TestCheckSeries(t *testing.T) {
	for in, ok := range map[string]bool{
		"":                                 true,
		"\xff__name__\xfeup":               true,
		"\xffa\xfe\xffb\xfe":               true, // empty values
		"\xff__name__\xfeup\xffjob\xfeapi": true,
		"__name__\xfeup":                   false, // no leading 0xff
		"\xff__name__":                     false, // no value
		"\xffa\xfeb\xfec":                  false, // two 0xfe
		"\xffa\xfeb\xff":                   false, // a last label without a value
		"\xff\xff":                         false,
	} {
		if err := checkSeries([]byte(in)); (err == nil) != ok {
			t.Errorf("checkSeries(%q) = %v, want ok %v", in, err, ok)
		}
	}
}

func FuzzBlockReader(f *testing.F) {
	if v1, err := os.ReadFile("testdata/block-v1.bin"); err == nil {
		f.Add(v1)
	}
	f.Add(buildBlock(f, "t", []testSeries{{labels: []Label{{"__name__", "x"}, {"a", "b"}}, ts: []int64{1, 2}, vs: []float64{2, 3}, hists: [][]byte{{1}}}}))
	f.Add(buildBlock(f, "", nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r BlockReader
		if err := r.Reset(in); err != nil {
			return
		}
		// Every accessor must stay in bounds on anything Reset accepted.
		for i := range r.Len() {
			lbls := r.AppendLabels(nil, i)
			if key := r.AppendSeries(nil, i); version(&r) == BlockVersion && !bytes.Equal(key, AppendSeriesKey(nil, "", lbls)) {
				t.Fatalf("series %d: key %q is not its labels %v", i, key, lbls)
			}
			ts, vs := r.Samples(i)
			if len(ts) != len(vs) {
				t.Fatalf("series %d: %d timestamps, %d values", i, len(ts), len(vs))
			}
			_ = r.Metadata(i)
			if len(r.StartTimestamps(i)) != len(ts) {
				t.Fatalf("series %d: start timestamps differ in length", i)
			}
			for j := range r.NumHistograms(i) {
				_ = r.Histogram(i, j)
			}
			for j := range r.NumExemplars(i) {
				_ = r.Exemplar(i, j)
			}
		}
	})
}

func BenchmarkBlockBuild(b *testing.B) {
	lbls := make([]Label, 12)
	for i := range lbls {
		lbls[i] = Label{Name: "label_name_" + string(rune('a'+i)), Value: "some-value-of-average-size"}
	}
	var bb BlockBuilder
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		bb.Reset("")
		for j := range 1000 {
			bb.StartSeries(lbls, Metadata{})
			bb.AppendSample(int64(j), float64(j))
		}
		var err error
		out, err = bb.AppendIPC(out[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/sample")
}

func BenchmarkBlockRead(b *testing.B) {
	lbls := make([]Label, 12)
	for i := range lbls {
		lbls[i] = Label{Name: "label_name_" + string(rune('a'+i)), Value: "some-value-of-average-size"}
	}
	var bb BlockBuilder
	bb.Reset("")
	for j := range 1000 {
		bb.StartSeries(lbls, Metadata{})
		bb.AppendSample(int64(j), float64(j))
	}
	block, _ := bb.AppendIPC(nil)
	var r BlockReader
	b.ReportAllocs()
	var sum float64
	for b.Loop() {
		if err := r.Reset(block); err != nil {
			b.Fatal(err)
		}
		for i := range r.Len() {
			_, vs := r.Samples(i)
			sum += vs[0]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/sample")
}
