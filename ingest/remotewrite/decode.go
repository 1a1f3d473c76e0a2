// Package remotewrite decodes Prometheus remote-write requests, protocol 1.0
// (prometheus.WriteRequest) and 2.0 (io.prometheus.write.v2.Request), from
// their uncompressed protobuf bytes into a flat, reusable Request.
//
// The decoders are hand-written for the hot path: once a Request's slices
// have grown they allocate nothing per series or sample, and every string
// they return points into the body passed to Decode. The body must therefore
// stay unchanged for as long as the Request is used. Unknown fields are
// skipped, as protobuf requires; malformed wire data is an error for the
// whole request. Problems of one series (a v2 symbol reference out of range)
// do not fail the request: they are recorded on the series so that the
// caller can reject it alone.
package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
	"unsafe"

	"github.com/augur-ops/augur/proto"
)

// Sample is one float sample.
type Sample struct {
	Value     float64
	Timestamp int64 // unix ms
	Start     int64 // start (created) timestamp, unix ms; 0 when unknown (always in 1.0)
}

// Exemplar is one exemplar; its labels are Request.ExemplarLabels[LabelsStart:LabelsEnd].
type Exemplar struct {
	LabelsStart, LabelsEnd int32
	Value                  float64
	Timestamp              int64
}

// Histogram is one native histogram: Raw is the protobuf encoding of the
// remote-write Histogram message (the same in 1.0 and 2.0), Timestamp its
// timestamp field, read for validation.
type Histogram struct {
	Raw       []byte
	Timestamp int64
}

// Series is one time series of a request. The ranges index the flat slices
// of the Request; read its labels with Request.SeriesLabels.
type Series struct {
	LabelsStart, LabelsEnd         int32
	SamplesStart, SamplesEnd       int32
	HistogramsStart, HistogramsEnd int32
	ExemplarsStart, ExemplarsEnd   int32
	Metadata                       proto.Metadata
	// BadSymbol is set (2.0) when a symbol reference of the series is out of
	// range; its labels then hold only the references that resolved.
	BadSymbol    uint32
	HasBadSymbol bool
	// LabelsWire (1.0) is the series' label fields as they arrived, when
	// they are contiguous, canonically encoded Label messages; else nil.
	// Equal bytes decode to equal labels.
	LabelsWire []byte
	// LabelsUTF8 is set when the decoder has already checked that every
	// label name and value of the series is valid UTF-8; when false the
	// caller must check.
	LabelsUTF8 bool
}

// Request is a decoded write request. Reuse one per goroutine: Decode resets
// it and reuses its slices.
type Request struct {
	Version        int // 1 or 2
	Series         []Series
	Labels         []proto.Label
	Samples        []Sample
	Histograms     []Histogram
	Exemplars      []Exemplar
	ExemplarLabels []proto.Label
	// Metadata holds 1.0 metric-family metadata (MetricMetadata messages);
	// its Labels are the family name as __name__.
	Metadata []FamilyMetadata

	symbols []string
	refs    []uint32
	// symbolsUTF8 is set (2.0) when every symbol is valid UTF-8.
	symbolsUTF8 bool
}

// FamilyMetadata is a remote-write 1.0 MetricMetadata message.
type FamilyMetadata struct {
	Family   string
	Metadata proto.Metadata
}

// SeriesLabels returns the labels of series s. The decoder may leave them
// in their wire bytes (s.LabelsStart < 0); they are decoded on first use.
func (r *Request) SeriesLabels(s *Series) []proto.Label {
	if s.LabelsStart < 0 {
		s.LabelsStart = int32(len(r.Labels))
		for w := s.LabelsWire; len(w) > 0; w = w[2+int(w[1]):] {
			l, _, _ := decodeLabelFast(w[2 : 2+int(w[1])]) // canonical: checked
			r.Labels = append(r.Labels, l)
		}
		s.LabelsEnd = int32(len(r.Labels))
	}
	return r.Labels[s.LabelsStart:s.LabelsEnd]
}

