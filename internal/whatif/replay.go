package whatif

import (
	"crypto/rand"
	"fmt"
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
}

// Replay runs the stream, holding only rule and starting empty (a new
// deployment), over series, in event-time order: at every step, each
// series' samples up to then, then the windows the watermark has passed
// are closed, as a stream member does after each remote-write request.
// variant, when set, adjusts the scaler (stream.Config.ScalingVariant).
func Replay(rule *rules.Rule, series []Series, step time.Duration, variant func(*scaling.Config)) (*Replayed, error) {
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
	first, last := span(series)
	out := &Replayed{}
	if first > last {
		return out, nil
	}
	drain := func() {
		ds, pts := rp.Drain()
		out.Decisions = append(out.Decisions, ds...)
		out.Points = append(out.Points, pts...)
	}
	tenant := rule.Tenant
	next := make([]int, len(series))
	st := max(step.Milliseconds(), 1)
	for t := first; t < last+st; t += st {
		for i := range series {
			s := &series[i]
			j := next[i]
			k := j
			for k < len(s.Ts) && s.Ts[k] <= t {
				k++
			}
			if k > j {
				if err := rp.Add(tenant, s.Labels, s.Type, s.Ts[j:k], s.Vs[j:k]); err != nil {
					return nil, fmt.Errorf("rule %s: %w", rule.Name, err)
				}
				next[i] = k
			}
		}
		rp.Advance()
		drain()
	}
	rp.Flush()
	drain()
	applied, late, dup := rp.Stats()
	out.Samples, out.Dropped = applied, late+dup
	return out, nil
}
