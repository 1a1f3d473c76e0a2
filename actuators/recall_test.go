package actuators

import (
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
