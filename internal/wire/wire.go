// Package wire is the binary encoding of augur's checkpoints (the models',
// the stream's state records, the group detectors'): append-style writers
// (fixed 8-byte little-endian numbers, varints, length-prefixed bytes) and
// a reader that remembers its first error, so decoders stay linear and
// never panic on short or hostile input.
package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
)

// ErrShort is returned when a checkpoint ends before its declared content.
var ErrShort = errors.New("checkpoint truncated")

// ErrTooLong is returned when a declared length exceeds the allowed maximum.
var ErrTooLong = errors.New("checkpoint length out of range")

// AppendUint64 appends v as 8 little-endian bytes.
func AppendUint64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

// AppendInt64 appends v as 8 little-endian bytes.
func AppendInt64(dst []byte, v int64) []byte { return AppendUint64(dst, uint64(v)) }

// AppendFloat64 appends the IEEE 754 bits of v.
func AppendFloat64(dst []byte, v float64) []byte { return AppendUint64(dst, math.Float64bits(v)) }

// AppendFloats appends len(vs) and then every value.
func AppendFloats(dst []byte, vs []float64) []byte {
	dst = AppendUint64(dst, uint64(len(vs)))
	for _, v := range vs {
		dst = AppendFloat64(dst, v)
	}
	return dst
}

// AppendStrided appends n values of vs, from vs[start] on every stride-th
// one, each as AppendFloat64 does (no length).
func AppendStrided(dst []byte, vs []float64, start, n, stride int) []byte {
	dst = slices.Grow(dst, 8*n)
	for k := 0; k < n; k++ {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(vs[start+k*stride]))
	}
	return dst
}

// Reader decodes what the Append functions wrote. After the first error every
// read returns zero and Err reports that error.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b. The Reader does not copy b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Rest returns the bytes not read yet.
func (r *Reader) Rest() []byte { return r.b }

// Uint64 reads 8 bytes.
func (r *Reader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = ErrShort
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// Int64 reads 8 bytes as a signed integer.
func (r *Reader) Int64() int64 { return int64(r.Uint64()) }

// Float64 reads one float64.
func (r *Reader) Float64() float64 { return math.Float64frombits(r.Uint64()) }

// Len reads a length and checks it against max.
func (r *Reader) Len(max int) int {
	n := r.Uint64()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.err = ErrTooLong
		return 0
	}
	return int(n)
}

// Floats reads a length-prefixed float slice of at most max values into dst,
// reusing its backing array when it is large enough.
func (r *Reader) Floats(dst []float64, max int) []float64 {
	n := r.Len(max)
	if r.err != nil {
		return dst[:0]
	}
	if len(r.b) < 8*n {
		r.err = ErrShort
		return dst[:0]
	}
	if cap(dst) < n {
		dst = make([]float64, n)
	}
	dst = dst[:n]
	for i := range dst {
		dst[i] = r.Float64()
	}
	return dst
}

// ErrInvalid is returned when a decoded value is out of its valid range.
var ErrInvalid = errors.New("checkpoint value out of range")

// Fail records err unless an earlier error is already recorded.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// AppendBlob appends len(b) as a uvarint and then b.
func AppendBlob(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// AppendString appends s as AppendBlob does.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Varint reads a varint (binary.AppendVarint).
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = ErrShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Uvarint reads a uvarint (binary.AppendUvarint).
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads n bytes (not copied).
func (r *Reader) Bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = ErrShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Blob reads what AppendBlob wrote (not copied).
func (r *Reader) Blob() []byte {
	n := r.Uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = ErrShort
		return nil
	}
	return r.Bytes(int(n))
}

// Str reads what AppendString wrote.
func (r *Reader) Str() string { return string(r.Blob()) }
