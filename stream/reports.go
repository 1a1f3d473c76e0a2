package stream

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
)

// reportLookback is how far back in augur.actions a starting member reads
// the actuators' reports: enough to cover any decision still in force.
const reportLookback = time.Hour

// report is what the actuators last said about one replica target.
type report struct {
	// decisionID is the decision the report is about.
	decisionID string
	// replicas is the value the decision changes (spec replicas, the HPA's
	// minReplicas, the placeholder's replicas) as observed: after the
	// change when one was made, before it otherwise; 0 when the actuator
	// did not look (a refusal before observing, an expiry).
	replicas int32
	// applied is true when the decision, or a bounded step of it, holds:
	// outcome applied, dry_run or noop.
	applied bool
}

// reports is what the actuators last reported about each replica target,
// read from augur.actions. The stream cannot see the workloads; without a
// report it takes its last decision as applied. Safe for concurrent use:
// every shard reads it, the follower writes it.
type reports struct {
	mu sync.RWMutex
	m  map[string]report
}

func newReports() *reports { return &reports{m: map[string]report{}} }

// get returns the last report about target.
func (r *reports) get(target string) (report, bool) {
	if r == nil {
		return report{}, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	rep, ok := r.m[target]
	return rep, ok
}

// add takes one audit record; records about other kinds are ignored.
// Records of one target are keyed alike, so they arrive in order.
func (r *reports) add(a *proto.Action) {
	switch a.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
	default:
		return
	}
	if a.GetTarget() == "" || a.GetDecisionId() == "" {
		return
	}
	rep := report{decisionID: a.GetDecisionId()}
	state := a.GetBefore()
	switch a.GetOutcome() {
	case proto.OutcomeApplied, proto.OutcomeDryRun, proto.OutcomeNoop:
		rep.applied = true
		state = a.GetAfter()
	case proto.OutcomeDuplicate:
		return // says nothing about the target
	}
	if n, err := strconv.ParseInt(state["replicas"], 10, 32); err == nil && n > 0 {
		rep.replicas = int32(n)
	}
	r.mu.Lock()
	r.m[a.GetTarget()] = rep
	r.mu.Unlock()
}

// followActions reads the committed audit records of augur.actions, from
// reportLookback ago, into s.env.reports until ctx ends. A failure to read
// only leaves the stream on its own belief, so it is logged, not returned.
func (s *Stream) followActions(ctx context.Context) {
	c := &s.cfg
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumeTopics(c.ActionsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-reportLookback).UnixMilli())),
	}, c.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		s.log.Warn("follow actuator reports", "topic", c.ActionsTopic, "err", err)
		return
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("fetch actuator reports", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			a, err := proto.UnmarshalAction(rec.Value)
			if err != nil {
				s.m.badReports.Inc()
				return
			}
			s.env.reports.add(a)
		})
	}
}
