package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/augur-ops/augur/proto"
)

var staleNaN = math.Float64frombits(0x7ff0000000000002)

// canon is a decoded request in a form both decoders can be compared in.
type canon struct {
	series []canonSeries
	meta   []FamilyMetadata
}

type canonSeries struct {
	labels    []proto.Label
	samples   []Sample
	hists     []string // re-marshalled reference Histogram bytes
	exemplars []string
	md        proto.Metadata
	badSymbol bool
}

func (s canonSeries) String() string {
	return fmt.Sprintf("%v %v h%d e%v %+v bad=%v", s.labels, s.samples, len(s.hists), s.exemplars, s.md, s.badSymbol)
}

func exString(lbls []proto.Label, v float64, ts int64) string {
	return fmt.Sprintf("%v %x %d", lbls, math.Float64bits(v), ts)
}

func canonOurs(r *Request) canon {
	var c canon
	for i := range r.Series {
		s := &r.Series[i]
		cs := canonSeries{
			labels:    slices.Clone(r.SeriesLabels(s)),
			samples:   slices.Clone(r.SeriesSamples(s)),
			md:        s.Metadata,
			badSymbol: s.HasBadSymbol,
		}
		for _, h := range r.Histograms[s.HistogramsStart:s.HistogramsEnd] {
			var ph prompb.Histogram
			if err := ph.Unmarshal(h.Raw); err != nil {
				cs.hists = append(cs.hists, "unmarshal error: "+err.Error())
				continue
			}
			b, _ := ph.Marshal()
			cs.hists = append(cs.hists, string(b))
		}
		for _, e := range r.Exemplars[s.ExemplarsStart:s.ExemplarsEnd] {
			cs.exemplars = append(cs.exemplars, exString(r.ExemplarLabels[e.LabelsStart:e.LabelsEnd], e.Value, e.Timestamp))
		}
		c.series = append(c.series, cs)
	}
	c.meta = slices.Clone(r.Metadata)
	return c
}

