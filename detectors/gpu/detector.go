package gpu

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

// Config configures a Detector. Zero fields take their defaults in Validate.
type Config struct {
	// Rule names the rule in decisions. Default "gpu_health".
	Rule string
	// Tenant is copied into decisions.
	Tenant string
	// TaintKey is the taint put on a node with a hardware fault. Default
	// "augur.io/gpu-unhealthy"; the value is the reason (e.g. xid_79), the
	// effect NoSchedule.
	TaintKey string
	// CordonOnFault cordons the node as well as tainting it. Default false.
	CordonOnFault bool
	// XIDActions maps XID codes to actions. Default DefaultXIDActions;
	// codes not in the map alert.
	XIDActions map[int]Action
	// StragglerRatio: a member whose smoothed ratio to its job's median
	// (step time; activity in either direction) reaches this is slow.
	// Default 1.2, > 1.
	StragglerRatio float64
	// StragglerSmoothing is the weight of the newest window in the
	// exponentially smoothed ratio, in (0,1]. Default 0.2.
	StragglerSmoothing float64
	// StragglerWindows is how many consecutive windows the smoothed ratio
	// must stay at or above StragglerRatio. Default 3.
	StragglerWindows int
	// StragglerMinMembers is the smallest job (members reporting in the
	// window, the member included) compared. Default 4.
	StragglerMinMembers int
	// StragglerCordon also decides taint_node (PreferNoSchedule) with cordon
	// for a straggling GPU's node. Default false: alert only.
	StragglerCordon bool
	// JobShare: when at least this share of a job's members is slow at
	// once, slowness is a property of the job (two kinds of placement or
	// hardware, a bimodal job), not of its nodes: one job-level alert
	// names the slow and the other members, and no node is tainted or
	// cordoned. A straggler is a minority. Default 0.3, in (0, 1].
	// Members counted are those at least half-way slower than the
	// median by StragglerRatio (or faster by all of it), so a group whose
	// members cross the ratio a few windows apart is still one group.
	JobShare float64
	// StragglerSettle is how many windows a member is compared before
	// its smoothed ratio then is its own history. A straggler falls
	// behind its peers and its own history: a member slow before it
	// settled, or that settled at least half-way to StragglerRatio, is
	// slow since the start, the job's placement or hardware; it gets the
	// job-level alert, never a node action. Members are judged once they
	// settled, and a job's step times once all its workers did: two
	// groups since the start, however close, are one job-level alert
	// (see judgeGroups), and so are two groups of workers moving off their
	// own history for StragglerSettle windows during the job (see
	// judgeDrift), after which their history starts again. Default 6.
	StragglerSettle int
	// BottleneckUtil (percent) and BottleneckRxBytes (bytes/s): a GPU less
	// busy than BottleneckUtil while its pod receives more than
	// BottleneckRxBytes for BottleneckWindows windows is input-bound.
	// Defaults 50, 100e6 (100 MB/s), 3.
	BottleneckUtil    float64
	BottleneckRxBytes float64
	BottleneckWindows int
	// ThrottleMask selects the clock event reason bits that count as
	// throttling. Default HW slowdown, SW and HW thermal, HW power brake (SW
	// power capping is routine under full load and left out).
	ThrottleMask uint64
	// ThrottleShare is the share of time throttled, from the violation
	// counters, that counts as a throttled window. Default 0.2.
	ThrottleShare float64
	// ThrottleWindows is how many consecutive throttled windows alert.
	// Default 3.
	ThrottleWindows int
	// HoldDown is how long a tainted node must report healthy values before
	// it is untainted. Default 30m.
	HoldDown time.Duration
	// DecisionTTL is how long after it was made a decision may be applied.
	// Default 10m.
	DecisionTTL time.Duration
	// MaxMembers bounds the GPUs plus workers tracked; samples of new ones
	// beyond it are ignored. Default 100000.
	MaxMembers int
}

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	if c.Rule == "" {
		c.Rule = "gpu_health"
	}
	if c.TaintKey == "" {
		c.TaintKey = "augur.io/gpu-unhealthy"
	}
	if c.XIDActions == nil {
		c.XIDActions = DefaultXIDActions
	}
	if c.StragglerRatio == 0 {
		c.StragglerRatio = 1.2
	}
	if c.StragglerSmoothing == 0 {
		c.StragglerSmoothing = 0.2
	}
	if c.StragglerWindows == 0 {
		c.StragglerWindows = 3
	}
	if c.JobShare == 0 {
		c.JobShare = 0.3
	}
	if c.StragglerSettle == 0 {
		c.StragglerSettle = 6
	}
	if c.StragglerMinMembers == 0 {
		c.StragglerMinMembers = 4
	}
	if c.BottleneckUtil == 0 {
		c.BottleneckUtil = 50
	}
	if c.BottleneckRxBytes == 0 {
		c.BottleneckRxBytes = 100e6
	}
	if c.BottleneckWindows == 0 {
		c.BottleneckWindows = 3
	}
	if c.ThrottleMask == 0 {
		c.ThrottleMask = defaultThrottleMask
	}
	if c.ThrottleShare == 0 {
		c.ThrottleShare = 0.2
	}
	if c.ThrottleWindows == 0 {
		c.ThrottleWindows = 3
	}
	if c.HoldDown == 0 {
		c.HoldDown = 30 * time.Minute
	}
	if c.DecisionTTL == 0 {
		c.DecisionTTL = 10 * time.Minute
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = 100000
	}
}

