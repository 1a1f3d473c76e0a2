package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The samples block.
//
// Every record on augur.samples carries one block: an Arrow IPC stream
// (schema message, one record batch, end-of-stream marker) holding one row per
// series of one partition of one remote-write request. Any Arrow
// implementation reads it (pyarrow: `pa.ipc.open_stream(value).read_all()`).
//
// Columns, none nullable:
//
//	series          binary            the series labels, sorted by name, __name__ included,
//	                                  each as 0xff name 0xfe value (UTF-8 has neither byte;
//	                                  in Python: dict(p.split(b"\xfe") for p in s.split(b"\xff")[1:]))
//	timestamps      list<int64>       sample timestamps, unix milliseconds
//	values          list<float64>     sample values; stale markers keep their NaN bits
//	start_timestamps list<int64>      per sample: remote-write 2.0 start (created) timestamp, ms, 0 when unknown
//	metric_type     utf8              counter, gauge, histogram, gaugehistogram, summary, info, stateset, or ""
//	help            utf8              metadata help text, or ""
//	unit            utf8              metadata unit, or ""
//	histograms      list<binary>      native histograms, each the protobuf encoding of the
//	                                  remote-write Histogram message (the same in 1.0 and 2.0)
//	exemplars       list<binary>      exemplars, each the protobuf encoding of the remote-write
//	                                  1.0 Exemplar message (labels, value, timestamp)
//
//	series_ref      uint32            (version 3) the series' number in the writer's series
//	                                  dictionary, 0 when the row is not in one
//
// Schema metadata: "augur.block.version" = "2" or "3", "tenant" = the
// request's X-Scope-OrgID (also in the Kafka record header "tenant"), and in
// version 3 "augur.series.dict" = the id of the writer's series dictionary
// (16 hex digits).
//
// Series references (version 3). A receiver numbers the series it writes to
// a partition. The first row of a series in a partition, and again at least
// every SeriesRefMaxAge, defines its number: series_ref set and the labels
// and metadata given. Later rows refer to it: series_ref set, series, help,
// unit and metric_type empty. A reference is written only once the record
// defining it was acknowledged, so it always follows its definition in the
// partition, by at most SeriesRefMaxAge of the writer's clock (record
// timestamps). A reader resolves it from the definitions it has read; one
// that starts at an offset reads the partition from SeriesRefMaxAge before it
// first (the stream does on a restore). The labels of a series are then
// written about once a minute instead of once a sample: the bytes per sample
// are the samples' (bench/RESULTS-ingest.md). A block whose rows have no
// numbers is written as version 2.
//
// Version 1 had the labels as a map<utf8, utf8> column named "labels"; the
// rest is the same as version 2. BlockReader reads all three, so a topic
// written by an older receiver is read through an upgrade. Version 2 exists
// for bytes: a map column carries two int32 offsets per label, which no
// compression of the Kafka batch shrinks (bench/RESULTS-ingest.md); one
// binary value per series carries one.

// BlockVersion is the value of the schema metadata key "augur.block.version"
// in the blocks BlockBuilder writes with series references.
const BlockVersion = "3"

// BlockVersionPlain is the version BlockBuilder writes for a block without
// series references: version 3 without its series_ref column.
const BlockVersionPlain = "2"

// blockVersion1 is the version whose labels are a map column.
const blockVersion1 = "1"

// SeriesRefMaxAge bounds, by the writer's clock, how long after the record
// defining a series number a reference to it is written (see above).
const SeriesRefMaxAge = time.Minute

// MaxSeriesRef bounds the series numbers a reader accepts, and so the table
// it keeps per dictionary.
const MaxSeriesRef = 1 << 24

// Label is one label of a series. In a BlockReader the strings point into the
// block and are valid until the next Reset.
type Label struct {
	Name, Value string
}

// LabelValue returns the value of the label name in lbls and whether it is
// there.
func LabelValue(lbls []Label, name string) (string, bool) {
	for i := range lbls {
		if lbls[i].Name == name {
			return lbls[i].Value, true
		}
	}
	return "", false
}

// Metadata is what remote-write 2.0 says about a series' metric.
type Metadata struct {
	Type, Help, Unit string
}

