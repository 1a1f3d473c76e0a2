package stream

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

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
//
// The stream never sees a sample far in the future: augur ingest refuses
// one more than limits.max_future_skew past its clock. A Replayer told the
// replay's clock (SetNow) drops such a sample too, counted as Future:
// applied, it moved the partition's newest time years ahead, and every
// later sample was late against the watermark and dropped.
type Replayer struct {
	sh     *shard
	wm     int64 // watermark of the current batch: as of the last Advance
	limit  int64 // latest sample time accepted: the clock plus ReplayMaxFutureSkew
	future uint64
	ts     []int64 // scratch: a series' samples within limit
	vs     []float64
}

// ReplayMaxFutureSkew is how far past the replay's clock (SetNow) a sample
// may be: augur ingest's default limits.max_future_skew
// (ingest.DefaultMaxFutureSkew; the stream does not import the receiver,
// so cmd/augur's TestReplayDropsWhatIngestRefuses holds the two equal).
const ReplayMaxFutureSkew = 10 * time.Minute

// ReplayStats counts what a Replayer did with the samples fed to it.
type ReplayStats struct {
	Samples    uint64 // applied
	Late       uint64 // behind the watermark, or older than their series' last
	Duplicates uint64 // their series' last again (a retried request)
	// Future were more than ReplayMaxFutureSkew past the replay's clock,
	// dropped as augur ingest refuses them (too_far_in_future).
	Future uint64
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
	return &Replayer{sh: newShard(0, e), wm: math.MinInt64, limit: math.MaxInt64}, nil
}

// SetNow sets the replay's clock, unix ms: the time at which the samples
// Added next arrive, as augur ingest's clock would read it when remote
// write sent them. Samples more than ReplayMaxFutureSkew past it are
// dropped and counted (ReplayStats.Future), as the receiver refuses them.
// Until SetNow is called no sample is too far ahead.
func (r *Replayer) SetNow(now int64) {
	skew := ReplayMaxFutureSkew.Milliseconds()
	if now > math.MaxInt64-skew {
		r.limit = math.MaxInt64
		return
	}
	r.limit = now + skew
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
	if j := slices.IndexFunc(ts, func(t int64) bool { return t > r.limit }); j >= 0 {
		r.ts, r.vs = append(r.ts[:0], ts[:j]...), append(r.vs[:0], vs[:j]...)
		for ; j < len(ts); j++ {
			if ts[j] > r.limit {
				r.future++
				continue
			}
			r.ts, r.vs = append(r.ts, ts[j]), append(r.vs, vs[j])
		}
		if len(r.ts) == 0 {
			return nil // as if never sent: no series made of it
		}
		ts, vs = r.ts, r.vs
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

// Stats returns how many samples were applied, and how many were dropped
// and why.
func (r *Replayer) Stats() ReplayStats {
	s := r.sh.stats
	return ReplayStats{Samples: s.samples, Late: s.late, Duplicates: s.duplicates, Future: r.future}
}