var metricTypes = []string{"", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"}

func typeName(v int32) string {
	if v < 0 || int(v) >= len(metricTypes) {
		return ""
	}
	return metricTypes[v]
}

func canonV1(req *prompb.WriteRequest) canon {
	var c canon
	for _, ts := range req.Timeseries {
		var cs canonSeries
		for _, l := range ts.Labels {
			cs.labels = append(cs.labels, proto.Label{Name: l.Name, Value: l.Value})
		}
		for _, s := range ts.Samples {
			cs.samples = append(cs.samples, Sample{Value: s.Value, Timestamp: s.Timestamp})
		}
		for _, h := range ts.Histograms {
			b, _ := h.Marshal()
			cs.hists = append(cs.hists, string(b))
		}
		for _, e := range ts.Exemplars {
			var lbls []proto.Label
			for _, l := range e.Labels {
				lbls = append(lbls, proto.Label{Name: l.Name, Value: l.Value})
			}
			cs.exemplars = append(cs.exemplars, exString(lbls, e.Value, e.Timestamp))
		}
		c.series = append(c.series, cs)
	}
	for _, m := range req.Metadata {
		c.meta = append(c.meta, FamilyMetadata{Family: m.MetricFamilyName,
			Metadata: proto.Metadata{Type: typeName(int32(m.Type)), Help: m.Help, Unit: m.Unit}})
	}
	return c
}

func canonV2(req *writev2.Request) canon {
	var c canon
	sym := func(ref uint32) (string, bool) {
		if ref == 0 && len(req.Symbols) == 0 {
			return "", true
		}
		if int(ref) >= len(req.Symbols) {
			return "", false
		}
		return req.Symbols[ref], true
	}
	resolve := func(refs []uint32, bad *bool) []proto.Label {
		var out []proto.Label
		for i := 0; i+1 < len(refs); i += 2 {
			n, ok1 := sym(refs[i])
			v, ok2 := sym(refs[i+1])
			if !ok1 || !ok2 {
				*bad = true
				continue
			}
			out = append(out, proto.Label{Name: n, Value: v})
		}
		return out
	}
	for _, ts := range req.Timeseries {
		var cs canonSeries
		cs.labels = resolve(ts.LabelsRefs, &cs.badSymbol)
		for _, s := range ts.Samples {
			cs.samples = append(cs.samples, Sample{Value: s.Value, Timestamp: s.Timestamp, Start: s.StartTimestamp})
		}
		for _, h := range ts.Histograms {
			// The v2 and v1 Histogram messages share their field numbers.
			b, _ := h.Marshal()
			var ph prompb.Histogram
			if err := ph.Unmarshal(b); err != nil {
				cs.hists = append(cs.hists, "unmarshal error: "+err.Error())
				continue
			}
			b, _ = ph.Marshal()
			cs.hists = append(cs.hists, string(b))
		}
		for _, e := range ts.Exemplars {
			cs.exemplars = append(cs.exemplars, exString(resolve(e.LabelsRefs, &cs.badSymbol), e.Value, e.Timestamp))
		}
		cs.md.Type = typeName(int32(ts.Metadata.Type))
		var ok bool
		if cs.md.Help, ok = sym(ts.Metadata.HelpRef); !ok {
			cs.badSymbol = true
		}
		if cs.md.Unit, ok = sym(ts.Metadata.UnitRef); !ok {
			cs.badSymbol = true
		}
		c.series = append(c.series, cs)
	}
	return c
}

func equalCanon(a, b canon) error {
	if len(a.series) != len(b.series) {
		return fmt.Errorf("%d series, want %d", len(a.series), len(b.series))
	}
	for i := range a.series {
		x, y := a.series[i], b.series[i]
		same := slices.Equal(x.labels, y.labels) && slices.Equal(x.hists, y.hists) &&
			slices.Equal(x.exemplars, y.exemplars) && x.md == y.md && x.badSymbol == y.badSymbol &&
			len(x.samples) == len(y.samples)
		for j := 0; same && j < len(x.samples); j++ {
			same = math.Float64bits(x.samples[j].Value) == math.Float64bits(y.samples[j].Value) &&
				x.samples[j].Timestamp == y.samples[j].Timestamp && x.samples[j].Start == y.samples[j].Start
		}
		if !same {
			return fmt.Errorf("series %d:\n got %v\nwant %v", i, x, y)
		}
	}
	if !slices.Equal(a.meta, b.meta) {
		return fmt.Errorf("metadata %v, want %v", a.meta, b.meta)
	}
	return nil
}

func intHistogram() prompb.Histogram {
	return prompb.Histogram{
		Count:          &prompb.Histogram_CountInt{CountInt: 12},
		Sum:            18.4,
		Schema:         1,
		ZeroThreshold:  1e-128,
		ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: 2},
		NegativeSpans:  []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		NegativeDeltas: []int64{1, 1, -1, 0},
		PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveDeltas: []int64{1, 1, -1, 0},
		Timestamp:      1_700_000_000_000,
	}
}

func floatHistogram() prompb.Histogram {
	return prompb.Histogram{
		Count:          &prompb.Histogram_CountFloat{CountFloat: 5.5},
		Sum:            3,
		Schema:         0,
		PositiveSpans:  []prompb.BucketSpan{{Offset: -2, Length: 3}},
		PositiveCounts: []float64{1, 2.5, 2},
		ResetHint:      prompb.Histogram_GAUGE,
		Timestamp:      1_700_000_000_000,
	}
}

