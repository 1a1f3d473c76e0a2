package actuators

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/augur-ops/augur/proto"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	goleak.VerifyTestMain(m)
}

// TestAppliedTwiceChangesNothing shows level-based behaviour: a second
// decision asking for the state that already holds is a no-op.
func TestAppliedTwiceChangesNothing(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.replicas[dep] = 4
	first := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
	if first.GetOutcome() != proto.OutcomeApplied || first.GetBefore()["replicas"] != "4" {
		t.Fatalf("first: %v", first)
	}
	clk.Advance(10 * time.Minute)
	second := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
	if second.GetOutcome() != proto.OutcomeNoop {
		t.Fatalf("second: %v", second)
	}
	if ex.applies != 1 || ex.replicas[dep] != 6 {
		t.Fatalf("applies %d replicas %d, want 1 and 6", ex.applies, ex.replicas[dep])
	}
}

// TestDryRunIsTheDefault shows the default mode sends the change as a dry
// run only, and that a rule cannot loosen the global mode.
func TestDryRunIsTheDefault(t *testing.T) {
	a, ex, clk, _ := newTest(t, func(c *Config) {
		c.Mode = DefaultConfig().Mode
		c.Rules = map[string]Rule{"test-rule": {Mode: ModeEnforce}}
	})
	ex.replicas[dep] = 4
	got := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
	if got.GetOutcome() != proto.OutcomeDryRun || got.GetMode() != string(ModeDryRun) {
		t.Fatalf("got %v", got)
	}
	if ex.applies != 0 || ex.dryRuns != 1 || ex.replicas[dep] != 4 {
		t.Fatalf("applies %d dry runs %d replicas %d", ex.applies, ex.dryRuns, ex.replicas[dep])
	}
}

// TestEventsOnlyForVerifiedDecisions shows a spoofed decision leaves no
// trace on the object while a verified refusal does.
func TestEventsOnlyForVerifiedDecisions(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.replicas[dep] = 4
	spoof := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
	spoof.Signature = strings.Repeat("00", 32)
	a.Handle(t.Context(), encode(t, spoof))
	big := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6000))
	a.Handle(t.Context(), encode(t, big))
	if len(ex.events) != 1 || ex.events[0] != big.GetId()+":"+proto.OutcomeRefused {
		t.Fatalf("events %v", ex.events)
	}
	// The spoofed id is not remembered: the genuine decision with that id
	// still goes through.
	genuine := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6), func(d *proto.Decision) { d.Id = spoof.GetId() })
	if got := a.Handle(t.Context(), encode(t, genuine)); got.GetOutcome() != proto.OutcomeApplied {
		t.Fatalf("genuine decision after spoof: %v", got)
	}
}

