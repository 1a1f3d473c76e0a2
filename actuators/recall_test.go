package actuators

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

// TestRecallRefusesADecisionWrittenAgain: an actuator applies "scale to 6",
// someone scales the Deployment to 5, and the signed decision, still
// unexpired, is written to augur.decisions again. A fresh actuator (a
// restart, or another replica) that recalled the audit records refuses it
// as a duplicate; one that did not would scale back to 6.
func TestRecallRefusesADecisionWrittenAgain(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	decTopic, actTopic, group := "augur.decisions.recall."+suffix, "augur.actions.recall."+suffix, "augur-act-recall-"+suffix
	seeds := brokers(t, decTopic, actTopic)
	topics := func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic }

	a, ex, clk, _ := newTest(t, topics)
	ex.replicas[dep] = 4
	six := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
	spoof := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 7))
	spoof.Desired.Replicas = 100 // the signature no longer verifies
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(decTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(d *proto.Decision) {
		t.Helper()
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: encode(t, d)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	recall := func(a *Actuator) {
		t.Helper()
		n, err := a.Recall(t.Context(), []kgo.Opt{kgo.SeedBrokers(seeds...)})
		if err != nil {
			t.Fatalf("Recall: %v", err)
		}
		// The spoofed decision's record must not put its id in the
		// replay set.
		if n != 1 {
			t.Errorf("recalled %d decisions, want 1", n)
		}
	}

	produce(six)
	produce(spoof)
	runUntilActions(t, a, group, seeds, 2)
	if ex.applies != 1 || ex.replicas[dep] != 6 {
		t.Fatalf("first actuator: %s", fmtWorld(ex))
	}

	b, ex2, _, _ := newTest(t, topics)
	ex2.replicas[dep] = 5 // scaled by someone else since
	produce(six)          // written again, within its expiry
	recall(b)
	runUntilActions(t, b, group, seeds, 3)
	got := waitActions(t, seeds, actTopic, 3)
	if last := got[2]; last.GetDecisionId() != six.GetId() || last.GetOutcome() != proto.OutcomeDuplicate {
		t.Errorf("decision written again: %s %s %s, want duplicate", last.GetDecisionId(), last.GetOutcome(), last.GetGuardrail())
	}
	if ex2.applies != 0 || ex2.replicas[dep] != 5 {
		t.Errorf("restarted actuator acted: %s", fmtWorld(ex2))
	}
}

// TestRecallWithoutActionsTopic: before any audit record exists there is
// nothing to recall, and that is not an error.
func TestRecallWithoutActionsTopic(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	seeds := brokers(t, "augur.decisions.norecall."+suffix)
	a, _, _, _ := newTest(t, func(c *Config) { c.ActionsTopic = "augur.actions.absent." + suffix })
	n, err := a.Recall(t.Context(), []kgo.Opt{kgo.SeedBrokers(seeds...)})
	if n != 0 || err != nil {
		t.Fatalf("Recall = %d, %v; want 0, nil", n, err)
	}
}

// TestMaxDecisionTTL: a decision valid for longer than max_decision_ttl is
// refused (Recall reads back only that far), one within it is applied.
func TestMaxDecisionTTL(t *testing.T) {
	a, ex, clk, _ := newTest(t, func(c *Config) { c.MaxDecisionTTL = 30 * time.Minute })
	ex.replicas[dep] = 4
	far := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6), func(d *proto.Decision) {
		d.ExpiresAt = timestamppb.New(clk.Now().Add(31 * time.Minute))
	})
	if act := a.Handle(t.Context(), encode(t, far)); act.GetOutcome() != proto.OutcomeRefused || act.GetGuardrail() != GuardMaxDecisionTTL {
		t.Fatalf("expiry in 31m: %s %s (%s)", act.GetOutcome(), act.GetGuardrail(), act.GetError())
	}
	near := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6), func(d *proto.Decision) {
		d.ExpiresAt = timestamppb.New(clk.Now().Add(29 * time.Minute))
	})
	if act := a.Handle(t.Context(), encode(t, near)); act.GetOutcome() != proto.OutcomeApplied {
		t.Fatalf("expiry in 29m: %s %s (%s)", act.GetOutcome(), act.GetGuardrail(), act.GetError())
	}
}

// recallEnv is a decisions topic, an actions topic and a consumer group
// on Kafka (kfake, or AUGUR_KAFKA_BROKERS), and a producer to both topics.
type recallEnv struct {
	seeds                     []string
	decisions, actions, group string
	prod                      *kgo.Client
}

