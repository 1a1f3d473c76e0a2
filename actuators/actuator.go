package actuators

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/internal/kafkaconn"
	"github.com/augur-ops/augur/proto"
)

// Actuator consumes decisions, guards them, executes them and audits every
// one. Create it with New and run it with Run.
type Actuator struct {
	cfg  Config
	cl   *kgo.Client
	kube Executor
	arc  Executor
	log  *slog.Logger
	m    *metrics

	kill atomic.Bool

	// mu guards the guardrail state below. Handle is called from Run's one
	// goroutine, but tests and HandleDecision callers may call it directly.
	mu      sync.Mutex
	seen    map[string]time.Time // decision id -> decision expiry
	targets map[string]*targetState
	changes []time.Time          // rate-limit window, oldest first
	nodes   map[string]time.Time // node -> when augur tainted it
	taints  []time.Time          // node actions in the blast-radius window
	shifts  map[string]int       // resource -> active zonal shifts last seen
	// pending holds the audit records of an aborted transaction by
	// decision id: when the decision is seen again its record is written
	// again, unchanged, instead of a "duplicate" that would hide what was
	// done.
	pending map[string]*proto.Action
	// goals are the replica decisions in force by target (see goal).
	goals map[string]*goal
	// unwritten holds the audit records of steps taken while reconciling
	// whose transaction aborted: they go out with the next one.
	unwritten []*proto.Action
}

// targetState is the per-target memory of cooldowns and stabilization.
type targetState struct {
	lastUp, lastChange time.Time
	recs               []rec // recent desired replicas, oldest first
}

type rec struct {
	at       time.Time
	replicas int32
}