// SeriesSamples returns the samples of series s.
func (r *Request) SeriesSamples(s *Series) []Sample {
	return r.Samples[s.SamplesStart:s.SamplesEnd]
}

func (r *Request) reset(version int) {
	r.Version = version
	r.Series = r.Series[:0]
	clear(r.Labels) // drop references into the previous body
	r.Labels = r.Labels[:0]
	r.Samples = r.Samples[:0]
	clear(r.Histograms)
	r.Histograms = r.Histograms[:0]
	r.Exemplars = r.Exemplars[:0]
	clear(r.ExemplarLabels)
	r.ExemplarLabels = r.ExemplarLabels[:0]
	clear(r.Metadata)
	r.Metadata = r.Metadata[:0]
	clear(r.symbols)
	r.symbols = r.symbols[:0]
}

// ErrMalformed wraps every wire-format error of DecodeV1 and DecodeV2.
var ErrMalformed = errors.New("malformed protobuf")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Protobuf wire types.
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

// buf is a protobuf reader over a byte slice.
type buf struct {
	b []byte
	i int
}

func (p *buf) done() bool { return p.i >= len(p.b) }

func (p *buf) varint() (uint64, error) {
	// Fast path for one byte.
	if p.i < len(p.b) && p.b[p.i] < 0x80 {
		v := uint64(p.b[p.i])
		p.i++
		return v, nil
	}
	v, n := binary.Uvarint(p.b[p.i:])
	if n <= 0 {
		return 0, malformed("bad varint at byte %d", p.i)
	}
	p.i += n
	return v, nil
}

func (p *buf) tag() (field uint64, wire int, err error) {
	v, err := p.varint()
	if err != nil {
		return 0, 0, err
	}
	field = v >> 3
	if field == 0 || field > 1<<29-1 {
		return 0, 0, malformed("field number %d out of range at byte %d", field, p.i)
	}
	return field, int(v & 7), nil
}

func (p *buf) bytes() ([]byte, error) {
	n, err := p.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(p.b)-p.i) {
		return nil, malformed("length %d past end at byte %d", n, p.i)
	}
	b := p.b[p.i : p.i+int(n) : p.i+int(n)]
	p.i += int(n)
	return b, nil
}

func (p *buf) fixed64() (uint64, error) {
	if len(p.b)-p.i < 8 {
		return 0, malformed("truncated fixed64 at byte %d", p.i)
	}
	v := binary.LittleEndian.Uint64(p.b[p.i:])
	p.i += 8
	return v, nil
}

// skip skips a field of the given wire type.
func (p *buf) skip(wire int) error {
	switch wire {
	case wireVarint:
		_, err := p.varint()
		return err
	case wireI64:
		_, err := p.fixed64()
		return err
	case wireLen:
		_, err := p.bytes()
		return err
	case wireI32:
		if len(p.b)-p.i < 4 {
			return malformed("truncated fixed32 at byte %d", p.i)
		}
		p.i += 4
		return nil
	default:
		return malformed("unsupported wire type %d at byte %d", wire, p.i)
	}
}

// expect checks that a known field arrived with the wire type its schema
// gives it; a mismatch is malformed, as in the reference decoders.
func expect(field uint64, wire, want int) error {
	if wire != want {
		return malformed("field %d has wire type %d, want %d", field, wire, want)
	}
	return nil
}

// bytesOf, varintOf and fixed64Of read a known field after checking that it
// came with the wire type its schema gives it.
func (p *buf) bytesOf(field uint64, wire int) ([]byte, error) {
	if err := expect(field, wire, wireLen); err != nil {
		return nil, err
	}
	return p.bytes()
}

func (p *buf) varintOf(field uint64, wire int) (uint64, error) {
	if err := expect(field, wire, wireVarint); err != nil {
		return 0, err
	}
	return p.varint()
}