var blockFields = []arrow.Field{
	{Name: "series", Type: arrow.BinaryTypes.Binary},
	{Name: "timestamps", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64)},
	{Name: "values", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float64)},
	{Name: "start_timestamps", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64)},
	{Name: "metric_type", Type: arrow.BinaryTypes.String},
	{Name: "help", Type: arrow.BinaryTypes.String},
	{Name: "unit", Type: arrow.BinaryTypes.String},
	{Name: "histograms", Type: arrow.ListOfNonNullable(arrow.BinaryTypes.Binary)},
	{Name: "exemplars", Type: arrow.ListOfNonNullable(arrow.BinaryTypes.Binary)},
	{Name: "series_ref", Type: arrow.PrimitiveTypes.Uint32},
}

// blockFieldsPlain are version 2's columns: no series_ref.
var blockFieldsPlain = blockFields[:9]

// blockFieldsV1 are version 1's columns: labels as a map.
var blockFieldsV1 = append([]arrow.Field{{Name: "labels", Type: labelsType}}, blockFieldsPlain[1:]...)

var labelsType = func() *arrow.MapType {
	t := arrow.MapOfFields(
		arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "value", Type: arrow.BinaryTypes.String})
	t.KeysSorted = true
	return t
}()

// varlen is an Arrow variable-length column under construction: int32
// offsets and the concatenated bytes.
type varlen struct {
	offsets []int32
	data    []byte
}

func (v *varlen) reset() {
	v.offsets = append(v.offsets[:0], 0)
	v.data = v.data[:0]
}

func (v *varlen) appendString(s string) {
	v.data = append(v.data, s...)
	v.offsets = append(v.offsets, int32(len(v.data)))
}

func (v *varlen) appendBytes(b []byte) {
	v.data = append(v.data, b...)
	v.offsets = append(v.offsets, int32(len(v.data)))
}

// BlockBuilder builds one samples block. The zero value is ready after Reset.
// It reuses its buffers across blocks and allocates nothing per sample once
// they have grown. Not safe for concurrent use.
//
// Use: Reset, then per series StartSeries followed by that series'
// AppendSample / AppendHistogram / AppendExemplar calls, then AppendIPC.
type BlockBuilder struct {
	tenant string
	n      int // series

	series      varlen  // per series, its labels as 0xff name 0xfe value
	tsOffsets   []int32 // per series, index into ts and vs
	ts          []int64
	vs          []float64
	startTs     []int64 // per sample
	typ, help   varlen
	unit        varlen
	histOffsets []int32
	hists       varlen
	exOffsets   []int32
	exemplars   varlen
	refs        []uint32 // per series, its number in dict; 0 none
	dict        uint64   // the series dictionary of refs, 0 before the first

	samples int

	// The encoded schema message of schemaTenant, reused while the tenant
	// stays the same.
	schema       *arrow.Schema
	schemaMsg    []byte
	schemaTenant string
	schemaDict   uint64
	batch        recordBatchEncoder
}

// Reset empties the builder for a new block of the given tenant.
func (b *BlockBuilder) Reset(tenant string) {
	b.tenant = tenant
	b.n = 0
	b.samples = 0
	b.series.reset()
	b.tsOffsets = append(b.tsOffsets[:0], 0)
	b.ts = b.ts[:0]
	b.vs = b.vs[:0]
	b.startTs = b.startTs[:0]
	b.typ.reset()
	b.help.reset()
	b.unit.reset()
	b.histOffsets = append(b.histOffsets[:0], 0)
	b.hists.reset()
	b.exOffsets = append(b.exOffsets[:0], 0)
	b.exemplars.reset()
	b.refs = b.refs[:0]
	b.dict = 0
}

// Series returns the number of series added since Reset.
func (b *BlockBuilder) Series() int { return b.n }

// Samples returns the number of float samples added since Reset.
func (b *BlockBuilder) Samples() int { return b.samples }

// StartSeries begins a new row. lbls must be sorted by name; the builder
// copies them.
func (b *BlockBuilder) StartSeries(lbls []Label, md Metadata) {
	b.series.data = AppendSeriesKey(b.series.data, "", lbls)
	b.startRow(md)
}

// StartSeriesColumn is StartSeries with the row's series column given as
// AppendSeriesKey(nil, "", lbls) made it (a caller that already built it
// for routing): it is copied, not checked.
func (b *BlockBuilder) StartSeriesColumn(series []byte, md Metadata) {
	b.series.data = append(b.series.data, series...)
	b.startRow(md)
}

