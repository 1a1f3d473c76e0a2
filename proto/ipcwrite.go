package proto

import (
	"encoding/binary"
	"unsafe"

	flatbuffers "github.com/google/flatbuffers/go"
)

// recordBatchEncoder writes a block's Arrow IPC RecordBatch message: the
// bytes arrow-go's ipc writer produces for the same columns
// (TestRecordBatchMatchesArrow), without building arrays, a record and a
// payload for every block (about 130 allocations a block, a tenth of the
// receiver's CPU). It knows the block's columns only: every array has no
// nulls and starts at offset 0, so each validity bitmap is absent and
// every buffer is written whole.
type recordBatchEncoder struct {
	fb    *flatbuffers.Builder
	nodes []int64  // per array, depth first: its length
	bufs  [][]byte // per buffer, depth first; nil when absent
}

// column adds an array of n values with the given buffers after its
// validity bitmap.
func (e *recordBatchEncoder) column(n int, bufs ...[]byte) {
	e.nodes = append(e.nodes, int64(n))
	e.bufs = append(e.bufs, nil)
	e.bufs = append(e.bufs, bufs...)
}

// varlenColumn adds a string or binary array of the first n values of v.
func (e *recordBatchEncoder) varlenColumn(v *varlen, n int) {
	e.column(n, bytesOf(v.offsets[:n+1]), v.data[:v.offsets[n]])
}

// listColumn adds a list array of n lists with the given offsets; its
// values array follows.
func (e *recordBatchEncoder) listColumn(offsets []int32, n int) {
	e.column(n, bytesOf(offsets[:n+1]))
}

// appendRecordBatch appends the encapsulated RecordBatch message of b's
// columns, as added, to dst: continuation marker, metadata length,
// flatbuffer Message, padding, then the body, each buffer padded to 8
// bytes.
func (e *recordBatchEncoder) appendRecordBatch(dst []byte, rows int) []byte {
	if e.fb == nil {
		e.fb = flatbuffers.NewBuilder(1024)
	}
	fb := e.fb
	fb.Reset()
	// Field nodes and buffers are vectors of structs, built back to front.
	fb.StartVector(16, len(e.nodes), 8)
	for i := len(e.nodes) - 1; i >= 0; i-- {
		fb.Prep(8, 16)
		fb.PrependInt64(0) // null count
		fb.PrependInt64(e.nodes[i])
	}
	nodes := fb.EndVector(len(e.nodes))
	var body int64
	for _, b := range e.bufs {
		body += pad8(int64(len(b)))
	}
	fb.StartVector(16, len(e.bufs), 8)
	end := body
	for i := len(e.bufs) - 1; i >= 0; i-- {
		end -= pad8(int64(len(e.bufs[i])))
		fb.Prep(8, 16)
		fb.PrependInt64(int64(len(e.bufs[i]))) // length
		fb.PrependInt64(end)                   // offset
	}
	buffers := fb.EndVector(len(e.bufs))
	fb.StartObject(5) // RecordBatch
	fb.PrependInt64Slot(0, int64(rows), 0)
	fb.PrependUOffsetTSlot(1, nodes, 0)
	fb.PrependUOffsetTSlot(2, buffers, 0)
	batch := fb.EndObject()
	fb.StartObject(5) // Message
	fb.PrependInt16Slot(0, metadataV5, 0)
	fb.PrependByteSlot(1, headerRecordBatch, 0)
	fb.PrependUOffsetTSlot(2, batch, 0)
	fb.PrependInt64Slot(3, body, 0)
	fb.PrependUOffsetTSlot(4, 0, 0) // no custom metadata
	fb.Finish(fb.EndObject())
	meta := fb.FinishedBytes()

	metaLen := int(pad8(int64(len(meta)) + 8))
	dst = binary.LittleEndian.AppendUint32(dst, 0xffffffff)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(metaLen-8))
	dst = append(dst, meta...)
	dst = append(dst, zeros[:metaLen-8-len(meta)]...)
	for _, b := range e.bufs {
		dst = append(dst, b...)
		dst = append(dst, zeros[:pad8(int64(len(b)))-int64(len(b))]...)
	}
	e.nodes = e.nodes[:0]
	clear(e.bufs)
	e.bufs = e.bufs[:0]
	return dst
}

// metadataV5 is the Arrow flatbuffer MetadataVersion V5.
const metadataV5 = 4

var zeros [8]byte

func pad8(n int64) int64 { return (n + 7) &^ 7 }

// bytesOf returns the memory of s as bytes (little-endian, as Arrow's).
func bytesOf[T int32 | uint32 | int64 | float64](s []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}