// Validate applies defaults and checks ranges.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.StragglerRatio <= 1:
		return fmt.Errorf("gpu config: straggler ratio %v must be above 1", c.StragglerRatio)
	case c.StragglerSmoothing <= 0 || c.StragglerSmoothing > 1:
		return fmt.Errorf("gpu config: straggler smoothing %v not in (0,1]", c.StragglerSmoothing)
	case c.StragglerWindows < 1 || c.BottleneckWindows < 1 || c.ThrottleWindows < 1 || c.StragglerSettle < 1:
		return errors.New("gpu config: window counts must be at least 1")
	case !(c.JobShare > 0 && c.JobShare <= 1):
		return fmt.Errorf("gpu config: job share %v not in (0,1]", c.JobShare)
	case c.StragglerMinMembers < 3:
		return fmt.Errorf("gpu config: straggler min members %d below 3 (a median of two has no majority)", c.StragglerMinMembers)
	case c.BottleneckUtil < 0 || c.BottleneckUtil > 100:
		return fmt.Errorf("gpu config: bottleneck util %v not in [0,100]", c.BottleneckUtil)
	case c.BottleneckRxBytes < 0:
		return errors.New("gpu config: bottleneck rx bytes negative")
	case c.ThrottleShare <= 0 || c.ThrottleShare > 1:
		return fmt.Errorf("gpu config: throttle share %v not in (0,1]", c.ThrottleShare)
	case c.HoldDown < 0 || c.DecisionTTL <= 0:
		return errors.New("gpu config: hold-down must not be negative and decision ttl must be positive")
	case c.MaxMembers < 1:
		return errors.New("gpu config: max members below 1")
	}
	return nil
}

// Sample is one DCGM (or companion) sample, resolved by the stream. See
// NewSample for building one from a series' name and labels.
type Sample struct {
	Metric Metric
	// Node is the Kubernetes node (Node(labels)); GPU the GPU on it
	// (Index(labels)). Ignored for MetricNetRx.
	Node, GPU string
	// Pod is "namespace/pod" using the GPU (DCGM's Kubernetes mapping), or
	// the pod a MetricNetRx sample is about. May be empty.
	Pod string
	// Job groups GPUs compared for stragglers (the rule's group_by label
	// values, e.g. a training job's name); empty for no comparison.
	Job string
	// Ts is the event time, unix milliseconds.
	Ts int64
	// Value in the metric's unit (Lookup's scale applied; counters as
	// per-second rates).
	Value float64
}

// NewSample resolves a series into a Sample: the metric from its name, the
// node from Hostname or hostname, the GPU, the pod, and the value scaled. ok
// is false for metrics the detector does not use and for DCGM blank values.
// job is the group key the stream computed from the rule's group_by labels.
func NewSample(name string, label func(string) string, job string, ts int64, v float64) (s Sample, ok bool) {
	return newSample(name, label, "", job, ts, v)
}

// newSample is NewSample with the node taken from the label nodeLabel
// (a rule's node_label) when the series has it, else as Node finds it.
func newSample(name string, label func(string) string, nodeLabel, job string, ts int64, v float64) (s Sample, ok bool) {
	e, known := metricNames[name]
	if !known || Blank(name, v) {
		return Sample{}, false
	}
	s = Sample{Metric: e.m, Pod: Pod(label), Job: job, Ts: ts, Value: v * e.scale}
	if e.m != MetricNetRx {
		s.Node, s.GPU = nodeOf(label, nodeLabel), Index(label)
		if s.Node == "" {
			return Sample{}, false
		}
	}
	return s, true
}

// offRatio is how far a member's smoothed ratio to its job's median is
// off it in either direction, as a ratio of at least 1 (0 for none).
func offRatio(smooth float64) float64 {
	if smooth > 0 && smooth < 1 {
		return 1 / smooth
	}
	return smooth
}

// member is the straggler state of one GPU (activity) or worker (step
// time): the window's sum, the smoothed deviation from the job median, and
// that deviation when the member settled (its own history).
type member struct {
	sum     float64
	n       uint32
	smooth  float64 // smoothed ratio; 0 before the first comparison
	over    uint32  // consecutive windows off the median by the ratio or more (offRatio)
	flagged bool
	grouped bool    // named in a job-level alert: its level is the job's shape
	windows uint32  // windows compared, up to StragglerSettle
	settled float64 // smooth when windows reached StragglerSettle
}

// halfRatio is half-way to StragglerRatio: below it a member is back near
// the median; a member that settled at or beyond it is the job's shape.
func (c *Config) halfRatio() float64 { return 1 + (c.StragglerRatio-1)/2 }

// isSettled reports whether m was compared for StragglerSettle windows, so
// that m.settled is its own history.
func (m *member) isSettled(c *Config) bool { return m.windows >= uint32(c.StragglerSettle) }

// settledOff reports whether m settled half-way off the job's median or
// more: its level is the job's shape, not a member falling behind.
func (m *member) settledOff(c *Config) bool {
	return m.isSettled(c) && offRatio(m.settled) >= c.halfRatio()
}

// inGroup reports whether m is in one of its job's groups: named in a
// job-level alert and settled StragglerRatio off the median or more. Its
// peers are its group, not the median, and it is judged by its moves off
// its own level. (Settled only half-way off, it may be noise named in a
// job-level alert; it is judged against the median as before.)
func (m *member) inGroup(c *Config) bool {
	return m.grouped && m.isSettled(c) && offRatio(m.settled) >= c.StragglerRatio
}

// windowRatio is m's mean in the window over the job's median med; for
// GPU activity (act) folded around it (off in either direction), and a GPU
// doing nothing is off by the most. It is at most 100.
func windowRatio(m *member, med float64, act bool) float64 {
	v := m.sum / float64(m.n)
	r := v / med
	if act && r > 0 && r < 1 {
		r = 1 / r
	}
	if act && v <= 0 {
		r = math.Inf(1)
	}
	return math.Min(r, 100)
}

// moved is how far m moved off its own history (the ratio it settled
// at), over jobMove, how far the job's settled members moved (see
// Detector.settledMoves).
func (m *member) moved(jobMove float64) float64 { return m.smooth / m.settled / jobMove }

// move is how far a settled worker moved off its own history: smoothed
// ratio over settled ratio.
func (d *Detector) move(i int32) float64 { m := &d.workers[i].st; return m.smooth / m.settled }

