package stream

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/proto"
)

// State records on augur.state.
//
// augur.state is compacted and partitioned like augur.samples: partition p
// holds the checkpoints of partition p. Keys:
//
//	's' series-key   one series: last timestamp and value, flags, detector state
//	'g' group-key    one workload group: open windows, forecaster, last decision
//	'm'              the partition: max event time, next sweep
//
// A nil value (tombstone) deletes a series that was evicted or ended, or a
// gray-failure or GPU group no series belonged to any more.
// Values start with a format version byte; a record of another version is
// skipped, so its series or group warms up again (safe, like a rules change).
const (
	stateVersion = 3

	keySeries = 's'
	keyGroup  = 'g'
	keyMeta   = 'm'
)

var errBadState = errors.New("bad state record")

// stateRecord is one key/value of a checkpoint.
type stateRecord struct {
	key, value []byte
}

// appendCheckpoint appends the state records of what changed since the last
// checkpoint (tombstones first, so a series evicted and re-created in one
// transaction ends up present) and clears the dirty marks. It returns the
// records; their bytes are freshly allocated and owned by the caller.
func (sh *shard) appendCheckpoint(dst []stateRecord) ([]stateRecord, error) {
	for _, k := range sh.tombs {
		dst = append(dst, stateRecord{key: append([]byte{keySeries}, k...)})
	}
	sh.tombs = sh.tombs[:0]
	for _, k := range sh.gtombs {
		dst = append(dst, stateRecord{key: append([]byte{keyGroup}, k...)})
	}
	sh.gtombs = sh.gtombs[:0]
	for row := range sh.keys {
		if sh.flags[row]&fDirty == 0 {
			continue
		}
		if !sh.durable(int32(row)) {
			sh.flags[row] &^= fDirty
			continue
		}
		v, err := sh.appendSeriesState(nil, int32(row))
		if err != nil {
			return dst, err
		}
		sh.flags[row] &^= fDirty
		dst = append(dst, stateRecord{key: append([]byte{keySeries}, sh.keys[row]...), value: v})
	}
	for _, g := range sh.groups {
		if !g.dirty {
			continue
		}
		v, err := appendGroupState(nil, g)
		if err != nil {
			return dst, err
		}
		g.dirty = false
		dst = append(dst, stateRecord{key: append([]byte{keyGroup}, g.key...), value: v})
	}
	if sh.hasMax {
		dst = append(dst, stateRecord{key: []byte{keyMeta}, value: sh.appendMeta(nil)})
	}
	return dst, nil
}

// markAllDirty makes the next checkpoint write the whole durable state.
func (sh *shard) markAllDirty() {
	for row := range sh.flags {
		sh.flags[row] |= fDirty
	}
	for _, g := range sh.groups {
		g.dirty = true
	}
}

// A series record's value (wire encoding): version byte, lastTs varint,
// lastV f64, flags byte, then for a watched series the length of the
// anomaly detector's state (u16) and that state.
func (sh *shard) appendSeriesState(b []byte, row int32) ([]byte, error) {
	b = append(b, stateVersion)
	b = wire.AppendVarint(b, sh.lastTs[row])
	b = wire.AppendFloat64(b, sh.lastV[row])
	b = append(b, sh.flags[row]&^fDirty)
	if d := sh.det[row]; d != nil {
		start := len(b)
		b = wire.AppendUint16(b, 0) // length placeholder
		b = d.AppendBinary(b)
		n := len(b) - start - 2
		if n > math.MaxUint16 {
			return nil, fmt.Errorf("detector state of %d bytes is too large", n)
		}
		wire.PutUint16(b[start:], uint16(n))
	}
	return b, nil
}

