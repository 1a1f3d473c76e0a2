package actuators

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

// expiresIn sets a decision's expiry to d after its creation.
func expiresIn(d time.Duration) func(*proto.Decision) {
	return func(dec *proto.Decision) { dec.ExpiresAt = timestamppb.New(dec.GetCreatedAt().AsTime().Add(d)) }
}

// reconcileFor advances the clock by RetryInterval steps for span and
// returns every audit record Reconcile wrote meanwhile.
func reconcileFor(t *testing.T, a *Actuator, clk *fakeClock, span time.Duration) []*proto.Action {
	t.Helper()
	var out []*proto.Action
	for end := clk.Now().Add(span); clk.Now().Before(end); {
		clk.Advance(a.cfg.RetryInterval)
		out = append(out, a.Reconcile(t.Context())...)
	}
	return out
}

// TestBoundedStepsReachTheGoal shows a scale-up larger than max_step is
// applied in steps: the first at once, each next one when the up cooldown
// allows, every step audited applied (guardrail max_step while the goal is
// not reached), and nothing left in force once it is.
func TestBoundedStepsReachTheGoal(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.replicas[dep] = 2
	d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10), expiresIn(10*time.Minute))
	first := a.Handle(t.Context(), encode(t, d))
	if first.GetOutcome() != proto.OutcomeApplied || first.GetGuardrail() != GuardMaxStep || first.GetAfter()["goal"] != "10" {
		t.Fatalf("first step: %v", first)
	}
	if ex.replicas[dep] != 3 || a.InForce() != 1 {
		t.Fatalf("after the first step: %d replicas, %d in force", ex.replicas[dep], a.InForce())
	}
	var seen []int32
	for _, act := range reconcileFor(t, a, clk, 5*time.Minute) {
		if act.GetDecisionId() != d.GetId() || act.GetOutcome() != proto.OutcomeApplied {
			t.Fatalf("reconcile record: %v", act)
		}
		seen = append(seen, ex.replicas[dep])
	}
	if ex.replicas[dep] != 10 || a.InForce() != 0 {
		t.Fatalf("after 5 minutes: %d replicas, %d in force; steps %v", ex.replicas[dep], a.InForce(), seen)
	}
	// 3 -> 5 -> 8 -> 10, one step per cooldown_up: three records after
	// the first, the world only ever moved up.
	if ex.applies != 4 {
		t.Errorf("%d applies, want 4 (2 -> 3 -> 5 -> 8 -> 10)", ex.applies)
	}
}

// TestInForceEnds shows the three ways a decision in force ends: it
// expires (audited expired), a newer decision for the target replaces it,
// and dry-run keeps nothing in force.
func TestInForceEnds(t *testing.T) {
	t.Run("expires", func(t *testing.T) {
		a, ex, clk, _ := newTest(t, nil)
		ex.replicas[dep] = 2
		d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10), expiresIn(90*time.Second))
		a.Handle(t.Context(), encode(t, d))
		acts := reconcileFor(t, a, clk, 3*time.Minute)
		last := acts[len(acts)-1]
		if last.GetOutcome() != proto.OutcomeExpired || last.GetDecisionId() != d.GetId() || a.InForce() != 0 {
			t.Fatalf("records %v, %d in force", acts, a.InForce())
		}
		if ex.replicas[dep] != 5 {
			t.Errorf("%d replicas, want 5 (two steps before expiry)", ex.replicas[dep])
		}
	})
	t.Run("replaced", func(t *testing.T) {
		a, ex, clk, _ := newTest(t, nil)
		ex.replicas[dep] = 2
		a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10), expiresIn(10*time.Minute))))
		newer := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 4), expiresIn(10*time.Minute))
		if got := a.Handle(t.Context(), encode(t, newer)); got.GetOutcome() != proto.OutcomeDeferred || got.GetGuardrail() != GuardCooldownUp {
			t.Fatalf("newer decision: %v", got)
		}
		reconcileFor(t, a, clk, 5*time.Minute)
		if ex.replicas[dep] != 4 || a.InForce() != 0 {
			t.Fatalf("%d replicas, %d in force: the newer decision (4) should win", ex.replicas[dep], a.InForce())
		}
	})
	t.Run("dry-run", func(t *testing.T) {
		a, ex, clk, _ := newTest(t, func(c *Config) { c.Mode = ModeDryRun })
		ex.replicas[dep] = 2
		got := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10))))
		if got.GetOutcome() != proto.OutcomeDryRun || got.GetGuardrail() != GuardMaxStep || a.InForce() != 0 {
			t.Fatalf("dry run: %v, %d in force", got, a.InForce())
		}
		if acts := reconcileFor(t, a, clk, 3*time.Minute); len(acts) != 0 || ex.replicas[dep] != 2 {
			t.Fatalf("dry run reconciled %v, replicas %d", acts, ex.replicas[dep])
		}
	})
	t.Run("deferred then applied", func(t *testing.T) {
		a, ex, clk, _ := newTest(t, nil)
		ex.replicas[dep] = 4
		mustOutcome(t, a, encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))), proto.OutcomeApplied)
		clk.Advance(10 * time.Second)
		d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 8))
		mustOutcome(t, a, encode(t, d), proto.OutcomeDeferred)
		acts := reconcileFor(t, a, clk, 2*time.Minute)
		if len(acts) != 1 || acts[0].GetOutcome() != proto.OutcomeApplied || acts[0].GetDecisionId() != d.GetId() || ex.replicas[dep] != 8 {
			t.Fatalf("records %v, replicas %d: want one applied record once the cooldown passed", acts, ex.replicas[dep])
		}
	})
}

