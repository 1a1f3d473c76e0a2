package actuators

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/augur-ops/augur/proto"
)

// Guardrail names, the closed set of values of Action.Guardrail and of the
// guardrail label of augur_actuator_refusals_total.
const (
	GuardMalformed         = "malformed"
	GuardSignature         = "signature"
	GuardExpired           = "expired"
	GuardDuplicate         = "duplicate"
	GuardMaxDecisionTTL    = "max_decision_ttl"
	GuardKillSwitch        = "kill_switch"
	GuardModeOff           = "mode_off"
	GuardUnknownKind       = "unknown_kind"
	GuardNoExecutor        = "no_executor"
	GuardInvalid           = "invalid_decision"
	GuardNamespaceDenied   = "namespace_denied"
	GuardNamespaceNotAllow = "namespace_not_allowed"
	GuardStatefulSet       = "statefulset_not_opted_in"
	GuardMinReplicas       = "min_replicas"
	GuardMaxReplicas       = "max_replicas"
	GuardMaxStep           = "max_step"
	GuardCooldownUp        = "cooldown_up"
	GuardCooldownDown      = "cooldown_down"
	GuardStabilization     = "scale_down_stabilization"
	GuardRateLimit         = "rate_limit"
	GuardBlastRadius       = "blast_radius"
	GuardUntaintHoldDown   = "untaint_hold_down"
	GuardZonalOneAtATime   = "zonal_one_at_a_time"
	GuardZonalHealthyZones = "zonal_min_healthy_zones"
	GuardZonalExpiry       = "zonal_expiry"
	GuardZonalForeignShift = "zonal_foreign_shift"
	GuardApproval          = "approval"
	GuardForbidden         = "forbidden"
)

// Guardrails lists every guardrail name, for bounded metric labels.
var Guardrails = []string{GuardMalformed, GuardSignature, GuardExpired, GuardDuplicate,
	GuardKillSwitch, GuardModeOff, GuardUnknownKind, GuardNoExecutor, GuardInvalid,
	GuardNamespaceDenied, GuardNamespaceNotAllow, GuardStatefulSet, GuardMinReplicas,
	GuardMaxReplicas, GuardMaxStep, GuardCooldownUp, GuardCooldownDown, GuardStabilization,
	GuardRateLimit, GuardBlastRadius, GuardUntaintHoldDown, GuardZonalOneAtATime,
	GuardZonalHealthyZones, GuardZonalExpiry, GuardZonalForeignShift, GuardApproval, GuardForbidden}

// attempt is one try of a decision: what the guardrails read. The
// guardrails change nothing; commit records what the try did.
type attempt struct {
	d     *proto.Decision
	rule  Rule
	now   time.Time
	retry bool         // a decision in force tried again (Reconcile)
	obs   *Observation // nil until the executor observed
	step  *proto.Decision
	// step is what was applied (or dry-run): d itself, a bounded step
	// toward it, or nil when nothing was.
	keep bool // the decision stays in force (a.goals)
}

// guardrail is one check. It reads the attempt and the actuator's memory,
// changes neither, and names the guardrail and why when it holds the
// decision back.
type guardrail func(a *Actuator, t *attempt) (name, why string)

// Before the executor observes, in this order. Alerts pass them all.
var unobservedGuardrails = []guardrail{
	killSwitch, modeOff, unknownKind,
	namedObject, namespaces, statefulSetByRule, replicaBounds,
	validTaint, untaintHoldDown,
	namedZonalShift, zonalExpiry,
}

// After the executor observed a state the decision would change, in this
// order. A deferrable guardrail keeps the decision in force (enforce mode).
var observedGuardrails = []guardrail{
	statefulSetObserved, cooldownUp, cooldownDown, stabilization,
	blastRadius, zonalOneAtATime, zonalKnownZone, zonalHealthyZones,
}

// check runs gs in order and returns the first that holds the decision back.
func (a *Actuator) check(gs []guardrail, t *attempt) (string, string) {
	for _, g := range gs {
		if name, why := g(a, t); name != "" {
			return name, why
		}
	}
	return "", ""
}

// deferrable reports whether a guardrail only holds a decision back for a
// while: a later try may pass it.
func deferrable(guardrail string) bool {
	switch guardrail {
	case GuardCooldownUp, GuardCooldownDown, GuardStabilization, GuardRateLimit:
		return true
	}
	return false
}

