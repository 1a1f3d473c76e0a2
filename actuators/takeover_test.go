package actuators

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