// SeedV1 returns realistic remote-write 1.0 requests, marshalled by the
// reference types, for tests and fuzzing.
func seedsV1(t testing.TB) [][]byte {
	t.Helper()
	reqs := []*prompb.WriteRequest{
		{Timeseries: []prompb.TimeSeries{
			{
				Labels:    []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "code", Value: "200"}, {Name: "instance", Value: "10.0.0.1:8080"}, {Name: "job", Value: "api"}},
				Samples:   []prompb.Sample{{Value: 1027, Timestamp: 1_700_000_000_000}, {Value: staleNaN, Timestamp: 1_700_000_015_000}},
				Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "4bf92f3577b34da6"}}, Value: 0.2, Timestamp: 1_700_000_000_001}},
			},
			{
				Labels:     []prompb.Label{{Name: "__name__", Value: "rpc_latency_seconds"}, {Name: "job", Value: "api"}},
				Histograms: []prompb.Histogram{intHistogram(), floatHistogram()},
			},
			{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: -5}}},
		}},
		{Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "http_requests_total", Help: "Requests served.", Unit: "requests"},
			{Type: prompb.MetricMetadata_GAUGEHISTOGRAM, MetricFamilyName: "queue_depth"},
		}},
		{},
	}
	var out [][]byte
	for _, r := range reqs {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	out = append(out, labelOrderSeeds(t)...)
	// Requests a real Prometheus sent (testdata/README.md).
	files, err := filepath.Glob("testdata/prometheus-*.pb")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured requests in testdata: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// labelOrderSeeds are 1.0 requests whose series' labels are not one
// leading run of canonically encoded Label fields: after a sample,
// between samples, or with a length of two bytes.
func labelOrderSeeds(t testing.TB) [][]byte {
	t.Helper()
	field := func(num int, b []byte) []byte { // a length-delimited field
		return append(binary.AppendUvarint([]byte{byte(num<<3 | 2)}, uint64(len(b))), b...)
	}
	label := func(name, value string) []byte {
		return field(1, append(field(1, []byte(name)), field(2, []byte(value))...))
	}
	sample, err := (&prompb.Sample{Value: 3, Timestamp: 1_700_000_000_000}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	smp := field(2, sample)
	series := [][]byte{
		slices.Concat(smp, label("__name__", "up"), label("job", "a")),
		slices.Concat(label("__name__", "up"), smp, label("job", "b"), smp),
		slices.Concat(label("__name__", "up"), label("job", strings.Repeat("c", 200)), smp),
		slices.Concat(label("__name__", "up"), label("job", "d"), smp, smp),
	}
	var out [][]byte
	for _, ts := range series {
		out = append(out, field(1, ts))
	}
	return append(out, slices.Concat(out...))
}

func seedsV2(t testing.TB) [][]byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	ref := func(ss ...string) []uint32 { return st.SymbolizeLabels(labelsOf(ss...), nil) }
	ih, fh := intHistogram(), floatHistogram()
	ihb, _ := ih.Marshal()
	fhb, _ := fh.Marshal()
	var h2, f2 writev2.Histogram
	if err := h2.Unmarshal(ihb); err != nil {
		t.Fatal(err)
	}
	if err := f2.Unmarshal(fhb); err != nil {
		t.Fatal(err)
	}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: ref("__name__", "http_requests_total", "code", "200", "job", "api"),
			Samples:    []writev2.Sample{{Value: 1027, Timestamp: 1_700_000_000_000, StartTimestamp: 1_699_999_000_000}, {Value: staleNaN, Timestamp: 1_700_000_015_000}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: ref("trace_id", "4bf92f3577b34da6"), Value: 0.2, Timestamp: 1_700_000_000_001}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests served."), UnitRef: st.Symbolize("requests")},
		},
		{
			LabelsRefs: ref("__name__", "rpc_latency_seconds", "job", "api"),
			Histograms: []writev2.Histogram{h2, f2},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
		},
	}}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bad := &writev2.Request{Symbols: []string{"", "__name__", "up"}, Timeseries: []writev2.TimeSeries{
		{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: 5}}},
		{LabelsRefs: []uint32{1, 9}, Samples: []writev2.Sample{{Value: 1, Timestamp: 5}}},
	}}
	bb, err := bad.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{b, bb, nil}
}

func TestDecodeV1MatchesReference(t *testing.T) {
	var r Request
	for i, in := range seedsV1(t) {
		checkV1(t, &r, in, fmt.Sprintf("seed %d", i), true)
	}
}

func TestDecodeV2MatchesReference(t *testing.T) {
	var r Request
	for i, in := range seedsV2(t) {
		checkV2(t, &r, in, fmt.Sprintf("seed %d", i), true)
	}
}

