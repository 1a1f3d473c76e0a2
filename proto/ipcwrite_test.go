package proto

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestRecordBatchMatchesArrow: the hand-written RecordBatch message is,
// byte for byte, what arrow-go's ipc writer makes of the same columns, for
// blocks of every shape the builder makes.
func TestRecordBatchMatchesArrow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b BlockBuilder
	for round := range 300 {
		tenant := []string{"", "team-a"}[round%2]
		b.Reset(tenant)
		dict := uint64(0)
		if round%3 != 0 {
			dict = rng.Uint64() | 1
		}
		rows := rng.IntN(40)
		if round == 0 {
			rows = 0
		}
		for i := range rows {
			lbls := []Label{{"__name__", fmt.Sprintf("m%d", rng.IntN(9))}, {"job", "api"}}
			md := Metadata{}
			if rng.IntN(3) == 0 {
				md = Metadata{Type: "counter", Help: "Requests served.", Unit: "requests"}
			}
			if dict != 0 && rng.IntN(2) == 0 {
				b.StartReference(dict, uint32(i+1))
			} else {
				b.StartSeries(lbls, md)
				if dict != 0 {
					b.Refer(dict, uint32(i+1), rng.IntN(2) == 0)
				}
			}
			for range rng.IntN(4) {
				b.AppendSampleStart(rng.Int64N(1e12), rng.Int64N(3), rng.Float64())
			}
			for range rng.IntN(2) {
				b.AppendHistogram([]byte{0x08, byte(rng.IntN(200))})
			}
			if rng.IntN(4) == 0 {
				b.AppendExemplar([]Label{{"trace_id", "4bf9"}}, 0.5, 7)
			}
		}
		got, err := b.AppendIPC([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte("prefix"), b.schemaMsg...)
		want = append(appendRecordBatchArrow(t, &b, want), eos[:]...)
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d (%d rows, dictionary %x): %d bytes, arrow-go's %d\n got %x\nwant %x", round, rows, dict, len(got), len(want), got, want)
		}
		var r BlockReader
		if err := r.Reset(got[len("prefix"):]); err != nil || r.Len() != rows {
			t.Fatalf("round %d: read back %d rows, %v", round, r.Len(), err)
		}
	}
}

// appendRecordBatchArrow appends the RecordBatch message arrow-go's ipc
// writer makes of b's columns (the builder's encoding before
// recordBatchEncoder), with opts (body compression).
func appendRecordBatchArrow(t testing.TB, b *BlockBuilder, dst []byte, opts ...ipc.Option) []byte {
	t.Helper()
	n := b.n
	list := func(typ arrow.DataType, offsets []int32, child arrow.ArrayData) arrow.ArrayData {
		return array.NewData(typ, n, []*memory.Buffer{nil, buf(offsets)}, []arrow.ArrayData{child}, 0, 0)
	}
	datas := []arrow.ArrayData{
		varlenData(arrow.BinaryTypes.Binary, b.series, n),
		list(blockFields[1].Type, b.tsOffsets, array.NewData(arrow.PrimitiveTypes.Int64, len(b.ts), []*memory.Buffer{nil, buf(b.ts)}, nil, 0, 0)),
		list(blockFields[2].Type, b.tsOffsets, array.NewData(arrow.PrimitiveTypes.Float64, len(b.vs), []*memory.Buffer{nil, buf(b.vs)}, nil, 0, 0)),
		list(blockFields[3].Type, b.tsOffsets, array.NewData(arrow.PrimitiveTypes.Int64, len(b.startTs), []*memory.Buffer{nil, buf(b.startTs)}, nil, 0, 0)),
		varlenData(arrow.BinaryTypes.String, b.typ, n),
		varlenData(arrow.BinaryTypes.String, b.help, n),
		varlenData(arrow.BinaryTypes.String, b.unit, n),
		list(blockFields[7].Type, b.histOffsets, varlenData(arrow.BinaryTypes.Binary, b.hists, len(b.hists.offsets)-1)),
		list(blockFields[8].Type, b.exOffsets, varlenData(arrow.BinaryTypes.Binary, b.exemplars, len(b.exemplars.offsets)-1)),
	}
	if b.dict != 0 {
		datas = append(datas, array.NewData(arrow.PrimitiveTypes.Uint32, n, []*memory.Buffer{nil, buf(b.refs)}, nil, 0, 0))
	}
	cols := make([]arrow.Array, len(datas))
	for i, d := range datas {
		cols[i] = array.MakeFromData(d)
	}
	rec := array.NewRecordBatch(b.schema, cols, int64(n))
	p, err := ipc.GetRecordBatchPayload(rec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	w := appendWriter{b: dst}
	if _, err := p.WritePayload(&w); err != nil {
		t.Fatal(err)
	}
	return w.b
}

func varlenData(typ arrow.DataType, v varlen, n int) arrow.ArrayData {
	return array.NewData(typ, n, []*memory.Buffer{nil, buf(v.offsets), memory.NewBufferBytes(v.data)}, nil, 0, 0)
}

func buf[T int32 | uint32 | int64 | float64](s []T) *memory.Buffer {
	return memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(*new(T)))))
}
