package gpu

import (
	"errors"
	"fmt"

	"github.com/augur-ops/augur/internal/wire"
)

// stateVersion is the first byte of a checkpoint. Version 2 had no
// settling fields in a member, version 1 the layout of version 2 with
// big-endian fixed-size numbers; UnmarshalBinary still reads both.
const stateVersion = 3

// stateVersionUnsettled is the last version without a member's settling
// fields: its members restore as settled at the job's median.
const stateVersionUnsettled = 2

// stateVersionBigEndian is the version of the big-endian layout.
const stateVersionBigEndian = 1

// ErrBadState is returned (wrapped) by UnmarshalBinary for a checkpoint that
// is truncated, of an unknown version or inconsistent.
var ErrBadState = errors.New("gpu: bad checkpoint")

// maxStr bounds a string in a checkpoint (label values are short).
const maxStr = 1 << 16

// A checkpoint, in order (wire encoding: u32 and u64 little-endian, uvarint
// counts and string lengths in their shortest form, flags one byte, bit i
// the i-th flag, unused bits zero):
//
//	version       byte (3; 2 has no windows and settled in a member,
//	              1 is version 2's layout big-endian)
//	lastTick      u64 (unix ms)
//	reserved      u64, zero (formerly the count of samples dropped at
//	              MaxMembers; any value in version 1)
//	gpus          uvarint n, then n times:
//	  node gpu job pod    string
//	  act                 member
//	  xid                 f64
//	  flags               xidSeen xidBad remapBad throttleAlerted bottleAlerted
//	  utilSum f64, utilN u32, reasons u64, thermal power pcie f64,
//	  throttleRun u32, bottleRun u32
//	workers       uvarint n (at most MaxMembers - gpus), then n times:
//	  job name node       string
//	  st                  member
//	nodes         uvarint n, then n times, sorted by name:
//	  name string, flags tainted, reason string, lastBad lastSeen u64
//	pods          uvarint n, then n times, sorted by name:
//	  name string, rate f64, ts u64
//
// member is sum f64, n u32, smooth f64, over u32, flags flagged grouped
// (grouped is zero in checkpoints written before it was), windows u32,
// settled f64 (the last two from version 3 on). A node's
// count of faulty GPUs is derived on restore, never stored.

// AppendBinary appends the detector's state (not its Config) to b. The
// encoding is deterministic. It implements encoding.BinaryAppender.
func (d *Detector) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = wire.AppendInt64(b, d.lastTick)
	b = wire.AppendUint64(b, 0) // reserved
	b = wire.AppendUvarint(b, uint64(len(d.gpus)))
	for i := range d.gpus {
		g := &d.gpus[i]
		b = wire.AppendString(b, g.node)
		b = wire.AppendString(b, g.gpu)
		b = wire.AppendString(b, g.job)
		b = wire.AppendString(b, g.pod)
		b = appendMember(b, &g.act)
		b = wire.AppendFloat64(b, g.xid)
		b = append(b, flags(g.xidSeen, g.xidBad, g.remapBad, g.throttleAlerted, g.bottleAlerted))
		b = wire.AppendFloat64(b, g.utilSum)
		b = wire.AppendUint32(b, g.utilN)
		b = wire.AppendUint64(b, g.reasons)
		b = wire.AppendFloat64(b, g.thermal)
		b = wire.AppendFloat64(b, g.power)
		b = wire.AppendFloat64(b, g.pcie)
		b = wire.AppendUint32(b, g.throttleRun)
		b = wire.AppendUint32(b, g.bottleRun)
	}
	b = wire.AppendUvarint(b, uint64(len(d.workers)))
	for i := range d.workers {
		w := &d.workers[i]
		b = wire.AppendString(b, w.job)
		b = wire.AppendString(b, w.name)
		b = wire.AppendString(b, w.node)
		b = appendMember(b, &w.st)
	}
	nodes := sortedKeys(d.nodes)
	b = wire.AppendUvarint(b, uint64(len(nodes)))
	for _, name := range nodes {
		n := d.nodes[name]
		b = wire.AppendString(b, name)
		b = append(b, flags(n.tainted))
		b = wire.AppendString(b, n.reason)
		b = wire.AppendInt64(b, n.lastBad)
		b = wire.AppendInt64(b, n.lastSeen)
	}
	pods := sortedKeys(d.pods)
	b = wire.AppendUvarint(b, uint64(len(pods)))
	for _, name := range pods {
		p := d.pods[name]
		b = wire.AppendString(b, name)
		b = wire.AppendFloat64(b, p.rate)
		b = wire.AppendInt64(b, p.ts)
	}
	return b, nil
}

