// Package bank runs a small set of forecasters side by side on one workload
// series, scores each of them online at the decision horizon, and serves the
// forecast of the one that has been most accurate recently.
//
// Members: seasonal naive, robust Holt-Winters, the online trend +
// Fourier-seasonality model and local drift (the last value plus the rise
// over the last horizon, carried on). Hourly, daily and weekly seasonality are
// detected from the bank's own coarse history (models/seasonality) when two
// days are known and again every Config.DetectEvery (the two shortest cycles
// found are used: seasonal naive and Holt-Winters keep the shortest, the
// Fourier model fits both); when the served model's
// accuracy (100 - MAPE) falls below Config.AccuracyThreshold and it no
// longer beats the value a horizon ago (MASE 1 or more) the bank refits
// (re-detects seasonality, re-seeds the seasonal profiles, loosens the
// Fourier fit), at most once per Config.RefitCooldown.
//
// A new bank serves seasonal naive, which before any season is found is the
// last value: the other members start from nothing and earn the serving
// only once they are scored at the horizon and beat it, so a new rule's
// forecast follows the load from its first samples; on a load that ramps,
// drift is exact from its second horizon and takes over.
//
// A Bank is not safe for concurrent use: each series has one owner.
package bank

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/augur-ops/augur/models"
	"github.com/augur-ops/augur/models/drift"
	"github.com/augur-ops/augur/models/fourier"
	"github.com/augur-ops/augur/models/holtwinters"
	"github.com/augur-ops/augur/models/seasonal"
	"github.com/augur-ops/augur/models/seasonality"
)

// Config configures a Bank. The zero value of a field means its default.
type Config struct {
	// Step is the sample spacing the models work at. Samples are mapped to
	// the nearest step; a second sample for a step is dropped. Default 1m.
	Step time.Duration
	// Horizon is the decision horizon at which members are scored and
	// chosen. Default 5m; at most MaxHorizon.
	Horizon time.Duration
	// MaxHorizon is the longest horizon a caller will ask for; gaps up to
	// it are filled by interpolation, longer gaps restart the scoring.
	// Default 30m, at most 24h.
	MaxHorizon time.Duration
	// AccuracyThreshold, in percent (100 - MAPE), below which the served
	// model's accuracy triggers a refit, when the model also no longer
	// beats the naive forecast (its MASE is 1 or more). Default 85;
	// negative disables. Many healthy series never reach 85% (MAPE
	// explodes near zero); refitting those every RefitCooldown cost
	// accuracy (bench/RESULTS-forecast.md, "Held out").
	AccuracyThreshold float64
	// ScoreMemory is the time constant of the online scores. Default 6h.
	ScoreMemory time.Duration
	// DetectEvery is how often seasonality is re-detected. Default 24h,
	// or detectSteps steps when that is longer: a detection costs about
	// 0.2 ms (an FFT of the two-week history), which spread over 288
	// samples of a 5-minute series would more than double the bank's cost
	// per sample.
	DetectEvery time.Duration
	// RefitCooldown is the least time between two accuracy-triggered
	// refits. Default 12h.
	RefitCooldown time.Duration
	// NonNegative says the series is never negative (a rate of counters, a
	// count, bytes, replicas): forecasts and their bounds are floored at 0.
	// Default false.
	NonNegative bool
}

// detectSteps is the least number of steps between two scheduled
// seasonality detections by default (a day at 1-minute steps).
const detectSteps = 1440

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Step, time.Minute)
	def(&c.Horizon, 5*time.Minute)
	def(&c.MaxHorizon, 30*time.Minute)
	def(&c.ScoreMemory, 6*time.Hour)
	def(&c.DetectEvery, max(24*time.Hour, detectSteps*c.Step))
	def(&c.RefitCooldown, 12*time.Hour)
	if c.AccuracyThreshold == 0 {
		c.AccuracyThreshold = 85
	}
}

