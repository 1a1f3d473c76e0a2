package grayfailure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// stateVersion is the first byte of a checkpoint; bump it when the layout
// changes (an unknown version is an error, so state warms up again).
const stateVersion = 2

// maxZoneName bounds a zone name in a checkpoint.
const maxZoneName = 255

// ErrBadState is returned (wrapped) by UnmarshalBinary for a checkpoint that
// is truncated, of an unknown version or out of range.
var ErrBadState = errors.New("grayfailure: bad checkpoint")

// AppendBinary appends the detector's state (not its Config) to b and
// returns the extended slice. It implements encoding.BinaryAppender.
func (d *Detector) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(d.lastEnd))
	flags := byte(0)
	if d.regional {
		flags = 1
	}
	b = append(b, flags, byte(len(d.zones)))
	b = binary.BigEndian.AppendUint16(b, d.rhist)
	for i := range d.zones {
		z := &d.zones[i]
		b = append(b, byte(len(z.name)))
		b = append(b, z.name...)
		b = binary.BigEndian.AppendUint16(b, z.valid)
		b = binary.BigEndian.AppendUint16(b, z.warn)
		b = binary.BigEndian.AppendUint16(b, z.breach)
		for s := range nSignals {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(z.ev[s]))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(z.mu[s]))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(z.vr[s]))
			b = binary.BigEndian.AppendUint32(b, z.nObs[s])
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(z.pend[s]))
		}
		b = binary.BigEndian.AppendUint32(b, z.healthy)
		f := byte(0)
		if z.warned {
			f |= 1
		}
		if z.alerted {
			f |= 2
		}
		b = append(b, f)
		b = binary.BigEndian.AppendUint64(b, uint64(z.shiftedUntil))
	}
	return b, nil
}

// MarshalBinary returns the state as a new slice; see AppendBinary.
func (d *Detector) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// UnmarshalBinary replaces the detector's state by the checkpoint in b,
// written by AppendBinary (of a detector with any Config). b is not retained.
// On error the state is unchanged.
func (d *Detector) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if v := r.byte(); v != stateVersion {
		return fmt.Errorf("%w: version %d", ErrBadState, v)
	}
	lastEnd := int64(r.u64())
	flags := r.byte()
	regional := flags == 1
	n := int(r.byte())
	rhist := r.u16()
	if r.err == nil && flags > 1 {
		return fmt.Errorf("%w: flags %#x", ErrBadState, flags)
	}
	if r.err == nil && n > MaxZones {
		return fmt.Errorf("%w: %d zones", ErrBadState, n)
	}
	zones := make([]zoneState, 0, max(n, 6))
	for range n {
		var z zoneState
		l := int(r.byte())
		z.name = string(r.bytes(l))
		z.valid, z.warn, z.breach = r.u16(), r.u16(), r.u16()
		for s := range nSignals {
			z.ev[s], z.mu[s], z.vr[s] = r.f64(), r.f64(), r.f64()
			z.nObs[s] = r.u32()
			z.pend[s] = r.f64()
			// Evidence and variance are finite and not negative; a mean
			// is finite.
			if r.err == nil && (!(z.ev[s] >= 0) || !(z.vr[s] >= 0) || math.IsInf(z.ev[s], 0) || math.IsInf(z.vr[s], 0) || math.IsNaN(z.mu[s]) || math.IsInf(z.mu[s], 0) || math.IsInf(z.pend[s], 0)) {
				return fmt.Errorf("%w: zone %q signal %d evidence %v mean %v variance %v", ErrBadState, z.name, s, z.ev[s], z.mu[s], z.vr[s])
			}
		}
		z.healthy = r.u32()
		f := r.byte()
		if r.err == nil && (f > 3 || l == 0) {
			return fmt.Errorf("%w: zone %q flags %#x", ErrBadState, z.name, f)
		}
		z.warned, z.alerted = f&1 != 0, f&2 != 0
		z.shiftedUntil = int64(r.u64())
		zones = append(zones, z)
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(r.b))
	}
	for i := range zones {
		for j := range i {
			if zones[i].name == zones[j].name {
				return fmt.Errorf("%w: zone %q twice", ErrBadState, zones[i].name)
			}
		}
	}
	d.lastEnd, d.regional, d.rhist, d.zones = lastEnd, regional, rhist, zones
	return nil
}

// reader decodes big-endian fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: truncated", ErrBadState)
		r.b = nil
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) byte() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) bytes(n int) []byte { return r.take(n) }

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}
