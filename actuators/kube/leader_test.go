package kube

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// TestLeaderElection: of two replicas only one runs; when it stops, the
// other takes over through the Lease.
func TestLeaderElection(t *testing.T) {
	c := needCluster(t)
	cs, _ := kubernetes.NewForConfig(c.Config)
	namespace(t, cs, "le")
	var running atomic.Int32
	var leader atomic.Value
	start := func(id string) (context.CancelFunc, chan struct{}) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = RunLeader(ctx, cs, LeaderConfig{Namespace: "le", Name: "augur-actuator", Identity: id,
				LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond},
				func(ctx context.Context) {
					if running.Add(1) != 1 {
						t.Errorf("two leaders at once")
					}
					leader.Store(id)
					<-ctx.Done()
					running.Add(-1)
				})
		}()
		return cancel, done
	}
	stopA, doneA := start("a")
	eventually(t, "a leads", func(context.Context) (bool, error) { return leader.Load() == "a", nil })
	stopB, doneB := start("b")
	defer func() { stopB(); <-doneB }()
	stopA()
	<-doneA
	eventually(t, "b takes over", func(context.Context) (bool, error) { return leader.Load() == "b", nil })
}