// Validate fills the zero fields of c with their defaults and reports
// whether c is usable.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.Step < time.Second:
		return fmt.Errorf("bank step %v: must be at least 1s", c.Step)
	case c.MaxHorizon > 24*time.Hour || c.MaxHorizon < c.Step:
		return fmt.Errorf("bank max horizon %v: must be between the step and 24h", c.MaxHorizon)
	case c.Horizon < c.Step || c.Horizon > c.MaxHorizon:
		return fmt.Errorf("bank horizon %v: must be between the step and the max horizon %v", c.Horizon, c.MaxHorizon)
	case c.MaxHorizon/c.Step > 1<<14:
		return fmt.Errorf("bank max horizon %v: more than 16384 steps of %v", c.MaxHorizon, c.Step)
	case c.ScoreMemory < c.Step || c.DetectEvery < c.Step || c.RefitCooldown < c.Step:
		return errors.New("bank score memory, detect interval and refit cooldown must be at least one step")
	case c.AccuracyThreshold > 100:
		return fmt.Errorf("bank accuracy threshold %v: at most 100", c.AccuracyThreshold)
	}
	return nil
}

// Member indexes.
const (
	SeasonalNaive = iota
	HoltWinters
	Fourier
	Drift
	// NumMembers is the number of members.
	NumMembers
)

// memberNames are the model names used in evidence and metrics labels.
var memberNames = [NumMembers]string{"seasonal_naive", "holt_winters", "fourier_rls", "drift"}

// MemberNames lists the members' names, indexed by member.
func MemberNames() []string { return memberNames[:] }

// histBucket is the resolution of the history kept for seasonality
// detection and seeding; histLen buckets cover two weeks.
const (
	histBucket = 10 * time.Minute
	histLen    = 2016
)

// Bank is the forecaster bank of one series.
type Bank struct {
	cfg    Config
	stepMs int64
	h      int // decision horizon, steps
	maxH   int // longest horizon, steps
	memory float64

	started bool
	t0      int64 // ms of step 0
	n       int64 // next step index
	lastY   float64
	recent  []float64 // ring of the last h values, index step mod h

	histW     int64     // steps per history bucket
	hist      []float64 // ring of bucket means, NaN when empty
	histB     int64     // bucket index being filled
	histSum   float64
	histCnt   float64
	periods   [2]int64 // active season lengths in steps, 0 = none
	nextCheck int64    // step at which seasonality is next detected
	lastRefit int64
	refits    uint64
	repairs   uint64 // members re-initialised by repair (not checkpointed)
	served    int

	// tr scores the served forecast itself: the bank's intervals are the
	// served member's point with tr's scale and multipliers, so switching
	// members cannot leave the intervals miscalibrated (choosing the member
	// with the smallest recent error favours one whose intervals are, by
	// luck, too narrow).
	tr    models.Tracker
	naive seasonal.Naive
	hw    holtwinters.HoltWinters

	fr    fourier.Fourier
	drift drift.Drift
}

// New returns a Bank for cfg.
func New(cfg Config) (*Bank, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bank{cfg: cfg, stepMs: cfg.Step.Milliseconds()}
	b.h = ceilSteps(cfg.Horizon, cfg.Step)
	b.maxH = ceilSteps(cfg.MaxHorizon, cfg.Step)
	b.memory = float64(cfg.ScoreMemory) / float64(cfg.Step)
	b.reset()
	return b, nil
}

func ceilSteps(d, step time.Duration) int {
	return int((d + step - 1) / step)
}

// reset forgets everything learnt. It also sets what a failed restore may
// have left at other lengths or values (the buffers, the history's bucket
// width), so that the bank is usable after one.
func (b *Bank) reset() {
	b.started, b.n, b.t0, b.lastY = false, 0, 0, 0
	b.recent = slices.Grow(b.recent[:0], b.h)[:b.h]
	clear(b.recent)
	b.histW = max(1, int64(math.Round(float64(histBucket)/float64(b.cfg.Step))))
	b.hist = slices.Grow(b.hist[:0], histLen)[:histLen]
	for i := range b.hist {
		b.hist[i] = math.NaN()
	}
	b.histB, b.histSum, b.histCnt = 0, 0, 0
	b.periods = [2]int64{}
	b.nextCheck = b.stepsOf(seasonality.MinCycles * seasonality.Day)
	b.lastRefit, b.refits, b.repairs = 0, 0, 0
	b.served = SeasonalNaive // the last value, until another member earns it
	b.tr.Init(b.h, b.memory)
	b.configure(false)
}

func (b *Bank) stepsOf(d time.Duration) int64 { return int64(d / b.cfg.Step) }

