package kube

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/internal/kubetest"
	"github.com/augur-ops/augur/proto"
)

// manifest returns the path of a file in deploy/kubernetes.
func manifest(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "kubernetes", name)
}

// actuatorIdentity applies the RBAC manifests of deploy/kubernetes and
// returns a client config acting as the actuator's ServiceAccount.
func actuatorIdentity(t *testing.T, c *kubetest.Cluster, admin kubernetes.Interface) *rest.Config {
	t.Helper()
	if _, err := admin.CoreV1().Namespaces().Get(t.Context(), "payment", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		namespace(t, admin, "payment")
	}
	for _, f := range []string{"actuator-rbac.yaml", "actuator-rbac-workload.yaml", "capacity-placeholder.yaml"} {
		if err := c.ApplyFile(t.Context(), manifest(f)); err != nil {
			t.Fatal(err)
		}
	}
	return c.Impersonate("system:serviceaccount:augur-system:augur-actuator",
		"system:serviceaccounts", "system:serviceaccounts:augur-system", "system:authenticated")
}

func podsOf(ctx context.Context, cs kubernetes.Interface, ns, app string) ([]corev1.Pod, error) {
	l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: app})
	if err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live, nil
}

// TestPlaceholderIsPreempted: reserve_capacity sizes the placeholder (as
// the least-privilege identity); its pods run on a node; real pods preempt
// them and the displaced placeholders go Pending.
func TestPlaceholderIsPreempted(t *testing.T) {
	c := needCluster(t)
	admin, _ := kubernetes.NewForConfig(c.Config)
	sa := actuatorIdentity(t, c, admin)
	fakeNode(t, admin, "cap-1", "4")
	h := newHarness(t, sa, nil)

	// From zero the step guardrail allows one replica per step: a
	// decision for 3 applies the first, later ones the rest.
	const target = "k8s/deployment/augur-system/augur-capacity-placeholder"
	want(t, h.decide(t, proto.KindReserveCapacity, target, &proto.Change{Replicas: 3}), proto.OutcomeApplied, actuators.GuardMaxStep)
	for n := int32(2); n <= 3; n++ {
		h.clk.Advance(2 * 60e9)
		want(t, h.decide(t, proto.KindReserveCapacity, target, &proto.Change{Replicas: n}), proto.OutcomeApplied, "")
	}
	const sel = "app.kubernetes.io/name=augur-capacity-placeholder"
	eventually(t, "3 placeholder pods running on cap-1", func(ctx context.Context) (bool, error) {
		ps, err := podsOf(ctx, admin, "augur-system", sel)
		running := 0
		for _, p := range ps {
			if p.Spec.NodeName == "cap-1" && p.Status.Phase == corev1.PodRunning && p.Spec.Priority != nil && *p.Spec.Priority == -10 {
				running++
			}
		}
		return running == 3, err
	})

	ns := namespace(t, admin, "preempt")
	deployment(t, admin, ns, "burst", 2, "1")
	eventually(t, "real pods running and displaced placeholders pending", func(ctx context.Context) (bool, error) {
		real, err := podsOf(ctx, admin, ns, "app=burst")
		if err != nil {
			return false, err
		}
		for _, p := range real {
			if p.Spec.NodeName != "cap-1" || p.Status.Phase != corev1.PodRunning {
				return false, nil
			}
		}
		ph, err := podsOf(ctx, admin, "augur-system", sel)
		pending := 0
		for _, p := range ph {
			if p.Spec.NodeName == "" && p.Status.Phase == corev1.PodPending {
				pending++
			}
		}
		return len(real) == 2 && pending >= 1, err
	})
	// The scheduler says why: its Preempted events on placeholder pods.
	eventually(t, "Preempted events on placeholder pods", func(ctx context.Context) (bool, error) {
		evs, err := admin.CoreV1().Events("augur-system").List(ctx, metav1.ListOptions{FieldSelector: "reason=Preempted"})
		return err == nil && len(evs.Items) >= 1, err
	})
}