// TestExecutorFailureIsAudited shows an API error becomes outcome failed
// with the error.
func TestExecutorFailureIsAudited(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.err = errors.New("connection refused")
	got := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
	if got.GetOutcome() != proto.OutcomeFailed || !strings.Contains(got.GetError(), "connection refused") {
		t.Fatalf("got %v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.DecisionKeys = [][]byte{testKey}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a key: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*Config)
	}{
		{"no key", func(c *Config) { c.DecisionKeys = nil }},
		{"short key", func(c *Config) { c.DecisionKeys = [][]byte{[]byte("short")} }},
		{"bad mode", func(c *Config) { c.Mode = "yolo" }},
		{"bad rule mode", func(c *Config) { c.Rules = map[string]Rule{"r": {Mode: "on"}} }},
		{"one healthy zone", func(c *Config) { c.MinHealthyZones = 1 }},
		{"no step", func(c *Config) { c.MaxStep = 0 }},
		{"bounds", func(c *Config) { c.MinReplicas, c.MaxReplicas = 5, 2 }},
		{"share", func(c *Config) { c.MaxNodeShare = 2 }},
		{"no clock", func(c *Config) { c.Now = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mut(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
}

// brokers returns the seed brokers: AUGUR_KAFKA_BROKERS when set, else a
// kfake cluster.
func brokers(t *testing.T, topics ...string) []string {
	t.Helper()
	if b := os.Getenv("AUGUR_KAFKA_BROKERS"); b != "" {
		seeds := strings.Split(b, ",")
		// A real broker does not create topics on first use.
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopics(t.Context(), 3, 1, nil, topics...); err != nil {
			t.Fatal(err)
		}
		return seeds
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// TestRunAuditsEveryDecision runs the consumer end to end on Kafka: every
// decision (good, spoofed, expired, replayed, refused) yields exactly one
// audit record, and offsets are committed only after the records exist, so
// a second actuator in the same group sees nothing again.
func TestRunAuditsEveryDecision(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	decTopic, actTopic, group := "augur.decisions.test."+suffix, "augur.actions.test."+suffix, "augur-act-test-"+suffix
	seeds := brokers(t, decTopic, actTopic)

	a, ex, clk, _ := newTest(t, func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic })
	ex.replicas[dep] = 4
	good := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
	spoof := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 5))
	spoof.Desired.Replicas = 100
	old := decision(t, clk.Now().Add(-time.Hour), proto.KindScale, dep, scaleTo("payment", "payment-service", 5))
	denied := decision(t, clk.Now(), proto.KindScale, "k8s/deployment/kube-system/coredns", scaleTo("kube-system", "coredns", 3))
	values := [][]byte{encode(t, good), encode(t, spoof), encode(t, old), encode(t, good), encode(t, denied)}

	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(decTopic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, v := range values {
		// One key, so the decisions stay in order on one partition.
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	runUntilActions(t, a, group, seeds, len(values))

	got := waitActions(t, seeds, actTopic, len(values))
	want := []struct{ id, outcome, guardrail string }{
		{good.GetId(), proto.OutcomeApplied, ""},
		{spoof.GetId(), proto.OutcomeRefused, GuardSignature},
		{old.GetId(), proto.OutcomeExpired, GuardExpired},
		{good.GetId(), proto.OutcomeDuplicate, GuardDuplicate},
		{denied.GetId(), proto.OutcomeRefused, GuardNamespaceDenied},
	}
	for i, w := range want {
		if got[i].GetDecisionId() != w.id || got[i].GetOutcome() != w.outcome || got[i].GetGuardrail() != w.guardrail {
			t.Errorf("action %d: %s %s %s, want %s %s %s", i, got[i].GetDecisionId()[:8], got[i].GetOutcome(), got[i].GetGuardrail(), w.id[:8], w.outcome, w.guardrail)
		}
	}
	if ex.applies != 1 {
		t.Errorf("applies %d, want 1", ex.applies)
	}

	// A fresh actuator (empty replay memory) in the same group: committed
	// offsets mean it sees nothing, so no new audit records appear. One
	// more decision proves it is consuming.
	b, ex2, _, _ := newTest(t, func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic })
	ex2.replicas[dep] = 6
	values = append(values, encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
	if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: values[len(values)-1]}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	runUntilActions(t, b, group, seeds, len(values))
	got = waitActions(t, seeds, actTopic, len(values))
	if len(got) != len(values) || got[len(got)-1].GetOutcome() != proto.OutcomeNoop {
		t.Fatalf("after restart: %d actions, last %v", len(got), got[len(got)-1])
	}
	if ex2.applies != 0 {
		t.Errorf("restarted actuator applied %d changes", ex2.applies)
	}
}

// runUntilActions runs a in group until its actions topic holds n audit
// records.
func runUntilActions(t *testing.T, a *Actuator, group string, seeds []string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(append(ClientOptions(a.cfg, group), kgo.SeedBrokers(seeds...), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.RunClient(ctx, cl) }()
	waitActions(t, seeds, a.cfg.ActionsTopic, n)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// waitActions reads actTopic from the start until it holds n records (or
// the test times out) and returns them in partition-then-offset order. It
// fails when more than n exist.
func waitActions(t *testing.T, seeds []string, topic string, n int) []*proto.Action {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*proto.Action
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("waited for %d actions, have %d", n, len(out))
		}
		f.EachRecord(func(r *kgo.Record) {
			act, err := proto.UnmarshalAction(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Headers) != 1 || r.Headers[0].Key != RecordHeader || string(r.Headers[0].Value) != RecordDecision {
				t.Fatalf("audit record of decision %s has headers %v, want %s: %s", act.GetDecisionId(), r.Headers, RecordHeader, RecordDecision)
			}
			out = append(out, act)
		})
	}
	// Anything more arriving quickly would be a duplicate audit record.
	short, cancel2 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel2()
	cl.PollFetches(short).EachRecord(func(*kgo.Record) { out = append(out, nil) })
	if len(out) != n {
		t.Fatalf("%d audit records, want exactly %d", len(out), n)
	}
	return out
}

// TestRunSessionExactlyOnce runs the transactional consumer on Kafka: the
// audit records and the offsets commit together, a restarted session in
// the same group sees only new decisions.
func TestRunSessionExactlyOnce(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	decTopic, actTopic, group := "augur.decisions.txn."+suffix, "augur.actions.txn."+suffix, "augur-act-txn-"+suffix
	seeds := brokers(t, decTopic, actTopic)
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(decTopic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	a, ex, clk, _ := newTest(t, func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic })
	ex.replicas[dep] = 4
	send := func(d *proto.Decision) {
		t.Helper()
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: encode(t, d)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	run := func(a *Actuator, n int) {
		t.Helper()
		sess, err := kgo.NewGroupTransactSession(append(TransactionalOptions(a.cfg, group, "augur-act-test-"+suffix), kgo.SeedBrokers(seeds...))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.RunSession(ctx, sess) }()
		waitActions(t, seeds, actTopic, n)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSession: %v", err)
		}
		sess.Close()
	}
	good := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
	send(good)
	send(good)
	run(a, 2)
	b, ex2, _, _ := newTest(t, func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic })
	ex2.replicas[dep] = 6
	send(decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
	run(b, 3)
	got := waitActions(t, seeds, actTopic, 3)
	outcomes := []string{got[0].GetOutcome(), got[1].GetOutcome(), got[2].GetOutcome()}
	if outcomes[0] != proto.OutcomeApplied || outcomes[1] != proto.OutcomeDuplicate || outcomes[2] != proto.OutcomeNoop {
		t.Fatalf("outcomes %v", outcomes)
	}
	if ex.applies != 1 || ex2.applies != 0 {
		t.Fatalf("applies %d and %d", ex.applies, ex2.applies)
	}
}

// TestAbortedRecordIsReplayed: a decision whose audit record was in an
// aborted transaction gets the same record again, not "duplicate".
func TestAbortedRecordIsReplayed(t *testing.T) {
	a, ex, clk, _ := newTest(t, nil)
	ex.replicas[dep] = 4
	v := encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
	first := a.Handle(t.Context(), v)
	a.pending[first.GetDecisionId()] = first // as transact does on abort
	clk.Advance(time.Second)
	again := a.Handle(t.Context(), v)
	if again != first || again.GetOutcome() != proto.OutcomeApplied || ex.applies != 1 {
		t.Fatalf("replayed %v (applies %d)", again, ex.applies)
	}
	// A spoofed copy of the id never gets the record.
	d, _ := proto.UnmarshalDecision(v)
	d.Desired.Replicas = 60
	if got := a.Handle(t.Context(), encode(t, d)); got.GetGuardrail() != GuardSignature {
		t.Fatalf("spoofed copy: %v", got)
	}
}

// TestSignatureRefusalNamesTheKey: a decision signed with another key is
// refused naming the fingerprint of the key the actuator verifies with, the
// one augur stream and augur act log at start, so that the operator sees
// which side holds a different key.
func TestSignatureRefusalNamesTheKey(t *testing.T) {
	a, _, clk, _ := newTest(t, nil)
	d := decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
	other := []byte("fedcba9876543210fedcba9876543210")
	if err := proto.Sign(d, other); err != nil {
		t.Fatal(err)
	}
	got := a.Handle(t.Context(), encode(t, d))
	if got.GetGuardrail() != GuardSignature || !strings.Contains(got.GetError(), "fingerprint "+proto.KeyFingerprint(testKey)) ||
		strings.Contains(got.GetError(), proto.KeyFingerprint(other)) {
		t.Errorf("decision signed with another key: %s %q, want a refusal naming the fingerprint %s", got.GetGuardrail(), got.GetError(), proto.KeyFingerprint(testKey))
	}
}

// TestNoExecutorDryRun shows `augur run` without a cluster: in dry-run a
// decision is recorded with what it asks for; in enforce it is refused.
func TestNoExecutorDryRun(t *testing.T) {
	for _, c := range []struct {
		mode          Mode
		outcome, rule string
	}{
		{ModeDryRun, proto.OutcomeDryRun, ""},
		{ModeEnforce, proto.OutcomeRefused, GuardNoExecutor},
	} {
		clk := &fakeClock{now: t0}
		cfg := DefaultConfig()
		cfg.DecisionKeys = [][]byte{testKey}
		cfg.Mode = c.mode
		cfg.Now = clk.Now
		a, err := New(cfg, nil, nil, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		got := a.Handle(t.Context(), encode(t, decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
		if got.GetOutcome() != c.outcome || got.GetGuardrail() != c.rule {
			t.Errorf("mode %s: %v", c.mode, got)
		}
		if c.mode == ModeDryRun && got.GetAfter()["replicas"] != "6" {
			t.Errorf("dry run records %v, want replicas 6", got.GetAfter())
		}
	}
}