// ClientOptions returns the kgo options the Actuator needs on its client:
// the consumer group, the decisions topic, manual commits (offsets commit
// only after the audit record is written), blocking rebalances while a poll
// is being handled, and read-committed fetches (decisions are written in
// transactions). Add seed brokers, TLS and SASL.
func ClientOptions(cfg Config, group string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(cfg.DecisionsTopic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
}

// New returns an Actuator. cl must be built with ClientOptions (New checks
// the consumer group and manual commits); the caller owns cl and closes it
// after Run returns. kube and arc may be nil: decisions of their kinds are
// then refused with guardrail "no_executor". Metrics are registered on reg.
func New(cfg Config, cl *kgo.Client, kube, arc Executor, reg prometheus.Registerer, log *slog.Logger) (*Actuator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("actuator config: %w", err)
	}
	if cl != nil {
		if err := checkClient(cl); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	a := &Actuator{cfg: cfg, cl: cl, kube: kube, arc: arc, log: log, m: m,
		seen: map[string]time.Time{}, targets: map[string]*targetState{}, nodes: map[string]time.Time{}, shifts: map[string]int{}, pending: map[string]*proto.Action{}, goals: map[string]*goal{}}
	a.kill.Store(cfg.KillSwitch)
	return a, nil
}

// checkClient rejects a client not built with ClientOptions.
func checkClient(cl *kgo.Client) error {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g == "" {
		return errors.New("actuator client: a consumer group is required (use ClientOptions)")
	}
	if auto, _ := cl.OptValue(kgo.DisableAutoCommit).(bool); !auto {
		return errors.New("actuator client: auto commit must be disabled (use ClientOptions)")
	}
	return nil
}

// SetKillSwitch turns the kill switch on or off at run time. While on, every
// decision is refused with guardrail "kill_switch".
func (a *Actuator) SetKillSwitch(on bool) { a.kill.Store(on) }

// Run consumes decisions until ctx is cancelled, then finishes the batch in
// hand (its audit records and offsets get up to 10s after cancellation) and
// returns nil. It returns an error when the audit records cannot be written:
// offsets are then not committed, so the decisions are seen again after a
// restart. Run does not close the client.
func (a *Actuator) Run(ctx context.Context) error {
	if a.cl == nil {
		return errors.New("actuator has no Kafka client")
	}
	return a.run(ctx, a.cl)
}

// RunClient is Run with a client made for this run (built with
// ClientOptions), for an Actuator created with a nil client. Leader
// election uses it: a replica joins the consumer group only while it leads,
// so that a standby never holds partitions it does not poll. The guardrail
// memory (replay set, cooldowns) persists across runs. The caller closes cl
// after RunClient returns.
func (a *Actuator) RunClient(ctx context.Context, cl *kgo.Client) error {
	if err := checkClient(cl); err != nil {
		return err
	}
	return a.run(ctx, cl)
}

// TransactionalOptions are ClientOptions plus the transactional id, for
// kgo.NewGroupTransactSession and RunSession. Each replica needs its own
// transactional id (for example "augur-act-" + pod name).
func TransactionalOptions(cfg Config, group, transactionalID string) []kgo.Opt {
	return append(ClientOptions(cfg, group), kgo.TransactionalID(transactionalID))
}

// RunSession is Run with exactly-once audit records: each poll's audit
// records and its offsets are committed in one Kafka transaction, so a
// reader with read_committed isolation sees exactly one record per
// decision even across crashes and rebalances. When a transaction aborts
// (a rebalance), the decisions are seen again and their original records
// are written again; the actions themselves were taken once (executors are
// level-based). Build sess with TransactionalOptions; the caller closes it.
func (a *Actuator) RunSession(ctx context.Context, sess *kgo.GroupTransactSession) error {
	if err := checkClient(sess.Client()); err != nil {
		return err
	}
	for {
		recs, closed, err := a.poll(ctx, sess.PollRecords)
		if closed {
			return nil
		}
		if err != nil {
			sess.AllowRebalance()
			return err
		}
		if err := a.transact(ctx, sess, recs); err != nil {
			sess.AllowRebalance()
			return err
		}
		// Polls block rebalances (ClientOptions) until the transaction
		// has ended.
		sess.AllowRebalance()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// poll waits at most RetryInterval for decisions, so that the decisions in
// force are tried again on time however quiet the topic is. closed is true
// once the client is closed.
//
// An authorization failure (a missing ACL) is returned: retrying does not
// grant it.
func (a *Actuator) poll(ctx context.Context, pollRecords func(context.Context, int) kgo.Fetches) (recs []*kgo.Record, closed bool, err error) {
	pctx, cancel := context.WithTimeout(ctx, a.cfg.RetryInterval)
	defer cancel()
	fetches := pollRecords(pctx, a.cfg.MaxPollRecords)
	if fetches.IsClientClosed() {
		return nil, true, nil
	}
	fetches.EachError(func(t string, p int32, ferr error) {
		switch {
		case kafkaconn.IsAuthorization(ferr):
			err = kafkaconn.ACLHint(fmt.Errorf("consume %s: %w", t, ferr))
		case !errors.Is(ferr, context.Canceled) && !errors.Is(ferr, context.DeadlineExceeded):
			a.log.Warn("fetch error", "topic", t, "partition", p, "err", ferr)
		}
	})
	return fetches.Records(), false, err
}

// transact handles recs and the decisions in force whose try is due in one
// transaction. It begins none when there is nothing to write.
func (a *Actuator) transact(ctx context.Context, sess *kgo.GroupTransactSession, recs []*kgo.Record) error {
	if len(recs) == 0 && !a.due() {
		return nil
	}
	if err := sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	out, acts, err := a.audit(ctx, recs)
	if err != nil {
		return err
	}
	// Like handleBatch: the actions were taken, their records must be
	// written even when ctx was cancelled mid-batch.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	try := kgo.TryCommit
	if err := sess.ProduceSync(wctx, out...).FirstErr(); err != nil {
		a.log.Warn("write audit records", "err", err)
		try = kgo.TryAbort
	}
	committed, err := sess.End(wctx, try)
	a.mu.Lock()
	for i, act := range acts {
		switch {
		case committed:
			delete(a.pending, act.GetDecisionId())
		case i >= len(recs):
			// A step taken while reconciling has no input record to
			// bring it back: it is written with the next batch.
			a.unwritten = append(a.unwritten, act)
		case act.GetOutcome() != proto.OutcomeDuplicate && act.GetDecisionId() != "":
			a.pending[act.GetDecisionId()] = act
		}
	}
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("end transaction of %d audit records: %w", len(out), err)
	}
	if !committed {
		a.log.Warn("transaction aborted, decisions will be seen again", "records", len(out))
	}
	return nil
}

// due reports whether a decision in force is due for a try or audit
// records of earlier tries wait to be written.
func (a *Actuator) due() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.unwritten) > 0 {
		return true
	}
	now := a.cfg.Now()
	for _, g := range a.goals {
		if !now.Before(g.next) {
			return true
		}
	}
	return false
}

