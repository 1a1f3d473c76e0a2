package actuators

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeExec is a level-based executor over an in-memory world: replicas per
// target, tainted nodes, shifts.
type fakeExec struct {
	mu       sync.Mutex
	replicas map[string]int32
	kind     string
	tainted  map[string]bool
	nodes    int
	zones    []string
	shifts   []Shift
	applies  int
	dryRuns  int
	events   []string
	err      error
}

func newFakeExec() *fakeExec {
	return &fakeExec{replicas: map[string]int32{}, tainted: map[string]bool{}, nodes: 20,
		zones: []string{"use1-az1", "use1-az2", "use1-az4"}}
}

func (f *fakeExec) Observe(_ context.Context, d *proto.Decision) (Observation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return Observation{}, f.err
	}
	ch := d.GetDesired()
	o := Observation{Kind: f.kind, Nodes: f.nodes, Zones: f.zones, Shifts: f.shifts}
	if o.Kind == "" {
		o.Kind = ch.GetObject().GetKind()
	}
	for range f.tainted {
		o.TaintedNodes++
	}
	switch d.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
		o.Replicas = f.replicas[d.GetTarget()]
		o.Holds = o.Replicas == ch.GetReplicas()
		o.Before = map[string]string{"replicas": fmt.Sprint(o.Replicas)}
	case proto.KindTaintNode:
		o.Holds = f.tainted[ch.GetNode()]
	case proto.KindUntaintNode:
		o.Holds = !f.tainted[ch.GetNode()]
	case proto.KindZonalShift:
		for _, s := range f.shifts {
			if s.AwayFrom == ch.GetZonalShift().GetAwayFrom() && s.Ours {
				o.Holds = true
			}
		}
	}
	return o, nil
}

func (f *fakeExec) Apply(_ context.Context, d *proto.Decision, _ Observation, dry bool) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dry {
		f.dryRuns++
		return map[string]string{"dry_run": "true"}, nil
	}
	f.applies++
	ch := d.GetDesired()
	switch d.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
		f.replicas[d.GetTarget()] = ch.GetReplicas()
	case proto.KindTaintNode:
		f.tainted[ch.GetNode()] = true
	case proto.KindUntaintNode:
		delete(f.tainted, ch.GetNode())
	case proto.KindZonalShift:
		f.shifts = append(f.shifts, Shift{ID: "s1", AwayFrom: ch.GetZonalShift().GetAwayFrom(), Ours: true})
	}
	return map[string]string{"applied": "true"}, nil
}

func (f *fakeExec) RecordOutcome(_ context.Context, d *proto.Decision, a *proto.Action) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, d.GetId()+":"+a.GetOutcome())
}

// seq makes decision ids unique across a test.
var seq int64

// decision returns a signed decision of kind for target, expiring 5 minutes
// after the fake clock's now.
func decision(t testing.TB, now time.Time, kind, target string, ch *proto.Change, mut ...func(*proto.Decision)) *proto.Decision {
	t.Helper()
	seq++
	d := &proto.Decision{
		Kind: kind, Target: target, Rule: "test-rule", Desired: ch,
		CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(5 * time.Minute)),
	}
	d.Id = proto.DecisionID(d.Rule, kind, target, ch, now.UnixMilli()+seq)
	for _, m := range mut {
		m(d)
	}
	if err := proto.Sign(d, testKey); err != nil {
		t.Fatal(err)
	}
	return d
}

func scaleTo(ns, name string, n int32) *proto.Change {
	return &proto.Change{Object: &proto.KubeObject{Kind: "Deployment", Namespace: ns, Name: name}, Replicas: n}
}

func encode(t testing.TB, d *proto.Decision) []byte {
	t.Helper()
	b, err := proto.MarshalJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTest returns an enforcing actuator over one fake executor for both
// APIs, with a fake clock.
func newTest(t testing.TB, mut func(*Config)) (*Actuator, *fakeExec, *fakeClock, *prometheus.Registry) {
	t.Helper()
	clk := &fakeClock{now: t0}
	cfg := DefaultConfig()
	cfg.DecisionKeys = [][]byte{testKey}
	cfg.Mode = ModeEnforce
	cfg.Now = clk.Now
	if mut != nil {
		mut(&cfg)
	}
	ex := newFakeExec()
	reg := prometheus.NewRegistry()
	a, err := New(cfg, nil, ex, ex, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a, ex, clk, reg
}

func fmtWorld(f *fakeExec) string {
	return fmt.Sprintf("replicas=%v tainted=%v shifts=%v applies=%d dry=%d", f.replicas, f.tainted, f.shifts, f.applies, f.dryRuns)
}