// settledMoves returns the job's settled workers (of idx) in the order of
// their moves, and the median of those moves, the job's move (1 with fewer
// than StragglerMinMembers settled). When the median moves between two
// groups of a job, every worker's ratio moves by the same factor: a
// worker's move over the job's is its own. The slice is the detector's
// scratch, valid until the next call.
func (d *Detector) settledMoves(idx []int32) (ws []int32, jobMove float64) {
	c := &d.cfg
	ws = d.workerScratch[:0]
	for _, i := range idx {
		if m := &d.workers[i].st; m.n > 0 && m.isSettled(c) && m.settled > 0 {
			ws = append(ws, i)
		}
	}
	d.workerScratch = ws
	if len(ws) < c.StragglerMinMembers {
		return ws, 1
	}
	slices.SortFunc(ws, func(a, b int32) int { return cmp.Compare(d.move(a), d.move(b)) })
	return ws, sortedMiddle(len(ws), func(k int) float64 { return d.move(ws[k]) })
}

// sortedMedian sorts xs (not empty) and returns its median.
func sortedMedian(xs []float64) float64 {
	slices.Sort(xs)
	return sortedMiddle(len(xs), func(k int) float64 { return xs[k] })
}

// sortedMiddle is the median of k sorted values (k > 0), the kth at(k).
func sortedMiddle(k int, at func(int) float64) float64 {
	if k%2 == 0 {
		return (at(k/2-1) + at(k/2)) / 2
	}
	return at(k / 2)
}

// offPeers is how far ratio r of m (its smoothed ratio, or its window's)
// is off its peers: the job's median (offRatio), or, in a group (see
// inGroup), its own level, over the job's move.
func (m *member) offPeers(c *Config, r, jobMove float64) float64 {
	if m.inGroup(c) {
		return r / m.settled / jobMove
	}
	return offRatio(r)
}

// signalName names the compared signal in decisions.
func signalName(act bool) string {
	if act {
		return "gpu_activity"
	}
	return "step_time"
}

type gpuKey struct{ node, gpu string }

type gpuState struct {
	node, gpu, job, pod string
	act                 member
	xid                 float64 // last value of the XID gauge
	xidSeen             bool
	xidBad              bool // the current XID is a taint code
	remapBad            bool
	utilSum             float64
	utilN               uint32
	reasons             uint64  // OR of the window's clock event reasons
	thermal, power      float64 // max share of the window throttled
	pcie                float64 // max PCIe receive rate in the window
	throttleRun         uint32
	throttleAlerted     bool
	bottleRun           uint32
	bottleAlerted       bool
}

type workerKey struct{ job, name string }

type workerState struct {
	job, name, node string
	st              member
}

type nodeState struct {
	tainted  bool
	reason   string
	bad      int32 // GPUs currently reporting a hardware fault
	lastBad  int64 // event time of the last fault seen
	lastSeen int64 // event time of the last health sample
}

type podRx struct {
	rate float64
	ts   int64
}

type job struct {
	gpus    []int32
	workers []int32
	// drift counts the consecutive windows judgeDrift found two groups,
	// the slower one with the same members.
	// Not in a checkpoint: a restore delays such an alert by
	// StragglerSettle windows at most.
	drift    uint32
	driftKey uint64 // the slower group's members in those windows
}

// Detector watches the GPUs of one rule. It is not safe for concurrent use.
type Detector struct {
	cfg           Config
	gpus          []gpuState
	gpuIdx        map[gpuKey]int32
	workers       []workerState
	wIdx          map[workerKey]int32
	nodes         map[string]*nodeState
	pods          map[string]podRx
	jobs          map[string]*job
	lastTick      int64
	scratch       []float64
	workerScratch []int32 // the settled workers of settledMoves, reused every window
}

// New returns a Detector for cfg.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg, gpuIdx: map[gpuKey]int32{}, wIdx: map[workerKey]int32{},
		nodes: map[string]*nodeState{}, pods: map[string]podRx{}, jobs: map[string]*job{}}, nil
}

// Config returns the validated configuration.
func (d *Detector) Config() Config { return d.cfg }

func (d *Detector) jobOf(name string) *job {
	j := d.jobs[name]
	if j == nil {
		j = &job{}
		d.jobs[name] = j
	}
	return j
}

func (d *Detector) gpu(s *Sample) *gpuState {
	i, ok := d.gpuIdx[gpuKey{s.Node, s.GPU}]
	if !ok {
		if len(d.gpus)+len(d.workers) >= d.cfg.MaxMembers {
			return nil
		}
		i = int32(len(d.gpus))
		d.gpus = append(d.gpus, gpuState{node: s.Node, gpu: s.GPU})
		d.gpuIdx[gpuKey{s.Node, s.GPU}] = i
		if d.nodes[s.Node] == nil {
			d.nodes[s.Node] = &nodeState{}
		}
	}
	g := &d.gpus[i]
	if s.Job != g.job && s.Job != "" {
		if g.job != "" {
			j := d.jobOf(g.job)
			j.gpus = slices.DeleteFunc(j.gpus, func(x int32) bool { return x == i })
		}
		g.job = s.Job
		g.act = member{}
		j := d.jobOf(s.Job)
		j.gpus = append(j.gpus, i)
	}
	if s.Pod != "" && s.Pod != g.pod {
		g.pod = s.Pod
	}
	return g
}

