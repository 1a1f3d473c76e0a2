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
// observed, count for nothing, as they changed nothing. What each record
// says the try did (triedFrom) is applied as commit applies it
// (memory.apply), to a fresh memory merged into the actuator's (merge).
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
// the consumer group recalls what the replica before it did. A replica
// given partitions while it runs recalls again (RebalanceOptions).
func (a *Actuator) Recall(ctx context.Context, conn []kgo.Opt) (int, error) {
	back := max(a.cfg.MaxDecisionTTL, a.cfg.CooldownUp, a.cfg.CooldownDown, a.cfg.ScaleDownStabilization,
		a.cfg.RateWindow, a.cfg.NodeWindow, a.cfg.UntaintHoldDown)
	began, since := time.Now(), a.cfg.Now().Add(-back)
	var got []tried
	n, err := a.recall(ctx, conn, since, &got)
	// The tries are applied in the order commit applied them: records of
	// one target or node share a partition and are read in the order
	// they were written; across partitions their times order them.
	slices.SortStableFunc(got, func(x, y tried) int { return x.at.Compare(y.at) })
	recalled := newMemory()
	for _, tr := range got {
		recalled.apply(tr, &a.cfg)
	}
	a.mu.Lock()
	targets := a.merge(&recalled, a.cfg.Now(), &a.cfg)
	a.mu.Unlock()
	a.recalled.Store(true)
	if err == nil {
		a.log.Info("decisions and target memory recalled from the audit records", "topic", a.cfg.ActionsTopic, "since", since,
			"decisions", n, "targets", targets, "duration", time.Since(began).Round(time.Millisecond))
	}
	return n, err
}

// recall is Recall's read of the audit records written since. What the
// tries they record did goes to got.
func (a *Actuator) recall(ctx context.Context, conn []kgo.Opt, since time.Time, got *[]tried) (int, error) {
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
// into the replay set (a decision's own record only) and what the try did
// into got (triedFrom). It reports whether it recalled a decision id.
func (a *Actuator) recallRecord(r *kgo.Record, got *[]tried) bool {
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
	*got = append(*got, triedFrom(act, at, record == RecordDecision))
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.cfg.Now()
	// The decision expired at most MaxDecisionTTL after it was admitted.
	exp := at.Add(a.cfg.MaxDecisionTTL)
	if record != RecordDecision || act.GetDecisionId() == "" || !now.Before(exp) {
		return false
	}
	a.remember(act.GetDecisionId(), exp, now)
	return true
}

// triedFrom reads back from its audit record act, written at at, what a
// try did (commit's attempt.tried). first is true for the record of a
// decision read from augur.decisions, false for a later try of a decision
// in force (Reconcile).
//
// The record of every replica decision the executor observed names the
// replicas decided (after["goal"]) next to those observed
// (before["replicas"]); that of every observed node decision its node
// (after["node"]) (execute). A change was made when the record says
// applied (enforce) or dry_run, a dry run without an executor to ask
// excepted (its error ends in recordedOnly): it was never observed. A
// replica decision's first try enters the stabilization window when it
// was observed (it has a goal) and not refused as a StatefulSet; a change
// raised the replicas when its goal is above those observed (a bounded
// step goes the way of its goal).
func triedFrom(act *proto.Action, at time.Time, first bool) tried {
	tr := tried{at: at, kind: act.GetKind(), target: act.GetTarget(), node: act.GetAfter()["node"]}
	switch act.GetOutcome() {
	case proto.OutcomeApplied:
		tr.enforce, tr.changed = true, true
	case proto.OutcomeDryRun:
		tr.changed = !strings.HasSuffix(act.GetError(), recordedOnly)
	}
	goal, err := strconv.ParseInt(act.GetAfter()["goal"], 10, 32)
	if err != nil || !replicaKind(tr.kind) {
		return tr
	}
	tr.goal = int32(goal)
	tr.window = first && act.GetGuardrail() != GuardStatefulSet
	before, err := strconv.ParseInt(act.GetBefore()["replicas"], 10, 32)
	tr.raised = tr.changed && err == nil && goal > before
	return tr
}

// merge adds to m what got remembers, then drops what the windows no
// longer hold at now. Each target keeps the later of the two last changes
// and last scale-ups and the stabilization records of both, in time order,
// one recorded by both kept once. The budgets keep the changes and taints
// at one instant (changes made at once, as with a clock that does not
// move, are told apart only by their number) as many times as m or got
// has them, whichever has more: recalled twice, or recalled by the
// actuator that made them, they count once. Each node keeps the later of
// its last taints or untaints (m's at the same time). It returns how many
// targets have a memory.
func (m *memory) merge(got *memory, now time.Time, cfg *Config) int {
	for _, p := range []struct{ have, got *budget }{{&m.live, &got.live}, {&m.dry, &got.dry}} {
		p.have.changes = mergeTimes(p.have.changes, p.got.changes)
		p.have.taints = mergeTimes(p.have.taints, p.got.taints)
		for node, c := range p.got.nodes {
			h, ok := p.have.nodes[node]
			if !ok || c.at.After(h.at) {
				p.have.nodes[node] = c
			}
		}
		p.have.prune(now, cfg)
	}
	for target, g := range got.targets {
		ts := m.targets[target]
		if g.lastUp.After(ts.lastUp) {
			ts.lastUp = g.lastUp
		}
		if g.lastChange.After(ts.lastChange) {
			ts.lastChange = g.lastChange
		}
		ts.recs = append(ts.recs, g.recs...)
		m.targets[target] = ts
	}
	n := 0
	for target, ts := range m.targets {
		ts.prune(now, cfg)
		slices.SortFunc(ts.recs, func(x, y rec) int { return cmp.Or(x.at.Compare(y.at), cmp.Compare(x.replicas, y.replicas)) })
		ts.recs = slices.CompactFunc(ts.recs, func(x, y rec) bool { return x.at.Equal(y.at) && x.replicas == y.replicas })
		m.targets[target] = ts
		if len(ts.recs) > 0 || !ts.lastUp.IsZero() || !ts.lastChange.IsZero() {
			n++
		}
	}
	return n
}

// mergeTimes returns have with the times of got it has fewer of, in time
// order.
func mergeTimes(have, got []time.Time) []time.Time {
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
	slices.SortStableFunc(have, func(x, y time.Time) int { return x.Compare(y) })
	return have
}
