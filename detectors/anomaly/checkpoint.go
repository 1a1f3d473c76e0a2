package anomaly

import (
	"encoding/binary"
	"fmt"
	"math"
)

// stateVersion is the first byte of an encoded State. Bump it when the layout
// changes; UnmarshalBinary rejects other versions, so the stream warms the
// series up again instead of misreading old checkpoints.
const stateVersion = 2

// EncodedSize is the length of every encoded State.
const EncodedSize = 1 + 4 + 4 + 2 + 1 + 1 + 2 + 8 + 13*8 + len(State{}.seen) + profileBins*(8+8+2)

// AppendBinary appends the checkpoint of s to dst and returns the extended
// slice; it allocates only if dst lacks EncodedSize spare capacity. The
// encoding is little-endian, fixed-size and versioned.
func (s *State) AppendBinary(dst []byte) []byte {
	le := binary.LittleEndian
	dst = append(dst, stateVersion)
	dst = le.AppendUint32(dst, s.n)
	dst = le.AppendUint32(dst, uint32(s.quiet))
	dst = le.AppendUint16(dst, s.outside)
	dst = append(dst, s.b1, s.b2)
	dst = le.AppendUint16(dst, s.seenLvl)
	dst = le.AppendUint64(dst, uint64(s.lastTs))
	for _, f := range s.floats() {
		dst = le.AppendUint64(dst, math.Float64bits(*f))
	}
	dst = append(dst, s.seen[:]...)
	for i := range profileBins {
		dst = le.AppendUint64(dst, math.Float64bits(s.pLvl[i]))
		dst = le.AppendUint64(dst, math.Float64bits(s.pMAD[i]))
		dst = le.AppendUint16(dst, s.pCnt[i])
	}
	return dst
}

// UnmarshalBinary restores s from a checkpoint written by AppendBinary. The
// input is untrusted: a wrong length, version or out-of-range field is an
// error and leaves s unchanged. s does not keep b.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) != EncodedSize {
		return fmt.Errorf("decode anomaly state: %d bytes, want %d", len(b), EncodedSize)
	}
	if b[0] != stateVersion {
		return fmt.Errorf("decode anomaly state: version %d, want %d", b[0], stateVersion)
	}
	le := binary.LittleEndian
	var t State
	t.n = le.Uint32(b[1:])
	t.quiet = int32(le.Uint32(b[5:]))
	t.outside = le.Uint16(b[9:])
	t.b1, t.b2 = b[11], b[12]
	t.seenLvl = le.Uint16(b[13:])
	t.lastTs = int64(le.Uint64(b[15:]))
	off := 23
	for _, f := range t.floats() {
		*f = math.Float64frombits(le.Uint64(b[off:]))
		off += 8
	}
	off += copy(t.seen[:], b[off:])
	for i := range profileBins {
		t.pLvl[i] = math.Float64frombits(le.Uint64(b[off:]))
		t.pMAD[i] = math.Float64frombits(le.Uint64(b[off+8:]))
		t.pCnt[i] = le.Uint16(b[off+16:])
		off += 18
		if math.IsNaN(t.pLvl[i]) || math.IsInf(t.pLvl[i], 0) || !(t.pMAD[i] >= 0) || math.IsInf(t.pMAD[i], 0) {
			return fmt.Errorf("decode anomaly state: profile bin %d is %v ± %v", i, t.pLvl[i], t.pMAD[i])
		}
	}
	if t.quiet < 0 || t.b1 >= levels || t.b2 >= levels {
		return fmt.Errorf("decode anomaly state: field out of range (quiet %d, levels %d %d)", t.quiet, t.b1, t.b2)
	}
	for i, f := range t.floats() {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			return fmt.Errorf("decode anomaly state: float field %d is %v", i, *f)
		}
	}
	if t.lo > t.hi || t.bandVar < 0 || t.fastMAD < 0 || t.slowMAD < 0 || t.histVar < 0 || t.dtMean < 0 || t.seasMAD < 0 {
		return fmt.Errorf("decode anomaly state: inconsistent range or negative spread")
	}
	*s = t
	return nil
}

// floats lists the float fields of s in encoding order.
func (s *State) floats() [13]*float64 {
	return [13]*float64{&s.bandMean, &s.bandVar, &s.fastMean, &s.fastMAD, &s.slowMean, &s.slowMAD, &s.lo, &s.hi, &s.short, &s.histMean, &s.histVar, &s.dtMean, &s.seasMAD}
}
