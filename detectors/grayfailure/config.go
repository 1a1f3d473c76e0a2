// Package grayfailure detects an availability zone that is degraded but not
// down (a "gray failure") by comparing each zone with its peers, and decides
// to shift traffic away from it (AWS ARC zonal shift) or, when several zones
// degrade together, to alert instead.
//
// The stream aggregates the samples of one service per window (one minute by
// default) and per zone into a ZoneStats, and calls Detector.Update once per
// closed window with every zone's stats. Update does constant work per zone
// (a handful of zones), allocates nothing on a quiet window and returns
// unsigned decisions; the stream signs them.
//
// Why not z-scores: with three zones the largest z-score of one value against
// the three can never exceed (n-1)/sqrt(n) = 1.41, so "z > 2" never fires.
// The tests used instead work with three zones:
//
//   - latency (mean and p99): the ratio of the zone's value to the median of
//     the OTHER zones' values, with a minimum absolute difference;
//   - errors: a chi-squared goodness-of-fit test of the zone's error count
//     against the count expected from its share of the requests (one degree
//     of freedom, Bonferroni-corrected over the zones), plus the ratio of its
//     error share to the pooled share of the other zones;
//   - packet loss: the ratio to the median of the other zones plus a minimum
//     absolute excess.
//
// Sequential evidence: in each window, for each signal, the zone's log ratio
// to its peers x (gated: a signal with a smaller absolute excess than its
// minimum, or below the operator's limit, counts as x <= 0) is compared with
// ln(ShiftRatio): the zone gains (x - ln ShiftRatio) x seconds of evidence
// (log-ratio-seconds; a window adds at most half the threshold) and loses it
// at the same rate when better, never below zero (a CUSUM). A zone five
// times slower than its peers gains 1.3 per second, twice as slow 0.43, and
// 1.3 times or less nothing. The zone is impaired when a signal's evidence
// reaches its threshold: the larger of MinEvidence and the level the zone's
// own healthy noise crosses falsely once per FalseAlarmDays (Siegmund's
// approximation of a CUSUM's run length, from the mean and variance of the
// zone's increments while healthy, Bonferroni over the signals). So a large
// degradation is acted on within seconds of evidence, a small one later, a
// one-minute blip of one slow pod never, and a noisy zone needs more.
//
// A zonal_shift is decided only when exactly one zone is impaired, no other
// zone is degraded (half its threshold of evidence, or above an absolute
// limit in Required of the last Windows windows) and at least two healthy
// zones remain, none of them worse than the others once the impaired zone
// is left out of the peers (ShiftRatio worse on the window's mean latency,
// error share or packet loss: beside a zone 5x slower, one 2x slower than
// the third is faster than the median of its peers); two or more degraded zones are a regional event and give an
// alert, never a shift, and cancel a shift in force (the other zones are
// no better place). The shift is extended while the zone is measured and
// not yet healthy, and cancelled once it has been healthy for HoldDown; a
// zone drained of its traffic (too few requests to count) is not extended,
// and when its shift expires it is judged on its traffic again. Warnings (a zone
// WarnRatio worse in Required of the last Windows windows) stay m-of-n.
package grayfailure

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxZones is the largest number of zones one Detector tracks. AWS regions
// have at most six zones; the bound keeps per-window work constant.
const MaxZones = 16

// maxWindows is the longest m-of-n history (bits of a uint16).
const maxWindows = 16

