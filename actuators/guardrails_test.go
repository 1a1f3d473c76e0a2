package actuators

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/augur-ops/augur/proto"
)

// env is what a guardrail test case sees.
type env struct {
	a   *Actuator
	ex  *fakeExec
	clk *fakeClock
}

const dep = "k8s/deployment/payment/payment-service"

func taint(node, effect string) *proto.Change {
	return &proto.Change{Node: node, Taint: &proto.Taint{Key: "augur.io/gpu-unhealthy", Value: "xid_79", Effect: effect}}
}

func shift(away string, expiry int64) *proto.Change {
	return &proto.Change{ZonalShift: &proto.ZonalShift{ResourceIdentifier: "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/1", AwayFrom: away, ExpiresInSeconds: expiry}}
}

// TestGuardrails shows, for every guardrail, the refusal, its audit record,
// and that the world did not change.
func TestGuardrails(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		setup     func(t *testing.T, e env)
		value     func(t *testing.T, e env) []byte
		outcome   string
		guardrail string
	}{
		{
			name:      "malformed",
			value:     func(*testing.T, env) []byte { return []byte(`{"id": 7`) },
			outcome:   proto.OutcomeRefused,
			guardrail: GuardMalformed,
		},
		{
			name: "spoofed signature",
			value: func(t *testing.T, e env) []byte {
				d := decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
				d.Desired.Replicas = 600 // changed after signing
				return encode(t, d)
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardSignature,
		},
		{
			name: "signed with another key",
			value: func(t *testing.T, e env) []byte {
				d := decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
				if err := proto.Sign(d, []byte("another key, 32 bytes long......")); err != nil {
					t.Fatal(err)
				}
				return encode(t, d)
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardSignature,
		},
		{
			name: "expired",
			value: func(t *testing.T, e env) []byte {
				d := decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
				e.clk.Advance(6 * time.Minute)
				return encode(t, d)
			},
			outcome:   proto.OutcomeExpired,
			guardrail: GuardExpired,
		},
		{
			name: "no expiry",
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6),
					func(d *proto.Decision) { d.ExpiresAt = nil }))
			},
			outcome:   proto.OutcomeExpired,
			guardrail: GuardExpired,
		},
		{
			name: "replayed",
			value: func(t *testing.T, e env) []byte {
				v := encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 5)))
				if got := e.a.Handle(t.Context(), v); got.GetOutcome() != proto.OutcomeApplied {
					t.Fatalf("first delivery: %v", got)
				}
				e.ex.replicas[dep] = 4 // someone scaled back: a replay must still do nothing
				e.ex.applies = 0
				return v
			},
			outcome:   proto.OutcomeDuplicate,
			guardrail: GuardDuplicate,
		},
		{
			name:      "kill switch",
			cfg:       func(c *Config) { c.KillSwitch = true },
			value:     scale6,
			outcome:   proto.OutcomeRefused,
			guardrail: GuardKillSwitch,
		},
		{
			name: "kill switch file",
			cfg: func(c *Config) {
				c.KillSwitchFile = filepath.Join(os.TempDir(), "augur-kill-"+time.Now().Format("150405.000000000"))
			},
			setup: func(t *testing.T, e env) {
				if err := os.WriteFile(e.a.cfg.KillSwitchFile, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(e.a.cfg.KillSwitchFile) })
			},
			value:     scale6,
			outcome:   proto.OutcomeRefused,
			guardrail: GuardKillSwitch,
		},
		{
			name:      "global mode off",
			cfg:       func(c *Config) { c.Mode = ModeOff },
			value:     scale6,
			outcome:   proto.OutcomeRefused,
			guardrail: GuardModeOff,
		},
		{
			name:      "rule mode off under global enforce",
			cfg:       func(c *Config) { c.Rules = map[string]Rule{"test-rule": {Mode: ModeOff}} },
			value:     scale6,
			outcome:   proto.OutcomeRefused,
			guardrail: GuardModeOff,
		},
		{
			name: "unknown kind",
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), "delete_cluster", dep, scaleTo("payment", "payment-service", 6)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardUnknownKind,
		},
		{
			name: "kube-system denied by default",
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, "k8s/deployment/kube-system/coredns", scaleTo("kube-system", "coredns", 3)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardNamespaceDenied,
		},
		{
			name:      "namespace not on allow list",
			cfg:       func(c *Config) { c.AllowNamespaces = []string{"checkout"} },
			value:     scale6,
			outcome:   proto.OutcomeRefused,
			guardrail: GuardNamespaceNotAllow,
		},
		{
			name: "statefulset without opt-in",
			value: func(t *testing.T, e env) []byte {
				ch := scaleTo("payment", "ledger", 4)
				ch.Object.Kind = "StatefulSet"
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, "k8s/statefulset/payment/ledger", ch))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardStatefulSet,
		},
		{
			name: "below min replicas",
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 0)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardMinReplicas,
		},
		{
			name: "above rule max replicas",
			cfg:  func(c *Config) { c.Rules = map[string]Rule{"test-rule": {MaxReplicas: 5}} },
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardMaxReplicas,
		},
		{
			name: "cooldown up",
			setup: func(t *testing.T, e env) {
				mustOutcome(t, e.a, scale6(t, e), proto.OutcomeApplied)
				e.clk.Advance(30 * time.Second)
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 8)))
			},
			outcome:   proto.OutcomeDeferred,
			guardrail: GuardCooldownUp,
		},
		{
			name: "cooldown down",
			setup: func(t *testing.T, e env) {
				mustOutcome(t, e.a, scale6(t, e), proto.OutcomeApplied)
				e.clk.Advance(2 * time.Minute)
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 5)))
			},
			outcome:   proto.OutcomeDeferred,
			guardrail: GuardCooldownDown,
		},
		{
			name: "scale-down stabilization",
			cfg:  func(c *Config) { c.CooldownDown = 0 },
			setup: func(t *testing.T, e env) {
				// A decision for 9 is applied in a bounded step (4 -> 6)
				// and stays in the stabilization window.
				mustOutcome(t, e.a, encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 9))), proto.OutcomeApplied)
				e.clk.Advance(time.Minute)
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 3)))
			},
			outcome:   proto.OutcomeDeferred,
			guardrail: GuardStabilization,
		},
		{
			name: "global rate limit",
			cfg:  func(c *Config) { c.RateLimit = 2 },
			setup: func(t *testing.T, e env) {
				for _, n := range []string{"a", "b"} {
					target := "k8s/deployment/payment/" + n
					e.ex.replicas[target] = 2
					mustOutcome(t, e.a, encode(t, decision(t, e.clk.Now(), proto.KindScale, target, scaleTo("payment", n, 3))), proto.OutcomeApplied)
				}
			},
			value:     scale6,
			outcome:   proto.OutcomeDeferred,
			guardrail: GuardRateLimit,
		},
		{
			name: "blast radius: count of tainted nodes",
			setup: func(t *testing.T, e env) {
				e.ex.tainted["gpu-1"], e.ex.tainted["gpu-2"] = true, true
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindTaintNode, "k8s/node/gpu-3", taint("gpu-3", "NoSchedule")))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardBlastRadius,
		},
		{
			name: "blast radius: share of nodes",
			cfg:  func(c *Config) { c.MaxNodeActions = 10 },
			setup: func(t *testing.T, e env) {
				e.ex.nodes = 4
				e.ex.tainted["gpu-1"] = true
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindTaintNode, "k8s/node/gpu-3", taint("gpu-3", "NoExecute")))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardBlastRadius,
		},
		{
			name: "blast radius: actions in the window",
			cfg:  func(c *Config) { c.MaxNodeActions = 1; c.UntaintHoldDown = 0 },
			setup: func(t *testing.T, e env) {
				mustOutcome(t, e.a, encode(t, decision(t, e.clk.Now(), proto.KindTaintNode, "k8s/node/gpu-1", taint("gpu-1", "NoSchedule"))), proto.OutcomeApplied)
				mustOutcome(t, e.a, encode(t, decision(t, e.clk.Now(), proto.KindUntaintNode, "k8s/node/gpu-1", taint("gpu-1", "NoSchedule"))), proto.OutcomeApplied)
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindTaintNode, "k8s/node/gpu-2", taint("gpu-2", "NoSchedule")))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardBlastRadius,
		},
		{
			name: "untaint hold-down",
			setup: func(t *testing.T, e env) {
				mustOutcome(t, e.a, encode(t, decision(t, e.clk.Now(), proto.KindTaintNode, "k8s/node/gpu-1", taint("gpu-1", "NoSchedule"))), proto.OutcomeApplied)
				e.clk.Advance(time.Minute)
			},
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindUntaintNode, "k8s/node/gpu-1", taint("gpu-1", "NoSchedule")))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardUntaintHoldDown,
		},
		{
			name: "zonal shift without expiry",
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindZonalShift, "aws/zonalshift/web", shift("use1-az1", 0)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardZonalExpiry,
		},
		{
			name: "zonal shift expiry too long",
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindZonalShift, "aws/zonalshift/web", shift("use1-az1", 86400)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardZonalExpiry,
		},
		{
			name:  "zonal shift: one zone at a time",
			setup: func(t *testing.T, e env) { e.ex.shifts = []Shift{{ID: "x", AwayFrom: "use1-az2", Ours: true}} },
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindZonalShift, "aws/zonalshift/web", shift("use1-az1", 1800)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardZonalOneAtATime,
		},
		{
			name:  "zonal shift: never fewer than two healthy zones",
			setup: func(t *testing.T, e env) { e.ex.zones = []string{"use1-az1", "use1-az2"} },
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindZonalShift, "aws/zonalshift/web", shift("use1-az1", 1800)))
			},
			outcome:   proto.OutcomeRefused,
			guardrail: GuardZonalHealthyZones,
		},
		{
			name: "zonal shift: human approval records intent only",
			cfg:  func(c *Config) { c.ZonalShiftApproval = true },
			value: func(t *testing.T, e env) []byte {
				return encode(t, decision(t, e.clk.Now(), proto.KindZonalShift, "aws/zonalshift/web", shift("use1-az1", 1800)))
			},
			outcome:   proto.OutcomePendingApproval,
			guardrail: GuardApproval,
		},
		{
			name:      "rule approval records intent only",
			cfg:       func(c *Config) { c.Rules = map[string]Rule{"test-rule": {RequireApproval: true}} },
			value:     scale6,
			outcome:   proto.OutcomePendingApproval,
			guardrail: GuardApproval,
		},
		{
			name:      "executor refusal",
			setup:     func(t *testing.T, e env) { e.ex.err = Refuse(GuardForbidden, "deployments.apps is forbidden") },
			value:     scale6,
			outcome:   proto.OutcomeRefused,
			guardrail: GuardForbidden,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ex, clk, reg := newTest(t, tt.cfg)
			ex.replicas[dep] = 4
			e := env{a, ex, clk}
			if tt.setup != nil {
				tt.setup(t, e)
			}
			v := tt.value(t, e)
			before := snapshot(ex)
			got := a.Handle(t.Context(), v)
			if got.GetOutcome() != tt.outcome || got.GetGuardrail() != tt.guardrail {
				t.Fatalf("outcome %q guardrail %q (%s), want %q %q", got.GetOutcome(), got.GetGuardrail(), got.GetError(), tt.outcome, tt.guardrail)
			}
			if got.GetError() == "" || got.GetAt() == nil || got.GetActor() == "" {
				t.Errorf("audit record lacks explanation, time or actor: %v", got)
			}
			if after := snapshot(ex); after != before {
				t.Errorf("world changed on refusal: %s -> %s", before, after)
			}
			if n := testutil.ToFloat64(a.m.refusals.WithLabelValues(tt.guardrail)); n < 1 {
				t.Errorf("refusals{guardrail=%q} = %v", tt.guardrail, n)
			}
			if n, err := testutil.GatherAndCount(reg, "augur_actuator_refusals_total"); err != nil || n == 0 {
				t.Errorf("refusal metric not registered: %d, %v", n, err)
			}
		})
	}
}