func (p *buf) fixed64Of(field uint64, wire int) (uint64, error) {
	if err := expect(field, wire, wireI64); err != nil {
		return 0, err
	}
	return p.fixed64()
}

func str(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// DecodeV1 decodes a remote-write 1.0 WriteRequest into r.
func DecodeV1(r *Request, body []byte) error {
	r.reset(1)
	p := buf{b: body}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case v1RequestTimeseries:
			b, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			if err := r.decodeSeriesV1(b); err != nil {
				return fmt.Errorf("timeseries %d: %w", len(r.Series), err)
			}
		case v1RequestMetadata:
			b, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			if err := r.decodeMetadataV1(b); err != nil {
				return fmt.Errorf("metadata %d: %w", len(r.Metadata), err)
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Request) decodeSeriesV1(b []byte) error {
	s := Series{
		LabelsStart:     int32(len(r.Labels)),
		SamplesStart:    int32(len(r.Samples)),
		HistogramsStart: int32(len(r.Histograms)),
		ExemplarsStart:  int32(len(r.Exemplars)),
	}
	if ok, err := r.decodeSeriesV1Canonical(b, s); ok || err != nil {
		return err
	}
	p := buf{b: b}
	// The labels are checked for UTF-8 in one pass over their wire bytes
	// when they are contiguous, canonically encoded Label messages: then
	// every name and value sits between ASCII bytes (a one-byte tag or the
	// last byte of a length), so each is valid when the whole range is.
	regionStart, regionEnd, canonical := -1, -1, true
	for !p.done() {
		at := p.i
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		if field != v1SeriesLabels {
			if err := r.decodeSeriesFieldV1(&p, field, wire); err != nil {
				return err
			}
			continue
		}
		if err := expect(field, wire, wireLen); err != nil {
			return err
		}
		if p.i != at+1 || (regionStart >= 0 && regionEnd != at) {
			canonical = false
		}
		if regionStart < 0 {
			regionStart = at
		}
		lb, err := p.bytes()
		if err != nil {
			return err
		}
		regionEnd = p.i
		l, fast, err := decodeLabelFast(lb)
		if err != nil {
			return err
		}
		canonical = canonical && fast
		r.Labels = append(r.Labels, l)
	}
	s.LabelsEnd = int32(len(r.Labels))
	if canonical && regionStart >= 0 {
		s.LabelsWire = b[regionStart:regionEnd:regionEnd]
		s.LabelsUTF8 = utf8.Valid(s.LabelsWire)
	}
	r.endSeries(s)
	return nil
}

// decodeSeriesV1Canonical decodes a series whose labels come first as
// contiguous, canonically encoded Label messages (as Prometheus writes
// them) and appear nowhere else. It leaves the labels in their wire bytes,
// which SeriesLabels decodes when first asked: a receiver that knows the
// series by those bytes never needs them. For any other series it reports
// false and adds nothing.
func (r *Request) decodeSeriesV1Canonical(b []byte, s Series) (bool, error) {
	end := canonicalLabels(b)
	if end == 0 {
		return false, nil
	}
	p := buf{b: b, i: end}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return false, err
		}
		if field == v1SeriesLabels { // labels elsewhere: decode them all as they come
			r.Samples = r.Samples[:s.SamplesStart]
			clear(r.Histograms[s.HistogramsStart:])
			r.Histograms = r.Histograms[:s.HistogramsStart]
			r.Exemplars = r.Exemplars[:s.ExemplarsStart]
			return false, nil
		}
		if err := r.decodeSeriesFieldV1(&p, field, wire); err != nil {
			return false, err
		}
	}
	s.LabelsWire = b[:end:end]
	s.LabelsUTF8 = utf8.Valid(s.LabelsWire)
	s.LabelsStart, s.LabelsEnd = -1, -1
	r.endSeries(s)
	return true, nil
}

