package kube

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
				func(ctx context.Context) error {
					if running.Add(1) != 1 {
						t.Errorf("two leaders at once")
					}
					leader.Store(id)
					<-ctx.Done()
					running.Add(-1)
					return nil
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

// TestLostLeaseEndsTheRun: a replica whose Lease is taken from it returns
// ErrLeadershipLost, only after its run has finished, and never runs again
// in the same call.
func TestLostLeaseEndsTheRun(t *testing.T) {
	c := needCluster(t)
	cs, _ := kubernetes.NewForConfig(c.Config)
	namespace(t, cs, "le-lost")
	var runs, finished atomic.Int32
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- RunLeader(t.Context(), cs, LeaderConfig{Namespace: "le-lost", Name: "augur-actuator", Identity: "a",
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond},
			func(ctx context.Context) error {
				if runs.Add(1) == 1 {
					close(started)
				}
				<-ctx.Done()
				time.Sleep(300 * time.Millisecond) // an audit transaction finishing
				finished.Add(1)
				return nil
			})
	}()
	<-started
	// Another holder takes the Lease: a's renewals fail from now on.
	eventually(t, "the lease is taken over", func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases("le-lost").Get(ctx, "augur-actuator", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		other := "b"
		l.Spec.HolderIdentity = &other
		_, err = cs.CoordinationV1().Leases("le-lost").Update(ctx, l, metav1.UpdateOptions{})
		return err == nil, nil
	})
	select {
	case err := <-res:
		if !errors.Is(err, ErrLeadershipLost) {
			t.Fatalf("RunLeader returned %v, want ErrLeadershipLost", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunLeader did not return after losing the lease")
	}
	if finished.Load() != 1 || runs.Load() != 1 {
		t.Fatalf("%d runs, %d finished when RunLeader returned: want 1 and 1", runs.Load(), finished.Load())
	}
}