// Config configures a Detector. The zero value of each field means its
// default; call Validate (New does) to apply defaults and check ranges.
type Config struct {
	// Rule names the rule in decisions (Decision.Rule). Default
	// "zonal_gray_failure".
	Rule string
	// Resource is the ARC managed resource identifier (the load balancer
	// ARN) shifts apply to. Required. Decisions target
	// "aws/zonalshift/<Resource>".
	Resource string
	// Tenant is copied into decisions. Default empty.
	Tenant string
	// Step is the window length the stream aggregates over: the scrape
	// interval, so that evidence is weighed at every scrape. Default 15s. A
	// gap between two windows counts as windows with no data.
	Step time.Duration
	// WarnRatio: a zone this much worse than its peers (1.2 = 20% worse) in
	// Required of Windows windows raises a warning alert. Default 1.2.
	WarnRatio float64
	// ShiftRatio: a zone no more than this much worse than its peers gains
	// no evidence of impairment. Default 1.3. Must be >= WarnRatio.
	ShiftRatio float64
	// Windows and Required are the m-of-n rule of warnings and of
	// absolute-limit breaches: Required windows among the last Windows.
	// Defaults: five minutes of windows, at most 16 (5 of 1m, 16 of 15s),
	// and three fifths of them (3, 10).
	Windows  int
	Required int
	// FalseAlarmDays is the false-alarm rate the shift threshold is set
	// for: under a zone's own healthy noise, one false impairment per zone
	// per FalseAlarmDays at most. Default 90.
	FalseAlarmDays float64
	// MinEvidence is the least evidence (log-ratio-seconds beyond
	// ShiftRatio) that impairs a zone, whatever its noise: a zone 5x worse
	// than its peers reaches the default 30 in 22 s, 2x worse in 70 s, 1.5x
	// in 210 s.
	MinEvidence float64
	// ErrorShareSmoothing is added to a zone's and its peers' error shares
	// before their ratio, so that 0.5% against 0.1% is not the same
	// evidence as 50% against 10%. Default 0.015: against 0.1% background
	// errors a one-minute 1% burst (a deploy) gains 20 at most (no shift),
	// 5% errors shift on the second window.
	ErrorShareSmoothing float64
	// MinInstances is the number of instances that must report in a zone for
	// its window to count. Default 2. A zone with fewer is neither healthy
	// nor impaired in that window.
	MinInstances int
	// MinRequests is the number of requests per minute a zone must have
	// served in a window for it to count (scaled to the window: 12.5 in
	// 15 s). Default 50.
	MinRequests float64
	// MinRequestsP99 is the number of requests a zone must have served in a
	// window for its p99 latency to be compared (the p99 of 100 requests is
	// the second slowest, mostly noise). Default 1000.
	MinRequestsP99 float64
	// MinLatencyDelta is the smallest latency excess over peers, in seconds,
	// that can make a zone worse than peers, so that a 1 ms service is not
	// shifted for 0.4 ms. Default 0.005.
	MinLatencyDelta float64
	// MinErrorShareDelta is the smallest error-share excess over peers
	// (0.001 = 0.1 percentage point) that can make a zone worse. Default
	// 0.001.
	MinErrorShareDelta float64
	// MinPacketLossDelta is the smallest packet-loss excess over peers
	// (0.01 = 1 percentage point). Default 0.01.
	MinPacketLossDelta float64
	// Significance is the family-wise false-positive rate per window of the
	// chi-squared error test. Default 0.001.
	Significance float64
	// Absolute limits set by the operator; 0 disables each. A zone worse
	// than its peers on a signal with a limit counts (for warnings and
	// shifts) only above the limit, and two or more zones above any limit
	// are a regional event.
	// MeanLatencyLimit and P99LatencyLimit, MaxLatencyLimit are seconds;
	// ErrorShareLimit and PacketLossLimit are shares in [0,1].
	MeanLatencyLimit float64
	P99LatencyLimit  float64
	MaxLatencyLimit  float64
	ErrorShareLimit  float64
	PacketLossLimit  float64
	// ShiftExpiry is the lifetime of a zonal shift at AWS. The detector
	// decides an extension (another zonal_shift) when less than half of it is
	// left and the zone, measured in the window, has not yet been healthy
	// for HoldDown. Default 1h; AWS allows 1m to 3 days.
	ShiftExpiry time.Duration
	// HoldDown is how long a shifted zone must be healthy before the shift is
	// cancelled. Default 15m.
	HoldDown time.Duration
	// DecisionTTL is how long after its window a decision may be applied
	// (Decision.ExpiresAt). Default 5m.
	DecisionTTL time.Duration
}

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	if c.Rule == "" {
		c.Rule = "zonal_gray_failure"
	}
	def := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defDur(&c.Step, 15*time.Second)
	def(&c.WarnRatio, 1.2)
	def(&c.ShiftRatio, 1.3)
	// Five minutes of windows (at most 16), three fifths of them.
	defInt(&c.Windows, int(min(max(math.Round(float64(5*time.Minute)/float64(c.Step)), 1), maxWindows)))
	defInt(&c.Required, (c.Windows*3+4)/5)
	def(&c.FalseAlarmDays, 90)
	def(&c.MinEvidence, 30)
	def(&c.ErrorShareSmoothing, 0.015)
	defInt(&c.MinInstances, 2)
	def(&c.MinRequests, 50)
	def(&c.MinRequestsP99, 1000)
	def(&c.MinLatencyDelta, 0.005)
	def(&c.MinErrorShareDelta, 0.001)
	def(&c.MinPacketLossDelta, 0.01)
	def(&c.Significance, 0.001)
	defDur(&c.ShiftExpiry, time.Hour)
	defDur(&c.HoldDown, 15*time.Minute)
	defDur(&c.DecisionTTL, 5*time.Minute)
}

