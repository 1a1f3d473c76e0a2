package actuators

import (
	"context"
	"errors"
	"fmt"
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

// Recall adds to the replay set every decision the audit records of the
// last MaxDecisionTTL say an actuator admitted (any outcome past the
// signature, expiry and replay checks), so that a decision applied before
// a restart, or by another replica, is refused as a duplicate when its
// record is written to augur.decisions again. No admitted decision can
// still be valid after MaxDecisionTTL (longer expiries are refused), so
// older records are not read. conn are the connection options (seed
// brokers, TLS, SASL). It returns how many decision ids it recalled; an
// actions topic that does not exist yet recalls none.
//
// Call it before each Run, RunClient or RunSession: a replica taking over
// the consumer group recalls what the replica before it did.
func (a *Actuator) Recall(ctx context.Context, conn []kgo.Opt) (int, error) {
	began, since := time.Now(), a.cfg.Now().Add(-a.cfg.MaxDecisionTTL)
	n, err := a.recall(ctx, conn, since)
	if err == nil {
		a.log.Info("decisions recalled from the audit records", "topic", a.cfg.ActionsTopic, "since", since, "decisions", n,
			"duration", time.Since(began).Round(time.Millisecond))
	}
	return n, err
}

// recall is Recall's read of the audit records written since.
func (a *Actuator) recall(ctx context.Context, conn []kgo.Opt, since time.Time) (int, error) {
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
			if !r.Attrs.IsControl() && a.recallRecord(r) {
				n++
			}
		})
	}
	return n, nil
}

// recallRecord remembers the decision of one audit record when it is the
// record of an admitted decision, and reports whether it was.
func (a *Actuator) recallRecord(r *kgo.Record) bool {
	record := ""
	for _, h := range r.Headers {
		if h.Key == RecordHeader {
			record = string(h.Value)
		}
	}
	if record != RecordDecision {
		return false
	}
	act, err := proto.UnmarshalAction(r.Value)
	if err != nil || act.GetDecisionId() == "" || !verifiedOutcome(act) {
		return false
	}
	at := r.Timestamp
	if act.GetAt() != nil {
		at = act.GetAt().AsTime()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// The decision expired at most MaxDecisionTTL after it was admitted.
	a.remember(act.GetDecisionId(), at.Add(a.cfg.MaxDecisionTTL), a.cfg.Now())
	return true
}
