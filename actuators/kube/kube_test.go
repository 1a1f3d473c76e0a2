package kube

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/proto"
)

func scaleTo(kind, ns, name string, n int32) *proto.Change {
	return &proto.Change{Object: &proto.KubeObject{Kind: kind, Namespace: ns, Name: name}, Replicas: n}
}

func replicas(t *testing.T, cs kubernetes.Interface, ns, name string) int32 {
	t.Helper()
	s, err := cs.AppsV1().Deployments(ns).GetScale(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.Replicas
}

// TestScaleDeployment: the scale subresource moves, an Event names the
// decision, the same desired state again is a no-op, dry-run changes
// nothing.
func TestScaleDeployment(t *testing.T) {
	h := newHarness(t, nil, nil)
	ns := namespace(t, h.cs, "scale")
	deployment(t, h.cs, ns, "web", 2, "10m")

	a := h.decide(t, proto.KindScale, "k8s/deployment/scale/web", scaleTo("Deployment", ns, "web", 3))
	want(t, a, proto.OutcomeApplied, "")
	if got := replicas(t, h.cs, ns, "web"); got != 3 {
		t.Fatalf("replicas %d, want 3", got)
	}
	if a.GetBefore()["replicas"] != "2" || a.GetAfter()["replicas"] != "3" {
		t.Errorf("audit before/after %v %v", a.GetBefore(), a.GetAfter())
	}
	// Events are sent in the background by client-go's broadcaster.
	var ours []corev1.Event
	eventually(t, "the Event of the decision", func(ctx context.Context) (bool, error) {
		evs, err := h.cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "web").String()})
		if err != nil {
			return false, err
		}
		ours = ours[:0]
		for _, ev := range evs.Items {
			if ev.Source.Component == "augur-actuator" {
				ours = append(ours, ev)
			}
		}
		return len(ours) > 0, nil
	})
	if len(ours) != 1 || ours[0].Reason != "AugurApplied" || !strings.Contains(ours[0].Message, a.GetDecisionId()) ||
		ours[0].Annotations["augur.io/decision-id"] != a.GetDecisionId() {
		t.Fatalf("augur events %+v", ours)
	}
	d, _ := h.cs.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	managed := false
	for _, f := range d.ManagedFields {
		managed = managed || f.Manager == "augur"
	}
	if !managed {
		t.Errorf("field manager augur not in managedFields")
	}

	h.clk.Advance(10 * 60e9)
	want(t, h.decide(t, proto.KindScale, "k8s/deployment/scale/web", scaleTo("Deployment", ns, "web", 3)), proto.OutcomeNoop, "")

	dry := newHarness(t, nil, func(c *actuators.Config) { c.Mode = actuators.ModeDryRun })
	want(t, dry.decide(t, proto.KindScale, "k8s/deployment/scale/web", scaleTo("Deployment", ns, "web", 4)), proto.OutcomeDryRun, "")
	if got := replicas(t, h.cs, ns, "web"); got != 3 {
		t.Fatalf("dry run changed replicas to %d", got)
	}
}