// canonicalLabels returns the length of the run of canonically encoded
// Label fields (one-byte tags and lengths) that b begins with.
func canonicalLabels(b []byte) int {
	i := 0
	for i+2 <= len(b) && b[i] == 0x0a && b[i+1] < 0x80 {
		n := int(b[i+1])
		if i+2+n > len(b) {
			break
		}
		if _, fast, _ := decodeLabelFast(b[i+2 : i+2+n]); !fast {
			break
		}
		i += 2 + n
	}
	return i
}

// decodeSeriesFieldV1 decodes field (not a label) of a 1.0 TimeSeries.
func (r *Request) decodeSeriesFieldV1(p *buf, field uint64, wire int) error {
	switch field {
	case v1SeriesSamples:
		return r.appendSample(p, field, wire, false)
	case v1SeriesExemplars:
		eb, err := p.bytesOf(field, wire)
		if err != nil {
			return err
		}
		return r.decodeExemplarV1(eb)
	case v1SeriesHistograms:
		return r.appendHistogram(p, field, wire)
	default:
		return p.skip(wire)
	}
}

// appendSample decodes a Sample field (2.0's when v2) onto r.Samples.
func (r *Request) appendSample(p *buf, field uint64, wire int, v2 bool) error {
	sb, err := p.bytesOf(field, wire)
	if err != nil {
		return err
	}
	smp, err := decodeSample(sb, v2)
	if err != nil {
		return err
	}
	r.Samples = append(r.Samples, smp)
	return nil
}

// appendHistogram decodes a Histogram field onto r.Histograms.
func (r *Request) appendHistogram(p *buf, field uint64, wire int) error {
	hb, err := p.bytesOf(field, wire)
	if err != nil {
		return err
	}
	h, err := histogramTimestamp(hb)
	if err != nil {
		return err
	}
	r.Histograms = append(r.Histograms, Histogram{Raw: hb, Timestamp: h})
	return nil
}

// endSeries appends s, whose samples, histograms and exemplars end with
// r's.
func (r *Request) endSeries(s Series) {
	s.SamplesEnd = int32(len(r.Samples))
	s.HistogramsEnd = int32(len(r.Histograms))
	s.ExemplarsEnd = int32(len(r.Exemplars))
	r.Series = append(r.Series, s)
}

func decodeLabel(b []byte) (proto.Label, error) {
	l, _, err := decodeLabelFast(b)
	return l, err
}

// decodeLabelFast is decodeLabel reporting whether b was the canonical
// encoding (name, then value, both shorter than 128 bytes), which every
// Prometheus sends and which is decoded without the general loop.
func decodeLabelFast(b []byte) (proto.Label, bool, error) {
	if len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		n := int(b[1])
		if 4+n <= len(b) && b[2+n] == 0x12 && b[3+n] < 0x80 && 4+n+int(b[3+n]) == len(b) {
			return proto.Label{Name: str(b[2 : 2+n]), Value: str(b[4+n:])}, true, nil
		}
	}
	l, err := decodeLabelSlow(b)
	return l, false, err
}

func decodeLabelSlow(b []byte) (proto.Label, error) {
	var l proto.Label
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return l, err
		}
		switch field {
		case labelName, labelValue:
			v, err := p.bytesOf(field, wire)
			if err != nil {
				return l, err
			}
			if field == labelName {
				l.Name = str(v)
			} else {
				l.Value = str(v)
			}
		default:
			if err := p.skip(wire); err != nil {
				return l, err
			}
		}
	}
	return l, nil
}