// Observe feeds one sample. Hardware faults are decided at once (taint and
// alert); everything compared over time waits for Tick. The returned slice
// is new and owned by the caller; nil (the common case) allocates nothing.
func (d *Detector) Observe(s Sample) []*proto.Decision {
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return nil
	}
	if s.Metric == MetricNetRx {
		if s.Pod != "" {
			if p, ok := d.pods[s.Pod]; ok || len(d.pods) < d.cfg.MaxMembers {
				if s.Ts >= p.ts {
					d.pods[s.Pod] = podRx{rate: s.Value, ts: s.Ts}
				}
			}
		}
		return nil
	}
	g := d.gpu(&s)
	if g == nil {
		return nil
	}
	n := d.nodes[g.node]
	switch s.Metric {
	case MetricXID:
		n.lastSeen = max(n.lastSeen, s.Ts)
		prev, seen := g.xid, g.xidSeen
		g.xid, g.xidSeen = s.Value, true
		code := int(s.Value)
		act := ActionIgnore
		if code != 0 {
			var ok bool
			if act, ok = d.cfg.XIDActions[code]; !ok {
				act = ActionAlert
			}
		}
		d.setBad(n, &g.xidBad, act == ActionTaint, s.Ts)
		if code == 0 || (seen && prev == s.Value) {
			return nil
		}
		reason := "xid_" + strconv.Itoa(code)
		switch act {
		case ActionTaint:
			return d.fault(g, n, s.Ts, reason, fmt.Sprintf("GPU %s on node %s reported XID %d, a hardware or uncontained fault", g.gpu, g.node, code), s.Value)
		case ActionAlert:
			return []*proto.Decision{d.alert(s.Ts, g.node, "warning", reason, 1,
				fmt.Sprintf("GPU %s on node %s reported XID %d (application-level fault)", g.gpu, g.node, code),
				&proto.Evidence{Signal: "DCGM_FI_DEV_XID_ERRORS", Observed: s.Value, Values: map[string]float64{"xid": s.Value}})}
		}
	case MetricECCDBE:
		n.lastSeen = max(n.lastSeen, s.Ts)
		if s.Value > 0 {
			n.lastBad = max(n.lastBad, s.Ts)
			return d.fault(g, n, s.Ts, "ecc_dbe", fmt.Sprintf("GPU %s on node %s has new double-bit ECC errors (%.3g/s)", g.gpu, g.node, s.Value), s.Value)
		}
	case MetricRowRemapFailure:
		n.lastSeen = max(n.lastSeen, s.Ts)
		was := g.remapBad
		d.setBad(n, &g.remapBad, s.Value >= 1, s.Ts)
		if g.remapBad && !was {
			return d.fault(g, n, s.Ts, "row_remap_failure", fmt.Sprintf("GPU %s on node %s failed to remap a memory row", g.gpu, g.node), s.Value)
		}
	case MetricUtil:
		g.utilSum += s.Value
		g.utilN++
		g.act.sum += s.Value
		g.act.n++
	case MetricThrottleReasons:
		if s.Value >= 0 && s.Value < 1<<53 {
			g.reasons |= uint64(s.Value)
		}
	case MetricThermalViolation:
		g.thermal = max(g.thermal, s.Value/1e6)
	case MetricPowerViolation:
		g.power = max(g.power, s.Value/1e6)
	case MetricPCIeRx:
		g.pcie = max(g.pcie, s.Value)
	}
	return nil
}

// setBad keeps the node's count of GPUs in a fault state in step with flag.
func (d *Detector) setBad(n *nodeState, flag *bool, bad bool, ts int64) {
	if bad {
		n.lastBad = max(n.lastBad, ts)
	}
	if bad == *flag {
		return
	}
	*flag = bad
	if bad {
		n.bad++
	} else {
		n.bad--
	}
}

// fault decides taint_node (once per node until untainted) and a critical
// alert.
func (d *Detector) fault(g *gpuState, n *nodeState, ts int64, reason, summary string, v float64) []*proto.Decision {
	ev := func() *proto.Evidence {
		return &proto.Evidence{Signal: reason, Observed: proto.Finite(v),
			Values: map[string]float64{"value": proto.Finite(v)}}
	}
	out := []*proto.Decision{d.alert(ts, g.node, "critical", reason, 1, summary, ev())}
	if !n.tainted {
		n.tainted, n.reason = true, reason
		ch := &proto.Change{Node: g.node, Taint: &proto.Taint{Key: d.cfg.TaintKey, Value: reason, Effect: "NoSchedule"}, Cordon: d.cfg.CordonOnFault}
		out = append(out, d.decision(ts, proto.KindTaintNode, "k8s/node/"+g.node, ch, ev(), 1, summary+": taint the node NoSchedule"))
	}
	return out
}

// ObserveStep feeds one step (mini-batch) time of a training worker, in any
// unit shared by the job's workers. node may be empty.
func (d *Detector) ObserveStep(jobName, worker, node string, ts int64, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 || jobName == "" {
		return
	}
	i, ok := d.wIdx[workerKey{jobName, worker}]
	if !ok {
		if len(d.gpus)+len(d.workers) >= d.cfg.MaxMembers {
			return
		}
		i = int32(len(d.workers))
		d.workers = append(d.workers, workerState{job: jobName, name: worker, node: node})
		d.wIdx[workerKey{jobName, worker}] = i
		j := d.jobOf(jobName)
		j.workers = append(j.workers, i)
	}
	w := &d.workers[i]
	if node != "" {
		w.node = node
	}
	w.st.sum += v
	w.st.n++
}

// Tick closes the window ending at end: it compares stragglers with their
// job's peers, checks throttling and the input bottleneck, and untaints
// nodes healthy for the hold-down. Work is linear in the GPUs and workers.
// The returned slice is new and owned by the caller (nil when empty).
func (d *Detector) Tick(end time.Time) []*proto.Decision {
	ts := end.UnixMilli()
	var out []*proto.Decision
	for _, name := range sortedKeys(d.jobs) {
		j := d.jobs[name]
		out = d.stragglers(out, ts, name, j.gpus, true)
		out = d.stragglers(out, ts, name, j.workers, false)
	}
	for i := range d.gpus {
		out = d.gpuWindow(out, ts, &d.gpus[i])
	}
	for _, name := range sortedKeys(d.nodes) {
		n := d.nodes[name]
		if n.tainted && n.bad == 0 && n.lastSeen-n.lastBad >= d.cfg.HoldDown.Milliseconds() {
			n.tainted = false
			ch := &proto.Change{Node: name, Taint: &proto.Taint{Key: d.cfg.TaintKey, Value: n.reason, Effect: "NoSchedule"}}
			ev := &proto.Evidence{Signal: n.reason, Values: map[string]float64{
				"healthy_seconds": float64(n.lastSeen-n.lastBad) / 1000}}
			out = append(out, d.decision(ts, proto.KindUntaintNode, "k8s/node/"+name, ch, ev, 1,
				fmt.Sprintf("node %s healthy for %v since %s: remove the taint", name,
					time.Duration(n.lastSeen-n.lastBad)*time.Millisecond, n.reason)))
			n.reason = ""
		}
	}
	// Forget pods not heard from in two windows.
	if d.lastTick != 0 {
		for k, p := range d.pods {
			if p.ts < d.lastTick-(ts-d.lastTick) {
				delete(d.pods, k)
			}
		}
	}
	d.lastTick = ts
	return out
}

