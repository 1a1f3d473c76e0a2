package bank

import (
	"errors"
	"fmt"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/models"
)

// checkpointMagic and checkpointVersion start every checkpoint, as one
// little-endian word checkpointMagic<<32 | checkpointVersion: its first byte
// is the version. The goldens of each version are in testdata/checkpoint.
// Version 2 added the drift member; a version 1 checkpoint restores with
// a new drift member, scored from the next sample on.
const (
	checkpointMagic   = 0x41554742 // "AUGB"
	checkpointVersion = 2
)

// ErrCheckpointConfig is returned by UnmarshalBinary when the checkpoint was
// written by a bank with a different step or horizons; the caller should
// start the series afresh (it warms up again).
var ErrCheckpointConfig = errors.New("checkpoint from a bank with another step or horizon")

// AppendBinary appends the bank's complete state to dst and returns the
// extended slice. A bank restored from it with UnmarshalBinary produces
// exactly the same forecasts and decisions as this one. It allocates only to
// grow dst; size it with AppendBinary(buf[:0]) and reuse buf.
func (b *Bank) AppendBinary(dst []byte) []byte {
	dst = wire.AppendUint64(dst, checkpointMagic<<32|checkpointVersion)
	dst = wire.AppendInt64(dst, b.stepMs)
	dst = wire.AppendInt64(dst, int64(b.h))
	dst = wire.AppendInt64(dst, int64(b.maxH))
	st := int64(0)
	if b.started {
		st = 1
	}
	for _, v := range [...]int64{st, b.t0, b.n, b.histW, b.histB, b.periods[0], b.periods[1],
		b.nextCheck, b.lastRefit, int64(b.refits), int64(b.served)} {
		dst = wire.AppendInt64(dst, v)
	}
	dst = wire.AppendFloat64(dst, b.lastY)
	dst = wire.AppendFloat64(dst, b.histSum)
	dst = wire.AppendFloat64(dst, b.histCnt)
	dst = wire.AppendFloats(dst, b.recent)
	dst = wire.AppendFloats(dst, b.hist)
	dst = b.tr.AppendBinary(dst)
	dst = b.naive.AppendBinary(dst)
	dst = b.hw.AppendBinary(dst)
	dst = b.fr.AppendBinary(dst)
	return b.drift.AppendBinary(dst)
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (b *Bank) MarshalBinary() ([]byte, error) { return b.AppendBinary(nil), nil }

// UnmarshalBinary restores a checkpoint written by AppendBinary into b, which
// must come from New with the same Step, Horizon and MaxHorizon (otherwise
// ErrCheckpointConfig). data may come from an untrusted store: any malformed
// input is an error, never a panic, and b is left reset on error. b does not
// retain data.
func (b *Bank) UnmarshalBinary(data []byte) error {
	if err := b.unmarshal(data); err != nil {
		b.reset()
		return fmt.Errorf("restore forecaster bank: %w", err)
	}
	return nil
}

func (b *Bank) unmarshal(data []byte) error {
	r := wire.NewReader(data)
	v := r.Uint64()
	if r.Err() == nil && v>>32 != checkpointMagic {
		return errors.New("not a bank checkpoint")
	}
	version := v & 0xffffffff
	if r.Err() == nil && (version < 1 || version > checkpointVersion) {
		return fmt.Errorf("bank checkpoint of version %d: this version reads 1 to %d", version, checkpointVersion)
	}
	stepMs, h, maxH := r.Int64(), r.Int64(), r.Int64()
	if r.Err() != nil {
		return r.Err()
	}
	if stepMs != b.stepMs || h != int64(b.h) || maxH != int64(b.maxH) {
		return ErrCheckpointConfig
	}
	var st, refits, served int64
	for _, p := range [...]*int64{&st, &b.t0, &b.n, &b.histW, &b.histB, &b.periods[0], &b.periods[1],
		&b.nextCheck, &b.lastRefit, &refits, &served} {
		*p = r.Int64()
	}
	b.started, b.refits, b.served = st == 1, uint64(refits), int(served)
	b.lastY = r.Float64()
	b.histSum = r.Float64()
	b.histCnt = r.Float64()
	b.recent = r.Floats(b.recent, b.h)
	b.hist = r.Floats(b.hist, histLen)
	if r.Err() == nil && (len(b.recent) != b.h || len(b.hist) != histLen || b.histW < 1 ||
		b.served < 0 || b.served >= NumMembers || b.periods[0] < 0 || b.periods[1] < 0) {
		return wire.ErrInvalid
	}
	b.tr.ReadBinary(r)
	b.naive.ReadBinary(r)
	b.hw.ReadBinary(r)
	b.fr.ReadBinary(r)
	if version >= 2 {
		b.drift.ReadBinary(r)
	} else {
		b.drift.Init(b.h, b.memory, b.lastY)
	}
	if r.Err() != nil {
		return r.Err()
	}
	if b.tr.Horizon() != b.h || b.naive.Tracker.Horizon() != b.h || b.hw.Tracker.Horizon() != b.h ||
		b.fr.Tracker.Horizon() != b.h || b.drift.Tracker.Horizon() != b.h {
		return wire.ErrInvalid
	}
	// The Holt-Winters weights are configuration, derived from the step:
	// a checkpoint of an earlier version goes on with this version's
	// (its trend was damped over an hour, which drifts over months).
	_, width := models.SlotLayout(b.hw.Period())
	b.hw.SetParams(b.hwParams(width))
	if len(r.Rest()) != 0 {
		return errors.New("trailing bytes after checkpoint")
	}
	return nil
}