func scale6(t *testing.T, e env) []byte {
	return encode(t, decision(t, e.clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
}

func mustOutcome(t *testing.T, a *Actuator, v []byte, want string) {
	t.Helper()
	if got := a.Handle(t.Context(), v); got.GetOutcome() != want {
		t.Fatalf("setup decision: outcome %q (%s %s), want %q", got.GetOutcome(), got.GetGuardrail(), got.GetError(), want)
	}
}

// snapshot renders the fake world's mutable state.
func snapshot(f *fakeExec) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmtWorld(f)
}

// TestGuardrailsChangeNothing runs every guardrail on decisions of each
// kind against a memory with history in it (cooldowns, a stabilization
// window, taints, changes, a decision in force) and checks that the memory
// is the same afterwards: only commit records.
func TestGuardrailsChangeNothing(t *testing.T) {
	a, _, clk, _ := newTest(t, func(c *Config) { c.Mode = ModeEnforce })
	now := clk.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	a.targets[dep] = targetState{lastUp: ago(time.Minute), lastChange: ago(time.Minute),
		recs: []rec{{ago(20 * time.Minute), 9}, {ago(time.Minute), 8}}}
	a.live.changes = []time.Time{ago(2 * time.Hour), ago(time.Minute)}
	a.live.taints = []time.Time{ago(48 * time.Hour), ago(time.Minute)}
	a.live.nodes["gpu-1"] = nodeChange{ago(time.Minute), true}
	a.live.nodes["gpu-3"] = nodeChange{ago(time.Minute), false}
	a.goals[dep] = &goal{d: decision(t, now, proto.KindScale, dep, scaleTo("payment", "payment-service", 8)), next: now}
	snapshot := func() string {
		return fmt.Sprintf("%v|%v|%v|%v|%v", a.targets, a.live, a.dry, len(a.goals), a.goals[dep].next)
	}
	before := snapshot()
	decisions := []*proto.Decision{
		decision(t, now, proto.KindScale, dep, scaleTo("payment", "payment-service", 3)),
		decision(t, now, proto.KindScale, dep, scaleTo("payment", "payment-service", 20)),
		decision(t, now, proto.KindTaintNode, "node/gpu-2", taint("gpu-2", "NoSchedule")),
		decision(t, now, proto.KindUntaintNode, "node/gpu-1", taint("gpu-1", "NoSchedule")),
		decision(t, now, proto.KindZonalShift, "zonal/web", shift("use1-az1", 1800)),
	}
	obs := &Observation{Replicas: 6, Nodes: 10, TaintedNodes: 1, Zones: []string{"use1-az1", "use1-az2"},
		Shifts: []Shift{{ID: "s1", AwayFrom: "use1-az2"}}}
	held := 0
	for _, d := range decisions {
		for _, retry := range []bool{false, true} {
			at := &attempt{d: d, rule: a.cfg.rule(d.GetRule()), now: now, retry: retry, obs: obs}
			for _, g := range append(append(slices.Clone(unobservedGuardrails), observedGuardrails...), rateLimit) {
				if name, _ := g(a, at); name != "" {
					held++
				}
			}
		}
	}
	if held == 0 {
		t.Fatal("no guardrail held any decision back: the memory was not exercised")
	}
	if after := snapshot(); after != before {
		t.Fatalf("guardrails changed the actuator's memory:\nbefore %s\nafter  %s", before, after)
	}
}

// TestDryRunRuleKeepsItsOwnBudget: a rule tried in dry-run next to
// enforced ones counts its changes (dry-run shows where enforce would
// stop) but in a budget of its own: its pretend scale-ups do not use up
// the enforced rules' rate limit, nor its pretend taints their blast
// radius.
func TestDryRunRuleKeepsItsOwnBudget(t *testing.T) {
	a, ex, clk, _ := newTest(t, func(c *Config) {
		c.Mode, c.RateLimit, c.MaxNodeActions = ModeEnforce, 2, 1
		c.Rules = map[string]Rule{"trial": {Mode: ModeDryRun}}
	})
	trial := func(d *proto.Decision) { d.Rule = "trial" }
	if act := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindTaintNode, "node/gpu-1", taint("gpu-1", "NoSchedule"), trial))); act.GetOutcome() != proto.OutcomeDryRun {
		t.Fatalf("dry-run taint: %s %s", act.GetOutcome(), act.GetGuardrail())
	}
	for i, target := range []string{"a", "b"} {
		ex.replicas["k8s/deployment/payment/"+target] = 2
		act := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, "k8s/deployment/payment/"+target, scaleTo("payment", target, 3), trial)))
		want := proto.OutcomeDryRun
		if i == 1 {
			want = proto.OutcomeDeferred // its own budget: two changes
		}
		if act.GetOutcome() != want {
			t.Fatalf("dry-run change %d: %s %s, want %s", i, act.GetOutcome(), act.GetGuardrail(), want)
		}
	}
	ex.replicas[dep] = 2
	if act := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 3)))); act.GetOutcome() != proto.OutcomeApplied {
		t.Errorf("enforced scale-up after the dry-run rule's changes: %s %s %q", act.GetOutcome(), act.GetGuardrail(), act.GetError())
	}
	if act := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindTaintNode, "node/gpu-2", taint("gpu-2", "NoSchedule")))); act.GetOutcome() != proto.OutcomeApplied {
		t.Errorf("enforced taint after the dry-run rule's taint: %s %s %q", act.GetOutcome(), act.GetGuardrail(), act.GetError())
	}
}

// TestDryRunBoundedStepIsNoRefusal: a bounded step is not a refusal in
// enforce mode (outcome applied, guardrail max_step); its dry run must not
// be counted as one either, or dry-run shows refusals enforce never makes.
func TestDryRunBoundedStepIsNoRefusal(t *testing.T) {
	for _, mode := range []Mode{ModeEnforce, ModeDryRun} {
		t.Run(string(mode), func(t *testing.T) {
			a, ex, clk, _ := newTest(t, func(c *Config) { c.Mode = mode })
			ex.replicas[dep] = 4
			act := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 20))))
			if act.GetGuardrail() != GuardMaxStep {
				t.Fatalf("outcome %s guardrail %q (%s), want a bounded step", act.GetOutcome(), act.GetGuardrail(), act.GetError())
			}
			if n := testutil.ToFloat64(a.m.refusals.WithLabelValues(GuardMaxStep)); n != 0 {
				t.Fatalf("augur_actuator_refusals_total{guardrail=max_step} = %v after a %s bounded step, want 0", n, act.GetOutcome())
			}
		})
	}
}