// sortedKeys gives deterministic iteration (decision order, tests). Called
// once per window, not per sample.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// stragglers compares the window's values of one job's members (GPU
// activity when act, else worker step time) with the job's median.
func (d *Detector) stragglers(out []*proto.Decision, ts int64, jobName string, idx []int32, act bool) []*proto.Decision {
	c := &d.cfg
	d.scratch = d.scratch[:0]
	for _, i := range idx {
		if m := d.member(i, act); m.n > 0 {
			d.scratch = append(d.scratch, m.sum/float64(m.n))
		}
	}
	if len(d.scratch) >= c.StragglerMinMembers {
		med := sortedMedian(d.scratch)
		settle := uint32(c.StragglerSettle)
		settling := false // a member settled in this window
		for _, i := range idx {
			m := d.member(i, act)
			if m.n == 0 || med <= 0 {
				continue
			}
			r := windowRatio(m, med, act)
			if m.smooth == 0 {
				m.smooth = r
			} else {
				m.smooth += c.StragglerSmoothing * (r - m.smooth)
			}
			if m.windows < settle {
				m.windows++
				if m.windows == settle {
					m.settled = m.smooth
					settling = true
				}
			}
		}
		// GPU activity is folded around the median: no move to take, and
		// no groups of it (judgeGroups, judgeDrift).
		var settled []int32
		jobMove := 1.0
		if !act {
			settled, jobMove = d.settledMoves(idx)
		}
		for _, i := range idx {
			m := d.member(i, act)
			if m.n == 0 || med <= 0 {
				continue
			}
			// Off for a window: smoothed by the ratio and the window
			// itself half-way (one slow window, a checkpoint written,
			// lifts the smoothed ratio for a few windows on its own).
			// Off the median, or, for a member of a group (see
			// inGroup), off its own level (its move over the job's): in
			// a job of two groups the median is nobody's peer.
			m.over++
			if m.offPeers(c, m.smooth, jobMove) < c.StragglerRatio || m.offPeers(c, windowRatio(m, med, act), jobMove) < c.halfRatio() {
				m.over = 0
			}
			// A member judged is judged again once it is back where
			// it was: near the median, or, when it settled off the
			// median (the job's shape, reported once: noise around
			// that level is not news), when it left that level by
			// StragglerRatio more than the job did. A straggler off
			// its group's level is flagged with its group again once
			// back at that level.
			switch {
			case !m.isSettled(c):
				// Keeps its flag until it settles (again).
			case m.settledOff(c) && m.flagged && !m.grouped:
				m.grouped = offRatio(m.moved(jobMove)) < c.halfRatio()
			case m.settledOff(c):
				m.flagged = m.flagged && offRatio(m.moved(jobMove)) < c.StragglerRatio
			default:
				m.flagged = m.flagged && offRatio(m.smooth) >= c.halfRatio()
			}
		}
		if settling && !act {
			out = d.judgeGroups(out, ts, jobName, idx, med)
		}
		if !act {
			out = d.judgeDrift(out, ts, jobName, settled, med)
		}
		out = d.judgeSlow(out, ts, jobName, idx, act, med, jobMove)
	}
	for _, i := range idx {
		m := d.member(i, act)
		m.sum, m.n = 0, 0
	}
	return out
}

