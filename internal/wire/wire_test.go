package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// TestLayout pins the byte layout of every writer: checkpoints in Kafka
// depend on it.
func TestLayout(t *testing.T) {
	b4 := make([]byte, 4)
	PutUint16(b4[1:], 0xbeef)
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"AppendUint16", AppendUint16([]byte{9}, 0x0102), []byte{9, 2, 1}},
		{"PutUint16", b4, []byte{0, 0xef, 0xbe, 0}},
		{"AppendUint32", AppendUint32(nil, 0x01020304), []byte{4, 3, 2, 1}},
		{"AppendUint64", AppendUint64(nil, 0x0102030405060708), []byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{"AppendInt64", AppendInt64(nil, -2), []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"AppendFloat64", AppendFloat64(nil, 1), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"AppendFloats", AppendFloats(nil, []float64{1}), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},
		{"AppendStrided", AppendStrided(nil, []float64{0, 1, 0, 1}, 1, 2, 2), AppendFloats(nil, []float64{1, 1})[8:]},
		{"AppendVarint", AppendVarint(nil, -65), []byte{0x81, 0x01}},
		{"AppendUvarint", AppendUvarint(nil, 300), []byte{0xac, 0x02}},
		{"AppendBlob", AppendBlob(nil, []byte("ab")), []byte{2, 'a', 'b'}},
		{"AppendString", AppendString(nil, "abc"), []byte{3, 'a', 'b', 'c'}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}

// TestRoundTrip reads back what the writers wrote, in one buffer.
func TestRoundTrip(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = AppendUint16(b, 0xfffe)
	b = AppendUint32(b, 0xfffefdfc)
	b = AppendUint64(b, math.MaxUint64-1)
	b = AppendInt64(b, math.MinInt64)
	b = AppendFloat64(b, -0.5)
	b = AppendFloats(b, []float64{1, 2, 3})
	b = AppendVarint(b, -1<<40)
	b = AppendUvarint(b, 1<<40)
	b = AppendUvarint(b, 127)
	b = AppendBlob(b, []byte{1, 2})
	b = AppendString(b, "zone")

	r := NewReader(b)
	buf := make([]float64, 0, 8)
	if got := r.Byte(); got != 7 {
		t.Errorf("Byte %d", got)
	}
	if got := r.Uint16(); got != 0xfffe {
		t.Errorf("Uint16 %#x", got)
	}
	if got := r.Uint32(); got != 0xfffefdfc {
		t.Errorf("Uint32 %#x", got)
	}
	if got := r.Uint64(); got != math.MaxUint64-1 {
		t.Errorf("Uint64 %#x", got)
	}
	if got := r.Int64(); got != math.MinInt64 {
		t.Errorf("Int64 %d", got)
	}
	if got := r.Float64(); got != -0.5 {
		t.Errorf("Float64 %v", got)
	}
	if got := r.Floats(buf, 3); len(got) != 3 || got[2] != 3 || &got[0] != &buf[:1][0] {
		t.Errorf("Floats %v (buffer reused: %v)", got, len(got) > 0 && &got[0] == &buf[:1][0])
	}
	if got := r.Varint(); got != -1<<40 {
		t.Errorf("Varint %d", got)
	}
	if got := r.Count(1 << 40); got != 1<<40 {
		t.Errorf("Count %d", got)
	}
	if got := r.Uvarint(); got != 127 {
		t.Errorf("Uvarint %d", got)
	}
	if got := r.Blob(); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("Blob %v", got)
	}
	if got := r.Str(); got != "zone" {
		t.Errorf("Str %q", got)
	}
	if r.Err() != nil || len(r.Rest()) != 0 {
		t.Errorf("error %v, %d bytes left", r.Err(), len(r.Rest()))
	}
}

func TestBigEndianReader(t *testing.T) {
	b := []byte{0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x81, 0x01, 2, 'a', 'b'}
	r := NewBigEndianReader(b)
	if got := r.Uint16(); got != 0x0102 {
		t.Errorf("Uint16 %#x", got)
	}
	if got := r.Uint32(); got != 0x01020304 {
		t.Errorf("Uint32 %#x", got)
	}
	if got := r.Float64(); got != 1 {
		t.Errorf("Float64 %v", got)
	}
	// Varints and blobs do not depend on the byte order.
	if got := r.Varint(); got != -65 {
		t.Errorf("Varint %d", got)
	}
	if got := r.Str(); got != "ab" || r.Err() != nil {
		t.Errorf("Str %q, error %v", got, r.Err())
	}
}