// audit handles recs, then the decisions in force whose try is due, and
// returns their audit records: those of recs first, in order, then the
// others (records of earlier tries that were not written come first there).
func (a *Actuator) audit(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, []*proto.Action, error) {
	out := make([]*kgo.Record, 0, len(recs))
	acts := make([]*proto.Action, 0, len(recs))
	for _, r := range recs {
		acts = append(acts, a.Handle(ctx, r.Value))
	}
	a.mu.Lock()
	acts = append(acts, a.unwritten...)
	a.unwritten = nil
	a.mu.Unlock()
	acts = append(acts, a.Reconcile(ctx)...)
	for i, act := range acts {
		v, err := proto.MarshalJSON(act)
		if err != nil {
			return nil, nil, fmt.Errorf("encode action for decision %s: %w", act.GetDecisionId(), err)
		}
		key := []byte(act.GetTarget())
		if i < len(recs) {
			key = recs[i].Key
		}
		out = append(out, &kgo.Record{Topic: a.cfg.ActionsTopic, Key: key, Value: v})
	}
	return out, acts, nil
}

func (a *Actuator) run(ctx context.Context, cl *kgo.Client) error {
	for {
		recs, closed, err := a.poll(ctx, cl.PollRecords)
		if closed {
			return nil
		}
		if err != nil {
			cl.AllowRebalance()
			return err
		}
		if len(recs) > 0 || a.due() {
			if err := a.handleBatch(ctx, cl, recs); err != nil {
				cl.AllowRebalance()
				return err
			}
		}
		cl.AllowRebalance()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// handleBatch handles recs, writes their audit records and then commits
// their offsets.
func (a *Actuator) handleBatch(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	out, _, err := a.audit(ctx, recs)
	if err != nil {
		return err
	}
	// The audit write and commit must finish even when ctx was cancelled
	// mid-batch: the actions were taken, so their records must exist.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(wctx, out...).FirstErr(); err != nil {
		return fmt.Errorf("write %d audit records: %w", len(out), err)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := cl.CommitRecords(wctx, recs...); err != nil {
		// The audit records exist; a restart sees the decisions again and
		// records them as no-ops or duplicates, never acts twice.
		return fmt.Errorf("commit decisions offsets: %w", err)
	}
	return nil
}

// Handle runs one record value of augur.decisions through verification,
// guardrails and execution and returns its audit record. It never returns
// nil. It is safe for concurrent use but serializes decisions.
func (a *Actuator) Handle(ctx context.Context, value []byte) *proto.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	d, act := a.admit(value, now)
	if d == nil {
		if act.GetAt() != nil {
			return act // the record of an aborted transaction, already counted
		}
		return a.finish(ctx, act, nil, nil, now)
	}
	act, obs := a.execute(ctx, d, now, false)
	return a.finish(ctx, act, d, obs, now)
}

// finish stamps an audit record and does the bookkeeping every outcome
// gets: metrics, gauges, the Event on the object, the log line.
func (a *Actuator) finish(ctx context.Context, act *proto.Action, d *proto.Decision, obs *Observation, now time.Time) *proto.Action {
	act.At = timestamppb.New(now)
	act.Actor = a.cfg.Actor
	if act.Mode == "" {
		act.Mode = string(a.cfg.Mode)
	}
	kind := act.GetKind()
	if !slices.Contains(proto.Kinds, kind) {
		kind = "unknown"
	}
	a.m.actions.WithLabelValues(kind, act.GetOutcome()).Inc()
	if g := act.GetGuardrail(); g != "" && act.GetOutcome() != proto.OutcomeApplied {
		a.m.refusals.WithLabelValues(g).Inc()
	}
	if obs != nil {
		a.updateGauges(d, act, obs)
	}
	if d != nil && verifiedOutcome(act) {
		if r, ok := a.executor(d.GetKind()).(EventRecorder); ok {
			r.RecordOutcome(ctx, d, act)
		}
	}
	a.log.Info("decision handled", "decision_id", act.GetDecisionId(), "kind", act.GetKind(),
		"outcome", act.GetOutcome(), "guardrail", act.GetGuardrail(), "error", act.GetError())
	return act
}

// verifiedOutcome reports whether the decision got past the signature,
// expiry and replay checks, so that it may leave a trace on its object.
func verifiedOutcome(a *proto.Action) bool {
	switch a.GetGuardrail() {
	case GuardMalformed, GuardSignature, GuardExpired, GuardDuplicate:
		return false
	}
	return true
}

func (a *Actuator) executor(kind string) Executor {
	switch kind {
	case proto.KindScale, proto.KindReserveCapacity, proto.KindSetHPAMin, proto.KindTaintNode, proto.KindUntaintNode:
		return a.kube
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		return a.arc
	}
	return nil
}

func refused(act *proto.Action, guardrail, format string, args ...any) *proto.Action {
	act.Outcome = proto.OutcomeRefused
	act.Guardrail = guardrail
	act.Error = fmt.Sprintf(format, args...)
	return act
}

// admit decodes a record value and runs the checks that decide whether the
// decision is acted on at all: it parses, its signature verifies, it is not
// expired and its id was not seen before. It returns the decision, or nil
// and the audit record that ends it (a record with At set is the record of
// an aborted transaction, to be written again unchanged).
func (a *Actuator) admit(value []byte, now time.Time) (*proto.Decision, *proto.Action) {
	d, err := proto.UnmarshalDecision(value)
	if err != nil {
		return nil, refused(&proto.Action{}, GuardMalformed, "%v", err)
	}
	act := &proto.Action{DecisionId: d.GetId(), Kind: d.GetKind(), Target: d.GetTarget()}
	if !a.verify(d) {
		return nil, refused(act, GuardSignature, "signature does not verify under any decision key")
	}
	if p, ok := a.pending[d.GetId()]; ok {
		return nil, p // seen in an aborted transaction: its record, again
	}
	exp := d.GetExpiresAt()
	if exp == nil || !now.Before(exp.AsTime()) {
		act.Outcome = proto.OutcomeExpired
		act.Guardrail = GuardExpired
		act.Error = "decision expired or has no expiry"
		return nil, act
	}
	if _, dup := a.seen[d.GetId()]; dup || d.GetId() == "" {
		act.Outcome = proto.OutcomeDuplicate
		act.Guardrail = GuardDuplicate
		act.Error = "decision id seen before"
		return nil, act
	}
	a.remember(d.GetId(), exp.AsTime(), now)
	return d, act
}

// execute runs an admitted decision through the guardrails and its
// executor and returns its audit record and the observation, when one was
// made. retry is true when the decision is one in force being tried again
// (see reconcile). A replica decision stays in force (a.goals) when a
// bounded step was applied or a timing guardrail deferred it, in enforce
// mode only: dry-run changes nothing, so a retry would only repeat itself.
func (a *Actuator) execute(ctx context.Context, d *proto.Decision, now time.Time, retry bool) (*proto.Action, *Observation) {
	act := &proto.Action{DecisionId: d.GetId(), Kind: d.GetKind(), Target: d.GetTarget()}
	rule := a.cfg.rule(d.GetRule())
	act.Mode = string(rule.Mode)
	// A decision replaces the one in force for its target; the one in
	// force is kept again below when it must be.
	delete(a.goals, d.GetTarget())
	if a.kill.Load() || a.killFile() {
		return refused(act, GuardKillSwitch, "kill switch is on"), nil
	}
	if rule.Mode == ModeOff {
		return refused(act, GuardModeOff, "mode is off"), nil
	}
	if d.GetKind() == proto.KindAlert {
		act.Outcome = proto.OutcomeNoop
		act.Error = "alerts change nothing"
		return act, nil
	}
	if !slices.Contains(proto.Kinds, d.GetKind()) {
		return refused(act, GuardUnknownKind, "unknown kind %q", d.GetKind()), nil
	}
	if g, why := a.static(d, rule, now); g != "" {
		return refused(act, g, "%s", why), nil
	}
	ex := a.executor(d.GetKind())
	if ex == nil {
		if rule.Mode != ModeEnforce {
			// `augur run` without a cluster: dry-run means "say what would
			// be done", which needs no API to answer.
			act.Outcome = proto.OutcomeDryRun
			act.Error = fmt.Sprintf("no executor configured for %s: recorded only", d.GetKind())
			act.After = desiredState(d)
			return act, nil
		}
		return refused(act, GuardNoExecutor, "no executor configured for %s", d.GetKind()), nil
	}
	obs, err := ex.Observe(ctx, d)
	if err != nil {
		return a.failure(act, err), nil
	}
	act.Before = obs.Before
	if obs.Holds {
		act.Outcome = proto.OutcomeNoop
		act.After = obs.Before
		return act, &obs
	}
	enforce := rule.Mode == ModeEnforce
	if g, why := a.dynamic(d, rule, &obs, now, retry); g != "" {
		if !deferrable(g) {
			return refused(act, g, "%s", why), &obs
		}
		return a.deferred(act, d, g, why, now, enforce), &obs
	}
	if rule.RequireApproval || (a.cfg.ZonalShiftApproval && d.GetKind() == proto.KindZonalShift) {
		act.Outcome = proto.OutcomePendingApproval
		act.Guardrail = GuardApproval
		act.Error = "human approval required: intent recorded, nothing applied"
		return act, &obs
	}
	if g, why := a.rateLimit(now); g != "" {
		return a.deferred(act, d, g, why, now, enforce), &obs
	}
	step := d
	want := d.GetDesired().GetReplicas()
	if replicaKind(d.GetKind()) {
		if to := a.bound(obs.Replicas, want); to != want {
			step = gproto.Clone(d).(*proto.Decision)
			step.Desired.Replicas = to
		}
	}
	after, err := ex.Apply(ctx, step, obs, !enforce)
	if err != nil {
		return a.failure(act, err), &obs
	}
	act.After = after
	act.Outcome = proto.OutcomeApplied
	if !enforce {
		act.Outcome = proto.OutcomeDryRun
	}
	if step != d {
		act.Guardrail = GuardMaxStep
		act.Error = fmt.Sprintf("bounded step %d -> %d toward %d (max step %.0f%%): the decision stays in force until reached or expired",
			obs.Replicas, step.GetDesired().GetReplicas(), want, a.cfg.MaxStep*100)
		if act.After == nil {
			act.After = map[string]string{}
		}
		act.After["goal"] = strconv.Itoa(int(want))
		if enforce {
			a.goals[d.GetTarget()] = &goal{d: d, next: now.Add(a.cfg.RetryInterval), deferred: true}
		}
	}
	a.record(step, &obs, now)
	return act, &obs
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

// deferred records a decision held back by a timing guardrail and, in
// enforce mode, keeps it in force for reconcile to try again.
func (a *Actuator) deferred(act *proto.Action, d *proto.Decision, guardrail, why string, now time.Time, enforce bool) *proto.Action {
	act.Outcome = proto.OutcomeDeferred
	act.Guardrail = guardrail
	act.Error = why
	if enforce {
		act.Error += ": the decision stays in force and is tried again until it expires"
		a.goals[d.GetTarget()] = &goal{d: d, next: now.Add(a.cfg.RetryInterval), deferred: true}
	}
	return act
}

// bound returns the replicas one step may reach from cur toward want:
// at most MaxStep of cur (at least one replica) either way.
func (a *Actuator) bound(cur, want int32) int32 {
	step := max(1, int32(math.Ceil(float64(cur)*a.cfg.MaxStep)))
	return min(max(want, cur-step), cur+step)
}

// goal is a replica decision in force: a bounded step of it was applied,
// or a timing guardrail deferred it. It stays until its target is reached,
// it expires, or a newer decision for the same target replaces it.
type goal struct {
	d        *proto.Decision
	next     time.Time // the next try, not before
	deferred bool      // a record already says the decision is in force
}

// Reconcile tries the decisions in force whose next try is due, in target
// order, and returns the audit records of what changed: a further step,
// the goal reached or refused, or the decision expired before its target
// was reached. A try deferred again leaves no record (the first deferral
// has one). Run and RunSession call it at least every RetryInterval.
func (a *Actuator) Reconcile(ctx context.Context) []*proto.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	var out []*proto.Action
	for _, target := range slices.Sorted(maps.Keys(a.goals)) {
		g := a.goals[target]
		if now.Before(g.next) {
			continue
		}
		d := g.d
		if exp := d.GetExpiresAt().AsTime(); !now.Before(exp) {
			delete(a.goals, target)
			act := &proto.Action{DecisionId: d.GetId(), Kind: d.GetKind(), Target: target, Mode: string(a.cfg.rule(d.GetRule()).Mode),
				Outcome: proto.OutcomeExpired, Guardrail: GuardExpired,
				Error: fmt.Sprintf("in force until %s and not reached: %d replicas decided", exp.UTC().Format(time.RFC3339), d.GetDesired().GetReplicas())}
			out = append(out, a.finish(ctx, act, d, nil, now))
			continue
		}
		act, obs := a.execute(ctx, d, now, true)
		if act.GetOutcome() == proto.OutcomeDeferred && g.deferred {
			continue // still held back: nothing new to record
		}
		out = append(out, a.finish(ctx, act, d, obs, now))
	}
	return out
}

// InForce returns how many decisions are in force (being reached in steps
// or deferred), for tests and the gauge.
func (a *Actuator) InForce() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.goals)
}