// judgeSlow decides on the settled members off the job's median (or, in a
// group, off their own level: see inGroup) by StragglerRatio for
// StragglerWindows windows. A straggler falls behind its peers and its own
// history: it is slower than the median (step time) or off it (GPU
// activity), had settled below half-way to StragglerRatio and is
// StragglerRatio off that settled ratio now, and fewer than JobShare of
// the members that settled so are half-way off the median now; or, in a
// group, it moved StragglerRatio off its level more than the job moved,
// with fewer than JobShare of the job doing the same; stragglers are
// alerted (and their node cordoned when configured), those
// of one node together. Other slow members are the job's own shape (a
// share of slow members, two kinds of placement or hardware, a member slow
// since the start), and so is a share of JobShare or more of members
// faster than the median (the fast group of a job most of whose workers
// are slow): one job-level alert naming them and the others, and no node
// action. Each member is judged once until it recovers (member.flagged).
func (d *Detector) judgeSlow(out []*proto.Decision, ts int64, jobName string, idx []int32, act bool, med, jobMove float64) []*proto.Decision {
	if med <= 0 {
		return out // nothing was compared in this window
	}
	c := &d.cfg
	half := c.halfRatio()
	// offLong: off the median for StragglerWindows windows; off: and not
	// judged yet. Nothing is decided in a window where no member is off.
	offLong := func(m *member) bool { return m.n > 0 && m.over >= uint32(c.StragglerWindows) }
	// A member named in a job-level alert is judged again only once it
	// is StragglerRatio off its own history, more than the job moved:
	// around its group's level, close to the median, noise is not news,
	// nor is the median moving between two groups.
	news := func(m *member) bool { return !m.grouped || m.moved(jobMove) >= c.StragglerRatio }
	off := func(m *member) bool { return offLong(m) && !m.flagged && m.isSettled(c) && news(m) }
	if !slices.ContainsFunc(idx, func(i int32) bool { return off(d.member(i, act)) }) {
		return out
	}
	// settledNear: the member settled with its peers (its history).
	settledNear := func(m *member) bool { return m.isSettled(c) && !m.settledOff(c) }
	// nearOff: half-way slower than the median (or off it, activity), or
	// faster by the whole ratio: with a few slow members the median sits
	// high among the others, which then read a little fast.
	nearOff := func(m *member) bool {
		return m.n > 0 && (m.smooth >= half || offRatio(m.smooth) >= c.StragglerRatio)
	}
	// near counts the members near off the median; nearSince those of
	// them that settled near it (a group slowing down together now).
	near, nearSince, slowOff := 0, 0, false
	for _, i := range idx {
		m := d.member(i, act)
		if nearOff(m) {
			near++
		}
		// Slowing down now, from near the median or from its group's
		// level.
		if nearOff(m) && settledNear(m) && news(m) || m.inGroup(c) && news(m) {
			nearSince++
		}
		slowOff = slowOff || m.smooth >= 1 && offLong(m)
	}
	share := c.JobShare * float64(len(d.scratch))
	group := float64(near) >= share
	together := float64(nearSince) >= share
	shape := false
	var stragglers []int32
	for _, i := range idx {
		m := d.member(i, act)
		switch {
		case !off(m):
		case m.smooth < 1 && !m.inGroup(c):
			// Faster members are judged with the slow ones; alone, only
			// as a group (the fast part of a job most of whose members
			// are slow). A minority faster than the median is nobody's
			// problem, and never a straggler.
			shape = shape || group && !slowOff
		case together || !settledNear(m) && !m.grouped:
			shape = true
		case m.smooth < c.StragglerRatio*m.settled:
			// Off the median, but not by the ratio off its own
			// history: a median moving between two close groups.
		default:
			// Behind its peers and its own history: near the median
			// since it settled, or in its group since the job-level
			// alert named it.
			m.flagged = true
			stragglers = append(stragglers, i)
		}
	}
	// Stragglers on one node are one finding about it: one alert naming
	// them, one taint. A straggler is out of its group until it is back at
	// its group's level (see stragglers).
	defer func(ms []int32) {
		for _, i := range ms {
			d.member(i, act).grouped = false
		}
	}(stragglers)
	for len(stragglers) > 0 {
		node := d.memberNode(stragglers[0], act)
		var same, rest []int32
		for _, i := range stragglers {
			if i == stragglers[0] || node != "" && d.memberNode(i, act) == node {
				same = append(same, i)
			} else {
				rest = append(rest, i)
			}
		}
		out = d.stragglerDecisions(out, ts, jobName, idx, same, act, med, jobMove)
		stragglers = rest
	}
	if !shape {
		return out
	}
	// Step times are named slower or faster than the median; GPU activity
	// is off it either way (its ratio is folded).
	var slowNames, fastNames, others []string
	signal := signalName(act)
	ev := &proto.Evidence{Signal: signal, Peers: make(map[string]float64, len(idx)),
		Values: map[string]float64{"job_median": med, "members": float64(len(d.scratch))}}
	for _, i := range idx {
		m := d.member(i, act)
		name := d.memberName(i, act)
		ev.Peers[name] = m.smooth
		switch {
		case off(m) || nearOff(m) && !m.flagged && (group || m.smooth >= 1):
			// Half-way members are named with the group and judged with
			// it, so they do not raise the alert again as they cross.
			m.flagged, m.grouped = true, true
			if m.smooth >= 1 {
				slowNames = append(slowNames, name)
			} else {
				fastNames = append(fastNames, name)
			}
		case m.n > 0:
			others = append(others, name)
		}
	}
	ev.Values["slow_members"] = float64(len(slowNames))
	ev.Values["fast_members"] = float64(len(fastNames))
	slices.Sort(slowNames)
	slices.Sort(fastNames)
	slices.Sort(others)
	how := "slower than"
	if act {
		how = "off"
	}
	var groups []string
	if len(slowNames) > 0 {
		groups = append(groups, fmt.Sprintf("%d of %d members %.2fx or more %s the median %s (%s)",
			len(slowNames), len(d.scratch), half, how, signal, strings.Join(slowNames, ", ")))
	}
	if len(fastNames) > 0 {
		groups = append(groups, fmt.Sprintf("%d of %d members %.2fx or more faster than the median %s (%s)",
			len(fastNames), len(d.scratch), c.StragglerRatio, signal, strings.Join(fastNames, ", ")))
	}
	if len(others) > 0 {
		groups = append(groups, "the others: "+strings.Join(others, ", "))
	}
	what := "the job runs in groups: its placement or hardware, not a sick node"
	if !group {
		what = "slow since they started: their placement or hardware, not a node that went bad during the job"
	}
	summary := fmt.Sprintf("job %s: %s; %s: nothing is cordoned", jobName, strings.Join(groups, ", "), what)
	return append(out, d.alertTo(ts, "job/"+jobName, "warning", "slow_group", 1, summary, ev))
}

// judgeGroups looks, in the window the job's last worker settled, for
// two groups of step times since the start (a bimodal job: two kinds of
// placement or hardware) among the settled ratios (see twoGroups). The
// median of such a job falls between the groups, so with groups closer
// than StragglerRatio squared no worker is ever StragglerRatio off it and
// judgeSlow sees nothing. It alerts once on the job, naming both groups,
// and flags its workers (judged: each group's level is the job's shape);
// when judgeSlow already named some of them, they are flagged without a
// second alert. GPU activity is folded around the median (off either
// way), so it has no groups to see.
func (d *Detector) judgeGroups(out []*proto.Decision, ts int64, jobName string, idx []int32, med float64) []*proto.Decision {
	c := &d.cfg
	var ws []int32
	for _, i := range idx {
		m := &d.workers[i].st
		if m.n == 0 {
			continue
		}
		if !m.isSettled(c) {
			return out // judged when the last one settles
		}
		ws = append(ws, i)
	}
	settled := func(i int32) float64 { return d.workers[i].st.settled }
	fast, slow, ratio := d.twoGroups(ws, settled, false)
	if slow == nil {
		return out
	}
	reported := slices.ContainsFunc(ws, func(i int32) bool { return d.workers[i].st.flagged })
	for _, i := range ws {
		m := &d.workers[i].st
		m.flagged, m.grouped = true, true
	}
	if reported {
		return out
	}
	return append(out, d.groupAlert(ts, jobName, med, ws, fast, slow, ratio, settled, "since the start"))
}