// hwParams derives per-step Holt-Winters weights from time constants: the
// level forgets with a 20-minute time constant, the trend is damped with a
// 10-minute one, and each seasonal slot keeps about five cycles.
//
// The trend's damping bounds how much the trend can trade with the season:
// with a 1-hour damping the recursion had an eigenvalue outside the unit
// circle (spectral radius 1 + 1.8e-5 at 1-minute steps with a daily season,
// 1 + 3.9e-6 at 5-minute steps), so the season profile and the forecasts
// drifted without bound over months of samples (tenfold in about 90 days
// at 1-minute steps); at 10 minutes the radius is 1 up to rounding (the
// level and the season's mean trade neutrally). TestHoltWintersStaysStable
// runs a year of samples.
func (b *Bank) hwParams(width int) holtwinters.Params {
	step := float64(b.cfg.Step)
	alpha := 1 - math.Exp(-step/float64(20*time.Minute))
	phi := math.Exp(-step / float64(10*time.Minute))
	gamma := 1 - math.Pow(1-0.2, 1/float64(max(width, 1)))
	return holtwinters.Params{Alpha: alpha, Beta: 0.05, Gamma: gamma, Phi: phi, ClipK: 4}
}

// configure (re)initialises the members for b.periods at step b.n. With
// seed, seasonal state is seeded from the history and the members'
// trackers (scores, forecasts in flight) are kept.
func (b *Bank) configure(seed bool) {
	for i := range NumMembers {
		b.initMember(i, seed)
	}
}

// initMember (re)initialises member i for b.periods at step b.n, as
// configure does.
func (b *Bank) initMember(i int, seed bool) {
	short := b.periods[0]
	t := b.tracker(i).Tracker
	kept := *t // Init gives the member a new tracker
	switch i {
	case SeasonalNaive:
		b.naive.Init(int(max(short, 1)), b.h, b.memory, b.n)
		if seed {
			// Without a season too: a season lost leaves the last value,
			// not an empty ring that forecast 0 until the next sample.
			b.naive.Seed(b.histAt)
		}
	case HoltWinters:
		_, width := models.SlotLayout(int(short))
		b.hw.Init(b.hwParams(width), int(short), b.h, b.memory, b.n)
		switch {
		case seed && short > 0:
			b.hw.Seed(b.histAt)
		case seed && b.started:
			b.hw.Start(b.lastY)
		}
	case Drift:
		b.drift.Init(b.h, b.memory, b.lastY)
	default:
		b.fr.Init(b.fourierParams(), b.h, b.memory, b.n)
		if seed {
			for bk := b.histB - histLen; bk < b.histB; bk++ {
				if v, ok := b.histAt(bk * b.histW); ok {
					b.fr.Fit(bk*b.histW+(b.histW-1)/2, v, float64(b.histW))
				}
			}
		}
	}
	if seed {
		*t = kept
		t.Reset()
	}
}

// fourierParams configures the Fourier member for b.periods: a trend in
// days, one day of memory without a season and three with one, 4
// harmonics for cycles under two days and 3 for longer ones.
func (b *Bank) fourierParams() fourier.Params {
	fp := fourier.Params{TrendUnit: b.stepsOf(24 * time.Hour), ClipK: 4, Memory: float64(b.stepsOf(24 * time.Hour))}
	fp.TrendUnit = max(fp.TrendUnit, 1)
	fp.Memory = max(fp.Memory, 2)
	for _, per := range b.periods {
		if per == 0 {
			continue
		}
		k := 3
		if time.Duration(per)*b.cfg.Step < 2*seasonality.Day {
			k = 4
		}
		fp.Periods = append(fp.Periods, int(per))
		fp.Harmonics = append(fp.Harmonics, k)
	}
	if len(fp.Periods) > 0 {
		fp.Memory = float64(max(b.stepsOf(3*24*time.Hour), 2))
	}
	return fp
}

// brokenMASE is the recent MASE at and above which a member counts as
// broken: ten times the error of the value an horizon ago.
const brokenMASE = 10

// repair re-initialises, from the history, every member whose forecast is
// not a finite number or whose recent MASE is brokenMASE or more, and
// reports how many it did. The bank serves the best member and refits
// only when that one's accuracy falls, so without this a member that
// diverged would stay diverged unnoticed. It runs with each scheduled
// detection.
func (b *Bank) repair() int {
	n := 0
	for i := range NumMembers {
		t := b.tracker(i)
		p := b.forecast(i, b.h).Point
		if math.IsNaN(p) || math.IsInf(p, 0) || (t.scoredEnough(b.memory) && t.Scores().MASE >= brokenMASE) {
			b.initMember(i, true)
			n++
		}
	}
	return n
}