// decodeSample decodes a Sample of either version (1.0 has fields 1 and 2,
// 2.0 adds start_timestamp 3, unknown to 1.0).
func decodeSample(b []byte, v2 bool) (Sample, error) {
	// Fast path: value then timestamp, nothing else.
	if len(b) >= 11 && b[0] == 0x09 && b[9] == 0x10 {
		ts, n := binary.Uvarint(b[10:])
		if n > 0 && 10+n == len(b) {
			return Sample{Value: math.Float64frombits(binary.LittleEndian.Uint64(b[1:])), Timestamp: int64(ts)}, nil
		}
	}
	var s Sample
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return s, err
		}
		switch field {
		case sampleValue:
			v, err := p.fixed64Of(field, wire)
			if err != nil {
				return s, err
			}
			s.Value = math.Float64frombits(v)
		case sampleTimestamp, sampleStart:
			if field == sampleStart && !v2 {
				if err := p.skip(wire); err != nil {
					return s, err
				}
				continue
			}
			v, err := p.varintOf(field, wire)
			if err != nil {
				return s, err
			}
			if field == sampleTimestamp {
				s.Timestamp = int64(v)
			} else {
				s.Start = int64(v)
			}
		default:
			if err := p.skip(wire); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

func (r *Request) decodeExemplarV1(b []byte) error {
	e := Exemplar{LabelsStart: int32(len(r.ExemplarLabels))}
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case v1ExemplarLabels:
			lb, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			l, err := decodeLabel(lb)
			if err != nil {
				return err
			}
			r.ExemplarLabels = append(r.ExemplarLabels, l)
		case exemplarValue:
			v, err := p.fixed64Of(field, wire)
			if err != nil {
				return err
			}
			e.Value = math.Float64frombits(v)
		case exemplarTimestamp:
			v, err := p.varintOf(field, wire)
			if err != nil {
				return err
			}
			e.Timestamp = int64(v)
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	e.LabelsEnd = int32(len(r.ExemplarLabels))
	r.Exemplars = append(r.Exemplars, e)
	return nil
}

func (r *Request) decodeMetadataV1(b []byte) error {
	var m FamilyMetadata
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case v1MetadataType:
			v, err := p.varintOf(field, wire)
			if err != nil {
				return err
			}
			m.Metadata.Type = metricType(enum(v))
		case v1MetadataFamily, v1MetadataHelp, v1MetadataUnit:
			v, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			switch field {
			case v1MetadataFamily:
				m.Family = str(v)
			case v1MetadataHelp:
				m.Metadata.Help = str(v)
			case v1MetadataUnit:
				m.Metadata.Unit = str(v)
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	r.Metadata = append(r.Metadata, m)
	return nil
}

// enum returns the value of an enum field decoded from varint v: protobuf
// enums are int32, so only the low 32 bits count (a negative value is then
// large, an unknown value).
func enum(v uint64) uint64 { return uint64(uint32(v)) }

// metricType maps the metric type enum (identical numbering in 1.0 and 2.0)
// to the block's type names:
//
//	enum MetricType {
//	  UNKNOWN = 0; COUNTER = 1; GAUGE = 2; HISTOGRAM = 3;
//	  GAUGEHISTOGRAM = 4; SUMMARY = 5; INFO = 6; STATESET = 7;
//	}
func metricType(v uint64) string {
	switch v {
	case 1:
		return "counter"
	case 2:
		return "gauge"
	case 3:
		return "histogram"
	case 4:
		return "gaugehistogram"
	case 5:
		return "summary"
	case 6:
		return "info"
	case 7:
		return "stateset"
	default:
		return ""
	}
}

// histogramTimestamp reads the timestamp of a Histogram message and
// checks that the message is well-formed at the wire level.
func histogramTimestamp(b []byte) (int64, error) {
	var ts int64
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return 0, err
		}
		if field == histTimestamp && wire == wireVarint {
			v, err := p.varint()
			if err != nil {
				return 0, err
			}
			ts = int64(v)
			continue
		}
		if err := p.skip(wire); err != nil {
			return 0, err
		}
	}
	return ts, nil
}

