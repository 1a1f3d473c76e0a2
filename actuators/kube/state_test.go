package kube

import (
	"context"
	"net/http"
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/proto"
)

func augurTaints(n *corev1.Node) (out []string) {
	for _, t := range n.Spec.Taints {
		if strings.HasPrefix(t.Key, "augur.io/") {
			out = append(out, t.ToString())
		}
	}
	return out
}

func taintedGauge(t *testing.T, h *harness) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "augur_actuator_tainted_nodes" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("augur_actuator_tainted_nodes not registered")
	return 0
}

// TestCordonWhenTaintPresent: a taint_node with cordon on a node that
// already carries the taint but is not cordoned (someone uncordoned it)
// cordons it; it must not append the taint a second time, which the API
// server rejects (taints must be unique by key and effect).
func TestCordonWhenTaintPresent(t *testing.T) {
	// A second node and a share of 1 keep the blast radius out of the way
	// (TestBlastRadiusCountsNodes).
	h := newHarness(t, nil, func(c *actuators.Config) { c.MaxNodeShare = 1 })
	fakeNode(t, h.cs, "rev-cordon", "8", corev1.Taint{Key: gpuTaint.Key, Value: gpuTaint.Value, Effect: corev1.TaintEffectNoSchedule})
	fakeNode(t, h.cs, "rev-cordon-2", "8")
	want(t, h.decide(t, proto.KindTaintNode, "k8s/node/rev-cordon", &proto.Change{Node: "rev-cordon", Taint: gpuTaint, Cordon: true}), proto.OutcomeApplied, "")
	n, err := h.cs.CoreV1().Nodes().Get(t.Context(), "rev-cordon", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ts := augurTaints(n); len(ts) != 1 || !n.Spec.Unschedulable {
		t.Fatalf("augur taints %v unschedulable %v", ts, n.Spec.Unschedulable)
	}
}

// TestBlastRadiusCountsNodes: the blast radius limits the nodes tainted by
// augur. A second augur taint on a node augur already tainted (a GPU
// fault NoSchedule on a straggler's PreferNoSchedule node) adds no node.
func TestBlastRadiusCountsNodes(t *testing.T) {
	h := newHarness(t, nil, func(c *actuators.Config) { c.MaxNodeShare = 1 })
	straggler := corev1.Taint{Key: gpuTaint.Key, Value: "straggler", Effect: corev1.TaintEffectPreferNoSchedule}
	fakeNode(t, h.cs, "rev-br-a", "8", straggler)
	fakeNode(t, h.cs, "rev-br-b", "8", straggler)
	want(t, h.decide(t, proto.KindTaintNode, "k8s/node/rev-br-a", &proto.Change{Node: "rev-br-a", Taint: gpuTaint}), proto.OutcomeApplied, "")
	if g := taintedGauge(t, h); g != 2 {
		t.Fatalf("augur_actuator_tainted_nodes = %v, want 2", g)
	}
}

// TestUntaintGauge: after one of two augur-tainted nodes is untainted,
// the gauge says one node is tainted.
func TestUntaintGauge(t *testing.T) {
	h := newHarness(t, nil, nil)
	taint := corev1.Taint{Key: gpuTaint.Key, Value: gpuTaint.Value, Effect: corev1.TaintEffectNoSchedule}
	fakeNode(t, h.cs, "rev-ut-a", "8", taint)
	fakeNode(t, h.cs, "rev-ut-b", "8", taint)
	want(t, h.decide(t, proto.KindUntaintNode, "k8s/node/rev-ut-a", &proto.Change{Node: "rev-ut-a", Taint: gpuTaint}), proto.OutcomeApplied, "")
	if g := taintedGauge(t, h); g != 1 {
		t.Fatalf("augur_actuator_tainted_nodes = %v after untainting one of two nodes, want 1", g)
	}
}

// TestHPAOfStatefulSetNeedsOptIn: raising the minimum of an HPA that
// scales a StatefulSet scales the StatefulSet: it needs the rule's opt-in.
func TestHPAOfStatefulSetNeedsOptIn(t *testing.T) {
	h := newHarness(t, nil, nil)
	ns := namespace(t, h.cs, "rev-hpa-sts")
	statefulSet(t, h.cs, ns, "db", 2)
	minR := int32(2)
	_, err := h.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Create(t.Context(), &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db"},
			MinReplicas:    &minR, MaxReplicas: 10,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want(t, h.decide(t, proto.KindSetHPAMin, "k8s/hpa/rev-hpa-sts/db", scaleTo("HorizontalPodAutoscaler", ns, "db", 3)), proto.OutcomeRefused, actuators.GuardStatefulSet)
	if got := *mustGetHPA(t, h.cs, ns, "db", 10).Spec.MinReplicas; got != 2 {
		t.Fatalf("HPA min %d, want 2", got)
	}
}

// TestScaleRaceKeepsConcurrentChange: the guardrails and the bounded step
// were computed from the observed replicas. When another writer changes
// the replicas before augur's write (the update conflicts), augur must not
// overwrite them with a step computed from the old value: here a step up
// from 10 to 15 would scale the workload a user just set to 40 down to 15,
// past max_step, cooldown_down and the stabilization window.
func TestScaleRaceKeepsConcurrentChange(t *testing.T) {
	c := needCluster(t)
	admin, _ := kubernetes.NewForConfig(c.Config)
	ns := namespace(t, admin, "rev-race")
	deployment(t, admin, ns, "web", 10, "1m")
	cfg := rest.CopyConfig(c.Config)
	race := &conflictOnce{path: "/scale", other: func() {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := admin.AppsV1().Deployments(ns).GetScale(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Spec.Replicas = 40
			_, err = admin.AppsV1().Deployments(ns).UpdateScale(context.Background(), "web", s, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { race.rt = rt; return race })
	h := newHarness(t, cfg, nil)
	a := h.decide(t, proto.KindScale, "k8s/deployment/rev-race/web", scaleTo("Deployment", ns, "web", 100))
	if !race.fired.Load() {
		t.Fatal("race did not fire")
	}
	if got := replicas(t, admin, ns, "web"); got != 40 || a.GetOutcome() == proto.OutcomeApplied {
		t.Fatalf("replicas %d after outcome %s (%s), want the concurrent 40 kept", got, a.GetOutcome(), a.GetError())
	}
}