// statefulSet creates StatefulSet ns/name of pause pods with replicas.
func statefulSet(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	_, err := cs.AppsV1().StatefulSets(ns).Create(t.Context(), &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.k8s.io/pause:3.10"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatefulSetNeedsOptIn: refused without the rule's opt-in, scaled with it.
func TestStatefulSetNeedsOptIn(t *testing.T) {
	h := newHarness(t, nil, nil)
	ns := namespace(t, h.cs, "sts")
	statefulSet(t, h.cs, ns, "db", 2)
	want(t, h.decide(t, proto.KindScale, "k8s/statefulset/sts/db", scaleTo("StatefulSet", ns, "db", 3)), proto.OutcomeRefused, actuators.GuardStatefulSet)
	opted := newHarness(t, nil, func(c *actuators.Config) { c.Rules = map[string]actuators.Rule{"test-rule": {AllowStatefulSets: true}} })
	want(t, opted.decide(t, proto.KindScale, "k8s/statefulset/sts/db", scaleTo("StatefulSet", ns, "db", 3)), proto.OutcomeApplied, "")
	s, err := h.cs.AppsV1().StatefulSets(ns).GetScale(t.Context(), "db", metav1.GetOptions{})
	if err != nil || s.Spec.Replicas != 3 {
		t.Fatalf("statefulset replicas %v %v", s, err)
	}
}

// TestHPAOwnedWorkload: augur raises the HPA's minimum instead of scaling
// the Deployment, and the real HPA controller then scales it.
func TestHPAOwnedWorkload(t *testing.T) {
	h := newHarness(t, nil, nil)
	ns := namespace(t, h.cs, "hpa")
	deployment(t, h.cs, ns, "api", 2, "10m")
	minR, target := int32(2), int32(80)
	_, err := h.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Create(t.Context(), &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"},
			MinReplicas:    &minR, MaxReplicas: 10, TargetCPUUtilizationPercentage: &target,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := h.decide(t, proto.KindScale, "k8s/deployment/hpa/api", scaleTo("Deployment", ns, "api", 3))
	want(t, a, proto.OutcomeApplied, "")
	hpa, err := h.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Get(t.Context(), "api", metav1.GetOptions{})
	if err != nil || *hpa.Spec.MinReplicas != 3 {
		t.Fatalf("HPA min %v, err %v", hpa.Spec.MinReplicas, err)
	}
	if a.GetAfter()["min_replicas"] != "3" {
		t.Errorf("audit after %v", a.GetAfter())
	}
	// The HPA controller (kube-controller-manager) does the scaling.
	eventually(t, "the HPA controller to scale api to 3", func(ctx context.Context) (bool, error) {
		s, err := h.cs.AppsV1().Deployments(ns).GetScale(ctx, "api", metav1.GetOptions{})
		return err == nil && s.Spec.Replicas == 3, err
	})
	// A max above the HPA's maximum is refused, not clamped.
	h.clk.Advance(10 * 60e9)
	want(t, h.decide(t, proto.KindSetHPAMin, "k8s/hpa/hpa/api", scaleTo("HorizontalPodAutoscaler", ns, "api", 4)), proto.OutcomeApplied, "")
	h.clk.Advance(10 * 60e9)
	// The HPA controller writes the object too: retry on conflict.
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		_, err := h.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Update(t.Context(), mustGetHPA(t, h.cs, ns, "api", 5), metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want(t, h.decide(t, proto.KindSetHPAMin, "k8s/hpa/hpa/api", scaleTo("HorizontalPodAutoscaler", ns, "api", 6)), proto.OutcomeRefused, actuators.GuardMaxReplicas)

	// Apply reads what it needs from the observation's fields, never back
	// from its audit map: without the map the change still goes through.
	d := &proto.Decision{Kind: proto.KindScale, Target: "k8s/deployment/hpa/api", Desired: scaleTo("Deployment", ns, "api", 5)}
	obs, err := h.ex.Observe(t.Context(), d)
	if err != nil || obs.Kind != "HorizontalPodAutoscaler" || obs.Name != "api" || obs.MaxReplicas != 5 {
		t.Fatalf("observation %+v, %v", obs, err)
	}
	obs.Before = nil
	if _, err := h.ex.Apply(t.Context(), d, obs, false); err != nil {
		t.Fatalf("apply without the audit map: %v", err)
	}
	if got := *mustGetHPA(t, h.cs, ns, "api", 5).Spec.MinReplicas; got != 5 {
		t.Fatalf("HPA min %d, want 5", got)
	}
}

func mustGetHPA(t *testing.T, cs kubernetes.Interface, ns, name string, maxR int32) *autoscalingv1.HorizontalPodAutoscaler {
	t.Helper()
	h, err := cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.Spec.MaxReplicas = maxR
	return h
}

// fakeNode creates a kwok-managed node with cpu cores.
func fakeNode(t *testing.T, cs kubernetes.Interface, name, cpu string, taints ...corev1.Taint) {
	t.Helper()
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")}
	_, err := cs.CoreV1().Nodes().Create(t.Context(), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": name}},
		Spec:   corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Nodes are cluster-wide: remove each after its test so that later
	// tests schedule only where they expect.
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	eventually(t, "node "+name+" ready", func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

var gpuTaint = &proto.Taint{Key: "augur.io/gpu-unhealthy", Value: "xid_79", Effect: "NoSchedule"}

// conflictOnce makes the first write of the wrapped client whose path
// contains path lose a race: just before it, other runs (another writer
// changes the object). A write is a request with one of methods, PUT (an
// update) when methods is empty.
type conflictOnce struct {
	rt      http.RoundTripper
	path    string
	methods []string
	fired   atomic.Bool
	other   func()
}

func (c *conflictOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	write := r.Method == http.MethodPut
	if len(c.methods) > 0 {
		write = slices.Contains(c.methods, r.Method)
	}
	if write && strings.Contains(r.URL.Path, c.path) && c.fired.CompareAndSwap(false, true) {
		c.other()
	}
	return c.rt.RoundTrip(r)
}

// TestTaintKeepsOtherOwnersTaints: augur's taint is appended under
// conflict retry (a concurrent writer's taint survives), untaint removes
// only augur's, cordon is undone only when augur cordoned.
func TestTaintKeepsOtherOwnersTaints(t *testing.T) {
	c := needCluster(t)
	admin, _ := kubernetes.NewForConfig(c.Config)
	fakeNode(t, admin, "gpu-taint", "8", corev1.Taint{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule})
	cfg := rest.CopyConfig(c.Config)
	race := &conflictOnce{path: "/nodes/", other: func() {
		// kwok writes the node's status too: the other writer retries its
		// own conflicts, as any controller does.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			n, err := admin.CoreV1().Nodes().Get(context.Background(), "gpu-taint", metav1.GetOptions{})
			if err != nil {
				return err
			}
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "ops.example.com/maintenance", Effect: corev1.TaintEffectPreferNoSchedule})
			_, err = admin.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { race.rt = rt; return race })
	h := newHarness(t, cfg, func(c *actuators.Config) { c.UntaintHoldDown = 0 })

	want(t, h.decide(t, proto.KindTaintNode, "k8s/node/gpu-taint", &proto.Change{Node: "gpu-taint", Taint: gpuTaint, Cordon: true}), proto.OutcomeApplied, "")
	n, _ := admin.CoreV1().Nodes().Get(t.Context(), "gpu-taint", metav1.GetOptions{})
	keys := taintKeys(n)
	if !race.fired.Load() || keys != "nvidia.com/gpu,ops.example.com/maintenance,augur.io/gpu-unhealthy" || !n.Spec.Unschedulable {
		t.Fatalf("taints %s unschedulable %v (race fired %v)", keys, n.Spec.Unschedulable, race.fired.Load())
	}
	h.clk.Advance(60e9)
	want(t, h.decide(t, proto.KindTaintNode, "k8s/node/gpu-taint", &proto.Change{Node: "gpu-taint", Taint: gpuTaint, Cordon: true}), proto.OutcomeNoop, "")
	want(t, h.decide(t, proto.KindUntaintNode, "k8s/node/gpu-taint", &proto.Change{Node: "gpu-taint", Taint: gpuTaint}), proto.OutcomeApplied, "")
	n, _ = admin.CoreV1().Nodes().Get(t.Context(), "gpu-taint", metav1.GetOptions{})
	if keys := taintKeys(n); keys != "nvidia.com/gpu,ops.example.com/maintenance" || n.Spec.Unschedulable {
		t.Fatalf("after untaint: taints %s unschedulable %v", keys, n.Spec.Unschedulable)
	}
	// A taint key that is not augur's is never added or removed.
	want(t, h.decide(t, proto.KindUntaintNode, "k8s/node/gpu-taint", &proto.Change{Node: "gpu-taint", Taint: &proto.Taint{Key: "nvidia.com/gpu", Effect: "NoSchedule"}}), proto.OutcomeRefused, actuators.GuardInvalid)
}

// taintKeys lists the node's taint keys in order, leaving out the ones the
// node lifecycle controller manages (node.kubernetes.io/not-ready,
// unschedulable, ...), which come and go on their own.
func taintKeys(n *corev1.Node) string {
	var ks []string
	for _, t := range n.Spec.Taints {
		if !strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			ks = append(ks, t.Key)
		}
	}
	return strings.Join(ks, ",")
}