func killSwitch(a *Actuator, _ *attempt) (string, string) {
	if a.kill.Load() || a.killFile() {
		return GuardKillSwitch, "kill switch is on"
	}
	return "", ""
}

func modeOff(_ *Actuator, t *attempt) (string, string) {
	if t.rule.Mode == ModeOff {
		return GuardModeOff, "mode is off"
	}
	return "", ""
}

func unknownKind(_ *Actuator, t *attempt) (string, string) {
	if !slices.Contains(proto.Kinds, t.d.GetKind()) {
		return GuardUnknownKind, fmt.Sprintf("unknown kind %q", t.d.GetKind())
	}
	return "", ""
}

// namedObject: a replica decision names its object. A reserve_capacity
// decision may name none: the executor's configured placeholder is meant.
func namedObject(_ *Actuator, t *attempt) (string, string) {
	obj := t.d.GetDesired().GetObject()
	if replicaKind(t.d.GetKind()) && t.d.GetKind() != proto.KindReserveCapacity && (obj.GetName() == "" || obj.GetNamespace() == "") {
		return GuardInvalid, "decision names no object"
	}
	return "", ""
}

func namespaces(a *Actuator, t *attempt) (string, string) {
	ns := t.d.GetDesired().GetObject().GetNamespace()
	if !replicaKind(t.d.GetKind()) || ns == "" {
		return "", ""
	}
	if slices.Contains(a.cfg.DenyNamespaces, ns) {
		return GuardNamespaceDenied, fmt.Sprintf("namespace %s is on the deny list", ns)
	}
	if len(a.cfg.AllowNamespaces) > 0 && !slices.Contains(a.cfg.AllowNamespaces, ns) {
		return GuardNamespaceNotAllow, fmt.Sprintf("namespace %s is not on the allow list", ns)
	}
	return "", ""
}

func statefulSetByRule(_ *Actuator, t *attempt) (string, string) {
	if replicaKind(t.d.GetKind()) && t.d.GetDesired().GetObject().GetKind() == "StatefulSet" && !t.rule.AllowStatefulSets {
		return GuardStatefulSet, fmt.Sprintf("rule %q has not opted in to StatefulSets", t.d.GetRule())
	}
	return "", ""
}

func replicaBounds(_ *Actuator, t *attempt) (string, string) {
	if !replicaKind(t.d.GetKind()) {
		return "", ""
	}
	n, minR := t.d.GetDesired().GetReplicas(), t.rule.MinReplicas
	if t.d.GetKind() == proto.KindReserveCapacity {
		minR = 0 // a placeholder may go to zero
	}
	if n < minR {
		return GuardMinReplicas, fmt.Sprintf("replicas %d below minimum %d", n, minR)
	}
	if n > t.rule.MaxReplicas {
		return GuardMaxReplicas, fmt.Sprintf("replicas %d above maximum %d", n, t.rule.MaxReplicas)
	}
	return "", ""
}

func nodeKind(kind string) bool { return kind == proto.KindTaintNode || kind == proto.KindUntaintNode }

func validTaint(_ *Actuator, t *attempt) (string, string) {
	if !nodeKind(t.d.GetKind()) {
		return "", ""
	}
	ch := t.d.GetDesired()
	if ch.GetNode() == "" || ch.GetTaint().GetKey() == "" {
		return GuardInvalid, "decision names no node or taint"
	}
	switch ch.GetTaint().GetEffect() {
	case "NoSchedule", "NoExecute", "PreferNoSchedule":
		return "", ""
	}
	return GuardInvalid, fmt.Sprintf("taint effect %q", ch.GetTaint().GetEffect())
}

func untaintHoldDown(a *Actuator, t *attempt) (string, string) {
	if t.d.GetKind() != proto.KindUntaintNode {
		return "", ""
	}
	node := t.d.GetDesired().GetNode()
	if c := a.budgetFor(t).nodes[node]; c.tainted && t.now.Sub(c.at) < a.cfg.UntaintHoldDown {
		return GuardUntaintHoldDown, fmt.Sprintf("node %s tainted %v ago, hold-down %v", node, t.now.Sub(c.at), a.cfg.UntaintHoldDown)
	}
	return "", ""
}

func zonalKind(kind string) bool {
	return kind == proto.KindZonalShift || kind == proto.KindCancelZonalShift
}