// failure maps an executor error to the audit record: a *Refusal refuses,
// anything else fails.
func (a *Actuator) failure(act *proto.Action, err error) *proto.Action {
	var r *Refusal
	if errors.As(err, &r) {
		return refused(act, r.Guardrail, "%s", r.Reason)
	}
	act.Outcome = proto.OutcomeFailed
	act.Error = err.Error()
	return act
}

func (a *Actuator) verify(d *proto.Decision) bool {
	for _, k := range a.cfg.DecisionKeys {
		if proto.Verify(d, k) == nil {
			return true
		}
	}
	return false
}

func (a *Actuator) killFile() bool {
	if a.cfg.KillSwitchFile == "" {
		return false
	}
	_, err := os.Stat(a.cfg.KillSwitchFile)
	return err == nil
}

// remember adds id to the replay set, dropping expired ids first and the
// soonest-expiring ones when still full. An expired id needs no memory: its
// decision is refused as expired anyway.
func (a *Actuator) remember(id string, exp, now time.Time) {
	if len(a.seen) >= a.cfg.SeenCapacity {
		for k, e := range a.seen {
			if !now.Before(e) {
				delete(a.seen, k)
			}
		}
		for len(a.seen) >= a.cfg.SeenCapacity {
			var first string
			var fe time.Time
			for k, e := range a.seen {
				if first == "" || e.Before(fe) {
					first, fe = k, e
				}
			}
			delete(a.seen, first)
		}
	}
	a.seen[id] = exp
}

