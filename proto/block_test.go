package proto

import (
	"bytes"
	"errors"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
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

// TestStartSeriesColumn: a row started from a prebuilt series column
// encodes to the same bytes as one started from its labels.
func TestStartSeriesColumn(t *testing.T) {
	var byLabels, byColumn BlockBuilder
	byLabels.Reset("team-a")
	byColumn.Reset("team-a")
	for _, s := range roundTripSeries {
		md := Metadata{Type: "gauge", Help: "h"}
		byLabels.StartSeries(s.labels, md)
		byColumn.StartSeriesColumn(AppendSeriesKey(nil, "", s.labels), md)
		byLabels.AppendSample(1, 2)
		byColumn.AppendSample(1, 2)
	}
	a, err := byLabels.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := byColumn.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("a block started from series columns differs from one started from labels")
	}
}

// TestMetadataIsValidUTF8: help and unit text a sender did not encode as
// UTF-8 is written with U+FFFD in place of the bad bytes: the metadata
// columns are Arrow utf8, which readers (pyarrow) validate.
func TestMetadataIsValidUTF8(t *testing.T) {
	var b BlockBuilder
	b.Reset("")
	b.StartSeries([]Label{{Name: "__name__", Value: "x"}}, Metadata{Type: "gauge", Help: "bad \xff\xfe help", Unit: "s\xc3"})
	b.AppendSample(1, 2)
	v, err := b.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	var r BlockReader
	if err := r.Reset(v); err != nil {
		t.Fatal(err)
	}
	if md := r.Metadata(0); md.Help != "bad \uFFFD help" || md.Unit != "s\uFFFD" {
		t.Fatalf("metadata read back %q / %q, want the bad bytes replaced", md.Help, md.Unit)
	}
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
	switch {
	case r.v1:
		return blockVersion1
	case r.dict != 0:
		return BlockVersion
	}
	return BlockVersionPlain
}

