package kube

import (
	"context"
	"net/http"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/augur-ops/augur/proto"
)

// hpaRace is a harness whose first write to an HPA (a PATCH or a PUT)
// is preceded by change, made by another writer to HPA ns/api (min 2,
// max 10, scaling Deployment api) between augur's read and its write.
func hpaRace(t *testing.T, ns string, change func(*autoscalingv1.HorizontalPodAutoscaler)) (*harness, kubernetes.Interface, *conflictOnce) {
	t.Helper()
	c := needCluster(t)
	admin, _ := kubernetes.NewForConfig(c.Config)
	namespace(t, admin, ns)
	deployment(t, admin, ns, "api", 2, "1m")
	minR := int32(2)
	_, err := admin.AutoscalingV1().HorizontalPodAutoscalers(ns).Create(t.Context(), &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "api"},
			MinReplicas:    &minR, MaxReplicas: 10,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := func() {
		// The HPA controller writes the object's status too: the other
		// writer retries its own conflicts.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			h, err := admin.AutoscalingV1().HorizontalPodAutoscalers(ns).Get(context.Background(), "api", metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(h)
			_, err = admin.AutoscalingV1().HorizontalPodAutoscalers(ns).Update(context.Background(), h, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
	// augur may write the HPA with a patch or an update.
	race := &conflictOnce{path: "/horizontalpodautoscalers/", methods: []string{http.MethodPatch, http.MethodPut}, other: other}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { race.rt = rt; return race })
	return newHarness(t, cfg, nil), admin, race
}

// TestHPAMinRaceKeepsConcurrentChange: the guardrails and the step of a
// set_hpa_min were computed from the observed minReplicas. When another
// writer raises the minimum between augur's read and its write, augur's
// write conflicts and the other writer's minimum is kept, not overwritten
// with a value computed from the old one; the decision stays in force and
// is tried again from a new observation.
func TestHPAMinRaceKeepsConcurrentChange(t *testing.T) {
	h, admin, race := hpaRace(t, "hpa-race-min", func(hpa *autoscalingv1.HorizontalPodAutoscaler) {
		hpa.Spec.MinReplicas = new(int32)
		*hpa.Spec.MinReplicas = 7
	})
	a := h.decide(t, proto.KindSetHPAMin, "k8s/hpa/hpa-race-min/api", scaleTo("HorizontalPodAutoscaler", "hpa-race-min", "api", 3))
	if !race.fired.Load() {
		t.Fatal("race did not fire")
	}
	if got := *mustGetHPA(t, admin, "hpa-race-min", "api", 10).Spec.MinReplicas; got != 7 || a.GetOutcome() != proto.OutcomeFailed {
		t.Fatalf("HPA min %d after outcome %s (%s), want the concurrent 7 kept and outcome failed", got, a.GetOutcome(), a.GetError())
	}
}

// TestHPAMinRaceRetriesUnrelatedChange: a concurrent write that leaves
// minReplicas, maxReplicas and the scale target as observed (here a label)
// makes augur's write conflict too; it is retried on the fresh object, and
// both changes are kept.
func TestHPAMinRaceRetriesUnrelatedChange(t *testing.T) {
	h, admin, race := hpaRace(t, "hpa-race-label", func(hpa *autoscalingv1.HorizontalPodAutoscaler) {
		if hpa.Labels == nil {
			hpa.Labels = map[string]string{}
		}
		hpa.Labels["team"] = "payments"
	})
	want(t, h.decide(t, proto.KindSetHPAMin, "k8s/hpa/hpa-race-label/api", scaleTo("HorizontalPodAutoscaler", "hpa-race-label", "api", 3)), proto.OutcomeApplied, "")
	if !race.fired.Load() {
		t.Fatal("race did not fire")
	}
	hpa := mustGetHPA(t, admin, "hpa-race-label", "api", 10)
	if got := *hpa.Spec.MinReplicas; got != 3 || hpa.Labels["team"] != "payments" {
		t.Fatalf("HPA min %d labels %v, want 3 and the concurrent label kept", got, hpa.Labels)
	}
}