// DecodeV2 decodes a remote-write 2.0 Request into r. Symbols are resolved;
// a series with a reference out of range is kept with HasBadSymbol set.
func DecodeV2(r *Request, body []byte) error {
	r.reset(2)
	r.symbolsUTF8 = true
	// Symbols may come after the series on the wire: collect them first.
	p := buf{b: body}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		if field == v2RequestSymbols {
			v, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			r.symbols = append(r.symbols, str(v))
			r.symbolsUTF8 = r.symbolsUTF8 && utf8.Valid(v)
			continue
		}
		if err := p.skip(wire); err != nil {
			return err
		}
	}
	if len(r.symbols) > 0 && r.symbols[0] != "" {
		return malformed("symbols[0] is %q, must be the empty string", r.symbols[0])
	}
	p = buf{b: body}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		if field == v2RequestTimeseries {
			v, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			if err := r.decodeSeriesV2(v); err != nil {
				return fmt.Errorf("timeseries %d: %w", len(r.Series), err)
			}
			continue
		}
		if err := p.skip(wire); err != nil {
			return err
		}
	}
	return nil
}

// symbol resolves a reference; ok is false when it is out of range.
// Reference 0 is the empty string by the specification, even when a sender
// sends no symbols at all.
func (r *Request) symbol(ref uint64) (string, bool) {
	if ref == 0 && len(r.symbols) == 0 {
		return "", true
	}
	if ref >= uint64(len(r.symbols)) {
		return "", false
	}
	return r.symbols[ref], true
}

// appendRefs decodes labels_refs, packed or not, into r.refs.
func (r *Request) appendRefs(p *buf, wire int) error {
	if wire == wireVarint {
		v, err := p.varint()
		if err != nil {
			return err
		}
		r.refs = append(r.refs, uint32(v))
		return nil
	}
	if wire != wireLen {
		return malformed("labels_refs has wire type %d", wire)
	}
	b, err := p.bytes()
	if err != nil {
		return err
	}
	refs := slices.Grow(r.refs, len(b)) // at least a byte per reference
	for i := 0; i < len(b); {
		// References take one or two bytes below 16,384 symbols.
		if c := b[i]; c < 0x80 {
			refs = append(refs, uint32(c))
			i++
			continue
		}
		if i+1 < len(b) && b[i+1] < 0x80 {
			refs = append(refs, uint32(b[i]&0x7f)|uint32(b[i+1])<<7)
			i += 2
			continue
		}
		v, n := binary.Uvarint(b[i:])
		if n <= 0 {
			return malformed("bad varint in labels_refs at byte %d", p.i-len(b)+i)
		}
		refs = append(refs, uint32(v)) // a uint32 field: truncated, as protobuf reads it
		i += n
	}
	r.refs = refs
	return nil
}

// resolveRefs turns r.refs (name, value pairs) into labels appended to dst.
func (r *Request) resolveRefs(dst []proto.Label, s *Series) ([]proto.Label, error) {
	if len(r.refs)%2 != 0 {
		return dst, malformed("odd number of label references (%d)", len(r.refs))
	}
	for i := 0; i < len(r.refs); i += 2 {
		n, ok1 := r.symbol(uint64(r.refs[i]))
		v, ok2 := r.symbol(uint64(r.refs[i+1]))
		if !ok1 || !ok2 {
			if s != nil && !s.HasBadSymbol {
				s.HasBadSymbol = true
				s.BadSymbol = r.refs[i]
				if ok1 {
					s.BadSymbol = r.refs[i+1]
				}
			}
			continue
		}
		dst = append(dst, proto.Label{Name: n, Value: v})
	}
	return dst, nil
}

