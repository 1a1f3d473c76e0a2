package anomaly

import (
	"fmt"
	"math"

	"github.com/augur-ops/augur/internal/wire"
)

// stateVersion is the first byte of an encoded State. Bump it when the layout
// changes and keep a decoder of the versions still in Kafka (the goldens in
// testdata/checkpoint); UnmarshalBinary rejects other versions, so the
// stream warms those series up again.
const stateVersion = 2

// EncodedSize is the length of every encoded State.
const EncodedSize = 1 + 4 + 4 + 2 + 1 + 1 + 2 + 8 + 13*8 + len(State{}.seen) + profileBins*(8+8+2)

// An encoded State, in order (wire encoding, fixed-size, little-endian):
//
//	version  byte (2)
//	n        u32
//	quiet    u32 (an int32, not negative)
//	outside  u16
//	b1, b2   byte each, below levels
//	seenLvl  u16
//	lastTs   u64 (unix ms)
//	13 f64   bandMean bandVar fastMean fastMAD slowMean slowMAD lo hi short
//	         histMean histVar dtMean seasMAD (finite; spreads not negative)
//	seen     len(State.seen) bytes
//	per profile bin: pLvl f64, pMAD f64, pCnt u16

// AppendBinary appends the checkpoint of s to dst and returns the extended
// slice; it allocates only if dst lacks EncodedSize spare capacity. The
// encoding is little-endian, fixed-size and versioned.
func (s *State) AppendBinary(dst []byte) []byte {
	dst = append(dst, stateVersion)
	dst = wire.AppendUint32(dst, s.n)
	dst = wire.AppendUint32(dst, uint32(s.quiet))
	dst = wire.AppendUint16(dst, s.outside)
	dst = append(dst, s.b1, s.b2)
	dst = wire.AppendUint16(dst, s.seenLvl)
	dst = wire.AppendInt64(dst, s.lastTs)
	for _, f := range s.floats() {
		dst = wire.AppendFloat64(dst, *f)
	}
	dst = append(dst, s.seen[:]...)
	for i := range profileBins {
		dst = wire.AppendFloat64(dst, s.pLvl[i])
		dst = wire.AppendFloat64(dst, s.pMAD[i])
		dst = wire.AppendUint16(dst, s.pCnt[i])
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
	r := wire.NewReader(b[1:])
	var t State
	t.n = r.Uint32()
	t.quiet = int32(r.Uint32())
	t.outside = r.Uint16()
	t.b1, t.b2 = r.Byte(), r.Byte()
	t.seenLvl = r.Uint16()
	t.lastTs = r.Int64()
	for _, f := range t.floats() {
		*f = r.Float64()
	}
	copy(t.seen[:], r.Bytes(len(t.seen)))
	for i := range profileBins {
		t.pLvl[i] = r.Float64()
		t.pMAD[i] = r.Float64()
		t.pCnt[i] = r.Uint16()
		if math.IsNaN(t.pLvl[i]) || math.IsInf(t.pLvl[i], 0) || !(t.pMAD[i] >= 0) || math.IsInf(t.pMAD[i], 0) {
			return fmt.Errorf("decode anomaly state: profile bin %d is %v ± %v", i, t.pLvl[i], t.pMAD[i])
		}
	}
	if r.Err() != nil {
		// The length is checked above: not reached unless the layout and
		// EncodedSize disagree.
		return fmt.Errorf("decode anomaly state: %w", r.Err())
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
