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
	"strings"
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
	// recalled is set by Recall and cleared by the next partition
	// assignment (partitionsAssigned).
	recalled atomic.Bool

	// mu guards the guardrail state below. Handle is called from Run's one
	// goroutine, but tests and HandleDecision callers may call it directly.
	mu   sync.Mutex
	seen map[string]time.Time // decision id -> decision expiry
	// memory is what the guardrails remember of the tries before: only
	// commit and Recall change it.
	memory
	shifts map[string]int // resource -> active zonal shifts last seen
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

// SessionTimeout is how long the group waits for a silent actuator before
// giving its partitions to another replica: a replica killed with a
// decision in hand held it for franz-go's default 45 s
// (TestTakeoverAfterCrash). 10 s, as the stream's; heartbeats go every 3 s.
const SessionTimeout = 10 * time.Second

// ClientOptions returns the kgo options the Actuator needs on its client:
// the consumer group, the decisions topic, manual commits (offsets commit
// only after the audit record is written), blocking rebalances while a poll
// is being handled, and read-committed fetches (decisions are written in
// transactions), and a SessionTimeout shorter than franz-go's default.
// Add seed brokers, TLS and SASL.
func ClientOptions(cfg Config, group string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.SessionTimeout(SessionTimeout),
		kgo.ConsumeTopics(cfg.DecisionsTopic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
}

// RebalanceOptions returns the kgo options for a replica that shares its
// consumer group with others (without leader election). When the group
// takes partitions away (revoked or lost), a forgets its decisions in
// force: another replica now reads their decisions, and a's timer would
// otherwise go on stepping a target another replica decides for, under
// cooldowns only a knows. When the group gives a partitions while it runs
// (a replica left or died), a recalls (Recall, with conn) before it reads
// them: the replica before it may have changed their targets a moment
// ago. Add them to a client built with ClientOptions or
// TransactionalOptions.
func (a *Actuator) RebalanceOptions(conn []kgo.Opt) []kgo.Opt {
	assigned := func(ctx context.Context, _ *kgo.Client, got map[string][]int32) { a.partitionsAssigned(ctx, conn, got) }
	return []kgo.Opt{kgo.OnPartitionsAssigned(assigned), kgo.OnPartitionsRevoked(a.partitionsGone), kgo.OnPartitionsLost(a.partitionsGone)}
}

// partitionsAssigned recalls unless a Recall ran since the last
// assignment: the first assignment of a run follows the Recall made
// before it. Its own Recall covers this assignment only, not the next.
// The group's callback can only log a failure; the replica then knows of
// the targets it takes over what it did itself.
func (a *Actuator) partitionsAssigned(ctx context.Context, conn []kgo.Opt, got map[string][]int32) {
	if a.recalled.Swap(false) {
		return
	}
	_, err := a.Recall(ctx, conn)
	a.recalled.Store(false)
	if err != nil {
		a.log.Warn("partitions given: recall failed, the guardrails know only what this replica did", "partitions", got, "err", err)
	}
}

// partitionsGone forgets every decision in force and every record saved
// from an aborted transaction. The decisions of the partitions kept are
// not lost: the stream decides again when the replicas it reads back are
// not what it decided (stream/reports.go).
func (a *Actuator) partitionsGone(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
	a.mu.Lock()
	n := len(a.goals)
	clear(a.goals)
	clear(a.pending)
	a.mu.Unlock()
	if n > 0 {
		a.log.Info("partitions taken away: decisions in force forgotten", "in_force", n, "partitions", gone)
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
		seen: map[string]time.Time{}, memory: newMemory(), shifts: map[string]int{}, pending: map[string]*proto.Action{}, goals: map[string]*goal{}}
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
	return a.loop(ctx, plainLog{a.cl})
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
	return a.loop(ctx, plainLog{cl})
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
	return a.loop(ctx, txnLog{sess, a.log})
}

// auditLog is what a run polls decisions from and writes a batch's audit
// records to: a client that writes them and then commits the offsets
// (plainLog), or a transactional session that commits both at once
// (txnLog).
type auditLog interface {
	PollRecords(ctx context.Context, maxPollRecords int) kgo.Fetches
	AllowRebalance()
	// write writes out and commits the offsets of recs. committed is
	// false when nothing was committed: the decisions are seen again.
	write(ctx context.Context, recs, out []*kgo.Record) (committed bool, err error)
}

// loop is Run's loop: poll, handle the batch and the decisions in force
// that are due, write their audit records, until ctx ends or the client is
// closed.
func (a *Actuator) loop(ctx context.Context, l auditLog) error {
	for {
		recs, closed, err := a.poll(ctx, l.PollRecords)
		if closed {
			return nil
		}
		if err == nil && (len(recs) > 0 || a.due()) {
			err = a.writeBatch(ctx, l, recs)
		}
		// Polls block rebalances (ClientOptions) until the batch is
		// written.
		l.AllowRebalance()
		if err != nil {
			return err
		}
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

// writeBatch handles recs and the decisions in force whose try is due, and
// writes their audit records to l.
func (a *Actuator) writeBatch(ctx context.Context, l auditLog, recs []*kgo.Record) error {
	// The batch in hand is finished when ctx is cancelled (a shutdown, a
	// lost lease): handled with ctx, every decision after the cancel
	// failed with "context canceled" without an API call, and its offset
	// was committed. FinishGrace bounds how long that may take.
	hctx, stop := finishing(ctx, FinishGrace)
	defer stop()
	out, acts, err := a.audit(hctx, recs)
	if err != nil {
		return err
	}
	// The actions were taken: their records must be written even when
	// ctx was cancelled mid-batch.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	committed, err := l.write(wctx, recs, out)
	a.mu.Lock()
	for i, act := range acts {
		switch {
		case committed:
			delete(a.pending, act.GetDecisionId())
		case i >= len(recs):
			// A step taken while reconciling has no input record to
			// bring it back: it is written with the next batch.
			a.unwritten = append(a.unwritten, act)
		case verifiedOutcome(act) && act.GetDecisionId() != "":
			// Only a decision that passed the signature, expiry and
			// replay checks: a forged copy carrying its id must not
			// replace its record.
			a.pending[act.GetDecisionId()] = act
		}
	}
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if !committed {
		a.log.Warn("transaction aborted, decisions will be seen again", "records", len(out))
	}
	return nil
}

// FinishGrace is how long the batch in hand may still take after the
// actuator's context is cancelled.
const FinishGrace = 30 * time.Second

// finishing returns a context that is not cancelled with ctx but grace
// after it.
func finishing(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return hctx, func() { stop(); cancel() }
}

// txnLog writes a batch in one Kafka transaction.
type txnLog struct {
	*kgo.GroupTransactSession
	log *slog.Logger
}

func (l txnLog) write(ctx context.Context, _, out []*kgo.Record) (bool, error) {
	if err := l.Begin(); err != nil {
		return false, fmt.Errorf("begin transaction: %w", err)
	}
	try := kgo.TryCommit
	if err := l.ProduceSync(ctx, out...).FirstErr(); err != nil {
		l.log.Warn("write audit records", "err", err)
		try = kgo.TryAbort
	}
	committed, err := l.End(ctx, try)
	if err != nil {
		return committed, fmt.Errorf("end transaction of %d audit records: %w", len(out), err)
	}
	return committed, nil
}

// plainLog writes a batch's audit records, then commits its offsets.
type plainLog struct{ *kgo.Client }

func (l plainLog) write(ctx context.Context, recs, out []*kgo.Record) (bool, error) {
	if err := l.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return false, fmt.Errorf("write %d audit records: %w", len(out), err)
	}
	if len(recs) == 0 {
		return true, nil
	}
	if err := l.CommitRecords(ctx, recs...); err != nil {
		// The audit records exist; a restart sees the decisions again and
		// records them as no-ops or duplicates, never acts twice.
		return true, fmt.Errorf("commit decisions offsets: %w", err)
	}
	return true, nil
}

// The header RecordHeader of every audit record says which of the two it
// is: the one record of a decision read from augur.decisions
// (RecordDecision; exactly one per decision, transactions make sure of
// it), or a later try of a decision in force (RecordInForce: a further
// bounded step, the goal reached or refused, the decision expired).
const (
	RecordHeader   = "augur-record"
	RecordDecision = "decision"
	RecordInForce  = "in-force"
)

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
		key, record := []byte(act.GetTarget()), RecordInForce
		if i < len(recs) {
			key, record = recs[i].Key, RecordDecision
		}
		out = append(out, &kgo.Record{Topic: a.cfg.ActionsTopic, Key: key, Value: v,
			Headers: []kgo.RecordHeader{{Key: RecordHeader, Value: []byte(record)}}})
	}
	return out, acts, nil
}