func newRecallEnv(t *testing.T, name string) *recallEnv {
	t.Helper()
	suffix := time.Now().Format("150405.000000")
	e := &recallEnv{decisions: "augur.decisions." + name + "." + suffix, actions: "augur.actions." + name + "." + suffix,
		group: "augur-act-" + name + "-" + suffix}
	e.seeds = brokers(t, e.decisions, e.actions)
	prod, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.DefaultProduceTopic(e.decisions))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	e.prod = prod
	return e
}

// topics points an actuator's config at e's topics.
func (e *recallEnv) topics(c *Config) { c.DecisionsTopic, c.ActionsTopic = e.decisions, e.actions }

// decide writes signed decisions to the decisions topic, keyed by target.
func (e *recallEnv) decide(t *testing.T, ds ...*proto.Decision) {
	t.Helper()
	for _, d := range ds {
		if err := e.prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(d.GetTarget()), Value: encode(t, d)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// rule sets a decision's rule.
func rule(r string) func(*proto.Decision) { return func(d *proto.Decision) { d.Rule = r } }

// batch has a handle ds as one batch of Run (audit: the batch's decisions,
// then the decisions in force that are due), writes their audit records to
// e's actions topic and checks their outcomes (and guardrails).
func (e *recallEnv) batch(t *testing.T, a *Actuator, want string, ds ...*proto.Decision) {
	t.Helper()
	recs := make([]*kgo.Record, len(ds))
	for i, d := range ds {
		recs[i] = &kgo.Record{Topic: e.decisions, Key: []byte(d.GetTarget()), Value: encode(t, d)}
	}
	out, acts, err := a.audit(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.prod.ProduceSync(t.Context(), out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, act := range acts {
		got = append(got, strings.TrimSuffix(act.GetOutcome()+" "+act.GetGuardrail(), " "))
	}
	if g := strings.Join(got, ", "); g != want {
		t.Fatalf("at %v: %s, want %s", a.cfg.Now().Sub(t0), g, want)
	}
}

// recall runs a.Recall against e and returns how many decisions it
// recalled.
func (e *recallEnv) recall(t *testing.T, a *Actuator) int {
	t.Helper()
	n, err := a.Recall(t.Context(), []kgo.Opt{kgo.SeedBrokers(e.seeds...)})
	if err != nil {
		t.Fatalf("Recall: %v", err)
	}
	return n
}

// TestRecallKeepsGuardrails: an actuator scales payment-service up (4 ->
// 6). A fresh actuator (a restart, or a replica taking over the group)
// that recalled the audit records gets the next decision and defers it as
// the first actuator would have; one that forgot the scale-up applied it:
//   - 30 s later, payment-service to 8: cooldown_up (1m);
//   - with the down cooldown off, a minute later payment-service to 5:
//     scale_down_stabilization (a decision in the 5-minute window asked
//     for 6);
//   - with one change a minute allowed, 30 s later another Deployment,
//     which no cooldown holds back: rate_limit.
func TestRecallKeepsGuardrails(t *testing.T) {
	const cart = "k8s/deployment/payment/cart"
	for _, c := range []struct {
		guardrail string
		cfg       func(*Config)
		after     time.Duration
		target    string
		from, to  int32
	}{
		{GuardCooldownUp, func(*Config) {}, 30 * time.Second, dep, 6, 8},
		{GuardStabilization, func(c *Config) { c.CooldownDown = 0 }, time.Minute, dep, 6, 5},
		{GuardRateLimit, func(c *Config) { c.RateLimit = 1 }, 30 * time.Second, cart, 2, 3},
	} {
		t.Run(c.guardrail, func(t *testing.T) {
			e := newRecallEnv(t, c.guardrail)
			cfg := func(cf *Config) { e.topics(cf); c.cfg(cf) }
			a, ex, clk, _ := newTest(t, cfg)
			ex.replicas[dep] = 4
			e.decide(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
			runUntilActions(t, a, e.group, e.seeds, 1)
			if ex.applies != 1 || ex.replicas[dep] != 6 {
				t.Fatalf("first actuator: %s", fmtWorld(ex))
			}

			b, ex2, clk2, _ := newTest(t, cfg)
			clk2.Advance(c.after)
			ex2.replicas[c.target] = c.from
			name := strings.TrimPrefix(c.target, "k8s/deployment/payment/")
			next := decision(t, clk2.Now(), proto.KindScale, c.target, scaleTo("payment", name, c.to))
			e.decide(t, next)
			if n := e.recall(t, b); n != 1 {
				t.Errorf("recalled %d decisions, want 1", n)
			}
			runUntilActions(t, b, e.group, e.seeds, 2)
			acts := waitActions(t, e.seeds, e.actions, 2)
			got := acts[slices.IndexFunc(acts, func(act *proto.Action) bool { return act.GetDecisionId() == next.GetId() })]
			if got.GetOutcome() != proto.OutcomeDeferred || got.GetGuardrail() != c.guardrail {
				t.Errorf("%s to %d %v after the scale-up: %s %s (%s), want deferred %s", name, c.to, c.after, got.GetOutcome(), got.GetGuardrail(), got.GetError(), c.guardrail)
			}
			if ex2.applies != 0 || ex2.replicas[c.target] != c.from {
				t.Errorf("restarted actuator: %s", fmtWorld(ex2))
			}
		})
	}
}

// TestRecallRebuildsTargetMemory: decisions ending every way a replica
// decision can go through one actuator as Run takes them (audit: the
// batch's decisions, then the decisions in force that are due), and their
// audit records go to augur.actions on Kafka. A fresh actuator that
// recalled them has, target by target, the memory the first one built:
// the last scale-up, the last change (a later step of a decision in force
// and a dry-run included) and the stabilization window (noop, deferred
// and pending approval included; spoofed, refused before or as a
// StatefulSet after observing, not observed, and older than the window
// left out). Recalling again into the first actuator changes nothing.
func TestRecallRebuildsTargetMemory(t *testing.T) {
	e := newRecallEnv(t, "memory")
	cfg := func(c *Config) {
		e.topics(c)
		c.Rules = map[string]Rule{"dry": {Mode: ModeDryRun}, "approve": {RequireApproval: true}}
	}
	a, ex, clk, _ := newTest(t, cfg)
	target := func(name string) string { return "k8s/deployment/payment/" + name }
	for name, n := range map[string]int32{"payment-service": 4, "cart": 8, "search": 3, "ledger": 6, "checkout": 2, "db": 5, "queue": 5} {
		ex.replicas[target(name)] = n
	}
	admitted := 0
	scale := func(name string, n int32, mut ...func(*proto.Decision)) *proto.Decision {
		admitted++
		return decision(t, clk.Now(), proto.KindScale, target(name), scaleTo("payment", name, n), mut...)
	}
	clock := func(at time.Duration) { clk.Advance(t0.Add(at).Sub(clk.Now())) }
	batch := func(want string, ds ...*proto.Decision) { t.Helper(); e.batch(t, a, want, ds...) }
	spoof := decision(t, clk.Now(), proto.KindScale, target("ledger"), scaleTo("payment", "ledger", 20))
	spoof.Desired.Replicas = 30 // the signature no longer verifies

	batch("applied max_step, refused signature, applied, dry_run",
		scale("payment-service", 9, expiresIn(10*time.Minute)), // 4 -> 6, in force
		spoof,
		scale("cart", 6),                // 8 -> 6
		scale("search", 5, rule("dry")), // 3, would be 5
	)
	clock(70 * time.Second)
	batch("applied") // in force: payment-service 6 -> 9, past cooldown_up
	clock(3 * time.Minute)
	batch("deferred cooldown_down, noop, pending_approval approval, refused max_replicas",
		scale("payment-service", 7, expiresIn(10*time.Minute)), // in force
		scale("ledger", 6),
		scale("checkout", 3, rule("approve")),
		scale("ledger", 2000), // before observing
	)
	ex.kind = "StatefulSet"
	batch("refused statefulset_not_opted_in", scale("db", 6)) // after observing
	ex.kind = ""
	ex.err = fmt.Errorf("deployment: %w", ErrNotFound)
	batch("failed", scale("queue", 6)) // observing
	ex.err = nil
	clock(6*time.Minute + 30*time.Second)
	batch("applied, applied", scale("cart", 5)) // 6 -> 5; in force: payment-service 9 -> 7
	if ex.replicas[target("payment-service")] != 7 || ex.replicas[target("cart")] != 5 || ex.replicas[target("search")] != 3 {
		t.Fatalf("the story went otherwise: %s", fmtWorld(ex))
	}

	const want = `cart: up - change 6m30s window [6m30s:5]
checkout: up - change - window [3m0s:3]
ledger: up - change - window [3m0s:6]
payment-service: up 1m10s change 6m30s window [3m0s:7]
search: up 0s change 0s window []`
	if got := targetMemory(a); got != want {
		t.Fatalf("the first actuator remembers\n%s\nwant\n%s", got, want)
	}
	if n := e.checkRecalled(t, a, clk, cfg, targetMemory, want); n != admitted {
		t.Errorf("recalled %d decisions, want %d", n, admitted)
	}
}

// checkRecalled checks that a fresh actuator with cfg, its clock at clk's
// time, remembers want (as memory renders it) after recalling e's audit
// records, and that a, which wrote them, still does after recalling them
// too. It returns how many decisions the fresh actuator recalled.
func (e *recallEnv) checkRecalled(t *testing.T, a *Actuator, clk *fakeClock, cfg func(*Config), memory func(*Actuator) string, want string) int {
	t.Helper()
	b, _, clk2, _ := newTest(t, cfg)
	clk2.Advance(clk.Now().Sub(t0))
	n := e.recall(t, b)
	if got := memory(b); got != want {
		t.Errorf("the actuator that recalled remembers\n%s\nwant\n%s", got, want)
	}
	e.recall(t, a)
	if got := memory(a); got != want {
		t.Errorf("the first actuator, having recalled its own records, remembers\n%s\nwant\n%s", got, want)
	}
	return n
}

// targetMemory renders a's per-target memory as it stands now: times as
// offsets from t0, the stabilization window without the records older
// than it (commit drops them at the target's next try), targets with
// nothing to remember left out.
func targetMemory(a *Actuator) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Sub(t0).String()
	}
	var lines []string
	for _, target := range slices.Sorted(maps.Keys(a.targets)) {
		ts := a.targets[target]
		var window []string
		for _, r := range ts.recs {
			if now.Sub(r.at) <= a.cfg.ScaleDownStabilization {
				window = append(window, fmt.Sprintf("%s:%d", at(r.at), r.replicas))
			}
		}
		if len(window) == 0 && ts.lastUp.IsZero() && ts.lastChange.IsZero() {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: up %s change %s window [%s]", strings.TrimPrefix(target, "k8s/deployment/payment/"),
			at(ts.lastUp), at(ts.lastChange), strings.Join(window, " ")))
	}
	return strings.Join(lines, "\n")
}

// TestRecallRebuildsBudgets: taints, untaints, zonal shifts and replica
// changes of enforce and dry-run rules go through one actuator as Run
// takes them, some held back by the rate limit, the blast radius and the
// untaint hold-down, and their audit records go to augur.actions on Kafka.
// A fresh actuator that recalled them has the budgets the first one built,
// enforce and dry-run apart: the changes in the rate window (a taint
// deferred by the rate limit and applied later in force included; a dry
// run without an executor left out), the taints in the node window and
// the nodes tainted (untainted ones left out). Recalling again into the
// first actuator changes nothing.
func TestRecallRebuildsBudgets(t *testing.T) {
	e := newRecallEnv(t, "budgets")
	cfg := func(c *Config) {
		e.topics(c)
		c.Rules = map[string]Rule{"dry": {Mode: ModeDryRun}}
		c.RateLimit, c.RateWindow = 3, time.Minute
		c.MaxNodeActions, c.MaxNodeShare, c.NodeWindow = 3, 0.5, time.Hour
		c.UntaintHoldDown = 10 * time.Minute
	}
	a, ex, clk, _ := newTest(t, cfg)
	const cart, search = "k8s/deployment/payment/cart", "k8s/deployment/payment/search"
	ex.replicas[dep], ex.replicas[cart], ex.replicas[search] = 4, 2, 3
	clock := func(at time.Duration) { clk.Advance(t0.Add(at).Sub(clk.Now())) }
	batch := func(want string, ds ...*proto.Decision) { t.Helper(); e.batch(t, a, want, ds...) }
	node := func(kind, name string, mut ...func(*proto.Decision)) *proto.Decision {
		return decision(t, clk.Now(), kind, "k8s/node/"+name, taint(name, "NoSchedule"), mut...)
	}
	const taintN, untaintN = proto.KindTaintNode, proto.KindUntaintNode

	batch("applied, dry_run, applied, applied, refused untaint_hold_down, deferred rate_limit",
		node(taintN, "gpu-1"),
		node(taintN, "gpu-2", rule("dry")),
		decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 5)),
		decision(t, clk.Now(), proto.KindZonalShift, "aws/zonalshift/web", shift("use1-az1", 3600)),
		node(untaintN, "gpu-1"),
		node(taintN, "gpu-3", expiresIn(10*time.Minute)), // in force
	)
	clock(70 * time.Second)
	batch("refused untaint_hold_down, dry_run, applied", // in force: gpu-3 tainted
		node(untaintN, "gpu-2", rule("dry")),
		decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6), rule("dry")),
	)
	clock(11 * time.Minute)
	kube := a.kube
	a.kube = nil // a dry run without an executor changes nothing
	batch("dry_run", node(taintN, "gpu-9", rule("dry")))
	a.kube = kube
	ex.tainted["gpu-2"] = true // by hand, as the dry run would have
	batch("applied, dry_run, applied, refused blast_radius, applied, deferred rate_limit",
		node(untaintN, "gpu-1"),
		node(untaintN, "gpu-2", rule("dry")),
		node(taintN, "gpu-4"),
		node(taintN, "gpu-5"),
		decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)),
		decision(t, clk.Now(), proto.KindScale, cart, scaleTo("payment", "cart", 3)), // in force
	)
	clock(11*time.Minute + 20*time.Second)
	batch("dry_run", decision(t, clk.Now(), proto.KindScale, search, scaleTo("payment", "search", 5), rule("dry")))

	const want = `enforce: changes [11m0s 11m0s 11m0s] taints [0s 1m10s 11m0s] nodes [gpu-3:1m10s gpu-4:11m0s]
dry-run: changes [11m0s 11m20s] taints [0s] nodes []`
	if got := budgetMemory(a); got != want {
		t.Fatalf("the first actuator remembers\n%s\nwant\n%s", got, want)
	}
	e.checkRecalled(t, a, clk, cfg, budgetMemory, want)
}

