package kube

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderConfig names the Lease several actuator replicas for the same
// targets elect a leader with.
type LeaderConfig struct {
	// Namespace and Name of the Lease. Defaults "augur-system" and
	// "augur-actuator" (the RBAC in deploy/kubernetes grants exactly it).
	Namespace, Name string
	// Identity of this replica, unique among them (the pod name).
	Identity string
	// LeaseDuration, RenewDeadline, RetryPeriod: client-go's leader
	// election timings. Defaults 15s, 10s, 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLeadershipLost is returned by RunLeader when this replica lost the
// Lease while ctx was still live. The process should exit and be
// restarted, as kube-scheduler does: campaigning again in the same process
// could start a second run while the first still finishes its work.
var ErrLeadershipLost = errors.New("leader election: lease lost")

// RunLeader campaigns once for the Lease and runs run while this replica
// holds it; run's context is cancelled when leadership is lost or ctx
// ends, and the Lease is released when ctx ends so that another replica
// takes over at once. RunLeader returns only after run has returned: run's
// error when it failed, ErrLeadershipLost when the Lease was lost while
// ctx was live, else nil (ctx ended, or run returned by itself).
func RunLeader(ctx context.Context, cs kubernetes.Interface, cfg LeaderConfig, run func(ctx context.Context) error) error {
	if cfg.Identity == "" {
		return errors.New("leader election: identity is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "augur-system"
	}
	if cfg.Name == "" {
		cfg.Name = "augur-actuator"
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	// client-go starts OnStartedLeading in a goroutine it does not wait
	// for; run is called here instead, so that it has one owner and
	// RunLeader can wait for it.
	leading := make(chan context.Context, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: cfg.Name,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) { leading <- lctx },
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	elected := make(chan struct{})
	go func() { defer close(elected); le.Run(ectx) }()
	lost := false
	select {
	case <-elected:
		// le.Run ended before this replica led, or just after: nothing ran.
		lost = ctx.Err() == nil
	case lctx := <-leading:
		err = run(lctx)
		lost = lctx.Err() != nil && ctx.Err() == nil
		stop() // release the Lease
		<-elected
	}
	switch {
	case err != nil:
		return err
	case lost:
		return ErrLeadershipLost
	}
	return nil
}