// refBlock builds a block of two series of dictionary dict: the first
// defines number 1, the second refers to number 2.
func refBlock(t testing.TB, dict uint64) []byte {
	t.Helper()
	var b BlockBuilder
	b.Reset("t")
	b.StartSeries([]Label{{"__name__", "x"}, {"a", "b"}}, Metadata{Type: "gauge", Help: "h"})
	if !b.Refer(dict, 1, true) {
		t.Fatal("Refer refused a first number")
	}
	b.AppendSample(1, 2)
	b.StartSeries([]Label{{"__name__", "y"}}, Metadata{Type: "counter", Help: "h"})
	if !b.Refer(dict, 2, false) {
		t.Fatal("Refer refused a second number")
	}
	b.AppendSample(3, 4)
	v, err := b.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBlockSeriesRefs reads a version 3 block: a row that defines its
// number keeps labels and metadata, a row that refers to one has neither.
func TestBlockSeriesRefs(t *testing.T) {
	var r BlockReader
	if err := r.Reset(refBlock(t, 0xabc)); err != nil {
		t.Fatal(err)
	}
	if version(&r) != BlockVersion || r.Dict() != 0xabc || r.Len() != 2 {
		t.Fatalf("version %s dict %x len %d", version(&r), r.Dict(), r.Len())
	}
	if r.IsReference(0) || r.Ref(0) != 1 || string(r.AppendSeries(nil, 0)) != "\xff__name__\xfex\xffa\xfeb" || r.Metadata(0).Type != "gauge" {
		t.Fatalf("row 0: ref %d %q %v", r.Ref(0), r.AppendSeries(nil, 0), r.Metadata(0))
	}
	if !r.IsReference(1) || r.Ref(1) != 2 || len(r.AppendSeries(nil, 1)) != 0 || r.Metadata(1) != (Metadata{}) {
		t.Fatalf("row 1: ref %d %q %v", r.Ref(1), r.AppendSeries(nil, 1), r.Metadata(1))
	}
	if ts, vs := r.Samples(1); len(ts) != 1 || ts[0] != 3 || vs[0] != 4 {
		t.Fatalf("row 1 samples %v %v", ts, vs)
	}

	// One dictionary per block; numbers of another stay plain rows.
	var b BlockBuilder
	b.Reset("")
	b.StartSeries([]Label{{"__name__", "x"}}, Metadata{})
	b.Refer(1, 1, true)
	b.StartSeries([]Label{{"__name__", "y"}}, Metadata{})
	if b.Refer(2, 1, false) {
		t.Fatal("Refer accepted a second dictionary in one block")
	}
	// Without numbers a block is version 2, which older readers read.
	b.Reset("")
	b.AddSeries([]Label{{"__name__", "x"}}, []int64{1}, []float64{1})
	v, err := b.AppendIPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reset(v); err != nil || version(&r) != BlockVersionPlain || r.Dict() != 0 || r.Ref(0) != 0 || r.IsReference(0) {
		t.Fatalf("plain block: %v version %s", err, version(&r))
	}
}

// TestBlockRejectsBadRefs: a row with neither labels nor a number, a number
// past MaxSeriesRef, and a version 3 block without its dictionary id are bad
// blocks.
func TestBlockRejectsBadRefs(t *testing.T) {
	build := func(dict string, refs []uint32, series []string) []byte {
		sb := array.NewBinaryBuilder(memory.DefaultAllocator, arrow.BinaryTypes.Binary)
		for _, s := range series {
			sb.Append([]byte(s))
		}
		n := len(series)
		cols := []arrow.Array{sb.NewArray()}
		for _, f := range blockFields[1:] {
			bld := array.NewBuilder(memory.DefaultAllocator, f.Type)
			switch bb := bld.(type) {
			case *array.ListBuilder:
				for range n {
					bb.Append(true)
				}
			case *array.StringBuilder:
				for range n {
					bb.Append("")
				}
			case *array.Uint32Builder:
				bb.AppendValues(refs, nil)
			}
			cols = append(cols, bld.NewArray())
		}
		md := arrow.NewMetadata([]string{"augur.block.version", "augur.series.dict"}, []string{BlockVersion, dict})
		rec := array.NewRecordBatch(arrow.NewSchema(blockFields, &md), cols, int64(n))
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		return buf.Bytes()
	}
	if err := new(BlockReader).Reset(build("00000000000000ab", []uint32{1}, []string{""})); err != nil {
		t.Fatalf("a reference row: %v", err)
	}
	for name, in := range map[string][]byte{
		"no labels, no number": build("00000000000000ab", []uint32{0}, []string{""}),
		"number too large":     build("00000000000000ab", []uint32{MaxSeriesRef}, []string{"\xffa\xfeb"}),
		"no dictionary":        build("", []uint32{1}, []string{""}),
		"dictionary 0":         build("0000000000000000", []uint32{1}, []string{""}),
	} {
		if err := new(BlockReader).Reset(in); !errors.Is(err, ErrBadBlock) {
			t.Errorf("%s: err %v, want ErrBadBlock", name, err)
		}
	}
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
	f.Add(refBlock(f, 0x1234))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r BlockReader
		if err := r.Reset(in); err != nil {
			return
		}
		// Every accessor must stay in bounds on anything Reset accepted.
		for i := range r.Len() {
			lbls := r.AppendLabels(nil, i)
			if key := r.AppendSeries(nil, i); version(&r) != blockVersion1 && !bytes.Equal(key, AppendSeriesKey(nil, "", lbls)) {
				t.Fatalf("series %d: key %q is not its labels %v", i, key, lbls)
			}
			ts, vs := r.Samples(i)
			if len(ts) != len(vs) {
				t.Fatalf("series %d: %d timestamps, %d values", i, len(ts), len(vs))
			}
			_ = r.Metadata(i)
			if r.IsReference(i) && (len(lbls) != 0 || r.Ref(i) == 0 || r.Dict() == 0) {
				t.Fatalf("series %d: a reference with labels %v, number %d, dictionary %x", i, lbls, r.Ref(i), r.Dict())
			}
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

// TestBlockSizeEstimate: Size, which the receiver cuts records by, stays
// within a fixed overhead (schema and record batch messages) of what
// AppendIPC writes, also for a version 3 block of references, whose rows
// carry a series_ref each and little else.
func TestBlockSizeEstimate(t *testing.T) {
	for _, refs := range []bool{false, true} {
		var b BlockBuilder
		b.Reset("team-a")
		for i := range 20000 {
			if refs {
				b.StartReference(7, uint32(i+1))
			} else {
				b.StartSeries([]Label{{"__name__", "x"}}, Metadata{})
			}
			b.AppendSample(int64(i), 1)
		}
		out, err := b.AppendIPC(nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := len(out) - b.Size(); d > 2048 || d < -2048 {
			t.Errorf("references %v: Size %d, AppendIPC wrote %d", refs, b.Size(), len(out))
		}
	}
}