func (r *Request) decodeSeriesV2(b []byte) error {
	s := Series{
		LabelsStart:     int32(len(r.Labels)),
		SamplesStart:    int32(len(r.Samples)),
		HistogramsStart: int32(len(r.Histograms)),
		ExemplarsStart:  int32(len(r.Exemplars)),
	}
	r.refs = r.refs[:0]
	var mdRefs [2]uint64 // help_ref, unit_ref
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case v2SeriesLabelsRefs:
			if err := r.appendRefs(&p, wire); err != nil {
				return err
			}
		case v2SeriesSamples:
			if err := r.appendSample(&p, field, wire, true); err != nil {
				return err
			}
		case v2SeriesHistograms:
			if err := r.appendHistogram(&p, field, wire); err != nil {
				return err
			}
		case v2SeriesExemplars:
			eb, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			if err := r.decodeExemplarV2(eb, &s); err != nil {
				return err
			}
		case v2SeriesMetadata:
			mb, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			if err := r.decodeMetadataV2(mb, &s, &mdRefs); err != nil {
				return err
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	r.resolveMetadataV2(&s, mdRefs)
	// Series labels are resolved last: exemplars reuse r.refs while decoding.
	var err error
	r.Labels, err = r.resolveRefs(r.Labels, &s)
	if err != nil {
		return err
	}
	s.LabelsUTF8 = r.symbolsUTF8
	s.LabelsEnd = int32(len(r.Labels))
	s.SamplesEnd = int32(len(r.Samples))
	s.HistogramsEnd = int32(len(r.Histograms))
	s.ExemplarsEnd = int32(len(r.Exemplars))
	r.Series = append(r.Series, s)
	return nil
}

func (r *Request) decodeExemplarV2(b []byte, s *Series) error {
	// The series' own refs are in r.refs; keep them and decode after them.
	seriesRefs := len(r.refs)
	e := Exemplar{LabelsStart: int32(len(r.ExemplarLabels))}
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case v2ExemplarLabelsRefs:
			if err := r.appendRefs(&p, wire); err != nil {
				return err
			}
		case exemplarValue:
			v, err := p.fixed64Of(field, wire)
			if err != nil {
				return err
			}
			e.Value = math.Float64frombits(v)
		case exemplarTimestamp:
			v, err := p.varintOf(field, wire)
			if err != nil {
				return err
			}
			e.Timestamp = int64(v)
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	exRefs := r.refs[seriesRefs:]
	saved := r.refs
	r.refs = exRefs
	var err error
	r.ExemplarLabels, err = r.resolveRefs(r.ExemplarLabels, s)
	r.refs = saved[:seriesRefs]
	if err != nil {
		return err
	}
	e.LabelsEnd = int32(len(r.ExemplarLabels))
	r.Exemplars = append(r.Exemplars, e)
	return nil
}

// decodeMetadataV2 reads a Metadata message into s.Metadata.Type and refs
// (help, unit). The references are resolved once the whole series is read:
// a later Metadata message of the same series overrides an earlier one, as
// protobuf merges repeated occurrences of a message field.
func (r *Request) decodeMetadataV2(b []byte, s *Series, refs *[2]uint64) error {
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case v2MetadataType, v2MetadataHelpRef, v2MetadataUnitRef:
			v, err := p.varintOf(field, wire)
			if err != nil {
				return err
			}
			// type is an enum, the refs uint32: protobuf keeps the low
			// 32 bits of a longer varint, as appendRefs does.
			switch field {
			case v2MetadataType:
				s.Metadata.Type = metricType(enum(v))
			case v2MetadataHelpRef:
				refs[0] = uint64(uint32(v))
			case v2MetadataUnitRef:
				refs[1] = uint64(uint32(v))
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolveMetadataV2 resolves the help and unit references of s.
func (r *Request) resolveMetadataV2(s *Series, refs [2]uint64) {
	for i, ref := range refs {
		sym, ok := r.symbol(ref)
		if !ok {
			if !s.HasBadSymbol {
				s.HasBadSymbol, s.BadSymbol = true, uint32(ref)
			}
			continue
		}
		if i == 0 {
			s.Metadata.Help = sym
		} else {
			s.Metadata.Unit = sym
		}
	}
}
