package grayfailure

import (
	"errors"
	"fmt"
	"math"

	"github.com/augur-ops/augur/internal/wire"
)

// stateVersion is the first byte of a checkpoint; bump it when the layout
// changes, and keep reading the earlier versions that are still in Kafka.
// Version 2 had the same layout with big-endian fixed-size numbers; older
// versions are an error, so the state warms up again.
const stateVersion = 3

// stateVersionBigEndian is the version of the big-endian layout.
const stateVersionBigEndian = 2

// maxZoneName bounds a zone name in a checkpoint.
const maxZoneName = 255

// ErrBadState is returned (wrapped) by UnmarshalBinary for a checkpoint that
// is truncated, of an unknown version or out of range.
var ErrBadState = errors.New("grayfailure: bad checkpoint")

// A checkpoint, in order (wire encoding: u16, u32 and u64 little-endian):
//
//	version    byte (3; 2 is the same layout big-endian)
//	lastEnd    u64 (unix ms of the last window)
//	flags      byte: 1 regional, no other bit
//	zones      byte n, at most MaxZones
//	rhist      u16
//	n times:
//	  name                 byte length (1 to maxZoneName), then the name
//	  valid warn breach    u16
//	  per signal:          ev mu vr f64, nObs u32, pend f64
//	  healthy              u32
//	  flags                byte: 1 warned, 2 alerted, no other bit
//	  shiftedUntil         u64 (unix ms)

// AppendBinary appends the detector's state (not its Config) to b and
// returns the extended slice. It implements encoding.BinaryAppender.
func (d *Detector) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = wire.AppendInt64(b, d.lastEnd)
	flags := byte(0)
	if d.regional {
		flags = 1
	}
	b = append(b, flags, byte(len(d.zones)))
	b = wire.AppendUint16(b, d.rhist)
	for i := range d.zones {
		z := &d.zones[i]
		b = append(b, byte(len(z.name)))
		b = append(b, z.name...)
		b = wire.AppendUint16(b, z.valid)
		b = wire.AppendUint16(b, z.warn)
		b = wire.AppendUint16(b, z.breach)
		for s := range nSignals {
			b = wire.AppendFloat64(b, z.ev[s])
			b = wire.AppendFloat64(b, z.mu[s])
			b = wire.AppendFloat64(b, z.vr[s])
			b = wire.AppendUint32(b, z.nObs[s])
			b = wire.AppendFloat64(b, z.pend[s])
		}
		b = wire.AppendUint32(b, z.healthy)
		f := byte(0)
		if z.warned {
			f |= 1
		}
		if z.alerted {
			f |= 2
		}
		b = append(b, f)
		b = wire.AppendInt64(b, z.shiftedUntil)
	}
	return b, nil
}

// MarshalBinary returns the state as a new slice; see AppendBinary.
func (d *Detector) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// UnmarshalBinary replaces the detector's state by the checkpoint in b,
// written by AppendBinary of this version or an earlier one (of a detector
// with any Config). b is not retained. On error the state is unchanged.
func (d *Detector) UnmarshalBinary(b []byte) error {
	r, err := wire.Open(b, stateVersion, stateVersionBigEndian)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	lastEnd := r.Int64()
	flags := r.Byte()
	regional := flags == 1
	n := int(r.Byte())
	rhist := r.Uint16()
	if r.Err() == nil && flags > 1 {
		return fmt.Errorf("%w: flags %#x", ErrBadState, flags)
	}
	if r.Err() == nil && n > MaxZones {
		return fmt.Errorf("%w: %d zones", ErrBadState, n)
	}
	zones := make([]zoneState, 0, max(n, 6))
	for range n {
		var z zoneState
		l := int(r.Byte())
		z.name = string(r.Bytes(l))
		z.valid, z.warn, z.breach = r.Uint16(), r.Uint16(), r.Uint16()
		for s := range nSignals {
			z.ev[s], z.mu[s], z.vr[s] = r.Float64(), r.Float64(), r.Float64()
			z.nObs[s] = r.Uint32()
			z.pend[s] = r.Float64()
			// Evidence and variance are finite and not negative; a mean
			// is finite.
			if r.Err() == nil && (!(z.ev[s] >= 0) || !(z.vr[s] >= 0) || math.IsInf(z.ev[s], 0) || math.IsInf(z.vr[s], 0) || math.IsNaN(z.mu[s]) || math.IsInf(z.mu[s], 0) || math.IsInf(z.pend[s], 0)) {
				return fmt.Errorf("%w: zone %q signal %d evidence %v mean %v variance %v", ErrBadState, z.name, s, z.ev[s], z.mu[s], z.vr[s])
			}
		}
		z.healthy = r.Uint32()
		f := r.Byte()
		if r.Err() == nil && (f > 3 || l == 0) {
			return fmt.Errorf("%w: zone %q flags %#x", ErrBadState, z.name, f)
		}
		z.warned, z.alerted = f&1 != 0, f&2 != 0
		z.shiftedUntil = r.Int64()
		zones = append(zones, z)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if len(r.Rest()) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(r.Rest()))
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