// MarshalBinary returns the state in a new slice; see AppendBinary.
func (d *Detector) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// UnmarshalBinary replaces the state by the checkpoint b (not retained), of
// this version or an earlier one. On error the state is unchanged.
func (d *Detector) UnmarshalBinary(b []byte) error {
	current := byte(stateVersion)
	if len(b) > 0 && b[0] == stateVersionUnsettled {
		current = stateVersionUnsettled
	}
	r, err := wire.Open(b, current, stateVersionBigEndian)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	nd := &Detector{cfg: d.cfg, gpuIdx: map[gpuKey]int32{}, wIdx: map[workerKey]int32{},
		nodes: map[string]*nodeState{}, pods: map[string]podRx{}, jobs: map[string]*job{}}
	nd.lastTick = r.Int64()
	// Formerly a count of samples dropped at MaxMembers: written as zero
	// since, and required to be zero from version 2 on (so that a state
	// that decodes re-encodes to the same bytes).
	if dropped := r.Uint64(); b[0] != stateVersionBigEndian && dropped != 0 {
		r.Fail(fmt.Errorf("reserved field %d", dropped))
	}
	ng := r.Count(d.cfg.MaxMembers)
	for i := 0; i < ng && r.Err() == nil; i++ {
		var g gpuState
		g.node, g.gpu, g.job, g.pod = readStr(r), readStr(r), readStr(r), readStr(r)
		d.readMember(r, &g.act, b[0])
		g.xid = r.Float64()
		f := readFlags(r, 5)
		g.xidSeen, g.xidBad, g.remapBad, g.throttleAlerted, g.bottleAlerted = f[0], f[1], f[2], f[3], f[4]
		g.utilSum = r.Float64()
		g.utilN = r.Uint32()
		g.reasons = r.Uint64()
		g.thermal, g.power, g.pcie = r.Float64(), r.Float64(), r.Float64()
		g.throttleRun, g.bottleRun = r.Uint32(), r.Uint32()
		k := gpuKey{g.node, g.gpu}
		if _, dup := nd.gpuIdx[k]; r.Err() == nil && (dup || g.node == "") {
			r.Fail(fmt.Errorf("gpu %q/%q repeated or without node", g.node, g.gpu))
			break
		}
		nd.gpuIdx[k] = int32(len(nd.gpus))
		if g.job != "" {
			j := nd.jobOf(g.job)
			j.gpus = append(j.gpus, int32(len(nd.gpus)))
		}
		nd.gpus = append(nd.gpus, g)
	}
	nw := r.Count(d.cfg.MaxMembers - len(nd.gpus))
	for i := 0; i < nw && r.Err() == nil; i++ {
		var w workerState
		w.job, w.name, w.node = readStr(r), readStr(r), readStr(r)
		d.readMember(r, &w.st, b[0])
		k := workerKey{w.job, w.name}
		if _, dup := nd.wIdx[k]; r.Err() == nil && (dup || w.job == "") {
			r.Fail(fmt.Errorf("worker %q/%q repeated or without job", w.job, w.name))
			break
		}
		nd.wIdx[k] = int32(len(nd.workers))
		j := nd.jobOf(w.job)
		j.workers = append(j.workers, int32(len(nd.workers)))
		nd.workers = append(nd.workers, w)
	}
	nn := r.Count(d.cfg.MaxMembers)
	prev := ""
	for i := 0; i < nn && r.Err() == nil; i++ {
		name := readStr(r)
		n := &nodeState{}
		n.tainted = readFlags(r, 1)[0]
		n.reason = readStr(r)
		n.lastBad, n.lastSeen = r.Int64(), r.Int64()
		if i > 0 && name <= prev {
			r.Fail(errors.New("nodes not sorted"))
		}
		prev = name
		nd.nodes[name] = n
	}
	np := r.Count(d.cfg.MaxMembers)
	prev = ""
	for i := 0; i < np && r.Err() == nil; i++ {
		name := readStr(r)
		p := podRx{rate: r.Float64(), ts: r.Int64()}
		if i > 0 && name <= prev {
			r.Fail(errors.New("pods not sorted"))
		}
		prev = name
		nd.pods[name] = p
	}
	if r.Err() == nil && len(r.Rest()) != 0 {
		r.Fail(fmt.Errorf("%d trailing bytes", len(r.Rest())))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	// The fault count of a node is derived, never stored.
	for i := range nd.gpus {
		g := &nd.gpus[i]
		n := nd.nodes[g.node]
		if n == nil {
			return fmt.Errorf("%w: gpu on unknown node %q", ErrBadState, g.node)
		}
		for _, bad := range [...]bool{g.xidBad, g.remapBad} {
			if bad {
				n.bad++
			}
		}
	}
	d.gpus, d.gpuIdx, d.workers, d.wIdx = nd.gpus, nd.gpuIdx, nd.workers, nd.wIdx
	d.nodes, d.pods, d.jobs, d.lastTick = nd.nodes, nd.pods, nd.jobs, nd.lastTick
	return nil
}

func flags(fs ...bool) byte {
	var b byte
	for i, f := range fs {
		if f {
			b |= 1 << i
		}
	}
	return b
}

func appendMember(b []byte, m *member) []byte {
	b = wire.AppendFloat64(b, m.sum)
	b = wire.AppendUint32(b, m.n)
	b = wire.AppendFloat64(b, m.smooth)
	b = wire.AppendUint32(b, m.over)
	b = append(b, flags(m.flagged, m.grouped))
	b = wire.AppendUint32(b, m.windows)
	return wire.AppendFloat64(b, m.settled)
}

// readMember reads a member of a checkpoint of version v. A member of a
// version without settling fields that was compared before restores as
// settled at the job's median: judged as before, against its peers.
func (d *Detector) readMember(r *wire.Reader, m *member, v byte) {
	m.sum = r.Float64()
	m.n = r.Uint32()
	m.smooth = r.Float64()
	m.over = r.Uint32()
	f := readFlags(r, 2)
	m.flagged, m.grouped = f[0], f[1]
	switch {
	case v == stateVersion:
		m.windows = r.Uint32()
		m.settled = r.Float64()
	case m.smooth != 0:
		m.windows, m.settled = uint32(d.cfg.StragglerSettle), 1
	}
}

// readStr reads a string of at most maxStr bytes.
func readStr(r *wire.Reader) string { return string(r.Bytes(r.Count(maxStr))) }

// readFlags reads one byte of n flags; unused bits must be zero.
func readFlags(r *wire.Reader, n int) [8]bool {
	var out [8]bool
	b := r.Byte()
	if b>>n != 0 {
		r.Fail(fmt.Errorf("flags %#x", b))
	}
	for i := range n {
		out[i] = b&(1<<i) != 0
	}
	return out
}