func namedZonalShift(_ *Actuator, t *attempt) (string, string) {
	if !zonalKind(t.d.GetKind()) {
		return "", ""
	}
	zs := t.d.GetDesired().GetZonalShift()
	if zs.GetResourceIdentifier() == "" {
		return GuardInvalid, "decision names no resource"
	}
	if t.d.GetKind() == proto.KindZonalShift && zs.GetAwayFrom() == "" {
		return GuardInvalid, "decision names no zone"
	}
	return "", ""
}

func zonalExpiry(a *Actuator, t *attempt) (string, string) {
	if t.d.GetKind() != proto.KindZonalShift {
		return "", ""
	}
	e := time.Duration(t.d.GetDesired().GetZonalShift().GetExpiresInSeconds()) * time.Second
	if e <= 0 || e > a.cfg.MaxZonalShiftExpiry {
		return GuardZonalExpiry, fmt.Sprintf("expiry %v not in (0, %v]", e, a.cfg.MaxZonalShiftExpiry)
	}
	return "", ""
}

// statefulSetObserved: the object the change goes to can be a StatefulSet
// even when the decision did not say so.
func statefulSetObserved(_ *Actuator, t *attempt) (string, string) {
	sts := t.obs.Kind == "StatefulSet" || t.obs.ScaleTargetKind == "StatefulSet"
	if replicaKind(t.d.GetKind()) && sts && !t.rule.AllowStatefulSets {
		return GuardStatefulSet, fmt.Sprintf("rule %q has not opted in to StatefulSets", t.d.GetRule())
	}
	return "", ""
}

func cooldownUp(a *Actuator, t *attempt) (string, string) {
	if !replicaKind(t.d.GetKind()) || t.d.GetDesired().GetReplicas() <= t.obs.Replicas {
		return "", ""
	}
	last := a.targets[t.d.GetTarget()].lastUp
	if !last.IsZero() && t.now.Sub(last) < a.cfg.CooldownUp {
		return GuardCooldownUp, fmt.Sprintf("last scale-up %v ago, cooldown %v", t.now.Sub(last), a.cfg.CooldownUp)
	}
	return "", ""
}

func cooldownDown(a *Actuator, t *attempt) (string, string) {
	if !replicaKind(t.d.GetKind()) || t.d.GetDesired().GetReplicas() >= t.obs.Replicas {
		return "", ""
	}
	last := a.targets[t.d.GetTarget()].lastChange
	if !last.IsZero() && t.now.Sub(last) < a.cfg.CooldownDown {
		return GuardCooldownDown, fmt.Sprintf("last scale change %v ago, cooldown %v", t.now.Sub(last), a.cfg.CooldownDown)
	}
	return "", ""
}

// stabilization holds a scale-down back while a decision in the window
// asked for more replicas (the HPA's scale-down stabilization).
func stabilization(a *Actuator, t *attempt) (string, string) {
	want := t.d.GetDesired().GetReplicas()
	if !replicaKind(t.d.GetKind()) || want >= t.obs.Replicas {
		return "", ""
	}
	for _, r := range a.targets[t.d.GetTarget()].recs {
		if t.now.Sub(r.at) <= a.cfg.ScaleDownStabilization && r.replicas > want {
			return GuardStabilization, fmt.Sprintf("a decision %v ago asked for %d replicas, stabilization window %v", t.now.Sub(r.at), r.replicas, a.cfg.ScaleDownStabilization)
		}
	}
	return "", ""
}

func blastRadius(a *Actuator, t *attempt) (string, string) {
	if t.d.GetKind() != proto.KindTaintNode {
		return "", ""
	}
	obs := t.obs
	// A node already tainted by augur is one of TaintedNodes: another
	// taint on it adds no node to their count or share.
	if !obs.NodeTainted && obs.TaintedNodes+1 > a.cfg.MaxNodeActions {
		return GuardBlastRadius, fmt.Sprintf("%d nodes already tainted by augur, limit %d", obs.TaintedNodes, a.cfg.MaxNodeActions)
	}
	recent := countSince(a.budgetFor(t).taints, t.now, a.cfg.NodeWindow, true)
	if recent+1 > a.cfg.MaxNodeActions {
		return GuardBlastRadius, fmt.Sprintf("%d node actions in the last %v, limit %d", recent, a.cfg.NodeWindow, a.cfg.MaxNodeActions)
	}
	if !obs.NodeTainted && obs.Nodes > 0 && float64(obs.TaintedNodes+1)/float64(obs.Nodes) > a.cfg.MaxNodeShare &&
		obs.TaintedNodes > 0 { // the first node is always allowed: a breaker, not a ban
		return GuardBlastRadius, fmt.Sprintf("%d of %d nodes would be tainted, share limit %.0f%%", obs.TaintedNodes+1, obs.Nodes, a.cfg.MaxNodeShare*100)
	}
	return "", ""
}

