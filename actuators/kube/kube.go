// Package kube is the Kubernetes executor of augur's actuators: it scales
// Deployments (and opted-in StatefulSets) through the scale subresource,
// raises an owning HPA's minReplicas instead of fighting it, sizes the
// capacity-reservation placeholder Deployment with server-side apply, and
// taints, cordons and untaints nodes without touching other owners' taints.
//
// Every method reads the current state first (level-based) and sends writes
// with DryRun=All in dry-run mode, so the API server still validates and
// authorizes them. Every verified decision leaves an Event on its object.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/proto"
)

// Config configures the Executor.
type Config struct {
	// FieldManager names augur in managedFields and in server-side apply.
	// Default "augur".
	FieldManager string
	// TaintPrefix is the key prefix of the taints augur owns; augur adds and
	// removes only taints with it and counts nodes carrying one for the
	// blast radius. Default "augur.io/".
	TaintPrefix string
	// NodeSelector selects the nodes the blast-radius share is computed over
	// (for example the GPU nodes), a label selector. Default "" (all nodes).
	NodeSelector string
	// PlaceholderNamespace and PlaceholderName name the capacity-reservation
	// Deployment a reserve_capacity decision sizes when it names no object.
	// Defaults "augur-system" and "augur-capacity-placeholder".
	PlaceholderNamespace string
	PlaceholderName      string
	// PlaceholderPriorityClass is the negative-priority class of the
	// placeholder pods. Default "augur-placeholder".
	PlaceholderPriorityClass string
	// PlaceholderRequests are the requests of one placeholder pod per rule
	// name ("" is the fallback). Default cpu 1, memory 1Gi.
	PlaceholderRequests map[string]corev1.ResourceList
	// PlaceholderImage is the pause image. Default
	// "registry.k8s.io/pause:3.10".
	PlaceholderImage string
	// Now is the clock for taint timestamps. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		FieldManager:             "augur",
		TaintPrefix:              "augur.io/",
		PlaceholderNamespace:     "augur-system",
		PlaceholderName:          "augur-capacity-placeholder",
		PlaceholderPriorityClass: "augur-placeholder",
		PlaceholderRequests: map[string]corev1.ResourceList{"": {
			corev1.ResourceCPU:    resource.MustParse("1"),
			corev1.ResourceMemory: resource.MustParse("1Gi"),
		}},
		PlaceholderImage: "registry.k8s.io/pause:3.10",
		Now:              time.Now,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.FieldManager == "":
		return errors.New("kube executor: field manager is required")
	case c.TaintPrefix == "" || !strings.HasSuffix(c.TaintPrefix, "/"):
		return fmt.Errorf("kube executor: taint prefix %q must end in /", c.TaintPrefix)
	case c.PlaceholderNamespace == "" || c.PlaceholderName == "" || c.PlaceholderPriorityClass == "":
		return errors.New("kube executor: placeholder namespace, name and priority class are required")
	case c.PlaceholderRequests[""] == nil:
		return errors.New("kube executor: fallback placeholder requests (rule \"\") are required")
	case c.Now == nil || c.PlaceholderImage == "":
		return errors.New("kube executor: clock and placeholder image are required")
	}
	return nil
}

// Executor carries out Kubernetes decisions. It implements
// actuators.Executor and actuators.EventRecorder.
type Executor struct {
	cfg         Config
	cs          kubernetes.Interface
	m           *actuators.APIMetrics
	log         *slog.Logger
	broadcaster record.EventBroadcaster
	events      record.EventRecorder
}

// New returns an Executor acting through cs (whose identity needs the RBAC
// in deploy/kubernetes). m may be nil. Close it when done: it owns the
// goroutines that send Events.
func New(cfg Config, cs kubernetes.Interface, m *actuators.APIMetrics, log *slog.Logger) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "augur-actuator"})
	return &Executor{cfg: cfg, cs: cs, m: m, log: log, broadcaster: b, events: rec}, nil
}

// call runs one API request, measuring it.
func (e *Executor) call(op string, f func() error) error {
	start := time.Now()
	err := f()
	e.m.Observe("kubernetes", op, start, err)
	return err
}