// replicaKind reports whether kind changes a replica count.
func replicaKind(kind string) bool {
	return kind == proto.KindScale || kind == proto.KindSetHPAMin || kind == proto.KindReserveCapacity
}

// static runs the guardrails that need no observation.
func (a *Actuator) static(d *proto.Decision, rule Rule, now time.Time) (string, string) {
	ch := d.GetDesired()
	switch d.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
		obj := ch.GetObject()
		// A reserve_capacity decision may name no object: the executor's
		// configured placeholder is meant.
		if d.GetKind() != proto.KindReserveCapacity && (obj.GetName() == "" || obj.GetNamespace() == "") {
			return GuardInvalid, "decision names no object"
		}
		if ns := obj.GetNamespace(); ns != "" {
			if slices.Contains(a.cfg.DenyNamespaces, ns) {
				return GuardNamespaceDenied, fmt.Sprintf("namespace %s is on the deny list", ns)
			}
			if len(a.cfg.AllowNamespaces) > 0 && !slices.Contains(a.cfg.AllowNamespaces, ns) {
				return GuardNamespaceNotAllow, fmt.Sprintf("namespace %s is not on the allow list", ns)
			}
		}
		if obj.GetKind() == "StatefulSet" && !rule.AllowStatefulSets {
			return GuardStatefulSet, fmt.Sprintf("rule %q has not opted in to StatefulSets", d.GetRule())
		}
		n := ch.GetReplicas()
		minR := rule.MinReplicas
		if d.GetKind() == proto.KindReserveCapacity {
			minR = 0 // a placeholder may go to zero
		}
		if n < minR {
			return GuardMinReplicas, fmt.Sprintf("replicas %d below minimum %d", n, minR)
		}
		if n > rule.MaxReplicas {
			return GuardMaxReplicas, fmt.Sprintf("replicas %d above maximum %d", n, rule.MaxReplicas)
		}
	case proto.KindTaintNode, proto.KindUntaintNode:
		if ch.GetNode() == "" || ch.GetTaint().GetKey() == "" {
			return GuardInvalid, "decision names no node or taint"
		}
		switch ch.GetTaint().GetEffect() {
		case "NoSchedule", "NoExecute", "PreferNoSchedule":
		default:
			return GuardInvalid, fmt.Sprintf("taint effect %q", ch.GetTaint().GetEffect())
		}
		if d.GetKind() == proto.KindUntaintNode {
			if at, ok := a.nodes[ch.GetNode()]; ok && now.Sub(at) < a.cfg.UntaintHoldDown {
				return GuardUntaintHoldDown, fmt.Sprintf("node %s tainted %v ago, hold-down %v", ch.GetNode(), now.Sub(at), a.cfg.UntaintHoldDown)
			}
		}
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		zs := ch.GetZonalShift()
		if zs.GetResourceIdentifier() == "" {
			return GuardInvalid, "decision names no resource"
		}
		if d.GetKind() == proto.KindZonalShift {
			if zs.GetAwayFrom() == "" {
				return GuardInvalid, "decision names no zone"
			}
			e := time.Duration(zs.GetExpiresInSeconds()) * time.Second
			if e <= 0 || e > a.cfg.MaxZonalShiftExpiry {
				return GuardZonalExpiry, fmt.Sprintf("expiry %v not in (0, %v]", e, a.cfg.MaxZonalShiftExpiry)
			}
		}
	}
	return "", ""
}

