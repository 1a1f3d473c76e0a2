package whatif

import (
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
	"github.com/augur-ops/augur/stream"
)

// Replayed is what the stream decided for one rule over its history.
type Replayed struct {
	Decisions []stream.Replayed
	Points    []*proto.ForecastPoint // scaling rules: one per closed window
	Samples   uint64                 // samples the stream applied
	Dropped   uint64                 // samples dropped as late or repeated
	// Future counts the samples dropped as too far in the future: more
	// than stream.ReplayMaxFutureSkew past the replay's clock when they
	// arrived, as augur ingest refuses them.
	Future uint64
}

// Replay runs the stream, holding only rule and starting empty (a new
// deployment), over series, in event-time order: at every step, each
// series' samples up to then, then the windows the watermark has passed
// are closed, as a stream member does after each remote-write request.
// variant, when set, adjusts the scaler (stream.Config.ScalingVariant).
//
// The step's time is the replay's clock (stream.Replayer.SetNow), and it
// stops at end, the end of the history (where Prometheus was read up to):
// a sample more than stream.ReplayMaxFutureSkew past the clock when it
// arrives is dropped and counted, as augur ingest drops it, and does not
// move the stream's clock. A series' samples arrive in the order listed,
// so one listed before older samples (a timestamp years ahead in the
// middle of a series) arrives with them; one past end plus the skew never
// comes due within the history, and is dropped at its end.
func Replay(rule *rules.Rule, series []Series, end time.Time, step time.Duration, variant func(*scaling.Config)) (*Replayed, error) {
	set, err := rules.Compile(rules.File{Rules: []rules.Rule{*rule}})
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", rule.Name, err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	rp, err := stream.NewReplayer(stream.Config{Rules: set, SigningKey: key, ScalingVariant: variant})
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", rule.Name, err)
	}
	if end.IsZero() {
		return nil, fmt.Errorf("rule %s: replay: the history's end is not set", rule.Name)
	}
	out := &Replayed{}
	endMs := end.UnixMilli()
	horizon := endMs + stream.ReplayMaxFutureSkew.Milliseconds()
	// due[i][k] is when sample k of series i arrives: the earliest time of
	// it and the samples listed after it (nil when a series is in order,
	// as Prometheus returns them: each sample arrives at its own time).
	due := make([][]int64, len(series))
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range series {
		s := &series[i]
		if !slices.IsSorted(s.Ts) {
			d := make([]int64, len(s.Ts))
			m := int64(math.MaxInt64)
			for k := len(s.Ts) - 1; k >= 0; k-- {
				m = min(m, s.Ts[k])
				d[k] = m
			}
			due[i] = d
		}
		for _, t := range s.Ts {
			if t <= horizon {
				first, last = min(first, t), max(last, t)
			}
		}
	}
	drain := func() {
		ds, pts := rp.Drain()
		out.Decisions = append(out.Decisions, ds...)
		out.Points = append(out.Points, pts...)
	}
	tenant := rule.Tenant
	next := make([]int, len(series))
	// feed hands the replayer each series' samples due by t.
	feed := func(t int64) error {
		for i := range series {
			s := &series[i]
			j := next[i]
			k := j
			for k < len(s.Ts) && (s.Ts[k] <= t || due[i] != nil && due[i][k] <= t) {
				k++
			}
			if k > j {
				if err := rp.Add(tenant, s.Labels, s.Type, s.Ts[j:k], s.Vs[j:k]); err != nil {
					return fmt.Errorf("rule %s: %w", rule.Name, err)
				}
				next[i] = k
			}
		}
		return nil
	}
	st := max(step.Milliseconds(), 1)
	for t := first; first <= last && t < last+st; t += st {
		rp.SetNow(min(t, endMs))
		if err := feed(t); err != nil {
			return nil, err
		}
		rp.Advance()
		drain()
	}
	// What never came due is past end plus the skew: sent at the
	// history's end, the receiver refuses it.
	rp.SetNow(endMs)
	if err := feed(math.MaxInt64); err != nil {
		return nil, err
	}
	rp.Flush()
	drain()
	stats := rp.Stats()
	out.Samples, out.Dropped, out.Future = stats.Samples, stats.Late+stats.Duplicates, stats.Future
	return out, nil
}