func TestDecodeV2BadSymbol(t *testing.T) {
	var r Request
	if err := DecodeV2(&r, seedsV2(t)[1]); err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 2 || r.Series[0].HasBadSymbol || !r.Series[1].HasBadSymbol || r.Series[1].BadSymbol != 9 {
		t.Fatalf("series %+v", r.Series)
	}
}

func TestDecodeMalformed(t *testing.T) {
	for name, in := range map[string][]byte{
		"truncated length": {0x0a, 0x05, 0x01},
		"bad varint":       {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"field zero":       {0x02, 0x00},
		"wrong wire type":  {0x08, 0x01},
		"group wire type":  {0x0b},
	} {
		var r Request
		if err := DecodeV1(&r, in); !errors.Is(err, ErrMalformed) {
			t.Errorf("v1 %s: err %v, want ErrMalformed", name, err)
		}
		if name == "wrong wire type" {
			continue // field 1 is unknown in 2.0
		}
		if err := DecodeV2(&r, in); !errors.Is(err, ErrMalformed) {
			t.Errorf("v2 %s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestHistogramCheck(t *testing.T) {
	nanSum := intHistogram()
	nanSum.Sum = math.NaN()
	nanSum.Count = &prompb.Histogram_CountInt{CountInt: nanSum.GetCountInt() + 2} // two NaN observations
	valid := []prompb.Histogram{intHistogram(), floatHistogram(), nanSum}
	var c HistogramChecker
	for i, h := range valid {
		b, _ := h.Marshal()
		if err := c.Check(b); err != nil {
			t.Errorf("valid %d: %v", i, err)
		}
	}
	mutate := map[string]func(h *prompb.Histogram){
		"span mismatch":   func(h *prompb.Histogram) { h.PositiveDeltas = h.PositiveDeltas[:3] },
		"negative bucket": func(h *prompb.Histogram) { h.PositiveDeltas = []int64{1, -2, 0, 0} },
		"schema":          func(h *prompb.Histogram) { h.Schema = 9 },
		"count too low":   func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: 3} },
		// Prometheus rejects an integer histogram whose count is not the
		// sum of its buckets unless its sum is NaN (NaN observations).
		"count too high":  func(h *prompb.Histogram) { h.Count = &prompb.Histogram_CountInt{CountInt: h.GetCountInt() + 1} },
		"mixed counts":    func(h *prompb.Histogram) { h.PositiveCounts = []float64{1} },
		"negative offset": func(h *prompb.Histogram) { h.PositiveSpans[1].Offset = -1 },
	}
	for name, m := range mutate {
		h := intHistogram()
		m(&h)
		b, _ := h.Marshal()
		if err := c.Check(b); !errors.Is(err, ErrBadHistogram) {
			t.Errorf("%s: err %v, want ErrBadHistogram", name, err)
		}
	}
}

// checkV1 decodes in with both decoders. Whenever ours accepts a request,
// the reference must accept it too and agree on every field. mustAccept
// also requires ours to accept what the reference accepts.
func checkV1(t *testing.T, r *Request, in []byte, name string, mustAccept bool) {
	t.Helper()
	var ref prompb.WriteRequest
	refErr := ref.Unmarshal(in)
	err := DecodeV1(r, in)
	if err == nil {
		err = checkHistograms(r)
		checkUTF8Claims(t, r)
	}
	compare(t, name, err, refErr, mustAccept, func() error { return equalCanon(canonOurs(r), canonV1(&ref)) })
}

func checkV2(t *testing.T, r *Request, in []byte, name string, mustAccept bool) {
	t.Helper()
	var ref writev2.Request
	refErr := ref.Unmarshal(in)
	err := DecodeV2(r, in)
	if err == nil {
		err = checkHistograms(r)
		checkUTF8Claims(t, r)
	}
	if err == nil && refErr == nil {
		for _, ts := range ref.Timeseries {
			if len(ts.LabelsRefs)%2 != 0 {
				t.Fatalf("%s: odd labels_refs accepted", name)
			}
		}
	}
	compare(t, name, err, refErr, mustAccept, func() error { return equalCanon(canonOurs(r), canonV2(&ref)) })
}

func checkHistograms(r *Request) error {
	var c HistogramChecker
	for _, h := range r.Histograms {
		if err := c.Check(h.Raw); err != nil {
			return err
		}
	}
	return nil
}

func compare(t *testing.T, name string, err, refErr error, mustAccept bool, eq func() error) {
	t.Helper()
	switch {
	case err == nil && refErr != nil:
		t.Fatalf("%s: accepted what the reference rejects (%v)", name, refErr)
	case err != nil && refErr == nil && mustAccept:
		t.Fatalf("%s: rejected what the reference accepts: %v", name, err)
	case err == nil:
		if e := eq(); e != nil {
			t.Fatalf("%s: %v", name, e)
		}
	}
}

func FuzzDecodeV1(f *testing.F) {
	for _, s := range seedsV1(f) {
		f.Add(s)
	}
	var r Request
	f.Fuzz(func(t *testing.T, in []byte) {
		checkV1(t, &r, in, "input", false)
	})
}

func FuzzDecodeV2(f *testing.F) {
	for _, s := range seedsV2(f) {
		f.Add(s)
	}
	var r Request
	f.Fuzz(func(t *testing.T, in []byte) {
		checkV2(t, &r, in, "input", false)
	})
}

func labelsOf(ss ...string) labels.Labels {
	return labels.FromStrings(ss...)
}

// checkUTF8Claims fails when the decoder vouches for the UTF-8 of a series'
// labels (Series.LabelsUTF8) and one of them is not valid.
func checkUTF8Claims(t *testing.T, r *Request) {
	t.Helper()
	for i := range r.Series {
		s := &r.Series[i]
		if !s.LabelsUTF8 {
			continue
		}
		for _, l := range r.SeriesLabels(s) {
			if !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
				t.Fatalf("series %d vouched UTF-8 but has label %q=%q", i, l.Name, l.Value)
			}
		}
	}
}

func TestUTF8ClaimsAreSound(t *testing.T) {
	var r Request
	bad := []string{"\xff", "a\xc3", "\x80b", "\xe2\x82", "ok"}
	for _, v := range bad {
		for _, n := range bad {
			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a" + n, Value: v}, {Name: "z", Value: v + n}},
			}}}
			b, err := req.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := DecodeV1(&r, b); err != nil {
				t.Fatal(err)
			}
			checkUTF8Claims(t, &r)
			if (v == "ok" && n == "ok") != r.Series[0].LabelsUTF8 {
				t.Errorf("value %q name %q: LabelsUTF8 %v", v, n, r.Series[0].LabelsUTF8)
			}
		}
	}
}

