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

// TestRecallKeepsCooldownUp: an actuator scales payment-service up (4 ->
// 6). 30 s later a fresh actuator (a restart, or a replica taking over the
// group) that recalled the audit records gets a decision for 8: it defers
// it by cooldown_up (1m), as the first actuator would have. One that
// forgot the scale-up applied it.
func TestRecallKeepsCooldownUp(t *testing.T) {
	e := newRecallEnv(t, "cooldown")
	a, ex, clk, _ := newTest(t, e.topics)
	ex.replicas[dep] = 4
	e.decide(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
	runUntilActions(t, a, e.group, e.seeds, 1)
	if ex.applies != 1 || ex.replicas[dep] != 6 {
		t.Fatalf("first actuator: %s", fmtWorld(ex))
	}

	b, ex2, clk2, _ := newTest(t, e.topics)
	clk2.Advance(30 * time.Second)
	ex2.replicas[dep] = 6
	e.decide(t, decision(t, clk2.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 8)))
	if n := e.recall(t, b); n != 1 {
		t.Errorf("recalled %d decisions, want 1", n)
	}
	runUntilActions(t, b, e.group, e.seeds, 2)
	got := waitActions(t, e.seeds, e.actions, 2)[1]
	if got.GetOutcome() != proto.OutcomeDeferred || got.GetGuardrail() != GuardCooldownUp {
		t.Errorf("scale-up 30s after one: %s %s (%s), want deferred %s", got.GetOutcome(), got.GetGuardrail(), got.GetError(), GuardCooldownUp)
	}
	if ex2.applies != 0 || ex2.replicas[dep] != 6 {
		t.Errorf("restarted actuator: %s", fmtWorld(ex2))
	}
}

// TestRecallKeepsStabilization: with the down cooldown off, an actuator
// scales payment-service up to 6. A minute later a fresh actuator that
// recalled the audit records gets a decision for 5: it defers it, as a
// decision in the 5-minute window asked for 6. One that forgot it scaled
// down at once.
func TestRecallKeepsStabilization(t *testing.T) {
	e := newRecallEnv(t, "stabilization")
	cfg := func(c *Config) { e.topics(c); c.CooldownDown = 0 }
	a, ex, clk, _ := newTest(t, cfg)
	ex.replicas[dep] = 4
	e.decide(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
	runUntilActions(t, a, e.group, e.seeds, 1)
	if ex.applies != 1 || ex.replicas[dep] != 6 {
		t.Fatalf("first actuator: %s", fmtWorld(ex))
	}

	b, ex2, clk2, _ := newTest(t, cfg)
	clk2.Advance(time.Minute)
	ex2.replicas[dep] = 6
	e.decide(t, decision(t, clk2.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 5)))
	e.recall(t, b)
	runUntilActions(t, b, e.group, e.seeds, 2)
	got := waitActions(t, e.seeds, e.actions, 2)[1]
	if got.GetOutcome() != proto.OutcomeDeferred || got.GetGuardrail() != GuardStabilization {
		t.Errorf("scale-down a minute after a decision for more: %s %s (%s), want deferred %s", got.GetOutcome(), got.GetGuardrail(), got.GetError(), GuardStabilization)
	}
	if ex2.applies != 0 || ex2.replicas[dep] != 6 {
		t.Errorf("restarted actuator: %s", fmtWorld(ex2))
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
	rule := func(r string) func(*proto.Decision) { return func(d *proto.Decision) { d.Rule = r } }
	clock := func(at time.Duration) { clk.Advance(t0.Add(at).Sub(clk.Now())) }
	// batch handles ds as one batch of Run, writes its audit records and
	// checks their outcomes (and guardrails).
	batch := func(want string, ds ...*proto.Decision) {
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
			t.Fatalf("at %v: %s, want %s", clk.Now().Sub(t0), g, want)
		}
	}
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
	b, _, clk2, _ := newTest(t, cfg)
	clk2.Advance(clk.Now().Sub(t0))
	if n := e.recall(t, b); n != admitted {
		t.Errorf("recalled %d decisions, want %d", n, admitted)
	}
	if got := targetMemory(b); got != want {
		t.Errorf("the actuator that recalled remembers\n%s\nwant\n%s", got, want)
	}
	e.recall(t, a)
	if got := targetMemory(a); got != want {
		t.Errorf("the first actuator, having recalled its own records, remembers\n%s\nwant\n%s", got, want)
	}
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
