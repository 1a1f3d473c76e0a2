package actuators

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/augur-ops/augur/proto"
)

// Executor carries out decisions of some kinds against one API (Kubernetes,
// AWS ARC). The Actuator calls Observe, runs the guardrails on what was
// observed, then calls Apply; both are called from one goroutine at a time.
type Executor interface {
	// Observe reads the current state the decision would change. An error
	// wrapping *Refusal refuses the decision with that guardrail; any other
	// error fails it.
	Observe(ctx context.Context, d *proto.Decision) (Observation, error)
	// Apply makes the change (dryRun: validated by the server but not
	// persisted, or not sent when the API has no dry-run) and returns the
	// state after it. It must be idempotent: applying the same decision
	// twice changes nothing the second time.
	Apply(ctx context.Context, d *proto.Decision, obs Observation, dryRun bool) (after map[string]string, err error)
}

// EventRecorder is implemented by executors that can attach the outcome of
// a decision to the object it names (a Kubernetes Event). The Actuator calls
// it for every verified decision, whatever the outcome; errors are the
// recorder's to log.
type EventRecorder interface {
	RecordOutcome(ctx context.Context, d *proto.Decision, a *proto.Action)
}

// Observation is the state an executor read before acting.
type Observation struct {
	// Holds is true when the desired state already holds: the decision is
	// a no-op (outcome noop).
	Holds bool
	// Kind is the kind of the object the change goes to, which can differ
	// from the decision's (a scale of a Deployment owned by an HPA goes to
	// the HorizontalPodAutoscaler's minReplicas).
	Kind string
	// Namespace and Name name the object the change goes to (the owning
	// HPA for a scale of a Deployment an HPA owns).
	Namespace, Name string
	// Replicas is the current value a replica decision changes: spec
	// replicas, or the HPA's minReplicas.
	Replicas int32
	// MaxReplicas is the HPA's maxReplicas when Kind is
	// HorizontalPodAutoscaler: its minimum cannot be raised above it.
	MaxReplicas int32
	// ScaleTargetKind is the kind of the workload the HPA scales when Kind
	// is HorizontalPodAutoscaler (a StatefulSet needs the rule's opt-in).
	ScaleTargetKind string
	// TaintedNodes is how many nodes carry an augur taint now; Nodes how
	// many nodes the blast radius is a share of.
	TaintedNodes, Nodes int
	// NodeTainted is true when the decision's node already carries one of
	// augur's taints (it is one of TaintedNodes): another taint on it adds
	// no node to the blast radius. NodeKeepsTaint is true when an untaint
	// leaves another of augur's taints on the node: it stays one of
	// TaintedNodes.
	NodeTainted, NodeKeepsTaint bool
	// Zones are the AZ IDs of a zonal-shift resource; Shifts its active
	// zonal shifts.
	Zones  []string
	Shifts []Shift
	// Before is the observed state for the audit record, written from the
	// fields above; executors never read their inputs back from it. For
	// replica kinds its "replicas" key is Replicas.
	Before map[string]string
}

// Shift is an active zonal shift on a resource.
type Shift struct {
	ID       string
	AwayFrom string
	Expiry   time.Time
	// Ours is true when augur started it (its comment carries augur's
	// marker).
	Ours bool
}

// Refusal is an error that refuses a decision by a named guardrail. Executors
// return it for refusals only they can see (a zonal shift started by someone
// else, a Forbidden answer from the API server).
type Refusal struct {
	Guardrail string
	Reason    string
}

// Error implements error.
func (r *Refusal) Error() string { return fmt.Sprintf("refused by %s: %s", r.Guardrail, r.Reason) }

// Refuse returns a *Refusal error for guardrail.
func Refuse(guardrail, format string, args ...any) error {
	return &Refusal{Guardrail: guardrail, Reason: fmt.Sprintf(format, args...)}
}

// ErrNotFound is wrapped by executors when the decision's object does not
// exist; the decision fails.
var ErrNotFound = errors.New("object not found")