// validUTF8 returns s with each invalid UTF-8 sequence replaced by U+FFFD:
// the metadata columns are Arrow utf8, which readers validate (pyarrow
// refused a block whose help text a sender had not encoded).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// startRow ends the series column of a new row and starts its other columns.
func (b *BlockBuilder) startRow(md Metadata) {
	b.series.offsets = append(b.series.offsets, int32(len(b.series.data)))
	b.n++
	b.tsOffsets = append(b.tsOffsets, int32(len(b.ts)))
	b.histOffsets = append(b.histOffsets, int32(len(b.hists.offsets)-1))
	b.exOffsets = append(b.exOffsets, int32(len(b.exemplars.offsets)-1))
	b.typ.appendString(validUTF8(md.Type))
	b.help.appendString(validUTF8(md.Help))
	b.unit.appendString(validUTF8(md.Unit))
	b.refs = append(b.refs, 0)
}

// LastSeries returns the series column of the row StartSeries began last:
// its labels as 0xff name 0xfe value. Valid until the builder changes.
func (b *BlockBuilder) LastSeries() []byte {
	return b.series.data[b.series.offsets[b.n-1]:]
}

// Refer numbers the row StartSeries began last: series ref of dictionary
// dict. With define it keeps its labels and metadata (the row defines the
// number); without, it drops them (the row refers to a definition written
// before). A block holds the numbers of one dictionary: when dict differs
// from the block's, the row stays as it was and Refer returns false.
func (b *BlockBuilder) Refer(dict uint64, ref uint32, define bool) bool {
	if dict == 0 || ref == 0 || (b.dict != 0 && b.dict != dict) {
		return false
	}
	b.dict = dict
	b.refs[b.n-1] = ref
	if !define {
		b.series.data = b.series.data[:b.series.offsets[b.n-1]]
		b.series.offsets[b.n] = int32(len(b.series.data))
		for _, v := range []*varlen{&b.typ, &b.help, &b.unit} {
			v.data = v.data[:v.offsets[b.n-1]]
			v.offsets[b.n] = int32(len(v.data))
		}
	}
	return true
}

// StartReference starts a row that refers to series ref of dictionary dict,
// defined in an earlier block: no labels, no metadata. It reports false
// and starts nothing when the block holds numbers of another dictionary.
func (b *BlockBuilder) StartReference(dict uint64, ref uint32) bool {
	if dict == 0 || ref == 0 || (b.dict != 0 && b.dict != dict) {
		return false
	}
	b.startRow(Metadata{})
	b.dict = dict
	b.refs[b.n-1] = ref
	return true
}

// AppendSample adds a float sample to the current series.
func (b *BlockBuilder) AppendSample(ts int64, v float64) {
	b.AppendSampleStart(ts, 0, v)
}

// AppendSampleStart adds a float sample with its start (created) timestamp
// to the current series.
func (b *BlockBuilder) AppendSampleStart(ts, start int64, v float64) {
	b.ts = append(b.ts, ts)
	b.vs = append(b.vs, v)
	b.startTs = append(b.startTs, start)
	b.tsOffsets[b.n] = int32(len(b.ts))
	b.samples++
}

// AppendHistogram adds a native histogram, given as the protobuf encoding of
// the remote-write Histogram message, to the current series. raw is copied.
func (b *BlockBuilder) AppendHistogram(raw []byte) {
	b.hists.appendBytes(raw)
	b.histOffsets[b.n] = int32(len(b.hists.offsets) - 1)
}

// AppendExemplar encodes an exemplar as a remote-write 1.0 Exemplar message
// and adds it to the current series.
func (b *BlockBuilder) AppendExemplar(lbls []Label, value float64, ts int64) {
	b.exemplars.data = AppendExemplarProto(b.exemplars.data, lbls, value, ts)
	b.exemplars.offsets = append(b.exemplars.offsets, int32(len(b.exemplars.data)))
	b.exOffsets[b.n] = int32(len(b.exemplars.offsets) - 1)
}