// TestErrors checks each read fails on bad input with its error, and that
// the first error sticks: later reads return zero and consume nothing.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		read func(r *Reader) any
		want error
	}{
		{"Byte short", nil, func(r *Reader) any { return r.Byte() }, ErrShort},
		{"Uint16 short", []byte{1}, func(r *Reader) any { return r.Uint16() }, ErrShort},
		{"Uint32 short", []byte{1, 2, 3}, func(r *Reader) any { return r.Uint32() }, ErrShort},
		{"Uint64 short", make([]byte, 7), func(r *Reader) any { return r.Uint64() }, ErrShort},
		{"Len too long", AppendUint64(nil, 5), func(r *Reader) any { return r.Len(4) }, ErrTooLong},
		{"Floats short", AppendUint64(nil, 2), func(r *Reader) any { return len(r.Floats(nil, 4)) }, ErrShort},
		{"Varint short", []byte{0x80}, func(r *Reader) any { return r.Varint() }, ErrShort},
		{"Uvarint short", nil, func(r *Reader) any { return r.Uvarint() }, ErrShort},
		{"Count short", []byte{0x80}, func(r *Reader) any { return r.Count(10) }, ErrShort},
		{"Count above limit", []byte{11}, func(r *Reader) any { return r.Count(10) }, ErrTooLong},
		{"Count negative limit", []byte{1}, func(r *Reader) any { return r.Count(-1) }, ErrTooLong},
		{"Count not shortest", []byte{0x81, 0x00}, func(r *Reader) any { return r.Count(10) }, ErrInvalid},
		{"Count overflow", bytes.Repeat([]byte{0xff}, 11), func(r *Reader) any { return r.Count(10) }, ErrInvalid},
		{"Bytes negative", []byte{1}, func(r *Reader) any { return len(r.Bytes(-1)) }, ErrShort},
		{"Blob short", []byte{3, 'a'}, func(r *Reader) any { return len(r.Blob()) }, ErrShort},
		{"Blob huge", AppendUvarint(nil, math.MaxUint64), func(r *Reader) any { return len(r.Blob()) }, ErrShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(tt.b)
			if got := tt.read(r); got != reflectZero(got) {
				t.Errorf("read %v, want zero", got)
			}
			if !errors.Is(r.Err(), tt.want) {
				t.Fatalf("error %v, want %v", r.Err(), tt.want)
			}
			rest := len(r.Rest())
			r.Fail(ErrInvalid)
			if r.Byte() != 0 || r.Uint64() != 0 || r.Varint() != 0 || r.Count(1) != 0 || r.Blob() != nil ||
				!errors.Is(r.Err(), tt.want) || len(r.Rest()) != rest {
				t.Errorf("reads after the error: error %v, %d bytes left, want %v and %d", r.Err(), len(r.Rest()), tt.want, rest)
			}
		})
	}
}

// reflectZero returns the zero value of v's type (the reads return ints of
// several widths).
func reflectZero(v any) any {
	switch v.(type) {
	case byte:
		return byte(0)
	case uint16:
		return uint16(0)
	case uint32:
		return uint32(0)
	case uint64:
		return uint64(0)
	case int64:
		return int64(0)
	}
	return 0
}

func TestCountAcceptsShortestForms(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 1 << 14, math.MaxInt64, 1<<63 + 5, math.MaxUint64} {
		r := NewReader(AppendUvarint(nil, v))
		got := r.Count(math.MaxInt64)
		switch {
		case v > math.MaxInt64:
			if !errors.Is(r.Err(), ErrTooLong) {
				t.Errorf("Count of %d: %d, %v; want ErrTooLong", v, got, r.Err())
			}
		case r.Err() != nil || uint64(got) != v || len(r.Rest()) != 0:
			t.Errorf("Count of %d: %d, %v, %d bytes left", v, got, r.Err(), len(r.Rest()))
		}
	}
}

func TestAppendAllocations(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		b := append(buf[:0], 1)
		b = AppendUint16(b, 2)
		b = AppendUint32(b, 3)
		b = AppendUint64(b, 4)
		b = AppendFloat64(b, 5)
		b = AppendVarint(b, 6)
		b = AppendUvarint(b, 7)
		PutUint16(b[1:], 8)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzReader runs every read over arbitrary bytes: errors, never panics,
// and a read that succeeds consumes what its writer would write.
func FuzzReader(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(AppendString(AppendUvarint(AppendUint32(AppendUint16([]byte{1}, 2), 3), 4), "x"), false)
	f.Add(bytes.Repeat([]byte{0xff}, 40), true)
	f.Fuzz(func(t *testing.T, b []byte, big bool) {
		r := NewReader(b)
		if big {
			r = NewBigEndianReader(b)
		}
		for r.Err() == nil && len(r.Rest()) > 0 {
			before := len(r.Rest())
			switch r.Byte() % 8 {
			case 0:
				r.Uint16()
			case 1:
				r.Uint32()
			case 2:
				r.Float64()
			case 3:
				r.Floats(nil, 4)
			case 4:
				if n := r.Count(1 << 20); r.Err() == nil && len(AppendUvarint(nil, uint64(n))) != before-1-len(r.Rest()) {
					t.Fatalf("Count %d consumed %d bytes", n, before-1-len(r.Rest()))
				}
			case 5:
				r.Varint()
			case 6:
				r.Str()
			case 7:
				r.Bytes(int(r.Uvarint() % 16))
			}
		}
	})
}