// TestDecodeTruncatesNarrowVarints: a varint of a uint32 or enum field is
// truncated to 32 bits, as protobuf decodes it (help_ref 2^32+3 is symbol
// 3, type 2^32+1 is COUNTER), like labels_refs.
func TestDecodeTruncatesNarrowVarints(t *testing.T) {
	field := func(num int, b []byte) []byte {
		return append(binary.AppendUvarint([]byte{byte(num<<3 | 2)}, uint64(len(b))), b...)
	}
	varint := func(num int, v uint64) []byte { return binary.AppendUvarint([]byte{byte(num << 3)}, v) }
	sample, err := (&prompb.Sample{Value: 1, Timestamp: 5}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	md := slices.Concat(varint(1, 1<<32|1), varint(3, 1<<32|3), varint(4, 1<<33))
	v2 := slices.Concat(field(4, nil), field(4, []byte("__name__")), field(4, []byte("up")), field(4, []byte("Help.")),
		field(5, slices.Concat(field(1, []byte{1, 2}), field(2, sample), field(5, md))))
	var r Request
	checkV2(t, &r, v2, "v2", true)
	if r.Series[0].HasBadSymbol || r.Series[0].Metadata != (proto.Metadata{Type: "counter", Help: "Help."}) {
		t.Errorf("v2 series %+v", r.Series[0])
	}
	v1 := field(3, slices.Concat(varint(1, 1<<32|2), field(2, []byte("up"))))
	checkV1(t, &r, v1, "v1", true)
	if r.Metadata[0].Metadata.Type != "gauge" {
		t.Errorf("v1 metadata %+v", r.Metadata[0])
	}
}