// TestAuditRecordHeaders: the record of a decision read from the topic and
// the records of later tries of a decision in force say which they are.
func TestAuditRecordHeaders(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.replicas[dep] = 2
	d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10), expiresIn(10*time.Minute))
	header := func(r *kgo.Record) string {
		for _, h := range r.Headers {
			if h.Key == RecordHeader {
				return string(h.Value)
			}
		}
		return ""
	}
	out, _, err := a.audit(t.Context(), []*kgo.Record{{Key: []byte(dep), Value: encode(t, d)}})
	if err != nil || len(out) != 1 || header(out[0]) != RecordDecision {
		t.Fatalf("the decision's record: %v, %v", out, err)
	}
	clk.Advance(a.cfg.CooldownUp)
	out, acts, err := a.audit(t.Context(), nil)
	if err != nil || len(out) != 1 || header(out[0]) != RecordInForce || acts[0].GetDecisionId() != d.GetId() {
		t.Fatalf("the next step's record: %v, %v, %v", out, acts, err)
	}
}

// TestFailedTryStaysInForce: an API error is not a refusal. A decision
// whose first try fails, or whose next bounded step fails, stays in force
// and is tried again until it reaches its target (one timeout in the middle
// of the steps used to end it there).
func TestFailedTryStaysInForce(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.replicas[dep] = 2
	d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10), expiresIn(10*time.Minute))
	ex.err = errors.New("etcdserver: request timed out")
	if act := a.Handle(t.Context(), encode(t, d)); act.GetOutcome() != proto.OutcomeFailed || !strings.Contains(act.GetError(), "stays in force") || a.InForce() != 1 {
		t.Fatalf("first try: %v, %d in force", act, a.InForce())
	}
	ex.err = nil
	clk.Advance(a.cfg.RetryInterval)
	if acts := a.Reconcile(t.Context()); len(acts) != 1 || acts[0].GetOutcome() != proto.OutcomeApplied || ex.replicas[dep] != 3 {
		t.Fatalf("retry: %v, %d replicas", acts, ex.replicas[dep])
	}
	clk.Advance(time.Minute)
	ex.err = errors.New("etcdserver: request timed out")
	if acts := a.Reconcile(t.Context()); len(acts) != 1 || acts[0].GetOutcome() != proto.OutcomeFailed || a.InForce() != 1 {
		t.Fatalf("a step failing: %v, %d in force", acts, a.InForce())
	}
	ex.err = nil
	reconcileFor(t, a, clk, 5*time.Minute)
	if ex.replicas[dep] != 10 || a.InForce() != 0 {
		t.Fatalf("5 minutes later: %d replicas (goal 10), %d in force", ex.replicas[dep], a.InForce())
	}
}

// cancellingExec cancels the actuator's context during its first Apply, as
// a SIGTERM or a lost lease would, and honours the context as client-go
// does.
type cancellingExec struct {
	*fakeExec
	cancel context.CancelFunc
}

func (c *cancellingExec) Observe(ctx context.Context, d *proto.Decision) (Observation, error) {
	if err := ctx.Err(); err != nil {
		return Observation{}, err
	}
	return c.fakeExec.Observe(ctx, d)
}

func (c *cancellingExec) Apply(ctx context.Context, d *proto.Decision, o Observation, dry bool) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer c.cancel()
	return c.fakeExec.Apply(ctx, d, o, dry)
}

// batchLog records what a batch writes and commits it, or aborts it
// while abort holds batches to abort.
type batchLog struct {
	written [][]*kgo.Record
	abort   int
}

func (l *batchLog) PollRecords(context.Context, int) kgo.Fetches { return nil }
func (l *batchLog) AllowRebalance()                              {}
func (l *batchLog) write(_ context.Context, _, out []*kgo.Record) (bool, error) {
	l.written = append(l.written, out)
	if l.abort > 0 {
		l.abort--
		return false, nil
	}
	return true, nil
}