// Handle runs one record value of augur.decisions through verification,
// guardrails and execution and returns its audit record. It never returns
// nil. It is safe for concurrent use but serializes decisions.
func (a *Actuator) Handle(ctx context.Context, value []byte) *proto.Action {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	d, act, again := a.admit(value, now)
	switch {
	case again:
		return act // the record of an aborted transaction, already counted
	case d == nil:
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
	// A bounded step (guardrail max_step) is applied or dry-run, not
	// stopped: dry-run must count what enforce counts.
	if g := act.GetGuardrail(); g != "" && act.GetOutcome() != proto.OutcomeApplied && act.GetOutcome() != proto.OutcomeDryRun {
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
// and the audit record that ends it. again is true when the decision was
// seen in an aborted transaction: act is its record, to be written again
// unchanged.
func (a *Actuator) admit(value []byte, now time.Time) (d *proto.Decision, act *proto.Action, again bool) {
	d, err := proto.UnmarshalDecision(value)
	if err != nil {
		return nil, refused(&proto.Action{}, GuardMalformed, "%v", err), false
	}
	act = &proto.Action{DecisionId: d.GetId(), Kind: d.GetKind(), Target: d.GetTarget()}
	if !a.verify(d) {
		return nil, refused(act, GuardSignature, "signature does not verify under any decision key (%s): altered after signing, or signed with another key (augur stream logs the fingerprint of its key at start)", a.keyPrints()), false
	}
	if p, ok := a.pending[d.GetId()]; ok {
		// Once: a second record with the id in the same batch is a
		// duplicate again, as it was before the abort.
		delete(a.pending, d.GetId())
		return nil, p, true
	}
	exp := d.GetExpiresAt()
	if exp == nil || !now.Before(exp.AsTime()) {
		act.Outcome = proto.OutcomeExpired
		act.Guardrail = GuardExpired
		act.Error = "decision expired or has no expiry"
		return nil, act, false
	}
	if exp.AsTime().Sub(now) > a.cfg.MaxDecisionTTL {
		return nil, refused(act, GuardMaxDecisionTTL, "decision expires in %v, more than max_decision_ttl %v",
			exp.AsTime().Sub(now).Round(time.Second), a.cfg.MaxDecisionTTL), false
	}
	if _, dup := a.seen[d.GetId()]; dup || d.GetId() == "" {
		act.Outcome = proto.OutcomeDuplicate
		act.Guardrail = GuardDuplicate
		act.Error = "decision id seen before"
		return nil, act, false
	}
	a.remember(d.GetId(), exp.AsTime(), now)
	return d, act, false
}

// execute tries an admitted decision (try) and records what the try did
// (commit). It returns the audit record and the observation, when one was
// made. retry is true when the decision is one in force being tried again
// (see Reconcile).
func (a *Actuator) execute(ctx context.Context, d *proto.Decision, now time.Time, retry bool) (*proto.Action, *Observation) {
	t := &attempt{d: d, rule: a.cfg.rule(d.GetRule()), now: now, retry: retry}
	act := a.try(ctx, t)
	if (replicaKind(d.GetKind()) || nodeKind(d.GetKind())) && t.obs != nil {
		// The record of every observed replica decision names the
		// replicas decided, whatever it ends in, so that Recall can
		// rebuild from the records what commit records for the target:
		// the stabilization window and, with the replicas observed
		// (before), whether a change raised them. The record of every
		// observed node decision names its node, for the taint hold-down
		// (an executor's before and after need not). A no-op's after is
		// the observation's before: copied, not written into.
		after := maps.Clone(act.After)
		if after == nil {
			after = map[string]string{}
		}
		if nodeKind(d.GetKind()) {
			after["node"] = d.GetDesired().GetNode()
		} else {
			after["goal"] = strconv.Itoa(int(d.GetDesired().GetReplicas()))
		}
		act.After = after
	}
	a.commit(t, act)
	return act, t.obs
}

// try runs the guardrails (unobservedGuardrails, Observe,
// observedGuardrails, approval, rateLimit) and, when they all pass, applies
// the decision or a bounded step toward it. It changes nothing in the
// actuator's memory: it says what to record in t (step, keep). A replica
// decision stays in force (keep) when a bounded step was applied, a
// timing guardrail deferred it or the API failed, in enforce mode only:
// dry-run changes nothing, so a retry would only repeat itself.
func (a *Actuator) try(ctx context.Context, t *attempt) *proto.Action {
	d := t.d
	act := &proto.Action{DecisionId: d.GetId(), Kind: d.GetKind(), Target: d.GetTarget(), Mode: string(t.rule.Mode)}
	enforce := t.rule.Mode == ModeEnforce
	if g, why := a.check(unobservedGuardrails, t); g != "" {
		return refused(act, g, "%s", why)
	}
	if d.GetKind() == proto.KindAlert {
		act.Outcome = proto.OutcomeNoop
		act.Error = "alerts change nothing"
		return act
	}
	ex := a.executor(d.GetKind())
	if ex == nil {
		if !enforce {
			// `augur run` without a cluster: dry-run means "say what would
			// be done", which needs no API to answer.
			act.Outcome = proto.OutcomeDryRun
			act.Error = fmt.Sprintf("no executor configured for %s: %s", d.GetKind(), recordedOnly)
			act.After = desiredState(d)
			return act
		}
		return refused(act, GuardNoExecutor, "no executor configured for %s", d.GetKind())
	}
	// A replica decision whose try failed (an API error, not a refusal,
	// and not a missing object) stays in force in enforce mode and is
	// tried again until it expires: one timeout in the middle of bounded
	// steps ended it there.
	failed := func(err error) *proto.Action {
		act := a.failure(act, err)
		if act.GetOutcome() == proto.OutcomeFailed && enforce && replicaKind(d.GetKind()) && !errors.Is(err, ErrNotFound) {
			act.Error += ": the decision stays in force and is tried again until it expires"
			t.keep = true
		}
		return act
	}
	obs, err := ex.Observe(ctx, d)
	if err != nil {
		return failed(err)
	}
	t.obs = &obs
	act.Before = obs.Before
	if obs.Holds {
		act.Outcome = proto.OutcomeNoop
		act.After = obs.Before
		return act
	}
	g, why := a.check(observedGuardrails, t)
	if g != "" && !deferrable(g) {
		return refused(act, g, "%s", why)
	}
	if g == "" && (t.rule.RequireApproval || (a.cfg.ZonalShiftApproval && d.GetKind() == proto.KindZonalShift)) {
		act.Outcome = proto.OutcomePendingApproval
		act.Guardrail = GuardApproval
		act.Error = "human approval required: intent recorded, nothing applied"
		return act
	}
	if g == "" {
		g, why = rateLimit(a, t)
	}
	if g != "" {
		act.Outcome = proto.OutcomeDeferred
		act.Guardrail = g
		act.Error = why
		if enforce {
			act.Error += ": the decision stays in force and is tried again until it expires"
			t.keep = true
		}
		return act
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
		return failed(err)
	}
	t.step = step
	act.After = after
	act.Outcome = proto.OutcomeApplied
	if !enforce {
		act.Outcome = proto.OutcomeDryRun
	}
	if step != d {
		act.Guardrail = GuardMaxStep
		act.Error = fmt.Sprintf("bounded step %d -> %d toward %d (max step %.0f%%): the decision stays in force until reached or expired",
			obs.Replicas, step.GetDesired().GetReplicas(), want, a.cfg.MaxStep*100)
		t.keep = enforce // after["goal"] is the decided replicas (execute)
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
// a timing guardrail deferred it, or its try failed. It stays until its target is reached,
// it expires, or a newer decision for the same target replaces it.
type goal struct {
	d    *proto.Decision
	next time.Time // the next try, not before
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
		if act.GetOutcome() == proto.OutcomeDeferred {
			continue // still held back: the first deferral has a record
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

// keyPrints names the decision keys by fingerprint (proto.KeyFingerprint),
// as augur stream and augur act log them at start.
func (a *Actuator) keyPrints() string {
	fps := make([]string, len(a.cfg.DecisionKeys))
	for i, k := range a.cfg.DecisionKeys {
		fps[i] = proto.KeyFingerprint(k)
	}
	return "fingerprint " + strings.Join(fps, ", ")
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

// updateGauges keeps the tainted-nodes and active-zonal-shifts gauges at the
// last observed values, corrected by the change just made.
func (a *Actuator) updateGauges(d *proto.Decision, act *proto.Action, obs *Observation) {
	applied := act.GetOutcome() == proto.OutcomeApplied
	switch d.GetKind() {
	case proto.KindTaintNode, proto.KindUntaintNode:
		n := obs.TaintedNodes
		if applied && d.GetKind() == proto.KindTaintNode && !obs.NodeTainted {
			n++
		} else if applied && d.GetKind() == proto.KindUntaintNode && !obs.NodeKeepsTaint {
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

// recordedOnly ends the error of the audit record of a dry run that had
// no executor to ask: nothing was observed or changed (Recall counts no
// change for it).
const recordedOnly = "recorded only"

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