// A group record's value (wire encoding): version byte; open windows
// (uvarint count, then start varint and sum f64 each); last replicas
// varint; the scaler's recommendation window (uvarint count, then at,
// recommend and hold varints each); the forecaster bank's checkpoint blob;
// nextClose varint; the group detector's checkpoint blob; then fields
// added later, which a record may lack: flags byte, last scale down varint;
// the scaler's last decided replicas and their time varints, the last
// decision's id blob and expiry varint; the end of the last window closed
// varint.
func appendGroupState(b []byte, g *group) ([]byte, error) {
	b = append(b, stateVersion)
	b = wire.AppendUvarint(b, uint64(len(g.windows)))
	for _, w := range g.windows {
		b = wire.AppendVarint(b, w.start)
		b = wire.AppendFloat64(b, w.sum)
	}
	b = wire.AppendVarint(b, int64(g.last))
	var window []scaling.WindowEntry
	if g.sc != nil {
		window = g.sc.Window()
	}
	b = wire.AppendUvarint(b, uint64(len(window)))
	for _, r := range window {
		b = wire.AppendVarint(b, r.At)
		b = wire.AppendVarint(b, int64(r.Recommend))
		b = wire.AppendVarint(b, int64(r.Hold))
	}
	var fc []byte
	if g.fc != nil {
		fc = g.fc.AppendBinary(nil)
	}
	b = wire.AppendBlob(b, fc)
	b = wire.AppendVarint(b, g.nextClose)
	var det []byte
	if g.det != nil {
		var err error
		if det, err = g.det.AppendBinary(nil); err != nil {
			return nil, fmt.Errorf("group detector state: %w", err)
		}
	}
	b = wire.AppendBlob(b, det)
	// Flags, added after the first layout: readers of that layout ignore
	// trailing bytes, and a record without them restores as before.
	var flags byte
	if g.opened {
		flags |= groupOpened
	}
	b = append(b, flags)
	// The scaler's last scale down, after the flags (same rule: an older
	// record restores it as none).
	var lastDown, lastAt int64
	var last int32
	if g.sc != nil {
		lastDown = g.sc.LastDown()
		last, lastAt = g.sc.Last()
	}
	b = wire.AppendVarint(b, lastDown)
	// What the scaler and the group last decided (same rule again): a
	// restored stream does not repeat a decision still in its TTL, and
	// reads the actuator's reports against it, as the run it replaces.
	b = wire.AppendVarint(b, int64(last))
	b = wire.AppendVarint(b, lastAt)
	b = wire.AppendBlob(b, []byte(g.lastID))
	b = wire.AppendVarint(b, g.lastExp)
	// The end of the last window closed (same rule: an older record
	// restores it as none, and the rate spans from the bank's last step).
	return wire.AppendVarint(b, g.closed), nil
}

// groupOpened is the group state flag of group.opened.
const groupOpened = 1

// The meta record's value (wire encoding): version byte, maxTs and
// nextSweep varints.
func (sh *shard) appendMeta(b []byte) []byte {
	b = append(b, stateVersion)
	b = wire.AppendVarint(b, sh.maxTs)
	return wire.AppendVarint(b, sh.nextSweep)
}

// apply restores one state record (in offset order) into the shard. Records
// of rules that no longer exist are ignored: their state warms up again.
func (sh *shard) apply(key, value []byte) error {
	if len(key) == 0 {
		return errBadState
	}
	if len(value) > 0 && value[0] != stateVersion {
		return nil
	}
	switch key[0] {
	case keySeries:
		k := string(key[1:])
		if row, ok := sh.index[k]; ok {
			sh.remove(row)
		}
		if len(value) == 0 {
			return nil
		}
		tenant, lbls, ok := proto.ParseSeriesKey(k, sh.lbls[:0])
		if !ok {
			return fmt.Errorf("%w: series key", errBadState)
		}
		row := sh.create(k, tenant, lbls, "")
		sh.stats.created--
		r := wire.NewReader(value[1:])
		sh.lastTs[row] = r.Varint()
		sh.lastV[row] = r.Float64()
		fl := r.Byte()
		if r.Err() != nil {
			return r.Err()
		}
		sh.flags[row] = fl &^ fDirty
		if len(r.Rest()) > 0 {
			ds := r.Bytes(int(r.Uint16()))
			if r.Err() != nil {
				return r.Err()
			}
			if d := sh.det[row]; d != nil {
				if err := d.UnmarshalBinary(ds); err != nil {
					// A detector whose state format changed starts over.
					sh.det[row] = sh.env.newDetector(sh.watch[row])
				}
			}
		}
	case keyGroup:
		k := string(key[1:])
		if len(value) == 0 {
			// An evicted group: no series belonged to it any more.
			if gi, ok := sh.groupIndex[k]; ok && !slices.Contains(sh.group, gi) {
				sh.removeGroup(gi)
			}
			return nil
		}
		tenant, rule, _, ok := parseGroupKey(k)
		if !ok {
			return nil
		}
		ri := sh.ruleIndex(rule)
		if ri < 0 {
			return nil
		}
		gi, ok := sh.groupIndex[k]
		if !ok {
			gi = sh.newGroup(k, ri, tenant)
		}
		g := sh.groups[gi]
		r := wire.NewReader(value[1:])
		n := r.Uvarint()
		if n > 1<<20 {
			return errBadState
		}
		g.windows = g.windows[:0]
		for range n {
			g.windows = append(g.windows, window{start: r.Varint(), sum: r.Float64()})
		}
		g.last = int32(r.Varint())
		nr := r.Uvarint()
		if nr > scaling.MaxWindow {
			return errBadState
		}
		window := make([]scaling.WindowEntry, 0, nr)
		for range nr {
			window = append(window, scaling.WindowEntry{At: r.Varint(), Recommend: int32(r.Varint()), Hold: int32(r.Varint())})
		}
		fc := r.Blob()
		g.nextClose = r.Varint()
		// Written under another window (the rule's window changed):
		// close on this window's grid from the next end on.
		g.nextClose = detectors.WindowCeil(g.nextClose, sh.env.windowMs(ri))
		det := r.Blob()
		if r.Err() != nil {
			return r.Err()
		}
		// Without the flags byte (an older record), a group with state has
		// closed a window.
		rest := r.Rest()
		g.opened = len(rest) == 0 || rest[0]&groupOpened != 0
		var lastDown, lastAt int64
		var last int32
		if len(rest) > 0 {
			r.Bytes(1) // the flags; a record may end with them
		}
		if len(r.Rest()) > 0 {
			if lastDown = r.Varint(); r.Err() != nil {
				return r.Err()
			}
		}
		if len(r.Rest()) > 0 {
			last, lastAt = int32(r.Varint()), r.Varint()
			g.lastID, g.lastExp = string(r.Blob()), r.Varint()
			if r.Err() != nil {
				return r.Err()
			}
		}
		g.closed = 0
		if len(r.Rest()) > 0 {
			if g.closed = r.Varint(); r.Err() != nil {
				return r.Err()
			}
		}
		if g.fc != nil {
			// A bank whose state format or configuration changed starts
			// over (it warms up again).
			if err := g.fc.UnmarshalBinary(fc); err != nil {
				g.fc, _ = sh.env.newScaling(ri, tenant)
			}
			g.refits, g.repairs = g.fc.Refits(), g.fc.Repairs()
			sh.env.restoreScaler(g, window, lastDown, last, lastAt)
		}
		if g.det != nil {
			if err := g.det.UnmarshalBinary(det); err != nil {
				_, _, vals, _ := rules.ParseGroupKey([]byte(k), nil)
				g.det = sh.env.newGroup(sh.env.rules.Rule(ri), tenant, vals)
			}
		}
		g.dirty = false
	case keyMeta:
		if len(value) == 0 {
			return nil
		}
		r := wire.NewReader(value[1:])
		sh.maxTs = r.Varint()
		sh.nextSweep = r.Varint()
		if r.Err() != nil {
			return r.Err()
		}
		sh.hasMax = true
	default:
		return fmt.Errorf("%w: key type %q", errBadState, key[0])
	}
	return nil
}