// AppendExemplarProto appends the protobuf encoding of a remote-write 1.0
// Exemplar (field 1 labels, 2 value, 3 timestamp) to dst.
func AppendExemplarProto(dst []byte, lbls []Label, value float64, ts int64) []byte {
	for _, l := range lbls {
		n := 1 + uvarintLen(uint64(len(l.Name))) + len(l.Name) + 1 + uvarintLen(uint64(len(l.Value))) + len(l.Value)
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = append(dst, 0x12)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	}
	dst = append(dst, 0x11)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(value))
	dst = append(dst, 0x18)
	return binary.AppendUvarint(dst, uint64(ts))
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendWriter is an io.Writer appending to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// eos is the Arrow IPC end-of-stream marker.
var eos = [8]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// AppendIPC appends the block as an Arrow IPC stream to dst and returns it.
// The builder stays valid; Reset it before the next block.
func (b *BlockBuilder) AppendIPC(dst []byte) ([]byte, error) {
	n := b.n
	// The schema message depends on the tenant and the dictionary only:
	// encode it once.
	if b.schemaMsg == nil || b.schemaTenant != b.tenant || b.schemaDict != b.dict {
		md := arrow.NewMetadata([]string{"augur.block.version", "tenant"}, []string{BlockVersionPlain, b.tenant})
		fields := blockFieldsPlain
		if b.dict != 0 {
			md = arrow.NewMetadata([]string{"augur.block.version", "tenant", "augur.series.dict"},
				[]string{BlockVersion, b.tenant, fmt.Sprintf("%016x", b.dict)})
			fields = blockFields
		}
		b.schema = arrow.NewSchema(fields, &md)
		p := ipc.GetSchemaPayload(b.schema, memory.DefaultAllocator)
		w := appendWriter{b: b.schemaMsg[:0]}
		_, err := p.WritePayload(&w)
		p.Release()
		if err != nil {
			return dst, fmt.Errorf("encode samples block schema: %w", err)
		}
		b.schemaMsg, b.schemaTenant, b.schemaDict = w.b, b.tenant, b.dict
	}
	e := &b.batch
	e.varlenColumn(&b.series, n)
	for _, child := range [][]byte{bytesOf(b.ts), bytesOf(b.vs), bytesOf(b.startTs)} {
		e.listColumn(b.tsOffsets, n)
		e.column(len(b.ts), child)
	}
	e.varlenColumn(&b.typ, n)
	e.varlenColumn(&b.help, n)
	e.varlenColumn(&b.unit, n)
	e.listColumn(b.histOffsets, n)
	e.varlenColumn(&b.hists, int(b.histOffsets[n]))
	e.listColumn(b.exOffsets, n)
	e.varlenColumn(&b.exemplars, int(b.exOffsets[n]))
	if b.dict != 0 {
		e.column(n, bytesOf(b.refs[:n]))
	}
	dst = e.appendRecordBatch(append(dst, b.schemaMsg...), n)
	return append(dst, eos[:]...), nil
}

// ErrBadBlock wraps every error of BlockReader.Reset: the record is not a
// samples block this version of augur understands.
var ErrBadBlock = errors.New("bad samples block")

// BlockReader decodes samples blocks. Reset it with a record value, then read
// rows. Strings and slices it returns point into the value or the reader's
// buffers and stay valid until the next Reset. Not safe for concurrent use.
type BlockReader struct {
	tenant string
	n      int

	v1   bool     // a version 1 block: labels from the map, not the series column
	refs []uint32 // version 3: per series, its number; nil before
	dict uint64   // version 3: the series dictionary of refs

	seriesOffsets []int32
	seriesData    []byte
	labelOffsets  []int32
	keyOffsets    []int32
	keyData       []byte
	valOffsets    []int32
	valData       []byte
	tsOffsets     []int32
	ts            []int64
	vs            []float64
	startTs       []int64
	typ           *array.String
	help          *array.String
	unit          *array.String
	histOffsets   []int32
	hist          *array.Binary
	exOffsets     []int32
	ex            *array.Binary

	rec   arrow.RecordBatch
	arena *arena
}

