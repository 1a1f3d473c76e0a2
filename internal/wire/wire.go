// Package wire is the binary encoding of augur's checkpoints (the models',
// the stream's state records, the detectors'): append-style writers (fixed
// 1-, 2-, 4- and 8-byte little-endian numbers, varints, length-prefixed
// bytes) and a reader that remembers its first error, so decoders stay
// linear and never panic on short or hostile input.
//
// Every checkpoint format starts with a version byte. A format whose layout
// changes gets a new version and keeps its decoder of the old one (a
// checkpoint in Kafka outlives the process that wrote it);
// NewBigEndianReader reads the formats written before they moved onto this
// package.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrShort is returned when a checkpoint ends before its declared content.
var ErrShort = errors.New("checkpoint truncated")

// ErrTooLong is returned when a declared length exceeds the allowed maximum.
var ErrTooLong = errors.New("checkpoint length out of range")

// AppendUint16 appends v as 2 little-endian bytes.
func AppendUint16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }

// PutUint16 overwrites b[0:2] with v as AppendUint16 writes it: a length
// reserved before the content it counts was appended. It panics if b is
// shorter than 2 bytes.
func PutUint16(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }

// AppendUint32 appends v as 4 little-endian bytes.
func AppendUint32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

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

// AppendVarint appends v as a varint (binary.AppendVarint).
func AppendVarint(dst []byte, v int64) []byte { return binary.AppendVarint(dst, v) }

// AppendUvarint appends v as a uvarint (binary.AppendUvarint): the shortest
// form, which Reader.Count requires.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// Reader decodes what the Append functions wrote. After the first error every
// read returns zero and Err reports that error.
type Reader struct {
	b   []byte
	err error
	big bool // fixed-size numbers are big-endian (NewBigEndianReader)
}

// NewReader returns a Reader over b. The Reader does not copy b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// NewBigEndianReader returns a Reader over b that reads fixed-size numbers
// (Uint16, Uint32, Uint64 and what is built on them) big-endian: the byte
// order of checkpoint versions written before their formats moved onto this
// package. Varints and blobs read as with NewReader.
func NewBigEndianReader(b []byte) *Reader { return &Reader{b: b, big: true} }

// ErrVersion is returned by Open for a version it does not know.
var ErrVersion = errors.New("checkpoint version unknown")

// Open returns a Reader over the checkpoint b after its first byte, the
// format version: current reads as the Append functions write, bigEndian
// (0: none) is the same layout in the byte order of the versions written
// before the format moved onto this package.
func Open(b []byte, current, bigEndian byte) (*Reader, error) {
	switch {
	case len(b) == 0:
		return nil, ErrShort
	case b[0] == current:
		return NewReader(b[1:]), nil
	case bigEndian != 0 && b[0] == bigEndian:
		return NewBigEndianReader(b[1:]), nil
	}
	return nil, fmt.Errorf("%w: %d (this build reads %d)", ErrVersion, b[0], current)
}

// fixed consumes n bytes, or records ErrShort and returns nil.
func (r *Reader) fixed(n int) []byte {
	if len(r.b) < n || r.err != nil {
		r.Fail(ErrShort)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if p := r.fixed(1); p != nil {
		return p[0]
	}
	return 0
}

// Uint16 reads 2 bytes.
func (r *Reader) Uint16() uint16 {
	p := r.fixed(2)
	switch {
	case p == nil:
		return 0
	case r.big:
		return binary.BigEndian.Uint16(p)
	}
	return binary.LittleEndian.Uint16(p)
}

// Uint32 reads 4 bytes.
func (r *Reader) Uint32() uint32 {
	p := r.fixed(4)
	switch {
	case p == nil:
		return 0
	case r.big:
		return binary.BigEndian.Uint32(p)
	}
	return binary.LittleEndian.Uint32(p)
}

// Err returns the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Rest returns the bytes not read yet.
func (r *Reader) Rest() []byte { return r.b }

// Uint64 reads 8 bytes.
func (r *Reader) Uint64() uint64 {
	p := r.fixed(8)
	switch {
	case p == nil:
		return 0
	case r.big:
		return binary.BigEndian.Uint64(p)
	}
	return binary.LittleEndian.Uint64(p)
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

// Count reads a uvarint written by AppendUvarint: a count of at most limit
// (ErrTooLong above; a negative limit is 0). Only the shortest form is
// accepted (ErrInvalid otherwise), so a decoder built on Count reads no two
// encodings as the same state.
func (r *Reader) Count(limit int) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.err = ErrShort
		return 0
	case n < 0 || (n > 1 && r.b[n-1] == 0): // overflow, or a redundant last group
		r.err = ErrInvalid
		return 0
	case v > uint64(max(limit, 0)):
		r.err = ErrTooLong
		return 0
	}
	r.b = r.b[n:]
	return int(v)
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
