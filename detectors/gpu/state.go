package gpu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// stateVersion is the first byte of a checkpoint.
const stateVersion = 1

// ErrBadState is returned (wrapped) by UnmarshalBinary for a checkpoint that
// is truncated, of an unknown version or inconsistent.
var ErrBadState = errors.New("gpu: bad checkpoint")

// AppendBinary appends the detector's state (not its Config) to b. The
// encoding is deterministic. It implements encoding.BinaryAppender.
func (d *Detector) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(d.lastTick))
	b = binary.BigEndian.AppendUint64(b, 0) // formerly a count of samples dropped at MaxMembers
	b = binary.AppendUvarint(b, uint64(len(d.gpus)))
	for i := range d.gpus {
		g := &d.gpus[i]
		b = appendStr(b, g.node)
		b = appendStr(b, g.gpu)
		b = appendStr(b, g.job)
		b = appendStr(b, g.pod)
		b = appendMember(b, &g.act)
		b = appendF64(b, g.xid)
		b = append(b, flags(g.xidSeen, g.xidBad, g.remapBad, g.throttleAlerted, g.bottleAlerted))
		b = appendF64(b, g.utilSum)
		b = binary.BigEndian.AppendUint32(b, g.utilN)
		b = binary.BigEndian.AppendUint64(b, g.reasons)
		b = appendF64(b, g.thermal)
		b = appendF64(b, g.power)
		b = appendF64(b, g.pcie)
		b = binary.BigEndian.AppendUint32(b, g.throttleRun)
		b = binary.BigEndian.AppendUint32(b, g.bottleRun)
	}
	b = binary.AppendUvarint(b, uint64(len(d.workers)))
	for i := range d.workers {
		w := &d.workers[i]
		b = appendStr(b, w.job)
		b = appendStr(b, w.name)
		b = appendStr(b, w.node)
		b = appendMember(b, &w.st)
	}
	nodes := sortedKeys(d.nodes)
	b = binary.AppendUvarint(b, uint64(len(nodes)))
	for _, name := range nodes {
		n := d.nodes[name]
		b = appendStr(b, name)
		b = append(b, flags(n.tainted))
		b = appendStr(b, n.reason)
		b = binary.BigEndian.AppendUint64(b, uint64(n.lastBad))
		b = binary.BigEndian.AppendUint64(b, uint64(n.lastSeen))
	}
	pods := sortedKeys(d.pods)
	b = binary.AppendUvarint(b, uint64(len(pods)))
	for _, name := range pods {
		p := d.pods[name]
		b = appendStr(b, name)
		b = appendF64(b, p.rate)
		b = binary.BigEndian.AppendUint64(b, uint64(p.ts))
	}
	return b, nil
}

// MarshalBinary returns the state in a new slice; see AppendBinary.
func (d *Detector) MarshalBinary() ([]byte, error) { return d.AppendBinary(nil) }