// histAt returns the history bucket value covering step q.
func (b *Bank) histAt(q int64) (float64, bool) {
	bk := floorDiv(q, b.histW)
	if bk >= b.histB || bk < b.histB-histLen {
		return 0, false
	}
	v := b.hist[models.FloorMod(bk, histLen)]
	return v, !math.IsNaN(v)
}

func floorDiv(a, m int64) int64 {
	q := a / m
	if (a%m != 0) && ((a < 0) != (m < 0)) {
		q--
	}
	return q
}

// Update feeds the sample (tsMs, v): tsMs is the event time in unix
// milliseconds. It reports false, and changes nothing, when the sample is
// not finite or maps to a step already seen (a duplicate or a late sample).
// Steps missing before it are filled by linear interpolation when the gap is
// at most the max horizon; after a longer gap the members skip the missing
// steps and their scoring restarts.
func (b *Bank) Update(tsMs int64, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	if !b.started {
		b.started, b.t0 = true, tsMs
		b.step(v, false)
		return true
	}
	a := tsMs - b.t0 + b.stepMs/2
	s := b.n // the usual case, the next step, needs no division
	if d := a - b.n*b.stepMs; uint64(b.n) >= 1<<32 || d < 0 || d >= b.stepMs {
		s = floorDiv(a, b.stepMs)
	}
	if s < b.n {
		return false
	}
	if gap := s - b.n; gap > 0 {
		if gap <= int64(b.maxH) {
			for i := int64(1); i <= gap; i++ {
				b.step(b.lastY+(v-b.lastY)*float64(i)/float64(gap+1), true)
			}
		} else {
			b.skip(gap)
		}
	}
	b.step(v, false)
	return true
}

func (b *Bank) skip(k int64) {
	b.naive.Skip(k)
	b.hw.Skip(k)
	b.fr.Skip(k)
	b.drift.Skip(k)
	b.n += k
	for i := range b.recent {
		b.recent[i] = math.NaN()
	}
}

// step feeds the value of step b.n; fill says it was interpolated towards
// the sample after a gap.
func (b *Bank) step(y float64, fill bool) {
	ri := int(models.FloorMod(b.n, int64(b.h)))
	naiveH := math.NaN()
	if b.n >= int64(b.h) {
		naiveH = b.recent[ri]
	}
	b.tr.Observe(y, naiveH)
	b.naive.Update(y, naiveH)
	b.hw.Update(y, naiveH)
	b.fr.Update(y, naiveH)
	b.drift.Update(y, naiveH)
	b.recent[ri] = y
	b.lastY = y
	b.addHist(y)
	b.n++
	b.choose()
	b.tr.Issue(b.tracker(b.served).Issued())
	if fill {
		// The forecasts issued at a filled step were made from the sample
		// after the gap, which the step had not seen: scoring them would
		// favour the members that extrapolate the interpolation (drift
		// is exact on it) and narrow the intervals.
		for i := range NumMembers {
			b.tracker(i).Void()
		}
		b.tr.Void()
	}
	if b.n >= b.nextCheck {
		if !b.detect() {
			b.repairs += uint64(b.repair())
		}
		b.nextCheck = b.n + b.stepsOf(b.cfg.DetectEvery)
	} else if b.cfg.AccuracyThreshold > 0 {
		// The cheap tests first (all are free of side effects); a MASE not
		// known yet (NaN) does not hold a refit back.
		sc := b.tracker(b.served)
		if sc.Accuracy() < b.cfg.AccuracyThreshold && sc.scoredEnough(b.memory) &&
			b.n-b.lastRefit >= b.stepsOf(b.cfg.RefitCooldown) && !(sc.Scores().MASE < 1) {
			b.refit()
		}
	}
}

type trackerView struct{ *models.Tracker }

func (t trackerView) scoredEnough(memory float64) bool {
	_, n := t.MAE()
	return n >= memory
}

