package actuators

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/kafkaconn"
	"github.com/augur-ops/augur/proto"
)

// recallIdle ends a recall when no audit record arrives for this long, a
// bound for a partition whose last offset never comes back (deleted by
// retention during the read).
const recallIdle = 3 * time.Second

// Recall reads back the audit records of augur.actions that an actuator
// (this one before a restart, or another replica) wrote recently and
// restores from them the memory the guardrails read:
//
//   - the replay set: every decision the records of the last
//     MaxDecisionTTL say was admitted (any outcome past the signature,
//     expiry and replay checks), so that a decision acted on before is
//     refused as a duplicate when its record is written to
//     augur.decisions again. No admitted decision can still be valid after
//     MaxDecisionTTL (longer expiries are refused);
//   - each target's cooldowns and stabilization window, as commit built
//     them: the time of the last change applied or dry-run (the first try
//     of a decision or a later step of one in force), of the last such
//     change that raised the replicas, and the replicas every decision
//     asked for on its first observed try (after["goal"] with the
//     replicas observed, before["replicas"]), a refusal as a StatefulSet
//     excepted;
//   - the budgets of enforce and of dry-run rules (budgetFor), as commit
//     built them: the time of every change applied (enforce) or dry-run
//     by an executor, of any kind, for the rate limit; of every taint
//     among them for the blast radius' node window; and, node by node,
//     the last such taint (after["node"]) unless a later untaint took it
//     away, for the untaint hold-down.
//
// Records of decisions that failed those checks, or that were not
// observed, count for nothing, as they changed nothing.
//
// It reads back as far as the longest of MaxDecisionTTL, CooldownUp,
// CooldownDown, ScaleDownStabilization, RateWindow, NodeWindow and
// UntaintHoldDown; nothing older can matter.
// conn are the connection options (seed brokers, TLS, SASL). It returns
// how many decision ids it recalled; an actions topic that does not exist
// yet recalls none. What is recalled adds to what the actuator remembers
// already.
//
// Call it before each Run, RunClient or RunSession: a replica taking over
// the consumer group recalls what the replica before it did.
func (a *Actuator) Recall(ctx context.Context, conn []kgo.Opt) (int, error) {
	back := max(a.cfg.MaxDecisionTTL, a.cfg.CooldownUp, a.cfg.CooldownDown, a.cfg.ScaleDownStabilization,
		a.cfg.RateWindow, a.cfg.NodeWindow, a.cfg.UntaintHoldDown)
	began, since := time.Now(), a.cfg.Now().Add(-back)
	var got recalledBudgets
	n, err := a.recall(ctx, conn, since, &got)
	a.mu.Lock()
	targets := a.settleRecalled(a.cfg.Now(), &got)
	a.mu.Unlock()
	if err == nil {
		a.log.Info("decisions and target memory recalled from the audit records", "topic", a.cfg.ActionsTopic, "since", since,
			"decisions", n, "targets", targets, "duration", time.Since(began).Round(time.Millisecond))
	}
	return n, err
}

// recall is Recall's read of the audit records written since. What they
// say of the budgets goes to got.
func (a *Actuator) recall(ctx context.Context, conn []kgo.Opt, since time.Time, got *recalledBudgets) (int, error) {
	// Control records (transaction markers) are kept so that the last
	// offset below the listed end is always seen: with transactions it is
	// a commit or abort marker, not an audit record.
	cl, err := kgo.NewClient(append(conn[:len(conn):len(conn)], kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return 0, fmt.Errorf("recall decisions: kafka client: %w", err)
	}
	defer cl.Close()
	topic := a.cfg.ActionsTopic
	adm := kadm.NewClient(cl)
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if err != nil {
		return 0, kafkaconn.ACLHint(fmt.Errorf("recall decisions from %s: list offsets: %w", topic, err))
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, kafkaconn.ACLHint(fmt.Errorf("recall decisions from %s: list end offsets: %w", topic, err))
	}
	from := map[int32]kgo.Offset{}
	last := map[int32]int64{} // partition -> offset of its last record
	starts.Each(func(o kadm.ListedOffset) {
		if end, ok := ends.Lookup(topic, o.Partition); ok && o.Offset < end.Offset {
			from[o.Partition] = kgo.NewOffset().At(o.Offset)
			last[o.Partition] = end.Offset - 1
		}
	})
	if len(from) == 0 {
		return 0, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	n := 0
	for len(last) > 0 {
		pctx, cancel := context.WithTimeout(ctx, recallIdle)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return n, fmt.Errorf("recall decisions from %s: %w", topic, ctx.Err())
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return n, kafkaconn.ACLHint(fmt.Errorf("recall decisions from %s: %w", topic, ferr))
		}
		if fetches.NumRecords() == 0 {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= last[r.Partition] {
				delete(last, r.Partition)
			}
			if !r.Attrs.IsControl() && a.recallRecord(r, got) {
				n++
			}
		})
	}
	return n, nil
}