func zonalOneAtATime(_ *Actuator, t *attempt) (string, string) {
	if t.d.GetKind() != proto.KindZonalShift {
		return "", ""
	}
	away := t.d.GetDesired().GetZonalShift().GetAwayFrom()
	for _, s := range t.obs.Shifts {
		if s.AwayFrom != away {
			return GuardZonalOneAtATime, fmt.Sprintf("shift %s already moves traffic away from %s", s.ID, s.AwayFrom)
		}
	}
	return "", ""
}

func zonalKnownZone(_ *Actuator, t *attempt) (string, string) {
	away := t.d.GetDesired().GetZonalShift().GetAwayFrom()
	if t.d.GetKind() == proto.KindZonalShift && !slices.Contains(t.obs.Zones, away) {
		return GuardInvalid, fmt.Sprintf("zone %s is not one of the resource's zones %v", away, t.obs.Zones)
	}
	return "", ""
}

func zonalHealthyZones(a *Actuator, t *attempt) (string, string) {
	if t.d.GetKind() != proto.KindZonalShift {
		return "", ""
	}
	awayFrom := t.d.GetDesired().GetZonalShift().GetAwayFrom()
	away := map[string]bool{awayFrom: true}
	for _, s := range t.obs.Shifts {
		away[s.AwayFrom] = true
	}
	healthy := 0
	for _, z := range t.obs.Zones {
		if !away[z] {
			healthy++
		}
	}
	if healthy < a.cfg.MinHealthyZones {
		return GuardZonalHealthyZones, fmt.Sprintf("shifting away from %s leaves %d healthy zones of %v, minimum %d", awayFrom, healthy, t.obs.Zones, a.cfg.MinHealthyZones)
	}
	return "", ""
}

// rateLimit holds a change back when RateLimit changes happened in the last
// RateWindow. It runs last, just before a change would be made.
func rateLimit(a *Actuator, t *attempt) (string, string) {
	if n := countSince(a.budgetFor(t).changes, t.now, a.cfg.RateWindow, false); n >= a.cfg.RateLimit {
		return GuardRateLimit, fmt.Sprintf("%d changes in the last %v, limit %d", n, a.cfg.RateWindow, a.cfg.RateLimit)
	}
	return "", ""
}

// countSince counts the times within window before now: at most window
// ago when inclusive, less than window ago otherwise.
func countSince(ts []time.Time, now time.Time, window time.Duration, inclusive bool) int {
	n := 0
	for _, t := range ts {
		if age := now.Sub(t); age < window || (inclusive && age == window) {
			n++
		}
	}
	return n
}

// budget is the memory of the changes made, for the guardrails that limit
// them across targets: the rate limit, the blast radius and the untaint
// hold-down.
type budget struct {
	changes []time.Time // rate-limit window, oldest first
	taints  []time.Time // node actions in the blast-radius window
	// nodes holds each node's last taint or untaint by augur; an untaint
	// is kept while the hold-down could still read it, so that a merge
	// (Recall) knows the taint before it was taken away.
	nodes map[string]nodeChange
}

type nodeChange struct {
	at      time.Time
	tainted bool // a taint, or an untaint
}

func newBudget() budget { return budget{nodes: map[string]nodeChange{}} }

// budgetFor returns the budget t's rule draws on. Dry-run changes count,
// so that dry-run shows where enforce would stop, but in a budget of their
// own: a rule tried in dry-run next to enforced ones never uses up theirs
// (its pretend taints filled the blast radius and started hold-downs for
// real ones).
func (a *Actuator) budgetFor(t *attempt) *budget {
	if t.rule.Mode == ModeEnforce {
		return &a.live
	}
	return &a.dry
}

