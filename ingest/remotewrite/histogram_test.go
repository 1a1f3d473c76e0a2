package remotewrite

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// prometheusAccepts reports whether Prometheus' remote-write receiver would
// take raw as a native histogram: it unmarshals, and the histogram the
// Count oneof makes of it (integer or float) passes Validate.
func prometheusAccepts(raw []byte) error {
	var h prompb.Histogram
	if err := h.Unmarshal(raw); err != nil {
		return err
	}
	if h.IsFloatHistogram() {
		return h.ToFloatHistogram().Validate()
	}
	return h.ToIntHistogram().Validate()
}

func customHistogram() prompb.Histogram {
	return prompb.Histogram{
		Count:         &prompb.Histogram_CountInt{CountInt: 5},
		Sum:           10,
		Schema:        -53,
		ZeroCount:     &prompb.Histogram_ZeroCountInt{},
		PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}, {Offset: 1, Length: 1}},
		// Buckets 0, 1 and 3 of the bounds 0.1, 0.5, 1 (and +Inf).
		PositiveDeltas: []int64{1, 1, 0},
		CustomValues:   []float64{0.1, 0.5, 1},
		Timestamp:      1_700_000_000_000,
	}
}

// TestHistogramCheckCustomBuckets: a custom-bucket histogram Prometheus
// rejects (its bucket iterators index custom_values by the spans) is a bad
// histogram here too.
func TestHistogramCheckCustomBuckets(t *testing.T) {
	var c HistogramChecker
	ok := customHistogram()
	b, _ := ok.Marshal()
	if err := c.Check(b); err != nil {
		t.Fatalf("valid custom-bucket histogram: %v", err)
	}
	if err := prometheusAccepts(b); err != nil {
		t.Fatalf("Prometheus rejects the valid custom-bucket histogram: %v", err)
	}
	for name, m := range map[string]func(h *prompb.Histogram){
		"spans past the bounds": func(h *prompb.Histogram) { h.PositiveSpans[1].Offset = 2 }, // bucket 4 of 4
		"negative first offset": func(h *prompb.Histogram) { h.PositiveSpans[0].Offset = -1 },
		"+Inf bound":            func(h *prompb.Histogram) { h.CustomValues[2] = math.Inf(1) },
		"zero count": func(h *prompb.Histogram) {
			h.ZeroCount = &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}
			h.Count = &prompb.Histogram_CountInt{CountInt: 6}
		},
		"zero threshold": func(h *prompb.Histogram) { h.ZeroThreshold = 0.001 },
	} {
		h := customHistogram()
		h.PositiveSpans = append([]prompb.BucketSpan(nil), h.PositiveSpans...)
		h.CustomValues = append([]float64(nil), h.CustomValues...)
		m(&h)
		bothReject(t, &c, name, &h)
	}
}

// TestHistogramCheckSpanIndexRange: exponential buckets are numbered by
// int32; spans that reach past it are rejected, as Prometheus does.
func TestHistogramCheckSpanIndexRange(t *testing.T) {
	var c HistogramChecker
	for name, spans := range map[string][]prompb.BucketSpan{
		"first offset MinInt32": {{Offset: math.MinInt32, Length: 1}},
		"past MaxInt32":         {{Offset: math.MaxInt32, Length: 1}, {Offset: 1, Length: 1}},
	} {
		h := prompb.Histogram{
			Count:          &prompb.Histogram_CountInt{CountInt: uint64(len(spans))},
			ZeroCount:      &prompb.Histogram_ZeroCountInt{},
			PositiveSpans:  spans,
			PositiveDeltas: make([]int64, len(spans)),
		}
		h.PositiveDeltas[0] = 1
		bothReject(t, &c, name, &h)
	}
}

// bothReject fails t unless Prometheus and the checker both reject h.
func bothReject(t *testing.T, c *HistogramChecker, name string, h *prompb.Histogram) {
	t.Helper()
	b, _ := h.Marshal()
	if prometheusAccepts(b) == nil {
		t.Fatalf("%s: Prometheus accepts it; the case tests nothing", name)
	}
	if err := c.Check(b); !errors.Is(err, ErrBadHistogram) {
		t.Errorf("%s: err %v, want ErrBadHistogram", name, err)
	}
}

// FuzzHistogramCheck: what the checker accepts, Prometheus accepts. (The
// checker is stricter on purpose in places: reset hints, NaN and negative
// float counts, schemas Prometheus would reduce.)
func FuzzHistogramCheck(f *testing.F) {
	for _, h := range []prompb.Histogram{intHistogram(), floatHistogram(), customHistogram()} {
		b, _ := h.Marshal()
		f.Add(b)
	}
	var c HistogramChecker
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := c.Check(raw); err != nil {
			if !errors.Is(err, ErrBadHistogram) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v wraps neither ErrBadHistogram nor ErrMalformed", err)
			}
			return
		}
		if err := prometheusAccepts(raw); err != nil {
			t.Fatalf("accepted what Prometheus rejects: %v", err)
		}
	})
}

// TestHistogramCheckFloatNeedsCountFloat: Prometheus reads a histogram as
// float only when its count is count_float; float buckets under no count
// are read as an integer histogram without buckets.
func TestHistogramCheckFloatNeedsCountFloat(t *testing.T) {
	h := floatHistogram()
	h.Count = nil
	h.PositiveCounts = []float64{0, 0, 0} // else the count (0) is below them
	b, _ := h.Marshal()
	if prometheusAccepts(b) == nil {
		t.Fatal("Prometheus accepts it; the case tests nothing")
	}
	var c HistogramChecker
	if err := c.Check(b); !errors.Is(err, ErrBadHistogram) {
		t.Errorf("err %v, want ErrBadHistogram", err)
	}
}

// TestHistogramCheckLongSint32: a sint32 (schema, span offset) sent as a
// longer varint is its low 32 bits, zigzag-decoded, as protobuf reads it.
func TestHistogramCheckLongSint32(t *testing.T) {
	h := intHistogram()
	h.Schema = 0
	b, _ := h.Marshal()
	b = binary.AppendUvarint(append(b, 4<<3), 1<<32|2) // schema 1
	if err := prometheusAccepts(b); err != nil {
		t.Fatalf("Prometheus rejects it: %v", err)
	}
	var c HistogramChecker
	if err := c.Check(b); err != nil {
		t.Errorf("schema 1 as a 5-byte varint: %v", err)
	}
}