// Reset decodes value. On error the reader is empty and the error wraps
// ErrBadBlock.
func (r *BlockReader) Reset(value []byte) (err error) {
	r.release()
	defer func() {
		if p := recover(); p != nil {
			// arrow-go panics on some malformed inputs; a bad record must not
			// take the consumer down.
			r.release()
			err = fmt.Errorf("%w: %v", ErrBadBlock, p)
		}
	}()
	if err := r.decode(value); err != nil {
		r.release()
		return fmt.Errorf("%w: %w", ErrBadBlock, err)
	}
	return nil
}

func (r *BlockReader) release() {
	if r.rec != nil {
		r.rec.Release()
	}
	a := r.arena
	*r = BlockReader{arena: a}
}

func (r *BlockReader) decode(value []byte) error {
	if r.arena == nil {
		r.arena = &arena{}
	}
	r.arena.reset()
	if err := checkIPC(value); err != nil {
		return err
	}
	r.arena.limit = len(value)
	rd, err := ipc.NewReader(bytes.NewReader(value), ipc.WithAllocator(r.arena))
	if err != nil {
		return err
	}
	defer rd.Release()
	schema := rd.Schema()
	fields := blockFields
	v, _ := metaValue(schema, "augur.block.version")
	switch v {
	case BlockVersion:
		d, _ := metaValue(schema, "augur.series.dict")
		id, err := strconv.ParseUint(d, 16, 64)
		if err != nil || id == 0 {
			return fmt.Errorf("augur.series.dict %q is not a non-zero hex number", d)
		}
		r.dict = id
	case BlockVersionPlain:
		fields = blockFieldsPlain
	case blockVersion1:
		fields = blockFieldsV1
	default:
		return fmt.Errorf("block version %q, want %q, %q or %q", v, BlockVersion, BlockVersionPlain, blockVersion1)
	}
	if len(schema.Fields()) != len(fields) {
		return fmt.Errorf("%d columns, want %d", len(schema.Fields()), len(fields))
	}
	for i, f := range schema.Fields() {
		if f.Name != fields[i].Name || !arrow.TypeEqual(f.Type, fields[i].Type) {
			return fmt.Errorf("column %d is %s %s, want %s %s", i, f.Name, f.Type, fields[i].Name, fields[i].Type)
		}
	}
	if !rd.Next() {
		if rd.Err() != nil {
			return rd.Err()
		}
		return errors.New("no record batch")
	}
	rec := rd.RecordBatch()
	rec.Retain()
	r.rec = rec
	r.tenant, _ = metaValue(schema, "tenant")
	r.n = int(rec.NumRows())

	r.v1 = v == blockVersion1
	if r.v1 {
		if err := r.decodeLabelsV1(rec.Column(0).(*array.Map)); err != nil {
			return err
		}
	} else {
		series := rec.Column(0).(*array.Binary)
		if series.NullN() > 0 {
			return errors.New("null series")
		}
		r.seriesOffsets, r.seriesData = series.ValueOffsets(), series.ValueBytes()
		if err := checkOffsets(r.seriesOffsets, r.n, len(r.seriesData)); err != nil {
			return fmt.Errorf("series: %w", err)
		}
		for i := range r.n {
			if err := checkSeries(r.seriesData[r.seriesOffsets[i]:r.seriesOffsets[i+1]]); err != nil {
				return fmt.Errorf("series %d: %w", i, err)
			}
		}
	}

	tsList := rec.Column(1).(*array.List)
	vsList := rec.Column(2).(*array.List)
	r.tsOffsets = tsList.Offsets()
	r.ts = tsList.ListValues().(*array.Int64).Int64Values()
	r.vs = vsList.ListValues().(*array.Float64).Float64Values()
	if err := checkOffsets(r.tsOffsets, r.n, len(r.ts)); err != nil {
		return fmt.Errorf("timestamps: %w", err)
	}
	vo := vsList.Offsets()
	if len(vo) != len(r.tsOffsets) || len(r.vs) != len(r.ts) {
		return errors.New("timestamps and values differ in shape")
	}
	for i := range vo {
		if vo[i] != r.tsOffsets[i] {
			return errors.New("timestamps and values differ in shape")
		}
	}
	stList := rec.Column(3).(*array.List)
	r.startTs = stList.ListValues().(*array.Int64).Int64Values()
	so := stList.Offsets()
	if len(so) != len(r.tsOffsets) || len(r.startTs) != len(r.ts) {
		return errors.New("start_timestamps and timestamps differ in shape")
	}
	for i := range so {
		if so[i] != r.tsOffsets[i] {
			return errors.New("start_timestamps and timestamps differ in shape")
		}
	}
	r.typ = rec.Column(4).(*array.String)
	r.help = rec.Column(5).(*array.String)
	r.unit = rec.Column(6).(*array.String)
	for _, s := range []*array.String{r.typ, r.help, r.unit} {
		if s.Len() != r.n {
			return errors.New("metadata: wrong length")
		}
		if err := checkOffsets(s.ValueOffsets(), r.n, len(s.ValueBytes())); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	histList := rec.Column(7).(*array.List)
	r.histOffsets = histList.Offsets()
	r.hist = histList.ListValues().(*array.Binary)
	if err := checkOffsets(r.histOffsets, r.n, r.hist.Len()); err != nil {
		return fmt.Errorf("histograms: %w", err)
	}
	if err := checkOffsets(r.hist.ValueOffsets(), r.hist.Len(), len(r.hist.ValueBytes())); err != nil {
		return fmt.Errorf("histograms: %w", err)
	}
	exList := rec.Column(8).(*array.List)
	r.exOffsets = exList.Offsets()
	r.ex = exList.ListValues().(*array.Binary)
	if err := checkOffsets(r.exOffsets, r.n, r.ex.Len()); err != nil {
		return fmt.Errorf("exemplars: %w", err)
	}
	if err := checkOffsets(r.ex.ValueOffsets(), r.ex.Len(), len(r.ex.ValueBytes())); err != nil {
		return fmt.Errorf("exemplars: %w", err)
	}
	if r.dict != 0 {
		refs := rec.Column(9).(*array.Uint32)
		if refs.Len() != r.n || refs.NullN() > 0 {
			return errors.New("series_ref: wrong length or nulls")
		}
		r.refs = refs.Uint32Values()
		for i, ref := range r.refs {
			empty := r.seriesOffsets[i] == r.seriesOffsets[i+1]
			switch {
			case ref >= MaxSeriesRef:
				return fmt.Errorf("series %d: series_ref %d, limit %d", i, ref, MaxSeriesRef)
			case ref == 0 && empty:
				return fmt.Errorf("series %d: no labels and no series_ref", i)
			}
		}
	}
	return nil
}

// decodeLabelsV1 takes a version 1 block's labels map.
func (r *BlockReader) decodeLabelsV1(labels *array.Map) error {
	keys := labels.Keys().(*array.String)
	vals := labels.Items().(*array.String)
	r.labelOffsets = labels.Offsets()
	r.keyOffsets, r.keyData = keys.ValueOffsets(), keys.ValueBytes()
	r.valOffsets, r.valData = vals.ValueOffsets(), vals.ValueBytes()
	if keys.NullN() > 0 || vals.NullN() > 0 || labels.NullN() > 0 {
		return errors.New("null labels")
	}
	if err := checkOffsets(r.labelOffsets, r.n, keys.Len()); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	if err := checkOffsets(r.keyOffsets, keys.Len(), len(r.keyData)); err != nil {
		return fmt.Errorf("label names: %w", err)
	}
	if err := checkOffsets(r.valOffsets, vals.Len(), len(r.valData)); err != nil {
		return fmt.Errorf("label values: %w", err)
	}
	if keys.Len() != vals.Len() {
		return errors.New("label names and values differ in count")
	}
	return nil
}

// checkSeries verifies that b is a sequence of 0xff name 0xfe value with
// exactly one 0xfe in each label.
func checkSeries(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != KeySep {
		return errors.New("does not start with 0xff")
	}
	pairs := 0
	for _, c := range b[1:] {
		switch c {
		case KeySep:
			if pairs != 1 {
				return errors.New("a label without exactly one 0xfe")
			}
			pairs = 0
		case KeyPairSep:
			pairs++
		}
	}
	if pairs != 1 {
		return errors.New("a label without exactly one 0xfe")
	}
	return nil
}

// checkOffsets verifies that offs describes n monotonic ranges inside [0, size].
func checkOffsets(offs []int32, n, size int) error {
	if n == 0 && len(offs) == 0 {
		return nil
	}
	if len(offs) < n+1 {
		return fmt.Errorf("%d offsets for %d rows", len(offs), n)
	}
	prev := offs[0]
	if prev < 0 {
		return errors.New("negative offset")
	}
	for _, o := range offs[1 : n+1] {
		if o < prev {
			return errors.New("offsets not monotonic")
		}
		prev = o
	}
	if int(prev) > size {
		return fmt.Errorf("offset %d past end %d", prev, size)
	}
	return nil
}

func metaValue(s *arrow.Schema, key string) (string, bool) {
	md := s.Metadata()
	i := md.FindKey(key)
	if i < 0 {
		return "", false
	}
	return md.Values()[i], true
}

// Tenant returns the tenant of the block, "" when none.
func (r *BlockReader) Tenant() string { return r.tenant }

// Len returns the number of series in the block.
func (r *BlockReader) Len() int { return r.n }

// Dict returns the id of the series dictionary the block's numbers belong
// to, 0 when the block has none (versions 1 and 2).
func (r *BlockReader) Dict() uint64 { return r.dict }

// Ref returns the number of series i in the block's dictionary, 0 when it
// has none.
func (r *BlockReader) Ref(i int) uint32 {
	if r.refs == nil {
		return 0
	}
	return r.refs[i]
}

// IsReference reports whether row i refers to a series by its number only:
// no labels and no metadata, which a row before defined (Ref, Dict).
func (r *BlockReader) IsReference(i int) bool {
	return r.refs != nil && r.refs[i] != 0 && r.seriesOffsets[i] == r.seriesOffsets[i+1]
}

// AppendSeries appends the labels of series i as a series key without its
// tenant (AppendSeriesKey's form: 0xff name 0xfe value per label) to dst.
// For a version 2 block this is a copy of the row.
func (r *BlockReader) AppendSeries(dst []byte, i int) []byte {
	if !r.v1 {
		return append(dst, r.seriesData[r.seriesOffsets[i]:r.seriesOffsets[i+1]]...)
	}
	for k := r.labelOffsets[i]; k < r.labelOffsets[i+1]; k++ {
		dst = append(dst, KeySep)
		dst = append(dst, r.keyData[r.keyOffsets[k]:r.keyOffsets[k+1]]...)
		dst = append(dst, KeyPairSep)
		dst = append(dst, r.valData[r.valOffsets[k]:r.valOffsets[k+1]]...)
	}
	return dst
}

// AppendLabels appends the labels of series i to dst and returns it.
func (r *BlockReader) AppendLabels(dst []Label, i int) []Label {
	if !r.v1 {
		b := r.seriesData[r.seriesOffsets[i]:r.seriesOffsets[i+1]]
		_, dst, _ = ParseSeriesKey(bstr(b), dst) // checkSeries has checked it
		return dst
	}
	for k := r.labelOffsets[i]; k < r.labelOffsets[i+1]; k++ {
		dst = append(dst, Label{
			Name:  bstr(r.keyData[r.keyOffsets[k]:r.keyOffsets[k+1]]),
			Value: bstr(r.valData[r.valOffsets[k]:r.valOffsets[k+1]]),
		})
	}
	return dst
}

// Samples returns the timestamps (unix ms) and values of series i.
func (r *BlockReader) Samples(i int) ([]int64, []float64) {
	lo, hi := r.tsOffsets[i], r.tsOffsets[i+1]
	return r.ts[lo:hi:hi], r.vs[lo:hi:hi]
}

// StartTimestamps returns the start (created) timestamps of the samples of
// series i (ms, 0 where unknown), parallel to Samples.
func (r *BlockReader) StartTimestamps(i int) []int64 {
	lo, hi := r.tsOffsets[i], r.tsOffsets[i+1]
	return r.startTs[lo:hi:hi]
}

// Metadata returns the metric metadata of series i.
func (r *BlockReader) Metadata(i int) Metadata {
	return Metadata{Type: r.typ.Value(i), Help: r.help.Value(i), Unit: r.unit.Value(i)}
}

// NumHistograms returns the number of native histograms of series i.
func (r *BlockReader) NumHistograms(i int) int {
	return int(r.histOffsets[i+1] - r.histOffsets[i])
}

// Histogram returns native histogram j of series i: the protobuf encoding of
// the remote-write Histogram message.
func (r *BlockReader) Histogram(i, j int) []byte {
	return r.hist.Value(int(r.histOffsets[i]) + j)
}

// NumExemplars returns the number of exemplars of series i.
func (r *BlockReader) NumExemplars(i int) int {
	return int(r.exOffsets[i+1] - r.exOffsets[i])
}

// Exemplar returns exemplar j of series i: the protobuf encoding of the
// remote-write 1.0 Exemplar message.
func (r *BlockReader) Exemplar(i, j int) []byte {
	return r.ex.Value(int(r.exOffsets[i]) + j)
}

// NumSamples returns the number of float samples in the block.
func (r *BlockReader) NumSamples() int { return len(r.ts) }

func bstr(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// arena is a memory.Allocator for BlockReader: it hands out pieces of one
// reused buffer, so decoding a block allocates nothing once the buffer has
// grown to the block size. Everything it handed out is invalid after reset.
type arena struct {
	buf   []byte
	off   int
	need  int // bytes asked for since reset, to size the next buffer
	limit int // no block needs more than its own size; 0: no limit
}

func (a *arena) reset() {
	if a.need > len(a.buf) {
		a.buf = make([]byte, a.need+a.need/4)
	}
	a.off, a.need = 0, 0
}

func (a *arena) Allocate(size int) []byte {
	if a.limit > 0 && size > a.limit+64 {
		// A buffer larger than the block it comes from is a lie; Reset
		// recovers this panic into ErrBadBlock.
		panic(fmt.Sprintf("block asks for a %d-byte buffer, larger than the %d-byte block", size, a.limit))
	}
	aligned := (size + 63) &^ 63
	a.need += aligned
	if a.off+aligned > len(a.buf) {
		// Out of room: fall back to the heap for this block; reset grows
		// the buffer so the next block of this size fits.
		return make([]byte, size, aligned)
	}
	b := a.buf[a.off : a.off+size : a.off+aligned]
	clear(b)
	a.off += aligned
	return b
}

func (a *arena) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	return nb
}

func (a *arena) Free([]byte) {}

// AddSeries is StartSeries followed by AppendSample for each (ts, vs) pair,
// for callers with whole series at hand.
func (b *BlockBuilder) AddSeries(lbls []Label, ts []int64, vs []float64) {
	b.StartSeries(lbls, Metadata{})
	for i := range ts {
		b.AppendSample(ts[i], vs[i])
	}
}

// Len returns the number of rows (series) in the block.
func (b *BlockBuilder) Len() int { return b.n }

// Size estimates the bytes of the block's Arrow buffers so far, within a few
// percent of what AppendIPC writes; callers use it to cut large blocks.
func (b *BlockBuilder) Size() int {
	n := len(b.series.data) + 8*b.n +
		24*len(b.ts) + 16*b.n + len(b.typ.data) + len(b.help.data) + len(b.unit.data) + 12*b.n +
		len(b.hists.data) + 4*len(b.hists.offsets) + len(b.exemplars.data) + 4*len(b.exemplars.offsets) + 1024
	if b.dict != 0 {
		n += 4 * b.n // the series_ref column of version 3
	}
	return n
}

// SeriesNames resolves the series references of blocks for a reader that
// keeps no series state of its own (tools, tests): it remembers every
// definition it was shown. Show it every row, in partition order.
type SeriesNames struct {
	defs map[seriesName]string
}

type seriesName struct {
	part int32
	dict uint64
	ref  uint32
}

// AppendLabels is r.AppendLabels(dst, i) for a block of partition part,
// with a reference resolved from the definitions shown before; false for
// a reference defined before this reader began. The labels are valid until
// the next Reset of r.
func (n *SeriesNames) AppendLabels(dst []Label, part int32, r *BlockReader, i int) ([]Label, bool) {
	ref := r.Ref(i)
	if ref == 0 {
		return r.AppendLabels(dst, i), true
	}
	k := seriesName{part, r.Dict(), ref}
	if r.IsReference(i) {
		s, ok := n.defs[k]
		if !ok {
			return dst, false
		}
		_, dst, _ = ParseSeriesKey(s, dst) // checkSeries checked it
		return dst, true
	}
	if n.defs == nil {
		n.defs = map[seriesName]string{}
	}
	n.defs[k] = string(r.AppendSeries(nil, i))
	return r.AppendLabels(dst, i), true
}