// judgeDrift looks, in every window, for two groups among the settled
// workers' moves off their own history (smoothed ratio over settled
// ratio; see twoGroups, here with the largest gap of all between the
// parts, so that one or two stragglers are never a group): a share of
// the workers slowing down together against the others during the job
// (a rack, a switch, shared storage), too little for any of them to be
// StragglerRatio off a median that moves between the groups. When they
// were there, the same slower group, StragglerSettle windows in a row, it
// alerts once on the job,
// naming both groups, flags the workers and starts their history again
// (the smoothed ratio too, so that it does not settle on its way to the
// new level): they settle at the job's new shape after StragglerSettle
// windows (judgeGroups then finds them flagged) and are judged against it
// from then on. When a job-level alert already named some of them and
// they are still flagged (judgeSlow's, for a group far enough off the
// median), they are flagged without a second alert.
func (d *Detector) judgeDrift(out []*proto.Decision, ts int64, jobName string, ws []int32, med float64) []*proto.Decision {
	c := &d.cfg
	if len(ws) < c.StragglerMinMembers {
		return out
	}
	j := d.jobs[jobName]
	fast, slow, ratio := d.twoGroups(ws, d.move, true)
	if slow == nil {
		j.drift = 0
		return out
	}
	var key uint64
	for _, i := range slow {
		key += uint64(i)*0x9e3779b97f4a7c15 + 1
	}
	if key != j.driftKey {
		j.drift, j.driftKey = 0, key
	}
	if j.drift++; j.drift < uint32(c.StragglerSettle) {
		return out
	}
	j.drift = 0
	reported := slices.ContainsFunc(ws, func(i int32) bool { m := &d.workers[i].st; return m.flagged && m.grouped })
	if !reported {
		out = append(out, d.groupAlert(ts, jobName, med, ws, fast, slow, ratio, d.move, "during the job"))
	}
	for _, i := range ws {
		m := &d.workers[i].st
		m.flagged, m.grouped, m.smooth, m.windows = true, true, 0, 0
	}
	return out
}

// twoGroups sorts ws by val and splits them at their largest gap into two
// parts of at least JobShare of them each (with all, the largest gap of
// all must be such a split), whose means differ by StragglerRatio or
// more, with no member within a quarter of StragglerRatio between them.
// It returns the parts and the ratio of their means; slow is nil when
// there are no such groups.
func (d *Detector) twoGroups(ws []int32, val func(int32) float64, all bool) (fast, slow []int32, ratio float64) {
	c := &d.cfg
	slices.SortFunc(ws, func(a, b int32) int { return cmp.Compare(val(a), val(b)) })
	minPart := max(int(math.Ceil(c.JobShare*float64(len(ws)))), 1)
	cut, gap := 0, 0.0
	for k := 1; k < len(ws); k++ {
		g := val(ws[k]) / val(ws[k-1])
		if g <= gap {
			continue
		}
		if k >= minPart && k <= len(ws)-minPart {
			cut, gap = k, g
		} else if all {
			cut, gap = 0, g
		}
	}
	if cut == 0 || gap < 1+(c.StragglerRatio-1)/4 {
		return nil, nil, 0
	}
	mean := func(part []int32) float64 {
		s := 0.0
		for _, i := range part {
			s += val(i)
		}
		return s / float64(len(part))
	}
	fast, slow = ws[:cut], ws[cut:]
	if ratio = mean(slow) / mean(fast); ratio < c.StragglerRatio {
		return nil, nil, 0
	}
	return fast, slow, ratio
}

// groupAlert is the job-level alert on two groups of workers, slow
// StragglerRatio or more slower than fast by val (ratio, their means'),
// formed when (since the start, during the job).
func (d *Detector) groupAlert(ts int64, jobName string, med float64, ws, fast, slow []int32, ratio float64, val func(int32) float64, when string) *proto.Decision {
	names := func(part []int32) string {
		ns := make([]string, len(part))
		for k, i := range part {
			ns[k] = d.workers[i].name
		}
		slices.Sort(ns)
		return strings.Join(ns, ", ")
	}
	ev := &proto.Evidence{Signal: signalName(false), Peers: make(map[string]float64, len(ws)),
		Values: map[string]float64{"job_median": med, "members": float64(len(ws)),
			"slow_members": float64(len(slow)), "group_ratio": ratio}}
	for _, i := range ws {
		ev.Peers[d.workers[i].name] = val(i)
	}
	summary := fmt.Sprintf("job %s: step times in two groups %s: %d of %d members %.2fx slower than the others (%s), the others: %s; "+
		"the job runs in groups: its placement, hardware or a shared part, not a sick node: nothing is cordoned",
		jobName, when, len(slow), len(ws), ratio, names(slow), names(fast))
	return d.alertTo(ts, "job/"+jobName, "warning", "slow_group", 1, summary, ev)
}

// memberName names a GPU (node/gpuN) or a worker.
func (d *Detector) memberName(i int32, act bool) string {
	if act {
		return d.gpus[i].node + "/gpu" + d.gpus[i].gpu
	}
	return d.workers[i].name
}

// memberNode is the node of a GPU or a worker ("" when not known).
func (d *Detector) memberNode(i int32, act bool) string {
	if act {
		return d.gpus[i].node
	}
	return d.workers[i].node
}