// recallRecord takes one audit record: the id of an admitted decision
// into the replay set (a decision's own record only), what the try
// changed in its target's memory (recallTarget) and in its budget (into
// got: recalledBudgets.add). It reports whether it recalled a decision id.
func (a *Actuator) recallRecord(r *kgo.Record, got *recalledBudgets) bool {
	record := ""
	for _, h := range r.Headers {
		if h.Key == RecordHeader {
			record = string(h.Value)
		}
	}
	if record != RecordDecision && record != RecordInForce {
		return false
	}
	act, err := proto.UnmarshalAction(r.Value)
	if err != nil || !verifiedOutcome(act) {
		return false
	}
	at := r.Timestamp
	if act.GetAt() != nil {
		at = act.GetAt().AsTime()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	a.recallTarget(act, at, record == RecordDecision)
	got.add(act, at)
	// The decision expired at most MaxDecisionTTL after it was admitted.
	exp := at.Add(a.cfg.MaxDecisionTTL)
	if record != RecordDecision || act.GetDecisionId() == "" || !now.Before(exp) {
		return false
	}
	a.remember(act.GetDecisionId(), exp, now)
	return true
}

// recallTarget puts into its target's memory what commit put there when
// the audit record act was written at at. first is true for the record of
// a decision read from augur.decisions, false for a later try of a
// decision in force (Reconcile).
//
// after["goal"] is on the record of every replica decision the executor
// observed (execute), before["replicas"] the replicas observed. As commit
// does: a first observed try puts its goal in the stabilization window
// unless it was refused as a StatefulSet; a change applied or dry-run
// (every such record was observed: one without an executor to ask has no
// goal) is the target's last change, and its last scale-up when it raised
// the replicas (a bounded step goes the way of its goal).
func (a *Actuator) recallTarget(act *proto.Action, at time.Time, first bool) {
	target := act.GetTarget()
	if !replicaKind(act.GetKind()) || target == "" {
		return
	}
	goal, err := strconv.ParseInt(act.GetAfter()["goal"], 10, 32)
	if err != nil {
		return // not observed: commit recorded nothing
	}
	ts := a.targets[target]
	if first && act.GetGuardrail() != GuardStatefulSet {
		ts.recs = append(ts.recs, rec{at, int32(goal)})
	}
	switch act.GetOutcome() {
	case proto.OutcomeApplied, proto.OutcomeDryRun:
		if at.After(ts.lastChange) {
			ts.lastChange = at
		}
		before, err := strconv.ParseInt(act.GetBefore()["replicas"], 10, 32)
		if err == nil && goal > before && at.After(ts.lastUp) {
			ts.lastUp = at
		}
	}
	a.targets[target] = ts
}

// recalledBudgets is what one Recall read back for the budgets of enforce
// (live) and dry-run (dry) rules.
type recalledBudgets struct{ live, dry recalledBudget }

// recalledBudget is what one Recall read back for a budget: the times of
// the changes and of the taints, and each node's last taint or untaint.
type recalledBudget struct {
	changes, taints []time.Time
	nodes           map[string]nodeChange
}

type nodeChange struct {
	at      time.Time
	tainted bool // a taint, or an untaint
}

// add takes what commit put into a budget for the try whose audit record
// act was written at at. commit counts a try that made a change (its
// step): every applied one, in the enforce budget, and every dry-run one
// but a dry run without an executor (try: it was never observed; its
// record's error ends in recordedOnly), in the dry-run one. Every
// such change counts for the rate limit, a taint for the node window
// too, and a taint or an untaint is the last one of its node so far when
// no record read before was later (records of one node are read in the
// order they were written when they share a partition; across partitions
// their times order them).
func (g *recalledBudgets) add(act *proto.Action, at time.Time) {
	var b *recalledBudget
	switch act.GetOutcome() {
	case proto.OutcomeApplied:
		b = &g.live
	case proto.OutcomeDryRun:
		if strings.HasSuffix(act.GetError(), recordedOnly) {
			return // no executor: nothing changed
		}
		b = &g.dry
	default:
		return
	}
	b.changes = append(b.changes, at)
	kind, node := act.GetKind(), act.GetAfter()["node"]
	if kind == proto.KindTaintNode {
		b.taints = append(b.taints, at)
	}
	if !nodeKind(kind) || node == "" {
		return
	}
	if last, ok := b.nodes[node]; ok && at.Before(last.at) {
		return
	}
	if b.nodes == nil {
		b.nodes = map[string]nodeChange{}
	}
	b.nodes[node] = nodeChange{at, kind == proto.KindTaintNode}
}

// settle merges got into b and drops what commit drops: changes RateWindow
// old or older, taints older than NodeWindow. The changes at one instant
// (changes made at once, as with a clock that does not move, are told
// apart only by their number) are kept as many times as b or got has
// them, whichever has more: recalled twice, or recalled by the actuator
// that made them, they count once. A node's last taint recalled is kept
// unless b remembers a later one; its last untaint forgets the node
// unless b remembers a taint after it. a.mu must be held.
func (a *Actuator) settle(b *budget, got *recalledBudget, now time.Time) {
	b.changes = mergeTimes(b.changes, got.changes, func(c time.Time) bool { return now.Sub(c) >= a.cfg.RateWindow })
	b.taints = mergeTimes(b.taints, got.taints, func(c time.Time) bool { return now.Sub(c) > a.cfg.NodeWindow })
	for node, c := range got.nodes {
		at, ok := b.nodes[node]
		switch {
		case c.tainted && (!ok || c.at.After(at)):
			b.nodes[node] = c.at
		case !c.tainted && ok && !at.After(c.at):
			delete(b.nodes, node)
		}
	}
}

// mergeTimes returns have with the times of got it has fewer of, in time
// order, without those old says are too old.
func mergeTimes(have, got []time.Time, old func(time.Time) bool) []time.Time {
	n := map[int64]int{}
	for _, t := range have {
		n[t.UnixNano()]++
	}
	for _, t := range got {
		if n[t.UnixNano()] > 0 {
			n[t.UnixNano()]--
			continue
		}
		have = append(have, t)
	}
	have = slices.DeleteFunc(have, old)
	slices.SortStableFunc(have, func(x, y time.Time) int { return x.Compare(y) })
	return have
}

// settleRecalled puts every target's stabilization records in time order
// (the partitions of augur.actions are read side by side, and a record
// recalled twice, or already remembered, is kept once) and drops those
// older than the window, as commit does, and merges the budgets recalled
// (settle). It returns how many targets have a memory. a.mu must be held.
func (a *Actuator) settleRecalled(now time.Time, got *recalledBudgets) int {
	a.settle(&a.live, &got.live, now)
	a.settle(&a.dry, &got.dry, now)
	n := 0
	for target, ts := range a.targets {
		ts.recs = slices.DeleteFunc(ts.recs, func(r rec) bool { return now.Sub(r.at) > a.cfg.ScaleDownStabilization })
		slices.SortFunc(ts.recs, func(x, y rec) int { return cmp.Or(x.at.Compare(y.at), cmp.Compare(x.replicas, y.replicas)) })
		ts.recs = slices.CompactFunc(ts.recs, func(x, y rec) bool { return x.at.Equal(y.at) && x.replicas == y.replicas })
		a.targets[target] = ts
		if len(ts.recs) > 0 || !ts.lastUp.IsZero() || !ts.lastChange.IsZero() {
			n++
		}
	}
	return n
}