// apiErr maps an API error: Forbidden refuses (the RBAC scope is a
// guardrail too), NotFound wraps actuators.ErrNotFound.
func apiErr(op string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return actuators.Refuse(actuators.GuardForbidden, "%s: %v", op, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", op, actuators.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (e *Executor) dry(dry bool) []string {
	if dry {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// object returns the decision's object, defaulting the placeholder for
// reserve_capacity.
func (e *Executor) object(d *proto.Decision) (kind, ns, name string) {
	o := d.GetDesired().GetObject()
	kind, ns, name = o.GetKind(), o.GetNamespace(), o.GetName()
	if d.GetKind() == proto.KindReserveCapacity {
		if name == "" {
			ns, name = e.cfg.PlaceholderNamespace, e.cfg.PlaceholderName
		}
		kind = "Deployment"
	}
	if d.GetKind() == proto.KindSetHPAMin {
		kind = "HorizontalPodAutoscaler"
	}
	return kind, ns, name
}

// Observe implements actuators.Executor.
func (e *Executor) Observe(ctx context.Context, d *proto.Decision) (actuators.Observation, error) {
	switch d.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin:
		return e.observeReplicas(ctx, d)
	case proto.KindReserveCapacity:
		return e.observePlaceholder(ctx, d)
	case proto.KindTaintNode, proto.KindUntaintNode:
		return e.observeNode(ctx, d)
	}
	return actuators.Observation{}, fmt.Errorf("kube executor: kind %q not handled", d.GetKind())
}

// Apply implements actuators.Executor.
func (e *Executor) Apply(ctx context.Context, d *proto.Decision, obs actuators.Observation, dry bool) (map[string]string, error) {
	switch d.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin:
		return e.applyReplicas(ctx, d, obs, dry)
	case proto.KindReserveCapacity:
		return e.applyPlaceholder(ctx, d, dry)
	case proto.KindTaintNode, proto.KindUntaintNode:
		return e.applyNode(ctx, d, dry)
	}
	return nil, fmt.Errorf("kube executor: kind %q not handled", d.GetKind())
}

// owningHPA returns the HPA whose scale target is kind/name in ns, or nil.
func (e *Executor) owningHPA(ctx context.Context, kind, ns, name string) (*autoscalingv1.HorizontalPodAutoscaler, error) {
	var list *autoscalingv1.HorizontalPodAutoscalerList
	err := e.call("list_hpa", func() (err error) {
		list, err = e.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).List(ctx, metav1.ListOptions{})
		return err
	})
	if err != nil {
		return nil, apiErr("list horizontal pod autoscalers", err)
	}
	for i := range list.Items {
		ref := list.Items[i].Spec.ScaleTargetRef
		if ref.Kind == kind && ref.Name == name {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

func hpaState(h *autoscalingv1.HorizontalPodAutoscaler) map[string]string {
	return map[string]string{
		"object":           "HorizontalPodAutoscaler/" + h.Namespace + "/" + h.Name,
		"replicas":         strconv.Itoa(int(hpaMin(h))), // the value augur changes
		"min_replicas":     strconv.Itoa(int(hpaMin(h))),
		"max_replicas":     strconv.Itoa(int(h.Spec.MaxReplicas)),
		"current_replicas": strconv.Itoa(int(h.Status.CurrentReplicas)),
	}
}

func hpaMin(h *autoscalingv1.HorizontalPodAutoscaler) int32 {
	if h.Spec.MinReplicas == nil {
		return 1
	}
	return *h.Spec.MinReplicas
}

func (e *Executor) observeReplicas(ctx context.Context, d *proto.Decision) (actuators.Observation, error) {
	kind, ns, name := e.object(d)
	want := d.GetDesired().GetReplicas()
	var h *autoscalingv1.HorizontalPodAutoscaler
	var err error
	if kind == "HorizontalPodAutoscaler" {
		err = e.call("get_hpa", func() (err error) {
			h, err = e.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if err != nil {
			return actuators.Observation{}, apiErr("get horizontal pod autoscaler", err)
		}
	} else {
		if kind != "Deployment" && kind != "StatefulSet" {
			return actuators.Observation{}, actuators.Refuse(actuators.GuardInvalid, "scale of kind %q", kind)
		}
		// Never fight an HPA: when one owns the workload, its minimum is
		// what augur raises.
		if h, err = e.owningHPA(ctx, kind, ns, name); err != nil {
			return actuators.Observation{}, err
		}
	}
	if h != nil {
		cur := hpaMin(h)
		return actuators.Observation{Kind: "HorizontalPodAutoscaler", Namespace: h.Namespace, Name: h.Name,
			Replicas: cur, MaxReplicas: h.Spec.MaxReplicas, ScaleTargetKind: h.Spec.ScaleTargetRef.Kind,
			Holds: cur == want, Before: hpaState(h)}, nil
	}
	s, err := e.getScale(ctx, kind, ns, name)
	if err != nil {
		return actuators.Observation{}, err
	}
	return actuators.Observation{Kind: kind, Namespace: ns, Name: name, Replicas: s.Spec.Replicas, Holds: s.Spec.Replicas == want,
		Before: map[string]string{"object": kind + "/" + ns + "/" + name, "replicas": strconv.Itoa(int(s.Spec.Replicas))}}, nil
}

func (e *Executor) getScale(ctx context.Context, kind, ns, name string) (s *autoscalingv1.Scale, err error) {
	err = e.call("get_scale", func() (err error) {
		if kind == "StatefulSet" {
			s, err = e.cs.AppsV1().StatefulSets(ns).GetScale(ctx, name, metav1.GetOptions{})
		} else {
			s, err = e.cs.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		}
		return err
	})
	if err != nil {
		return nil, apiErr("get scale of "+kind, err)
	}
	return s, nil
}

func (e *Executor) applyReplicas(ctx context.Context, d *proto.Decision, obs actuators.Observation, dry bool) (map[string]string, error) {
	kind, ns, name := e.object(d)
	want := d.GetDesired().GetReplicas()
	if obs.Kind == "HorizontalPodAutoscaler" {
		ns, hpaName := obs.Namespace, obs.Name
		if want > obs.MaxReplicas {
			return nil, actuators.Refuse(actuators.GuardMaxReplicas, "HPA %s/%s maxReplicas is %d, below %d", ns, hpaName, obs.MaxReplicas, want)
		}
		var h *autoscalingv1.HorizontalPodAutoscaler
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var cur *autoscalingv1.HorizontalPodAutoscaler
			err := e.call("get_hpa", func() (err error) {
				cur, err = e.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Get(ctx, hpaName, metav1.GetOptions{})
				return err
			})
			if err != nil {
				return err
			}
			if hpaMin(cur) != obs.Replicas || cur.Spec.MaxReplicas != obs.MaxReplicas || cur.Spec.ScaleTargetRef.Kind != obs.ScaleTargetKind {
				// Someone else changed the HPA's bounds or target since
				// they were observed: the guardrails and the step were
				// computed from the old ones, so do not overwrite theirs.
				// The decision is tried again from a new observation.
				return fmt.Errorf("HPA %s/%s: min %d, max %d, target kind %s changed to min %d, max %d, target kind %s since observed, not overwritten",
					ns, hpaName, obs.Replicas, obs.MaxReplicas, obs.ScaleTargetKind, hpaMin(cur), cur.Spec.MaxReplicas, cur.Spec.ScaleTargetRef.Kind)
			}
			// The resourceVersion makes the patch conditional on the
			// object just read: a write in between is a conflict,
			// retried on fresh data.
			patch := fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q},"spec":{"minReplicas":%d}}`, cur.ResourceVersion, want)
			return e.call("patch_hpa", func() (err error) {
				h, err = e.cs.AutoscalingV1().HorizontalPodAutoscalers(ns).Patch(ctx, hpaName, types.MergePatchType, patch,
					metav1.PatchOptions{FieldManager: e.cfg.FieldManager, DryRun: e.dry(dry)})
				return err
			})
		})
		if err != nil {
			return nil, apiErr("patch horizontal pod autoscaler", err)
		}
		return hpaState(h), nil
	}
	var out *autoscalingv1.Scale
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := e.getScale(ctx, kind, ns, name)
		if err != nil {
			return err
		}
		if s.Spec.Replicas != obs.Replicas {
			// Someone else (a user, a controller) changed the replicas
			// since they were observed: the guardrails and the step were
			// computed from the old value, so do not overwrite theirs.
			// The decision is tried again from a new observation.
			return fmt.Errorf("%s %s/%s: replicas changed from %d to %d since observed, not overwritten", kind, ns, name, obs.Replicas, s.Spec.Replicas)
		}
		s.Spec.Replicas = want
		opts := metav1.UpdateOptions{FieldManager: e.cfg.FieldManager, DryRun: e.dry(dry)}
		return e.call("update_scale", func() (err error) {
			if kind == "StatefulSet" {
				out, err = e.cs.AppsV1().StatefulSets(ns).UpdateScale(ctx, name, s, opts)
			} else {
				out, err = e.cs.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, opts)
			}
			return err
		})
	})
	if err != nil {
		return nil, apiErr("update scale of "+kind, err)
	}
	return map[string]string{"object": kind + "/" + ns + "/" + name, "replicas": strconv.Itoa(int(out.Spec.Replicas))}, nil
}

func (e *Executor) requests(rule string) corev1.ResourceList {
	if r, ok := e.cfg.PlaceholderRequests[rule]; ok {
		return r
	}
	return e.cfg.PlaceholderRequests[""]
}

func (e *Executor) observePlaceholder(ctx context.Context, d *proto.Decision) (actuators.Observation, error) {
	_, ns, name := e.object(d)
	var dep *appsv1.Deployment
	err := e.call("get_deployment", func() (err error) {
		dep, err = e.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return actuators.Observation{}, apiErr("get placeholder deployment", err)
	}
	cur := int32(1)
	if dep.Spec.Replicas != nil {
		cur = *dep.Spec.Replicas
	}
	holds := cur == d.GetDesired().GetReplicas()
	if cs := dep.Spec.Template.Spec.Containers; len(cs) != 1 || !equalResources(cs[0].Resources.Requests, e.requests(d.GetRule())) {
		holds = false
	}
	return actuators.Observation{Kind: "Deployment", Namespace: ns, Name: name, Replicas: cur, Holds: holds, Before: placeholderState(dep)}, nil
}

func equalResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w.Cmp(v) != 0 {
			return false
		}
	}
	return true
}

func placeholderState(d *appsv1.Deployment) map[string]string {
	st := map[string]string{"object": "Deployment/" + d.Namespace + "/" + d.Name}
	if d.Spec.Replicas != nil {
		st["replicas"] = strconv.Itoa(int(*d.Spec.Replicas))
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		st["requests"] = fmt.Sprint(cs[0].Resources.Requests.Cpu(), ",", cs[0].Resources.Requests.Memory())
	}
	return st
}

// applyPlaceholder sizes the placeholder with server-side apply: augur owns
// this object, so it forces its fields.
func (e *Executor) applyPlaceholder(ctx context.Context, d *proto.Decision, dry bool) (map[string]string, error) {
	_, ns, name := e.object(d)
	labels := map[string]string{"app.kubernetes.io/name": "augur-capacity-placeholder", "app.kubernetes.io/managed-by": "augur"}
	ac := appsv1ac.Deployment(name, ns).
		WithLabels(labels).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(d.GetDesired().GetReplicas()).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app.kubernetes.io/name": "augur-capacity-placeholder"})).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels).
				WithSpec(corev1ac.PodSpec().
					WithPriorityClassName(e.cfg.PlaceholderPriorityClass).
					WithTerminationGracePeriodSeconds(0).
					WithAutomountServiceAccountToken(false).
					WithContainers(corev1ac.Container().
						WithName("pause").
						WithImage(e.cfg.PlaceholderImage).
						WithResources(corev1ac.ResourceRequirements().WithRequests(e.requests(d.GetRule())))))))
	var out *appsv1.Deployment
	err := e.call("apply_deployment", func() (err error) {
		out, err = e.cs.AppsV1().Deployments(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: e.cfg.FieldManager, Force: true, DryRun: e.dry(dry)})
		return err
	})
	if err != nil {
		return nil, apiErr("apply placeholder deployment", err)
	}
	return placeholderState(out), nil
}

// cordonedAnnotation marks a node augur cordoned, so that untaint
// uncordons only what augur cordoned.
const cordonedAnnotation = "augur.io/cordoned-by-decision"

func (e *Executor) ours(t corev1.Taint) bool { return strings.HasPrefix(t.Key, e.cfg.TaintPrefix) }

func (e *Executor) observeNode(ctx context.Context, d *proto.Decision) (actuators.Observation, error) {
	ch := d.GetDesired()
	if !strings.HasPrefix(ch.GetTaint().GetKey(), e.cfg.TaintPrefix) {
		return actuators.Observation{}, actuators.Refuse(actuators.GuardInvalid, "taint key %q is not augur's (prefix %q)", ch.GetTaint().GetKey(), e.cfg.TaintPrefix)
	}
	var n *corev1.Node
	err := e.call("get_node", func() (err error) {
		n, err = e.cs.CoreV1().Nodes().Get(ctx, ch.GetNode(), metav1.GetOptions{})
		return err
	})
	if err != nil {
		return actuators.Observation{}, apiErr("get node", err)
	}
	obs := actuators.Observation{Kind: "Node", Before: nodeState(n), Holds: e.nodeHolds(d, n)}
	for _, t := range n.Spec.Taints {
		if e.ours(t) {
			obs.NodeTainted = true
			if !sameTaint(t, ch.GetTaint()) {
				obs.NodeKeepsTaint = true
			}
		}
	}
	// Counted for untaint too: the tainted-nodes gauge is set from it.
	var list *corev1.NodeList
	err = e.call("list_nodes", func() (err error) {
		list, err = e.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: e.cfg.NodeSelector})
		return err
	})
	if err != nil {
		return actuators.Observation{}, apiErr("list nodes", err)
	}
	obs.Nodes = len(list.Items)
	for i := range list.Items {
		for _, t := range list.Items[i].Spec.Taints {
			if e.ours(t) {
				obs.TaintedNodes++
				break
			}
		}
	}
	return obs, nil
}

func nodeState(n *corev1.Node) map[string]string {
	var ts []string
	for _, t := range n.Spec.Taints {
		ts = append(ts, t.ToString())
	}
	return map[string]string{"object": "Node/" + n.Name, "taints": strings.Join(ts, ","), "unschedulable": strconv.FormatBool(n.Spec.Unschedulable)}
}

func sameTaint(t corev1.Taint, p *proto.Taint) bool {
	return t.Key == p.GetKey() && string(t.Effect) == p.GetEffect()
}

// nodeHolds reports whether the node already is as the decision wants.
func (e *Executor) nodeHolds(d *proto.Decision, n *corev1.Node) bool {
	ch := d.GetDesired()
	has := false
	for _, t := range n.Spec.Taints {
		if sameTaint(t, ch.GetTaint()) {
			has = true
		}
	}
	_, cordonedByUs := n.Annotations[cordonedAnnotation]
	if d.GetKind() == proto.KindTaintNode {
		return has && (!ch.GetCordon() || n.Spec.Unschedulable)
	}
	return !has && !cordonedByUs
}

// applyNode reads, edits and updates the node under conflict retry:
// spec.taints is one atomic list, so a blind write would drop taints other
// owners added since the read; the resourceVersion makes such a race a
// conflict that is retried on fresh data.
func (e *Executor) applyNode(ctx context.Context, d *proto.Decision, dry bool) (map[string]string, error) {
	ch := d.GetDesired()
	var out *corev1.Node
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var n *corev1.Node
		err := e.call("get_node", func() (err error) {
			n, err = e.cs.CoreV1().Nodes().Get(ctx, ch.GetNode(), metav1.GetOptions{})
			return err
		})
		if err != nil {
			return err
		}
		if e.nodeHolds(d, n) {
			out = n
			return nil
		}
		n = n.DeepCopy()
		if d.GetKind() == proto.KindTaintNode {
			t := corev1.Taint{Key: ch.GetTaint().GetKey(), Value: ch.GetTaint().GetValue(), Effect: corev1.TaintEffect(ch.GetTaint().GetEffect())}
			if t.Effect == corev1.TaintEffectNoExecute {
				t.TimeAdded = &metav1.Time{Time: e.cfg.Now()}
			}
			// The taint may be there already with only the cordon
			// missing: taints are unique by key and effect.
			if !slices.ContainsFunc(n.Spec.Taints, func(c corev1.Taint) bool { return sameTaint(c, ch.GetTaint()) }) {
				n.Spec.Taints = append(n.Spec.Taints, t)
			}
			if ch.GetCordon() && !n.Spec.Unschedulable {
				n.Spec.Unschedulable = true
				if n.Annotations == nil {
					n.Annotations = map[string]string{}
				}
				n.Annotations[cordonedAnnotation] = d.GetId()
			}
		} else {
			kept := n.Spec.Taints[:0:0]
			for _, t := range n.Spec.Taints {
				if !sameTaint(t, ch.GetTaint()) {
					kept = append(kept, t)
				}
			}
			n.Spec.Taints = kept
			if _, ok := n.Annotations[cordonedAnnotation]; ok {
				n.Spec.Unschedulable = false
				delete(n.Annotations, cordonedAnnotation)
			}
		}
		return e.call("update_node", func() (err error) {
			out, err = e.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{FieldManager: e.cfg.FieldManager, DryRun: e.dry(dry)})
			return err
		})
	})
	if err != nil {
		return nil, apiErr("update node", err)
	}
	return nodeState(out), nil
}

// RecordOutcome implements actuators.EventRecorder: an Event on the
// decision's object with the outcome as reason and the decision id in the
// message and an annotation. Events go through client-go's broadcaster,
// as controllers' do: sent in the background, aggregated and rate-limited
// per object, so a burst of decisions does not become a burst of writes.
func (e *Executor) RecordOutcome(_ context.Context, d *proto.Decision, a *proto.Action) {
	var ref *corev1.ObjectReference
	switch d.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
		kind, ns, name := e.object(d)
		if ns == "" || name == "" {
			return
		}
		ref = &corev1.ObjectReference{Kind: kind, Namespace: ns, Name: name, APIVersion: "apps/v1"}
		if kind == "HorizontalPodAutoscaler" {
			ref.APIVersion = "autoscaling/v2"
		}
	case proto.KindTaintNode, proto.KindUntaintNode:
		if d.GetDesired().GetNode() == "" {
			return
		}
		// Cluster-scoped: client-go files its Events in "default".
		ref = &corev1.ObjectReference{Kind: "Node", Name: d.GetDesired().GetNode(), APIVersion: "v1"}
	default:
		return
	}
	typ := corev1.EventTypeNormal
	if a.GetOutcome() == proto.OutcomeFailed || a.GetOutcome() == proto.OutcomeRefused {
		typ = corev1.EventTypeWarning
	}
	msg := fmt.Sprintf("augur decision %s (%s, rule %s): %s", d.GetId(), d.GetKind(), d.GetRule(), a.GetOutcome())
	if g := a.GetGuardrail(); g != "" {
		msg += " by " + g
	}
	if er := a.GetError(); er != "" {
		msg += ": " + er
	}
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	e.events.AnnotatedEventf(ref, map[string]string{"augur.io/decision-id": d.GetId()}, typ, reason(a.GetOutcome()), "%s", msg)
}

// Close stops sending Events, after those queued are sent or dropped.
func (e *Executor) Close() { e.broadcaster.Shutdown() }

// reason turns an outcome into an Event reason: "AugurApplied",
// "AugurDryRun", "AugurRefused", ...
func reason(outcome string) string {
	var b strings.Builder
	b.WriteString("Augur")
	for p := range strings.SplitSeq(outcome, "_") {
		if p == "" {
			continue
		}
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}