// outcomes returns the outcome (and guardrail) of each record of batch i.
func (l *batchLog) outcomes(t *testing.T, i int) []string {
	t.Helper()
	var out []string
	for _, r := range l.written[i] {
		act, err := proto.UnmarshalAction(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(act.GetOutcome()+" "+act.GetGuardrail(), " "))
	}
	return out
}

// TestAbortedBatchWrittenAgainUnchanged: after an aborted transaction the
// batch is read again and each decision's record is written again as it
// was, once per record as before: a second record with the same id stays a
// duplicate, and a forged copy carrying a genuine decision's id is refused
// without replacing the genuine one's record.
func TestAbortedBatchWrittenAgainUnchanged(t *testing.T) {
	for _, tt := range []struct {
		name string
		copy func(*proto.Decision) []byte
		want []string
	}{
		{"the same record twice", func(d *proto.Decision) []byte { return encode(t, d) },
			[]string{proto.OutcomeApplied, proto.OutcomeDuplicate + " " + GuardDuplicate}},
		{"a forged copy", func(d *proto.Decision) []byte {
			f := gproto.Clone(d).(*proto.Decision)
			f.Desired.Replicas = 60
			return encode(t, f)
		}, []string{proto.OutcomeApplied, proto.OutcomeRefused + " " + GuardSignature}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, ex, clk, _ := newTest(t, nil)
			ex.replicas[dep] = 4
			d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
			recs := []*kgo.Record{{Value: encode(t, d)}, {Value: tt.copy(d)}}
			l := batchLog{abort: 1}
			for range 2 {
				if err := a.writeBatch(t.Context(), &l, recs); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 {
				if got := l.outcomes(t, i); !slices.Equal(got, tt.want) {
					t.Errorf("batch %d (%s): %v, want %v", i, []string{"aborted", "read again"}[i], got, tt.want)
				}
			}
			if ex.replicas[dep] != 6 || ex.applies != 1 {
				t.Errorf("%d replicas after %d applies, want 6 after 1", ex.replicas[dep], ex.applies)
			}
		})
	}
}

// TestCancelFinishesTheBatch: cancelled while the first of two decisions
// is applied, the actuator still applies the second before it writes the
// batch's records and commits its offsets (it failed "context canceled"
// without an API call, and was committed).
func TestCancelFinishesTheBatch(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ce := &cancellingExec{fakeExec: ex, cancel: cancel}
	a.kube, a.arc = ce, ce
	other := "k8s/deployment/payment/other"
	ex.replicas[dep], ex.replicas[other] = 4, 4
	d1 := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 5))
	d2 := decision(t, clk.Now(), proto.KindScale, other, scaleTo("payment", "other", 5))
	var l batchLog
	if err := a.writeBatch(ctx, &l, []*kgo.Record{{Value: encode(t, d1)}, {Value: encode(t, d2)}}); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Fatal("the context was not cancelled during the batch")
	}
	if got := l.outcomes(t, 0); !slices.Equal(got, []string{proto.OutcomeApplied, proto.OutcomeApplied}) {
		t.Errorf("audit records %v, want two applied", got)
	}
	if ex.replicas[dep] != 5 || ex.replicas[other] != 5 {
		t.Errorf("replicas %d and %d, want 5 and 5", ex.replicas[dep], ex.replicas[other])
	}
}

// TestPartitionsGoneForgetInForce: when a second replica joins the group
// and takes partitions away, the first forgets its decisions in force
// (another replica reads their decisions now) instead of stepping a target
// on its timer under cooldowns only it knows.
func TestPartitionsGoneForgetInForce(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	decTopic, actTopic, group := "augur.decisions.gone."+suffix, "augur.actions.gone."+suffix, "augur-act-gone-"+suffix
	seeds := brokers(t, decTopic, actTopic)
	a, ex, clk, _ := newTest(t, func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic })
	ex.replicas[dep] = 2
	d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 10), expiresIn(10*time.Minute))
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(decTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: encode(t, d)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	opts := append(ClientOptions(a.cfg, group), kgo.SeedBrokers(seeds...))
	cl, err := kgo.NewClient(append(opts, a.RebalanceOptions([]kgo.Opt{kgo.SeedBrokers(seeds...)})...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.RunClient(ctx, cl) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for range 600 {
			if ok() {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("not within 60 s: %s (%d in force, %d replicas)", what, a.InForce(), ex.replicas[dep])
	}
	waitFor("the decision in force after its first step", func() bool { return a.InForce() == 1 })
	// A second replica joins: the group's cooperative rebalance moves
	// partitions to it.
	other, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			other.PollRecords(pctx, 10)
			pcancel()
			other.AllowRebalance()
		}
	}()
	waitFor("the decision in force forgotten", func() bool { return a.InForce() == 0 })
}
