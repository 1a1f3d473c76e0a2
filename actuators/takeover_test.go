package actuators

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
)

// crashChildEnv makes the test binary run crashChild instead of the tests:
// an actuator process that TestTakeoverAfterCrash kills.
const crashChildEnv = "AUGUR_ACT_CRASH_CHILD"

// blockingExec is fakeExec whose Apply announces itself on stdout and never
// returns: the decision stays in flight until the process is killed.
type blockingExec struct{ *fakeExec }

func (b blockingExec) Apply(context.Context, *proto.Decision, Observation, bool) (map[string]string, error) {
	fmt.Println("applying")
	select {}
}

// crashChild runs one transactional actuator in the group named by the
// environment and never returns on its own.
func crashChild() int {
	cfg := DefaultConfig()
	cfg.DecisionKeys = [][]byte{testKey}
	cfg.Mode = ModeEnforce
	cfg.Now = func() time.Time { return t0 }
	cfg.DecisionsTopic, cfg.ActionsTopic = os.Getenv("AUGUR_TEST_DECISIONS"), os.Getenv("AUGUR_TEST_ACTIONS")
	ex := blockingExec{newFakeExec()}
	ex.replicas[dep] = 4
	a, err := New(cfg, nil, ex, ex, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sess, err := kgo.NewGroupTransactSession(append(TransactionalOptions(cfg, os.Getenv("AUGUR_TEST_GROUP"), "augur-act-crashed"),
		kgo.SeedBrokers(strings.Split(os.Getenv("AUGUR_TEST_SEEDS"), ",")...))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := a.RunSession(context.Background(), sess); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return 1
}

// TestTakeoverAfterCrash kills an actuator process (SIGKILL: no leave, no
// commit) while it is applying a decision; another replica in the group
// must take the partitions over and handle the decision within
// waitActions' 30 s. With franz-go's default 45 s session timeout the dead
// member kept its partitions for 45 s (bench/RESULTS-reliability.md).
func TestTakeoverAfterCrash(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	decTopic, actTopic, group := "augur.decisions.crash."+suffix, "augur.actions.crash."+suffix, "augur-act-crash-"+suffix
	seeds := brokers(t, decTopic, actTopic)
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(decTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	d := decision(t, t0, proto.KindScale, dep, scaleTo("payment", "payment-service", 6))
	if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: encode(t, d)}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), crashChildEnv+"=1", "AUGUR_TEST_SEEDS="+strings.Join(seeds, ","),
		"AUGUR_TEST_DECISIONS="+decTopic, "AUGUR_TEST_ACTIONS="+actTopic, "AUGUR_TEST_GROUP="+group)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	applying := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "applying" {
				applying <- true
				return
			}
		}
		applying <- false
	}()
	select {
	case ok := <-applying:
		if !ok {
			_ = child.Process.Kill()
			_ = child.Wait()
			t.Fatal("the actuator process ended before applying the decision")
		}
	case <-time.After(60 * time.Second):
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatal("the actuator process did not apply the decision within 60 s")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed := time.Now()

	b, ex, _, _ := newTest(t, func(c *Config) { c.DecisionsTopic, c.ActionsTopic = decTopic, actTopic })
	ex.replicas[dep] = 4
	sess, err := kgo.NewGroupTransactSession(append(TransactionalOptions(b.cfg, group, "augur-act-standby"), kgo.SeedBrokers(seeds...))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.RunSession(ctx, sess) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunSession: %v", err)
		}
		sess.Close()
	})
	got := waitActions(t, seeds, actTopic, 1)
	t.Logf("the other replica audited the decision %.1f s after the kill", time.Since(killed).Seconds())
	if got[0].GetDecisionId() != d.GetId() || got[0].GetOutcome() != proto.OutcomeApplied {
		t.Fatalf("audit record %s %s, want %s applied", got[0].GetDecisionId(), got[0].GetOutcome(), d.GetId())
	}
	if ex.applies != 1 {
		t.Fatalf("the other replica applied %d changes, want 1", ex.applies)
	}
}

// TestPartitionsGivenRecall: two replicas share the consumer group without
// leader election. The second joins first, recalls (nothing yet) and runs;
// the first joins and is given a partition, applies a scale-up of a
// target whose decisions go there and leaves the group. The second, given
// that partition while it runs, recalls the first's audit records before
// it reads it: a scale-up of the same target 20 s later is deferred by
// cooldown_up, where before it was applied (the second knew only what it
// did itself).
func TestPartitionsGivenRecall(t *testing.T) {
	suffix := time.Now().Format("150405.000000")
	decTopic, actTopic, group := "augur.decisions.given."+suffix, "augur.actions.given."+suffix, "augur-act-given-"+suffix
	seeds := brokers(t, decTopic, actTopic)
	conn := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	cfg := func(c *Config) { c.DecisionsTopic, c.ActionsTopic, c.Mode = decTopic, actTopic, ModeEnforce }
	run := func(a *Actuator) (*kgo.Client, func()) {
		t.Helper()
		cl, err := kgo.NewClient(append(append(ClientOptions(a.cfg, group), a.RebalanceOptions(conn)...), conn...)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.RunClient(ctx, cl) }()
		stop := sync.OnceFunc(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("RunClient: %v", err)
			}
			cl.Close() // leaves the group
		})
		t.Cleanup(stop)
		return cl, stop
	}

	second, ex2, clk2, _ := newTest(t, cfg)
	if _, err := second.Recall(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	run(second)
	first, ex, clk, _ := newTest(t, cfg)
	ex.replicas[dep] = 4
	cl, stop := run(first)
	part := givenPartition(t, cl, group, decTopic)

	prod, err := kgo.NewClient(append(conn, kgo.DefaultProduceTopic(decTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(d *proto.Decision) {
		t.Helper()
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Key: []byte(dep), Value: encode(t, d), Partition: part}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(decision(t, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
	if got := waitActions(t, seeds, actTopic, 1); got[0].GetOutcome() != proto.OutcomeApplied {
		t.Fatalf("the first replica's audit record %s %s, want applied", got[0].GetOutcome(), got[0].GetError())
	}
	stop()

	ex2.replicas[dep] = 6 // as the first replica left it
	clk2.Advance(20 * time.Second)
	produce(decision(t, clk2.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 8)))
	got := waitActions(t, seeds, actTopic, 2)
	if got[1].GetOutcome() != proto.OutcomeDeferred || got[1].GetGuardrail() != GuardCooldownUp {
		t.Fatalf("the second replica's audit record %s %s (%s), want deferred %s", got[1].GetOutcome(), got[1].GetGuardrail(), got[1].GetError(), GuardCooldownUp)
	}
	if ex2.replicas[dep] != 6 {
		t.Errorf("replicas %d, want 6", ex2.replicas[dep])
	}
}

// givenPartition waits until the group gives cl's member a partition of
// topic and returns it.
func givenPartition(t *testing.T, cl *kgo.Client, group, topic string) int32 {
	t.Helper()
	adm := kadm.NewClient(cl)
	for range 600 {
		member, _ := cl.GroupMetadata()
		described, err := adm.DescribeGroups(t.Context(), group)
		if err == nil && member != "" {
			for _, m := range described[group].Members {
				c, ok := m.Assigned.AsConsumer()
				if !ok || m.MemberID != member {
					continue
				}
				for _, tp := range c.Topics {
					if tp.Topic == topic && len(tp.Partitions) > 0 {
						return tp.Partitions[0]
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the group gave the member no partition of %s within 60 s", topic)
	return 0
}