// commit is the one step that changes the actuator's memory after a try:
// the decision in force for the target, and what the try did (tried) to
// the cooldowns, the stabilization window, the rate limit and the blast
// radius (memory.apply).
func (a *Actuator) commit(t *attempt, act *proto.Action) {
	target := t.d.GetTarget()
	// A decision replaces the one in force for its target.
	delete(a.goals, target)
	if t.keep {
		a.goals[target] = &goal{d: t.d, next: t.now.Add(a.cfg.RetryInterval)}
	}
	a.apply(t.tried(act), &a.cfg)
}

// tried is what one try did to the guardrails' memory. commit takes it
// from the attempt; Recall reads it back from the try's audit record
// (triedFrom), so that both apply it the one way (memory.apply).
type tried struct {
	at           time.Time
	kind, target string
	node         string // of a node decision
	enforce      bool   // in the enforce budget, or the dry-run one
	// window: the replicas decided (goal) enter the target's
	// stabilization window: a replica decision's first try that was
	// observed, whatever it ends in (a no-op too: the replicas it found
	// were asked for), as the HPA keeps every recommendation; a refusal
	// as a StatefulSet excepted.
	window bool
	goal   int32
	// changed: a change (the decision or a bounded step toward it) was
	// applied or dry-run by an executor; raised: it raised the replicas.
	changed, raised bool
}

// tried is what t did; act is its audit record.
func (t *attempt) tried(act *proto.Action) tried {
	d := t.d
	tr := tried{at: t.now, kind: d.GetKind(), target: d.GetTarget(), node: d.GetDesired().GetNode(),
		enforce: t.rule.Mode == ModeEnforce, goal: d.GetDesired().GetReplicas(), changed: t.step != nil}
	tr.window = replicaKind(tr.kind) && !t.retry && t.obs != nil && act.GetGuardrail() != GuardStatefulSet
	tr.raised = t.step != nil && t.step.GetDesired().GetReplicas() > t.obs.Replicas
	return tr
}

// memory is what the guardrails remember of the tries before: each
// target's cooldowns and stabilization window, and the budgets of enforce
// (live) and dry-run rules (budgetFor).
type memory struct {
	targets   map[string]targetState
	live, dry budget
}

func newMemory() memory {
	return memory{targets: map[string]targetState{}, live: newBudget(), dry: newBudget()}
}

// apply records what a try did, dropping first what the windows no
// longer hold at its time.
func (m *memory) apply(tr tried, cfg *Config) {
	b := &m.dry
	if tr.enforce {
		b = &m.live
	}
	b.prune(tr.at, cfg)
	if replicaKind(tr.kind) {
		ts := m.targets[tr.target]
		ts.prune(tr.at, cfg)
		if tr.window {
			ts.recs = append(ts.recs, rec{tr.at, tr.goal})
		}
		if tr.changed {
			if tr.raised {
				ts.lastUp = tr.at
			}
			ts.lastChange = tr.at
		}
		m.targets[tr.target] = ts
	}
	if !tr.changed {
		return
	}
	b.changes = append(b.changes, tr.at)
	if tr.kind == proto.KindTaintNode {
		b.taints = append(b.taints, tr.at)
	}
	if nodeKind(tr.kind) && tr.node != "" {
		b.nodes[tr.node] = nodeChange{tr.at, tr.kind == proto.KindTaintNode}
	}
}

// prune drops the stabilization records older than ScaleDownStabilization
// at now, which the stabilization guard no longer reads.
func (ts *targetState) prune(now time.Time, cfg *Config) {
	ts.recs = slices.DeleteFunc(ts.recs, func(r rec) bool { return now.Sub(r.at) > cfg.ScaleDownStabilization })
}

// prune drops what no guardrail reads at now: changes RateWindow old or
// older, taints older than NodeWindow, untaints UntaintHoldDown old or
// older (a taint stays until untainted).
func (b *budget) prune(now time.Time, cfg *Config) {
	b.changes = slices.DeleteFunc(b.changes, func(c time.Time) bool { return now.Sub(c) >= cfg.RateWindow })
	b.taints = slices.DeleteFunc(b.taints, func(c time.Time) bool { return now.Sub(c) > cfg.NodeWindow })
	maps.DeleteFunc(b.nodes, func(_ string, c nodeChange) bool { return !c.tainted && now.Sub(c.at) >= cfg.UntaintHoldDown })
}