// Validate fills the zero fields of c with their defaults and checks the
// ranges.
func (c *Config) Validate() error {
	c.defaults()
	if c.Resource == "" {
		return errors.New("grayfailure config: resource is required")
	}
	switch {
	case c.Step < time.Second:
		return fmt.Errorf("grayfailure config: step %v is below 1s", c.Step)
	case c.WarnRatio <= 1 || c.ShiftRatio < c.WarnRatio:
		return fmt.Errorf("grayfailure config: need 1 < warn ratio (%v) <= shift ratio (%v)", c.WarnRatio, c.ShiftRatio)
	case c.Windows < 1 || c.Windows > maxWindows:
		return fmt.Errorf("grayfailure config: windows %d not in [1,%d]", c.Windows, maxWindows)
	case c.Required < 1 || c.Required > c.Windows:
		return fmt.Errorf("grayfailure config: required %d not in [1,windows=%d]", c.Required, c.Windows)
	case c.FalseAlarmDays < 0.01 || c.FalseAlarmDays > 36500:
		return fmt.Errorf("grayfailure config: false alarm days %v not in [0.01,36500]", c.FalseAlarmDays)
	case c.MinEvidence <= 0 || c.ErrorShareSmoothing <= 0 || c.ErrorShareSmoothing > 1:
		return errors.New("grayfailure config: min evidence must be > 0 and error share smoothing in (0,1]")
	case c.MinInstances < 1:
		return fmt.Errorf("grayfailure config: min instances %d below 1", c.MinInstances)
	case c.Significance <= 0 || c.Significance >= 1:
		return fmt.Errorf("grayfailure config: significance %v not in (0,1)", c.Significance)
	case c.MinRequests < 0 || c.MinRequestsP99 < 0 || c.MinLatencyDelta < 0 || c.MinErrorShareDelta < 0 || c.MinPacketLossDelta < 0:
		return errors.New("grayfailure config: minimums must not be negative")
	case c.MeanLatencyLimit < 0 || c.P99LatencyLimit < 0 || c.MaxLatencyLimit < 0 || c.ErrorShareLimit < 0 || c.PacketLossLimit < 0:
		return errors.New("grayfailure config: limits must not be negative")
	case c.ShiftExpiry < time.Minute || c.ShiftExpiry > 72*time.Hour:
		return fmt.Errorf("grayfailure config: shift expiry %v not in [1m,72h] (the AWS range)", c.ShiftExpiry)
	case c.HoldDown < c.Step:
		return fmt.Errorf("grayfailure config: hold-down %v shorter than step %v", c.HoldDown, c.Step)
	case c.DecisionTTL <= 0:
		return fmt.Errorf("grayfailure config: decision ttl %v not positive", c.DecisionTTL)
	}
	return nil
}