// dynamic runs the guardrails that compare the decision with what was
// observed and with recent history.
//
// retry is true for a decision in force tried again: its recommendation is
// already in the stabilization window.
func (a *Actuator) dynamic(d *proto.Decision, rule Rule, obs *Observation, now time.Time, retry bool) (string, string) {
	ch := d.GetDesired()
	switch {
	case replicaKind(d.GetKind()):
		if obs.Kind == "StatefulSet" && !rule.AllowStatefulSets {
			return GuardStatefulSet, fmt.Sprintf("rule %q has not opted in to StatefulSets", d.GetRule())
		}
		want, cur := ch.GetReplicas(), obs.Replicas
		ts := a.target(d.GetTarget())
		if !retry {
			ts.recs = append(ts.recs, rec{now, want})
		}
		ts.recs = slices.DeleteFunc(ts.recs, func(r rec) bool { return now.Sub(r.at) > a.cfg.ScaleDownStabilization })
		if want > cur && !ts.lastUp.IsZero() && now.Sub(ts.lastUp) < a.cfg.CooldownUp {
			return GuardCooldownUp, fmt.Sprintf("last scale-up %v ago, cooldown %v", now.Sub(ts.lastUp), a.cfg.CooldownUp)
		}
		if want < cur {
			if !ts.lastChange.IsZero() && now.Sub(ts.lastChange) < a.cfg.CooldownDown {
				return GuardCooldownDown, fmt.Sprintf("last scale change %v ago, cooldown %v", now.Sub(ts.lastChange), a.cfg.CooldownDown)
			}
			for _, r := range ts.recs {
				if r.replicas > want {
					return GuardStabilization, fmt.Sprintf("a decision %v ago asked for %d replicas, stabilization window %v", now.Sub(r.at), r.replicas, a.cfg.ScaleDownStabilization)
				}
			}
		}
	case d.GetKind() == proto.KindTaintNode:
		a.taints = slices.DeleteFunc(a.taints, func(t time.Time) bool { return now.Sub(t) > a.cfg.NodeWindow })
		if obs.TaintedNodes+1 > a.cfg.MaxNodeActions {
			return GuardBlastRadius, fmt.Sprintf("%d nodes already tainted by augur, limit %d", obs.TaintedNodes, a.cfg.MaxNodeActions)
		}
		if len(a.taints)+1 > a.cfg.MaxNodeActions {
			return GuardBlastRadius, fmt.Sprintf("%d node actions in the last %v, limit %d", len(a.taints), a.cfg.NodeWindow, a.cfg.MaxNodeActions)
		}
		if obs.Nodes > 0 && float64(obs.TaintedNodes+1)/float64(obs.Nodes) > a.cfg.MaxNodeShare &&
			obs.TaintedNodes > 0 { // the first node is always allowed: a breaker, not a ban
			return GuardBlastRadius, fmt.Sprintf("%d of %d nodes would be tainted, share limit %.0f%%", obs.TaintedNodes+1, obs.Nodes, a.cfg.MaxNodeShare*100)
		}
	case d.GetKind() == proto.KindZonalShift:
		zs := ch.GetZonalShift()
		away := map[string]bool{zs.GetAwayFrom(): true}
		for _, s := range obs.Shifts {
			if s.AwayFrom != zs.GetAwayFrom() {
				return GuardZonalOneAtATime, fmt.Sprintf("shift %s already moves traffic away from %s", s.ID, s.AwayFrom)
			}
			away[s.AwayFrom] = true
		}
		healthy := 0
		for _, z := range obs.Zones {
			if !away[z] {
				healthy++
			}
		}
		if !slices.Contains(obs.Zones, zs.GetAwayFrom()) {
			return GuardInvalid, fmt.Sprintf("zone %s is not one of the resource's zones %v", zs.GetAwayFrom(), obs.Zones)
		}
		if healthy < a.cfg.MinHealthyZones {
			return GuardZonalHealthyZones, fmt.Sprintf("shifting away from %s leaves %d healthy zones of %v, minimum %d", zs.GetAwayFrom(), healthy, obs.Zones, a.cfg.MinHealthyZones)
		}
	}
	return "", ""
}