func (b *Bank) tracker(i int) trackerView {
	switch i {
	case SeasonalNaive:
		return trackerView{&b.naive.Tracker}
	case HoltWinters:
		return trackerView{&b.hw.Tracker}
	case Drift:
		return trackerView{&b.drift.Tracker}
	default:
		return trackerView{&b.fr.Tracker}
	}
}

func (b *Bank) addHist(y float64) {
	// Step n is in bucket histB when histB·histW ≤ n < (histB+1)·histW;
	// divide only when it is not.
	lo := b.histB * b.histW
	inBucket := uint64(b.histB)|uint64(b.histW) < 1<<31 && b.n >= lo && b.n-lo < b.histW
	if !inBucket {
		bk := floorDiv(b.n, b.histW)
		if bk != b.histB {
			// A bucket left before its last step (a gap) is complete too.
			v := math.NaN()
			if b.histCnt > 0 {
				v = b.histSum / b.histCnt
			}
			b.hist[models.FloorMod(b.histB, histLen)] = v
			for k := b.histB + 1; k < bk && k <= b.histB+histLen; k++ {
				b.hist[models.FloorMod(k, histLen)] = math.NaN()
			}
			b.histB, b.histSum, b.histCnt = bk, 0, 0
		}
		lo = b.histB * b.histW
	}
	b.histSum += y
	b.histCnt++
	if b.n-lo == b.histW-1 { // the bucket's last step: it is complete now
		b.hist[models.FloorMod(b.histB, histLen)] = b.histSum / b.histCnt
		b.histB, b.histSum, b.histCnt = b.histB+1, 0, 0
	}
}

// choose serves the member with the lowest recent absolute error at the
// decision horizon (equivalently the lowest MASE) among those whose new
// forecasts are finite.
func (b *Bank) choose() {
	best, bestErr := b.served, math.Inf(1)
	for i := range NumMembers {
		t := b.tracker(i)
		mae, n := t.MAE()
		if n < float64(b.h) {
			continue
		}
		// A member whose new forecasts are not finite has diverged; its
		// error shows it only a horizon later (repair re-initialises it).
		if f1, fH := t.Issued(); math.IsNaN(f1+fH) || math.IsInf(f1+fH, 0) {
			continue
		}
		if mae < bestErr {
			best, bestErr = i, mae
		}
	}
	b.served = best
}

// detectWork is the scratch space of one detection. Banks share them
// through detectPool: detection runs about once a day per series, so
// keeping ~60 KB of buffers in every bank would waste memory.
type detectWork struct {
	det  seasonality.Detector
	hist []float64
}

var detectPool = sync.Pool{New: func() any { return new(detectWork) }}

// histSlice appends the complete history buckets, oldest first, to out:
// the last histLen of them. A bucket is complete after its last step, and
// the oldest, histB-histLen, shares its slot with the bucket being filled,
// which is written only when it completes; so a detection at the end of
// the 14th day sees two weeks of buckets, enough to find a weekly cycle.
func (b *Bank) histSlice(out []float64) []float64 {
	for bk := b.histB - histLen; bk < b.histB; bk++ {
		if bk < 0 {
			continue
		}
		out = append(out, b.hist[models.FloorMod(bk, histLen)])
	}
	return out
}

// detect runs seasonality detection and reconfigures the members when the
// periods changed. It reports whether they did.
func (b *Bank) detect() bool {
	bucket := time.Duration(b.histW) * b.cfg.Step
	w := detectPool.Get().(*detectWork)
	w.hist = b.histSlice(w.hist[:0])
	res := w.det.Detect(w.hist, bucket)
	detectPool.Put(w)
	// The two shortest cycles found (of at least two steps): the members
	// that keep one season (seasonal naive, Holt-Winters) take the
	// shortest, the Fourier model fits both.
	var p [2]int64
	i := 0
	for _, per := range [...]struct {
		ok bool
		d  time.Duration
	}{{res.Hourly, seasonality.Hour}, {res.Daily, seasonality.Day}, {res.Weekly, seasonality.Week}} {
		if per.ok && i < len(p) && b.stepsOf(per.d) >= 2 {
			p[i] = b.stepsOf(per.d)
			i++
		}
	}
	if p == b.periods {
		return false
	}
	b.periods = p
	b.configure(true)
	return true
}