// UnmarshalBinary replaces the state by the checkpoint b (not retained). On
// error the state is unchanged.
func (d *Detector) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if v := r.byte(); r.err == nil && v != stateVersion {
		return fmt.Errorf("%w: version %d", ErrBadState, v)
	}
	nd := &Detector{cfg: d.cfg, gpuIdx: map[gpuKey]int32{}, wIdx: map[workerKey]int32{},
		nodes: map[string]*nodeState{}, pods: map[string]podRx{}, jobs: map[string]*job{}}
	nd.lastTick = int64(r.u64())
	_ = r.u64() // formerly a count of samples dropped at MaxMembers
	ng := r.count(d.cfg.MaxMembers)
	for i := 0; i < ng && r.err == nil; i++ {
		var g gpuState
		g.node, g.gpu, g.job, g.pod = r.str(), r.str(), r.str(), r.str()
		r.member(&g.act)
		g.xid = r.f64()
		f := r.flags(5)
		g.xidSeen, g.xidBad, g.remapBad, g.throttleAlerted, g.bottleAlerted = f[0], f[1], f[2], f[3], f[4]
		g.utilSum = r.f64()
		g.utilN = r.u32()
		g.reasons = r.u64()
		g.thermal, g.power, g.pcie = r.f64(), r.f64(), r.f64()
		g.throttleRun, g.bottleRun = r.u32(), r.u32()
		k := gpuKey{g.node, g.gpu}
		if _, dup := nd.gpuIdx[k]; dup || g.node == "" {
			r.fail("gpu %q/%q repeated or without node", g.node, g.gpu)
			break
		}
		nd.gpuIdx[k] = int32(len(nd.gpus))
		if g.job != "" {
			j := nd.jobOf(g.job)
			j.gpus = append(j.gpus, int32(len(nd.gpus)))
		}
		nd.gpus = append(nd.gpus, g)
	}
	nw := r.count(d.cfg.MaxMembers - len(nd.gpus))
	for i := 0; i < nw && r.err == nil; i++ {
		var w workerState
		w.job, w.name, w.node = r.str(), r.str(), r.str()
		r.member(&w.st)
		k := workerKey{w.job, w.name}
		if _, dup := nd.wIdx[k]; dup || w.job == "" {
			r.fail("worker %q/%q repeated or without job", w.job, w.name)
			break
		}
		nd.wIdx[k] = int32(len(nd.workers))
		j := nd.jobOf(w.job)
		j.workers = append(j.workers, int32(len(nd.workers)))
		nd.workers = append(nd.workers, w)
	}
	nn := r.count(d.cfg.MaxMembers)
	prev := ""
	for i := 0; i < nn && r.err == nil; i++ {
		name := r.str()
		n := &nodeState{}
		n.tainted = r.flags(1)[0]
		n.reason = r.str()
		n.lastBad, n.lastSeen = int64(r.u64()), int64(r.u64())
		if i > 0 && name <= prev {
			r.fail("nodes not sorted")
		}
		prev = name
		nd.nodes[name] = n
	}
	np := r.count(d.cfg.MaxMembers)
	prev = ""
	for i := 0; i < np && r.err == nil; i++ {
		name := r.str()
		p := podRx{rate: r.f64(), ts: int64(r.u64())}
		if i > 0 && name <= prev {
			r.fail("pods not sorted")
		}
		prev = name
		nd.pods[name] = p
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return r.err
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

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendF64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

func appendMember(b []byte, m *member) []byte {
	b = appendF64(b, m.sum)
	b = binary.BigEndian.AppendUint32(b, m.n)
	b = appendF64(b, m.smooth)
	b = binary.BigEndian.AppendUint32(b, m.over)
	return append(b, flags(m.flagged))
}

// maxStr bounds a string in a checkpoint (label values are short).
const maxStr = 1 << 16

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadState}, args...)...)
	}
	r.b = nil
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("truncated")
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

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	var buf [binary.MaxVarintLen64]byte
	if n <= 0 || n != binary.PutUvarint(buf[:], v) { // only the shortest form
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of at most limit items.
func (r *reader) count(limit int) int {
	v := r.uvarint()
	if r.err == nil && v > uint64(max(limit, 0)) {
		r.fail("count %d above %d", v, limit)
		return 0
	}
	return int(v)
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err == nil && n > maxStr {
		r.fail("string of %d bytes", n)
		return ""
	}
	return string(r.take(int(n)))
}

// flags reads one byte of n flags; unused bits must be zero.
func (r *reader) flags(n int) [8]bool {
	var out [8]bool
	b := r.byte()
	if b>>n != 0 {
		r.fail("flags %#x", b)
	}
	for i := range n {
		out[i] = b&(1<<i) != 0
	}
	return out
}

func (r *reader) member(m *member) {
	m.sum = r.f64()
	m.n = r.u32()
	m.smooth = r.f64()
	m.over = r.u32()
	m.flagged = r.flags(1)[0]
}