func (a *Actuator) target(t string) *targetState {
	ts := a.targets[t]
	if ts == nil {
		ts = &targetState{}
		a.targets[t] = ts
	}
	return ts
}

// rateLimit refuses when RateLimit changes happened in the last RateWindow.
func (a *Actuator) rateLimit(now time.Time) (string, string) {
	a.changes = slices.DeleteFunc(a.changes, func(t time.Time) bool { return now.Sub(t) >= a.cfg.RateWindow })
	if len(a.changes) >= a.cfg.RateLimit {
		return GuardRateLimit, fmt.Sprintf("%d changes in the last %v, limit %d", len(a.changes), a.cfg.RateWindow, a.cfg.RateLimit)
	}
	return "", ""
}

// record remembers an applied (or dry-run) change for the cooldowns, the
// rate limit and the blast radius. Dry-run changes count too, so that
// dry-run shows what enforce would do.
func (a *Actuator) record(d *proto.Decision, obs *Observation, now time.Time) {
	a.changes = append(a.changes, now)
	switch d.GetKind() {
	case proto.KindTaintNode:
		a.taints = append(a.taints, now)
		a.nodes[d.GetDesired().GetNode()] = now
	case proto.KindUntaintNode:
		delete(a.nodes, d.GetDesired().GetNode())
	}
	if replicaKind(d.GetKind()) {
		ts := a.target(d.GetTarget())
		if d.GetDesired().GetReplicas() > obs.Replicas {
			ts.lastUp = now
		}
		ts.lastChange = now
	}
}