// refit reacts to low accuracy.
func (b *Bank) refit() {
	b.lastRefit = b.n
	b.refits++
	if !b.detect() {
		b.hw.Seed(b.histAt)
		b.fr.Refit()
		b.hw.Tracker.Reset()
		b.fr.Tracker.Reset()
		b.naive.Tracker.Reset()
		// Drift learns nothing a refit could throw away: its scores stay.
	}
}

// Result is the bank's forecast with what stands behind it.
type Result struct {
	models.Forecast
	// Model is the name of the member that served it.
	Model string
	// Scores are that member's recent scores at the decision horizon.
	Scores models.Scores
	// Horizon is the horizon actually used (whole steps after the last
	// sample).
	Horizon time.Duration
}

// HorizonSteps converts a horizon to steps: rounded up, at least 1, at most
// the max horizon.
func (b *Bank) HorizonSteps(h time.Duration) int {
	return min(max(ceilSteps(h, b.cfg.Step), 1), b.maxH)
}

// Forecast returns the served member's forecast h after the last sample.
func (b *Bank) Forecast(h time.Duration) Result {
	hs := b.HorizonSteps(h)
	return Result{
		Forecast: b.floor(b.tr.Interval(b.forecast(b.served, hs).Point, hs)),
		Model:    memberNames[b.served],
		Scores:   b.tracker(b.served).Scores(),
		Horizon:  time.Duration(hs) * b.cfg.Step,
	}
}

func (b *Bank) forecast(i, h int) models.Forecast {
	switch i {
	case SeasonalNaive:
		return b.naive.Forecast(h)
	case HoltWinters:
		return b.hw.Forecast(h)
	case Drift:
		return b.drift.Forecast(h)
	default:
		return b.fr.Forecast(h)
	}
}

// MemberForecast returns member i's forecast h after the last sample.
func (b *Bank) MemberForecast(i int, h time.Duration) models.Forecast {
	return b.floor(b.forecast(i, b.HorizonSteps(h)))
}

// floor floors a forecast of a non-negative series at 0.
func (b *Bank) floor(f models.Forecast) models.Forecast {
	if b.cfg.NonNegative {
		f.Point, f.Lower, f.Upper = max(f.Point, 0), max(f.Lower, 0), max(f.Upper, 0)
	}
	return f
}

// Served returns the index of the member currently serving.
func (b *Bank) Served() int { return b.served }

// Scores returns the recent scores of the bank's own served forecast.
func (b *Bank) Scores() models.Scores { return b.tr.Scores() }

// Accuracy returns the served member's recent accuracy, 100 - MAPE, in
// percent (0 until scored).
func (b *Bank) Accuracy() float64 { return b.tracker(b.served).Scores().Accuracy }

// Refits returns how many accuracy-triggered refits happened.
func (b *Bank) Refits() uint64 { return b.refits }

// Repairs returns how many times a diverged member was re-initialised
// (see repair) since the bank was created or restored.
func (b *Bank) Repairs() uint64 { return b.repairs }

// Periods returns the detected seasonalities.
func (b *Bank) Periods() []time.Duration {
	var out []time.Duration
	for _, p := range b.periods {
		if p > 0 {
			out = append(out, time.Duration(p)*b.cfg.Step)
		}
	}
	return out
}

// Steps returns how many steps the bank has seen, gaps included.
func (b *Bank) Steps() int64 { return b.n }

// Last returns the time (unix ms) of the last step the bank has seen, and
// false before its first sample.
func (b *Bank) Last() (int64, bool) {
	if !b.started {
		return 0, false
	}
	return b.t0 + (b.n-1)*b.stepMs, true
}

// MemoryBytes returns the memory the bank holds: the struct and the backing
// arrays of its buffers. Detection scratch space is shared between banks
// and not counted.
func (b *Bank) MemoryBytes() int {
	n := int(unsafe.Sizeof(*b))
	n += 8 * (cap(b.recent) + cap(b.hist))
	n += b.naive.MemoryBytes() - int(unsafe.Sizeof(b.naive))
	n += b.hw.MemoryBytes() - int(unsafe.Sizeof(b.hw))
	n += b.fr.MemoryBytes() - int(unsafe.Sizeof(b.fr))
	n += b.drift.MemoryBytes() - int(unsafe.Sizeof(b.drift))
	n += b.tr.MemoryBytes() - int(unsafe.Sizeof(b.tr))
	return n
}

// Config returns the configuration with defaults applied.
func (b *Bank) Config() Config { return b.cfg }
