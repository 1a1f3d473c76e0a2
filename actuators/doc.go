// Package actuators carries out augur's decisions safely: it consumes
// augur.decisions, verifies each decision (signature, expiry, replay), runs
// it through the guardrails, hands it to an executor (actuators/kube for
// Kubernetes, actuators/zonalshift for AWS ARC zonal shift) and writes
// exactly one audit record per decision to augur.actions before the
// decision's offset is committed.
//
// Guardrails are enforced here, in code, before any API call that changes
// something; every refusal names its guardrail (see Guardrails). Executors are
// level-based: they read the current state first and a decision whose
// desired state already holds is a no-op.
package actuators