// stragglerDecisions alerts on the stragglers ms of one job, all on one node
// (or one member whose node is not known), and taints and cordons the node
// when configured.
func (d *Detector) stragglerDecisions(out []*proto.Decision, ts int64, jobName string, idx []int32, ms []int32, act bool, med, jobMove float64) []*proto.Decision {
	c := &d.cfg
	signal := signalName(act)
	node := d.memberNode(ms[0], act)
	off := func(m *member) float64 { return m.offPeers(c, m.smooth, jobMove) }
	worst := d.member(ms[0], act)
	names := make([]string, len(ms))
	ratios := make([]string, len(ms))
	for k, i := range ms {
		m := d.member(i, act)
		names[k] = d.memberName(i, act)
		ratios[k] = fmt.Sprintf("%.2fx", off(m))
		if off(m) > off(worst) {
			worst = m
		}
	}
	peers := "the job's median"
	if worst.inGroup(c) {
		peers = fmt.Sprintf("its own level in its group of the job (%.2fx the job's median, which sits between the groups)", worst.smooth)
	}
	ev := &proto.Evidence{Signal: signal, Observed: worst.sum / float64(worst.n), Peers: make(map[string]float64, len(idx)),
		Values: map[string]float64{"ratio": off(worst), "job_median": med, "windows_over": float64(worst.over)}}
	if len(ms) > 1 {
		ev.Values["stragglers"] = float64(len(ms))
	}
	for _, j := range idx {
		ev.Peers[d.memberName(j, act)] = d.member(j, act).smooth
	}
	target := "k8s/node/" + node
	if node == "" {
		target = "job/" + jobName + "/" + names[0]
	}
	summary := fmt.Sprintf("%s in job %s is a straggler: %s %.2fx %s for %d windows", names[0], jobName, signal, off(worst), peers, worst.over)
	if len(ms) > 1 {
		summary = fmt.Sprintf("%s in job %s are stragglers on node %s: %s %s %s for %d windows or more",
			strings.Join(names, ", "), jobName, node, signal, strings.Join(ratios, ", "), peers, c.StragglerWindows)
	}
	out = append(out, d.alertTo(ts, target, "warning", "straggler", math.Min(1, (off(worst)-1)/(c.StragglerRatio-1)/2), summary, ev))
	if d.cfg.StragglerCordon && node != "" {
		ch := &proto.Change{Node: node, Taint: &proto.Taint{Key: d.cfg.TaintKey, Value: "straggler", Effect: "PreferNoSchedule"}, Cordon: true}
		out = append(out, d.decision(ts, proto.KindTaintNode, target, ch, ev, 0.5, summary+": cordon the node"))
	}
	return out
}

func (d *Detector) member(i int32, act bool) *member {
	if act {
		return &d.gpus[i].act
	}
	return &d.workers[i].st
}

// gpuWindow checks throttling and the input bottleneck of one GPU.
func (d *Detector) gpuWindow(out []*proto.Decision, ts int64, g *gpuState) []*proto.Decision {
	c := &d.cfg
	thermal := g.reasons&c.ThrottleMask&throttleThermal != 0 || g.thermal > c.ThrottleShare
	power := g.reasons&c.ThrottleMask&throttlePower != 0 || g.power > c.ThrottleShare
	if thermal || power {
		g.throttleRun++
	} else {
		g.throttleRun, g.throttleAlerted = 0, false
	}
	if g.throttleRun >= uint32(c.ThrottleWindows) && !g.throttleAlerted {
		g.throttleAlerted = true
		reason := "power_throttling"
		if thermal {
			reason = "thermal_throttling"
		}
		out = append(out, d.alert(ts, g.node, "warning", reason, 1,
			fmt.Sprintf("GPU %s on node %s clock-throttled (%s) for %d windows", g.gpu, g.node, reason, g.throttleRun),
			&proto.Evidence{Signal: reason, Values: map[string]float64{"reasons": float64(g.reasons),
				"thermal_share": g.thermal, "power_share": g.power}}))
	}

	util := math.NaN()
	if g.utilN > 0 {
		util = g.utilSum / float64(g.utilN)
	}
	rx, what := math.NaN(), ""
	if p, ok := d.pods[g.pod]; ok && g.pod != "" && (d.lastTick == 0 || p.ts > ts-2*(ts-d.lastTick)) {
		rx, what = p.rate, "network"
	}
	if math.IsNaN(rx) && g.pcie > 0 {
		rx, what = g.pcie, "pcie"
	}
	if util < c.BottleneckUtil && rx > c.BottleneckRxBytes {
		g.bottleRun++
	} else if !math.IsNaN(util) {
		g.bottleRun, g.bottleAlerted = 0, false
	}
	if g.bottleRun >= uint32(c.BottleneckWindows) && !g.bottleAlerted {
		g.bottleAlerted = true
		who := g.pod
		if who == "" {
			who = "GPU " + g.gpu
		}
		out = append(out, d.alert(ts, g.node, "warning", what+"_bottleneck", 1,
			fmt.Sprintf("%s on node %s: GPU %.0f%% busy while receiving %.0f MB/s over the %s: the %s input is the bottleneck",
				who, g.node, util, rx/1e6, what, what),
			&proto.Evidence{Signal: what + "_rx_bytes", Observed: rx, Values: map[string]float64{"gpu_util_percent": util, "rx_bytes_per_second": rx}}))
	}
	g.utilSum, g.utilN, g.reasons, g.thermal, g.power, g.pcie = 0, 0, 0, 0, 0, 0
	return out
}

// decision fills the fields every decision has.
func (d *Detector) decision(ts int64, kind, target string, ch *proto.Change, ev *proto.Evidence, conf float64, summary string) *proto.Decision {
	at := time.UnixMilli(ts).UTC()
	return &proto.Decision{
		Id:         proto.DecisionID(d.cfg.Rule, kind, target, ch, ts),
		Kind:       kind,
		Target:     target,
		Rule:       d.cfg.Rule,
		Desired:    ch,
		Evidence:   ev,
		Confidence: conf,
		CreatedAt:  timestamppb.New(at),
		ExpiresAt:  timestamppb.New(at.Add(d.cfg.DecisionTTL)),
		Tenant:     d.cfg.Tenant,
		Summary:    summary,
	}
}

// alert builds an alert about a node.
func (d *Detector) alert(ts int64, node, severity, reason string, conf float64, summary string, ev *proto.Evidence) *proto.Decision {
	return d.alertTo(ts, "k8s/node/"+node, severity, reason, conf, summary, ev)
}

func (d *Detector) alertTo(ts int64, target, severity, reason string, conf float64, summary string, ev *proto.Evidence) *proto.Decision {
	ch := &proto.Change{Alert: &proto.Alert{Severity: severity, Reason: reason}}
	return d.decision(ts, proto.KindAlert, target, ch, ev, conf, summary)
}

// Tainted reports whether the detector has decided a taint on node that it
// has not yet lifted.
func (d *Detector) Tainted(node string) bool {
	n := d.nodes[node]
	return n != nil && n.tainted
}