// finishRestore clears the marks a restore left: restored state is already
// checkpointed.
func (sh *shard) finishRestore() {
	for i := range sh.flags {
		sh.flags[i] &^= fDirty
	}
	for _, g := range sh.groups {
		g.dirty = false
	}
	sh.tombs = sh.tombs[:0]
	sh.gtombs = sh.gtombs[:0]
	sh.out = sh.out[:0]
	sh.points = sh.points[:0]
}

// ruleIndex returns the index of the workload rule named name whose group
// state the stream keeps, or -1.
func (sh *shard) ruleIndex(name string) int {
	set := sh.env.rules
	for i := range set.Len() {
		if set.Rule(i).Name != name {
			continue
		}
		switch set.Kind(i) {
		case rules.KindScaling:
			return i
		case rules.KindGrayFailure, rules.KindGPU:
			return i
		}
	}
	return -1
}

func parseGroupKey(k string) (tenant, rule string, vals []string, ok bool) {
	return rules.ParseGroupKey([]byte(k), nil)
}

// durable reports whether a series' state is checkpointed: whether a rule
// reads it (a group or an anomaly watch). The row of a series no rule
// reads is made again from its next sample after a restore, and nothing
// decided differs; a record for each of them at every checkpoint would be
// most of augur.state's bytes (bench/RESULTS-ingest.md).
func (sh *shard) durable(row int32) bool {
	return sh.group[row] >= 0 || sh.watch[row] >= 0
}

// snapshot returns every state record of the shard, sorted by key: the
// shard's complete durable state in checkpoint form. Two shards with equal
// snapshots make the same decisions from here on.
func (sh *shard) snapshot() ([]stateRecord, error) {
	var out []stateRecord
	for row := range sh.keys {
		if !sh.durable(int32(row)) {
			continue
		}
		v, err := sh.appendSeriesState(nil, int32(row))
		if err != nil {
			return nil, err
		}
		out = append(out, stateRecord{key: append([]byte{keySeries}, sh.keys[row]...), value: v})
	}
	for _, g := range sh.groups {
		v, err := appendGroupState(nil, g)
		if err != nil {
			return nil, err
		}
		out = append(out, stateRecord{key: append([]byte{keyGroup}, g.key...), value: v})
	}
	if sh.hasMax {
		out = append(out, stateRecord{key: []byte{keyMeta}, value: sh.appendMeta(nil)})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].key) < string(out[j].key) })
	return out, nil
}