// TestNoExecuteTaintEvicts: a NoExecute taint from augur makes the
// taint-eviction controller evict the node's pods.
func TestNoExecuteTaintEvicts(t *testing.T) {
	h := newHarness(t, nil, nil)
	fakeNode(t, h.cs, "gpu-evict", "8")
	ns := namespace(t, h.cs, "evict")
	_, err := h.cs.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "trainer", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "gpu-evict", TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{Name: "t", Image: "registry.k8s.io/pause:3.10"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "trainer running", func(ctx context.Context) (bool, error) {
		p, err := h.cs.CoreV1().Pods(ns).Get(ctx, "trainer", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	evict := &proto.Taint{Key: "augur.io/gpu-unhealthy", Value: "xid_79", Effect: "NoExecute"}
	want(t, h.decide(t, proto.KindTaintNode, "k8s/node/gpu-evict", &proto.Change{Node: "gpu-evict", Taint: evict}), proto.OutcomeApplied, "")
	eventually(t, "trainer evicted", func(ctx context.Context) (bool, error) {
		p, err := h.cs.CoreV1().Pods(ns).Get(ctx, "trainer", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && p.DeletionTimestamp != nil, err
	})
	h.clk.Advance(3600e9)
	want(t, h.decide(t, proto.KindUntaintNode, "k8s/node/gpu-evict", &proto.Change{Node: "gpu-evict", Taint: evict}), proto.OutcomeApplied, "")
}

// TestRBACScope: as the deploy/kubernetes identity the actuator scales the
// workload it is granted and is denied everywhere else, even with the
// namespace deny list emptied: RBAC is a second, independent wall.
func TestRBACScope(t *testing.T) {
	c := needCluster(t)
	admin, _ := kubernetes.NewForConfig(c.Config)
	sa := actuatorIdentity(t, c, admin)
	if _, err := admin.CoreV1().Namespaces().Get(t.Context(), "other", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		namespace(t, admin, "other")
	}
	deployment(t, admin, "payment", "payment-service", 2, "10m")
	deployment(t, admin, "payment", "ledger-worker", 2, "10m")
	deployment(t, admin, "other", "payment-service", 2, "10m")
	deployment(t, admin, "kube-system", "dns", 2, "10m")

	h := newHarness(t, sa, func(cfg *actuators.Config) { cfg.DenyNamespaces = nil })
	want(t, h.decide(t, proto.KindScale, "k8s/deployment/payment/payment-service", scaleTo("Deployment", "payment", "payment-service", 3)), proto.OutcomeApplied, "")
	if got := replicas(t, admin, "payment", "payment-service"); got != 3 {
		t.Fatalf("replicas %d", got)
	}
	for _, tc := range []struct{ ns, name string }{
		{"payment", "ledger-worker"}, // same namespace, not granted
		{"other", "payment-service"}, // another namespace
		{"kube-system", "dns"},       // kube-system
	} {
		a := h.decide(t, proto.KindScale, "k8s/deployment/"+tc.ns+"/"+tc.name, scaleTo("Deployment", tc.ns, tc.name, 3))
		want(t, a, proto.OutcomeRefused, actuators.GuardForbidden)
		if got := replicas(t, admin, tc.ns, tc.name); got != 2 {
			t.Fatalf("%s/%s replicas %d", tc.ns, tc.name, got)
		}
	}
	cs, _ := kubernetes.NewForConfig(sa)
	if err := cs.AppsV1().Deployments("payment").Delete(t.Context(), "payment-service", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete of a managed deployment: %v, want forbidden", err)
	}
	if _, err := cs.CoreV1().Secrets("payment").List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets: %v, want forbidden", err)
	}
	if _, err := cs.CoreV1().Pods("payment").List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list pods: %v, want forbidden", err)
	}
	// The same identity can hold its leader-election Lease.
	ctx, cancel := context.WithCancel(t.Context())
	led := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- RunLeader(ctx, cs, LeaderConfig{Identity: "rbac-test", LeaseDuration: 4e9, RenewDeadline: 3e9, RetryPeriod: 2e8},
			func(context.Context) error { close(led); return nil })
	}()
	select {
	case <-led:
	case err := <-done:
		t.Fatalf("leader election as the actuator identity: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("never became leader as the actuator identity")
	}
	cancel()
	<-done
}
