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

// RunLeader blocks until ctx is done, running run only while this replica
// holds the Lease: run's context is cancelled when leadership is lost, and
// the Lease is released when ctx ends so that another replica takes over
// at once. It returns ctx's error.
func RunLeader(ctx context.Context, cs kubernetes.Interface, cfg LeaderConfig, run func(ctx context.Context)) error {
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
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, ReleaseOnCancel: true, Name: cfg.Name,
			LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: run, OnStoppedLeading: func() {}},
		})
		if err != nil {
			return err
		}
		le.Run(ctx) // returns when leadership is lost or ctx is done; then campaign again
	}
	return ctx.Err()
}
