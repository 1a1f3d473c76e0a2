package gpu

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"testing"

	"github.com/augur-ops/augur/internal/wire/wiretest"
)

var update = flag.Bool("update", false, "write the golden checkpoint of a new state version")

// goldenState returns the fixed test state of the golden checkpoints: a
// mixed workload up to minute 7 (node n0 tainted for XID 79, a slow GPU and
// an input-bound pod in the making, a worker) and an open window at minute 8
// with every per-window field set.
func goldenState(t *testing.T) *Detector {
	t.Helper()
	d := newDet(t, Config{})
	feed(d, 1, 8)
	for _, s := range []Sample{
		{Metric: MetricUtil, Value: 42.5},
		{Metric: MetricThrottleReasons, Value: ThrottleHWThermal | ThrottleSWPowerCap},
		{Metric: MetricThermalViolation, Value: 250e3},
		{Metric: MetricPowerViolation, Value: 125e3},
		{Metric: MetricPCIeRx, Value: 3e9},
	} {
		s.Node, s.GPU, s.Job, s.Pod, s.Ts = "n1", "1", "j", "ns/p3", ms(8)-1000
		d.Observe(s)
	}
	d.ObserveStep("j", "w1", "", ms(8)-1000, 1.5)
	return d
}

// TestCheckpointGoldens restores the checkpoint of every state version in
// testdata/checkpoint (see package wiretest; -update writes the golden of a
// new version) and checks it holds goldenState.
func TestCheckpointGoldens(t *testing.T) {
	wiretest.Check(t, wiretest.Format{
		Version: stateVersion,
		Exact:   true,
		Fresh: func(t *testing.T) []byte {
			b, err := goldenState(t).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Restore: func(t *testing.T, data []byte) []byte {
			d := newDet(t, Config{})
			if err := d.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			checkGoldenState(t, d)
			b, err := d.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}, *update)
}

// checkGoldenState checks d holds what goldenState fed it.
func checkGoldenState(t *testing.T, d *Detector) {
	t.Helper()
	if d.lastTick != ms(7) || len(d.gpus) != 6 || len(d.workers) != 1 || len(d.nodes) != 3 || len(d.pods) != 1 {
		t.Fatalf("last tick %d, %d gpus, %d workers, %d nodes, %d pods; want %d, 6, 1, 3, 1",
			d.lastTick, len(d.gpus), len(d.workers), len(d.nodes), len(d.pods), ms(7))
	}
	g0 := d.gpus[d.gpuIdx[gpuKey{"n0", "0"}]]
	if g0.xid != 79 || !g0.xidSeen || !g0.xidBad || g0.pod != "ns/p0" || g0.act.smooth != 1 {
		t.Errorf("gpu n0/0 %+v, want XID 79 bad, pod ns/p0, smoothed ratio 1", g0)
	}
	want := gpuState{node: "n1", gpu: "1", job: "j", pod: "ns/p3",
		act: member{sum: 42.5, n: 1, smooth: 1.48, over: 2, windows: 6, settled: 1}, xidSeen: true,
		utilSum: 42.5, utilN: 1, reasons: ThrottleHWThermal | ThrottleSWPowerCap,
		thermal: 0.25, power: 0.125, pcie: 3e9, bottleRun: 2}
	if g3 := d.gpus[d.gpuIdx[gpuKey{"n1", "1"}]]; g3 != want {
		t.Errorf("gpu n1/1\n%+v, want\n%+v", g3, want)
	}
	if w := d.workers[0]; w != (workerState{job: "j", name: "w1", st: member{sum: 1.5, n: 1}}) {
		t.Errorf("worker %+v", w)
	}
	if n := d.nodes["n0"]; *n != (nodeState{tainted: true, reason: "xid_79", bad: 1, lastBad: ms(7), lastSeen: ms(7)}) {
		t.Errorf("node n0 %+v", *n)
	}
	if n := d.nodes["n2"]; *n != (nodeState{lastSeen: ms(7)}) {
		t.Errorf("node n2 %+v", *n)
	}
	if p := d.pods["ns/p3"]; p != (podRx{rate: 5e8, ts: ms(7)}) {
		t.Errorf("pod ns/p3 %+v", p)
	}
	if j := d.jobs["j"]; j == nil || len(j.gpus) != 6 || len(j.workers) != 1 {
		t.Errorf("job j %+v, want 6 GPUs and a worker", j)
	}
	if !d.Tainted("n0") || d.Tainted("n1") {
		t.Error("restored taints differ: want n0 only")
	}
}

// TestReservedField checks the field that counted dropped samples: any
// value in a version 1 checkpoint (ignored), zero from version 2 on.
func TestReservedField(t *testing.T) {
	gs := wiretest.Goldens(t, wiretest.Dir)
	if len(gs) < 2 || gs[0].Version != stateVersionBigEndian || gs[len(gs)-1].Version != stateVersion {
		t.Fatalf("want goldens of versions %d and %d", stateVersionBigEndian, stateVersion)
	}
	old, cur := slices.Clone(gs[0].Data), gs[len(gs)-1].Data
	old[16] = 1 // the last byte of the big-endian field
	d := newDet(t, Config{})
	if err := d.UnmarshalBinary(old); err != nil {
		t.Fatalf("version 1 with samples dropped: %v", err)
	}
	if got, _ := d.MarshalBinary(); !bytes.Equal(got, cur) {
		t.Error("version 1 with samples dropped restores another state")
	}
	bad := slices.Clone(cur)
	bad[9] = 1
	if err := d.UnmarshalBinary(bad); !errors.Is(err, ErrBadState) {
		t.Errorf("version 2 with a reserved field set: error %v, want ErrBadState", err)
	}
}