// budgetMemory renders a's budgets as the guardrails read them now: times
// as offsets from t0, without the changes and taints older than their
// windows (commit drops them at the next change).
func budgetMemory(a *Actuator) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	render := func(name string, b budget) string {
		var changes, taints, nodes []string
		for _, c := range b.changes {
			if now.Sub(c) < a.cfg.RateWindow {
				changes = append(changes, c.Sub(t0).String())
			}
		}
		for _, c := range b.taints {
			if now.Sub(c) <= a.cfg.NodeWindow {
				taints = append(taints, c.Sub(t0).String())
			}
		}
		for _, n := range slices.Sorted(maps.Keys(b.nodes)) {
			if b.nodes[n].tainted {
				nodes = append(nodes, n+":"+b.nodes[n].at.Sub(t0).String())
			}
		}
		return fmt.Sprintf("%s: changes [%s] taints [%s] nodes [%s]", name,
			strings.Join(changes, " "), strings.Join(taints, " "), strings.Join(nodes, " "))
	}
	return render("enforce", a.live) + "\n" + render("dry-run", a.dry)
}

// TestEveryLaterAssignmentRecalls: the first assignment after a Recall
// reads nothing again; every later one recalls what was written since,
// each time (an assignment's own recall does not stand in for the next).
func TestEveryLaterAssignmentRecalls(t *testing.T) {
	e := newRecallEnv(t, "assigned")
	conn := []kgo.Opt{kgo.SeedBrokers(e.seeds...)}
	a, ex, clk, _ := newTest(t, e.topics)
	b, _, clk2, _ := newTest(t, e.topics)
	ex.replicas[dep] = 4
	e.recall(t, b)
	scale := func(to int32) {
		t.Helper()
		e.batch(t, a, "applied", decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", to)))
	}
	lastUp := func() time.Time {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.targets[dep].lastUp
	}
	scale(5)
	b.partitionsAssigned(t.Context(), conn, nil)
	if got := lastUp(); !got.IsZero() {
		t.Fatalf("after the first assignment the last scale-up is at %v, want none: the Recall before it stands for it", got.Sub(t0))
	}
	for _, at := range []time.Duration{2 * time.Minute, 4 * time.Minute} {
		clk.Advance(2 * time.Minute)
		clk2.Advance(2 * time.Minute)
		scale(5 + int32(at/time.Minute))
		b.partitionsAssigned(t.Context(), conn, nil)
		if got := lastUp().Sub(t0); got != at {
			t.Fatalf("after an assignment the last scale-up is at %v, want %v", got, at)
		}
	}
}
