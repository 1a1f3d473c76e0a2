package stream

import (
	"errors"
	"fmt"
	"math"

	"github.com/augur-ops/augur/proto"
)

// Replayer runs the stream's per-partition logic on samples handed to it,
// without Kafka: the same series state, windows, forecaster banks,
// scalers and detectors a stream member runs, in one shard that owns every
// series. augur whatif and bench/scalesim replay history through it, so
// what they report is what the stream would have decided.
//
// Feed samples in event-time order across series, as remote write does:
// all series' samples up to some time, then Advance. Samples older than the
// watermark (latest time minus AllowedLateness) are late and dropped, as in
// the stream. Without augur.actions the stream takes its own decisions as
// applied.
type Replayer struct {
	sh *shard
	wm int64 // watermark of the current batch: as of the last Advance
}

// Replayed is a decision and the event time at which the stream made it:
// the latest sample time when the window it closes was closed (its
// CreatedAt is the window's end).
type Replayed struct {
	Decision *proto.Decision
	MadeAt   int64 // unix ms
}

// NewReplayer returns a Replayer for cfg's rules. Only Rules, SigningKey,
// AllowedLateness, IdleTimeout and NewGroupDetector are used; the Kafka
// fields need not be set.
func NewReplayer(cfg Config) (*Replayer, error) {
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []string{"replay"} // not dialled
	}
	cfg.ActionsTopic = "-"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e, err := newEnv(&cfg)
	if err != nil {
		return nil, err
	}
	return &Replayer{sh: newShard(0, e), wm: math.MinInt64}, nil
}

// Add feeds samples of one series: labels sorted by name (the __name__
// label included), metricType as in remote-write metadata ("counter",
// "gauge", ...; "" infers counters from the name as the stream does), and
// timestamps (unix ms, ascending) with their values. The samples Added
// between two Advance calls are one batch (one samples record): samples
// are late against the watermark as of the batch's start.
func (r *Replayer) Add(tenant string, lbls []proto.Label, metricType string, ts []int64, vs []float64) error {
	if len(ts) != len(vs) {
		return fmt.Errorf("replay: %d timestamps and %d values", len(ts), len(vs))
	}
	for i := 1; i < len(lbls); i++ {
		if lbls[i-1].Name >= lbls[i].Name {
			return errors.New("replay: labels not sorted by name, or repeated")
		}
	}
	r.sh.series(tenant, lbls, metricType, r.wm, ts, vs)
	return nil
}

// Advance ends a batch: it closes the windows the watermark has passed, as
// the stream does after each record.
func (r *Replayer) Advance() {
	r.sh.stats.records++
	r.sh.advance()
	r.wm = r.sh.watermark()
}

// Flush closes the windows holding samples, as if the watermark moved one
// window (the longest of the rules') past the latest sample, and returns
// that sample's time (math.MinInt64 when none was fed).
func (r *Replayer) Flush() int64 {
	if !r.sh.hasMax {
		return math.MinInt64
	}
	last, longest := r.sh.maxTs, int64(0)
	for i := range r.sh.env.rules.Len() {
		longest = max(longest, r.sh.env.windowMs(i))
	}
	r.sh.maxTs = last + r.sh.env.lateness + longest
	r.sh.nextSweep = math.MaxInt64 // an idle sweep would only forget series
	r.sh.advance()
	r.sh.maxTs = last
	return last
}

// Drain returns the decisions and forecast points made since the last
// Drain. Decisions are signed as the stream signs them.
func (r *Replayer) Drain() ([]Replayed, []*proto.ForecastPoint) {
	at := r.sh.maxTs
	out := make([]Replayed, len(r.sh.out))
	for i, d := range r.sh.out {
		out[i] = Replayed{Decision: d, MadeAt: at}
	}
	pts := r.sh.points
	r.sh.out, r.sh.points = nil, nil
	return out, pts
}

// Stats returns how many samples were applied and how many were dropped as
// late or duplicate.
func (r *Replayer) Stats() (samples, late, duplicates uint64) {
	s := r.sh.stats
	return s.samples, s.late, s.duplicates
}