// updateGauges keeps the tainted-nodes and active-zonal-shifts gauges at the
// last observed values, corrected by the change just made.
func (a *Actuator) updateGauges(d *proto.Decision, act *proto.Action, obs *Observation) {
	applied := act.GetOutcome() == proto.OutcomeApplied
	switch d.GetKind() {
	case proto.KindTaintNode, proto.KindUntaintNode:
		n := obs.TaintedNodes
		if applied && d.GetKind() == proto.KindTaintNode {
			n++
		} else if applied {
			n = max(0, n-1)
		}
		a.m.taintedNodes.Set(float64(n))
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		n := len(obs.Shifts)
		if applied && d.GetKind() == proto.KindZonalShift && n == 0 {
			n = 1
		} else if applied && d.GetKind() == proto.KindCancelZonalShift {
			n = max(0, n-1)
		}
		a.shifts[d.GetDesired().GetZonalShift().GetResourceIdentifier()] = n
		total := 0
		for _, v := range a.shifts {
			total += v
		}
		a.m.zonalShifts.Set(float64(total))
	}
}

// desiredState describes what a decision asks for, for audit records of
// dry runs that had no executor to ask.
func desiredState(d *proto.Decision) map[string]string {
	ch := d.GetDesired()
	out := map[string]string{}
	switch d.GetKind() {
	case proto.KindScale, proto.KindReserveCapacity, proto.KindSetHPAMin:
		out["replicas"] = strconv.Itoa(int(ch.GetReplicas()))
	case proto.KindTaintNode, proto.KindUntaintNode:
		out["node"] = ch.GetNode()
		out["taint"] = ch.GetTaint().GetKey() + ":" + ch.GetTaint().GetEffect()
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		out["resource"] = ch.GetZonalShift().GetResourceIdentifier()
		out["away_from"] = ch.GetZonalShift().GetAwayFrom()
	}
	return out
}
