package anomaly

import (
	"fmt"
	"math"
	"math/bits"
)

// Config is the shared configuration of a Detector. The zero value of a field
// means its default; DefaultConfig returns every default filled in.
type Config struct {
	// BandWidth is the half-width of the band around the forecast in standard
	// deviations of the one-step forecast residual. Default 2 (CloudWatch's
	// ANOMALY_DETECTION_BAND(m, 2)). Must be positive.
	BandWidth float64
	// AlarmM and AlarmN: Alarm is raised while at least AlarmM of the last
	// AlarmN samples were outside the band. Defaults 2 and 3; 1 <= AlarmM <=
	// AlarmN <= 16.
	AlarmM, AlarmN int
	// Warmup is the number of samples a series needs before it can score above
	// zero or raise Alarm. Default 256: a young series keeps showing new
	// highs and lows, each a spatial anomaly, and new patterns; 256 was
	// chosen among 64, 128, 256 and 512 by the NAB score held out
	// (bench/RESULTS-anomaly.md, section 2d). It never lasts longer than
	// a day of samples once there are MinWarmup of them: at 5-minute
	// samples 256 is 21 hours, but hourly ones would stay silent for ten
	// days (section 2e).
	Warmup int
	// BandWindow is the span, in samples, of the EWMA forecast and residual
	// variance behind the band (alpha = 2/(span+1)). Residuals are clipped at
	// three deviations before they update it, so a single outlier neither
	// drags the forecast nor widens the band enough to hide the next one.
	// Default 16.
	BandWindow int
	// FastWindow and SlowWindow are the spans, in samples, of the fast and slow
	// EWMA forecasts whose residuals feed the score. Defaults 4 and 256.
	FastWindow, SlowWindow int
	// ShortWindow is the span, in samples, of the recent mean of raw scores the
	// likelihood tests. Default 16.
	ShortWindow int
	// HistoryWindow is the span, in samples, of the long-run mean and variance
	// of that recent mean. Default 1024.
	HistoryWindow int
	// Quiet is the number of samples after a score at or above DetectLevel
	// during which the score is held at zero, so one incident gives one
	// detection. Default 128. Zero after defaults means use the default; set a
	// negative value to disable.
	Quiet int
	// LevelShift: at the end of a quiet period, when the fast forecast sits
	// more than LevelShift slow deviations from the slow forecast, the
	// slow forecast takes the fast one's level (and at least its
	// deviation): a new level is learnt once, after the detection, instead
	// of scoring every point of it for the slow forecast's whole span.
	// Default 0.5; a negative value disables it.
	LevelShift float64
	// ZLow and ZHigh shape the raw residual score: 0 up to a z-score of ZLow,
	// rising linearly to 1 at ZHigh. Defaults 2 and 4; 0 <= ZLow < ZHigh.
	ZLow, ZHigh float64
	// NoveltyScore is the raw score of a sample whose quantised level follows
	// the two previous levels in a way never seen before. Default 1; in
	// [0, 1] (a negative value means 0).
	NoveltyScore float64
	// RangeTolerance: a sample beyond the range seen so far by more than this
	// share of the range, and ZLow or more deviations off the forecasts,
	// scores 1 outright (Numenta's "spatial anomaly"); within ZLow it is a
	// raw score of 1. Default 0.01; a negative value disables it.
	RangeTolerance float64
	// DetectLevel is the score that starts a quiet period. Default 0.5. Must be
	// in (0, 1].
	DetectLevel float64
	// SeasonalDays is the memory, in days, of the time-of-day profile: an
	// EWMA level and mean absolute residual per hour of the day (UTC),
	// weekdays and weekends apart. Each hour's EWMA weight is set from the
	// sampling interval (an EWMA of the gaps between samples, each capped at
	// twice the current estimate and at an hour, so outages barely move
	// it) so that the memory is this many days of that hour's day type
	// whatever the sampling rate; series sampled less than hourly count
	// samples instead of days, and series sampled more often than every
	// 0.1 s never fill a bin enough to trust it. Default 30.
	SeasonalDays int
	// SeasonalGate decides when the profile is trusted: while its mean
	// absolute residual (an EWMA over SlowWindow samples) is below
	// SeasonalGate times the slow EWMA's, and the hour in hand has at least
	// two days of samples, the raw score is the profile's residual score
	// alone (same ZLow/ZHigh ramp), in place of the forecast residuals and
	// novelty, which on a seasonal series mostly fire on the daily pattern
	// itself. The spatial term still applies. Default 0.5 (the profile
	// explains about three quarters of the variance); at most 1; a negative
	// value disables the profile.
	SeasonalGate float64
}

// MinWarmup is the fewest samples a series is scored after, however
// slowly it is sampled (the warm-up before 256 was chosen).
const MinWarmup = 64

// MaxAlarmN is the longest alarm window (AlarmN): the last samples'
// outcomes are kept in a 16-bit mask.
const MaxAlarmN = 16

// DefaultConfig returns the configuration used for the NAB results: every
// field at its default.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setF := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	setF(&c.BandWidth, 2)
	set(&c.AlarmM, 2)
	set(&c.AlarmN, 3)
	set(&c.Warmup, 256)
	set(&c.BandWindow, 16)
	set(&c.FastWindow, 4)
	set(&c.SlowWindow, 256)
	set(&c.ShortWindow, 16)
	set(&c.HistoryWindow, 1024)
	set(&c.Quiet, 128)
	setF(&c.LevelShift, 0.5)
	setF(&c.DetectLevel, 0.5)
	if c.ZLow == 0 && c.ZHigh == 0 { // a ramp from 0 is a setting
		c.ZLow, c.ZHigh = 2, 4
	}
	setF(&c.NoveltyScore, 1)
	setF(&c.RangeTolerance, 0.01)
	set(&c.SeasonalDays, 30)
	setF(&c.SeasonalGate, 0.5)
}

// ConfigError names the invalid field of a Config and what is wrong with
// it. internal/rules maps Field to the rule option it comes from.
type ConfigError struct {
	Field string // the Config field's name, e.g. "AlarmN"
	Value any
	Msg   string // e.g. "must be in [1,16]"
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s %v: %s", e.Field, e.Value, e.Msg) }

// Validate fills the zero fields of c with their defaults and reports the
// first invalid field, as a *ConfigError.
func (c *Config) Validate() error {
	c.defaults()
	bad := func(field string, value any, format string, args ...any) error {
		return &ConfigError{Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case !(c.BandWidth > 0) || math.IsInf(c.BandWidth, 0):
		return bad("BandWidth", c.BandWidth, "must be > 0 and finite")
	case c.AlarmN < 1 || c.AlarmN > MaxAlarmN:
		return bad("AlarmN", c.AlarmN, "must be in [1,%d]", MaxAlarmN)
	case c.AlarmM < 1 || c.AlarmM > c.AlarmN:
		return bad("AlarmM", c.AlarmM, "must be in [1,n]")
	case c.Warmup < 1:
		return bad("Warmup", c.Warmup, "must be >= 1")
	case c.BandWindow < 1:
		return bad("BandWindow", c.BandWindow, "must be >= 1")
	case c.FastWindow < 1 || c.SlowWindow < c.FastWindow:
		return bad("FastWindow", c.FastWindow, "need 1 <= fast <= slow (%d)", c.SlowWindow)
	case c.ShortWindow < 1 || c.HistoryWindow < c.ShortWindow:
		return bad("ShortWindow", c.ShortWindow, "need 1 <= short <= history (%d)", c.HistoryWindow)
	case !(c.ZLow >= 0 && c.ZHigh > c.ZLow) || math.IsInf(c.ZHigh, 0):
		return bad("ZLow", c.ZLow, "need 0 <= low < high (%v), finite", c.ZHigh)
	case c.NoveltyScore > 1 || math.IsNaN(c.NoveltyScore):
		return bad("NoveltyScore", c.NoveltyScore, "must be at most 1")
	case math.IsNaN(c.RangeTolerance) || math.IsInf(c.RangeTolerance, 0):
		return bad("RangeTolerance", c.RangeTolerance, "must be finite")
	case math.IsNaN(c.LevelShift) || math.IsInf(c.LevelShift, 0):
		return bad("LevelShift", c.LevelShift, "must be finite")
	case !(c.DetectLevel > 0 && c.DetectLevel <= 1):
		return bad("DetectLevel", c.DetectLevel, "must be in (0, 1]")
	case c.SeasonalDays < 1:
		return bad("SeasonalDays", c.SeasonalDays, "must be >= 1")
	case !(c.SeasonalGate <= 1) || math.IsInf(c.SeasonalGate, 0):
		return bad("SeasonalGate", c.SeasonalGate, "must be at most 1 (negative: off)")
	}
	return nil
}

// Detector scores samples of any number of series with one configuration.
// It is read-only after New and safe for concurrent use; the per-series
// State is not.
type Detector struct {
	cfg                 Config
	aBand, aFast, aSlow float64 // EWMA weights
	aShort, aHist       float64
	alarmMask           uint16
	quiet               int32
	warmup              uint32
	bandWidth, detectAt float64
	seasDays, seasGate  float64
}

// New returns a Detector for cfg (zero fields take their defaults).
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("anomaly detector config: %w", err)
	}
	span := func(n int) float64 { return 2 / (float64(n) + 1) }
	q := max(cfg.Quiet, 0)
	return &Detector{
		cfg:       cfg,
		aBand:     span(cfg.BandWindow),
		aFast:     span(cfg.FastWindow),
		aSlow:     span(cfg.SlowWindow),
		aShort:    span(cfg.ShortWindow),
		aHist:     span(cfg.HistoryWindow),
		alarmMask: uint16(1<<cfg.AlarmN - 1),
		quiet:     int32(q),
		warmup:    uint32(cfg.Warmup),
		bandWidth: cfg.BandWidth,
		detectAt:  cfg.DetectLevel,
		seasDays:  float64(cfg.SeasonalDays),
		seasGate:  cfg.SeasonalGate,
	}, nil
}

// Config returns the configuration in use, defaults filled in.
func (d *Detector) Config() Config { return d.cfg }

// Result is the outcome of one sample.
type Result struct {
	// Score is the anomaly score in [0, 1]. It is the anomaly likelihood
	// mapped so that 0.5 is a tail probability of 1e-5 of the recent raw
	// scores; 1 when the sample leaves the range seen so far by more than
	// RangeTolerance, off the forecasts; 0 during warm-up and for Quiet
	// samples after a score reached DetectLevel.
	Score float64
	// Forecast is the one-step forecast the sample was compared with, and
	// Lower and Upper the band around it (Forecast ± BandWidth deviations).
	Forecast, Lower, Upper float64
	// Outside reports whether the sample fell outside [Lower, Upper].
	Outside bool
	// Alarm reports whether AlarmM of the last AlarmN samples were outside
	// their band (after warm-up).
	Alarm bool
	// Detected reports a detection: Score reached DetectLevel, and the
	// score is held at zero for the next Quiet samples (one incident, one
	// detection).
	Detected bool
}

// levels is the number of quantisation levels of the novelty context.
const levels = 16

// The time-of-day profile has one bin per hour of the day (UTC), for
// weekdays and for weekends.
const (
	dayMs       = 86_400_000
	dayBins     = 24
	binMs       = dayMs / dayBins
	profileBins = 2 * dayBins
	// profileMinDays is how many days of samples a bin needs before its
	// residual is trusted.
	profileMinDays = 2
)

// profileBin returns the profile bin of unix-millisecond time ts.
func profileBin(ts int64) int {
	day := ts / dayMs
	ms := ts % dayMs
	if ms < 0 {
		day, ms = day-1, ms+dayMs
	}
	b := int(ms / binMs)
	// 1970-01-01 was a Thursday: weekday 0 is Sunday.
	if wd := ((day+4)%7 + 7) % 7; wd == 0 || wd == 6 {
		b += dayBins
	}
	return b
}

// State is the per-series memory of the detector: a fixed-size value with no
// pointers (1504 bytes on 64-bit platforms, under the 2 KiB budget that
// TestStateSize enforces), whose zero value is a fresh series. Copying it
// copies the series, so a shard can keep a contiguous []State.
type State struct {
	n       uint32 // samples accepted
	quiet   int32  // samples left in the quiet period
	outside uint16 // bit i: sample i steps ago was outside its band
	b1, b2  uint8  // quantised levels of the last two samples
	seenLvl uint16 // bit l: level l seen
	lastTs  int64

	bandMean, bandVar float64 // robust EWMA forecast and residual variance of the band
	fastMean, fastMAD float64 // fast EWMA forecast and mean absolute residual
	slowMean, slowMAD float64
	lo, hi            float64 // range seen so far
	short             float64 // recent mean raw score
	histMean, histVar float64 // long-run moments of short

	seen [levels * levels * levels / 8]byte // 3-grams of levels seen

	dtMean  float64 // EWMA of the sampling interval in ms (see SeasonalDays)
	seasMAD float64 // slow EWMA of the absolute residual from the profile
	// Time-of-day profile: per bin, EWMA level and mean absolute residual,
	// and the number of samples seen (saturating).
	pLvl [profileBins]float64
	pMAD [profileBins]float64
	pCnt [profileBins]uint16
}

// Update scores sample (ts, v) of the series whose memory is s and advances
// s. Samples must come in increasing ts order; a sample with ts not after the
// previous one, or a NaN (a Prometheus staleness marker) or infinite value,
// leaves s unchanged and returns the zero Result. ts is unix milliseconds (the
// stream and Replay pass them): the time-of-day profile reads the hour and
// the weekday in UTC from it, and the sampling interval from consecutive
// samples, so it assumes wall-clock times.
func (d *Detector) Update(s *State, ts int64, v float64) Result {
	if math.IsNaN(v) || math.IsInf(v, 0) || (s.n > 0 && ts <= s.lastTs) {
		return Result{}
	}
	if s.n > 0 {
		dt := min(float64(uint64(ts)-uint64(s.lastTs)), binMs) // ts > lastTs: no overflow
		if s.dtMean == 0 {
			s.dtMean = dt
		}
		s.dtMean += 0.1 * (min(dt, 2*s.dtMean) - s.dtMean)
	}
	s.lastTs = ts
	if s.n == 0 {
		s.n = 1
		s.bandMean, s.fastMean, s.slowMean = v, v, v
		s.lo, s.hi = v, v
		s.b1, s.b2 = 0, 0
		return Result{Forecast: v, Lower: v, Upper: v}
	}
	if s.n < math.MaxUint32 {
		s.n++
	}
	// Warm after Warmup samples, or after a day of them (dtMean, the
	// sampling interval, times the count) once there are MinWarmup.
	warm := s.n > d.warmup || (s.n > MinWarmup && float64(s.n)*s.dtMean >= dayMs)

	// Band around the fast forecast; a floor on the deviation keeps flat
	// series from producing infinite z-scores on the first wiggle.
	floor := 1e-3*(s.hi-s.lo) + 1e-9*math.Abs(s.slowMean) + 1e-300
	sdBand := math.Sqrt(s.bandVar) + floor
	// Scales of the score's forecasts are mean absolute deviations (times
	// 1.25, the ratio to the standard deviation of a Gaussian): less swayed
	// by the spikes they must detect than a variance.
	sdFast := 1.25*s.fastMAD + floor
	sdSlow := 1.25*s.slowMAD + floor
	res := Result{Forecast: s.bandMean, Lower: s.bandMean - d.bandWidth*sdBand, Upper: s.bandMean + d.bandWidth*sdBand}
	res.Outside = v < res.Lower || v > res.Upper
	s.outside <<= 1
	if res.Outside && warm {
		s.outside |= 1
	}
	res.Alarm = bits.OnesCount16(s.outside&d.alarmMask) >= d.cfg.AlarmM

	zFast := math.Abs(v-s.fastMean) / sdFast
	zSlow := math.Abs(v-s.slowMean) / sdSlow
	raw := d.ramp(max(zFast, zSlow))

	// Time-of-day profile. perBin is the number of samples a bin gets per
	// day, from the sampling interval; the profile's EWMA weight makes its
	// memory seasDays days of them.
	bin := profileBin(ts)
	perBin := binMs / max(s.dtMean, 1)
	cnt := float64(s.pCnt[bin])
	seasonal := d.seasGate >= 0 && cnt >= profileMinDays*perBin && s.seasMAD < d.seasGate*s.slowMAD

	// Range and novelty. Leaving the range by more than RangeTolerance of it
	// is a spatial anomaly on its own when the forecasts did not expect
	// the sample within ZLow deviations; a new high or low they did
	// expect (noise keeps setting records) is a raw score of 1, for the
	// likelihood to weigh.
	spatial := false
	if span := s.hi - s.lo; span > 0 && d.cfg.RangeTolerance >= 0 {
		tol := d.cfg.RangeTolerance * span
		spatial = v > s.hi+tol || v < s.lo-tol
	}
	if spatial && max(zFast, zSlow) < d.cfg.ZLow {
		spatial, raw = false, 1
	}
	s.lo, s.hi = min(s.lo, v), max(s.hi, v)
	lvl := uint8(0)
	if span := s.hi - s.lo; span > 0 {
		lvl = uint8(min(levels-1, int((v-s.lo)/span*levels)))
	}
	key := int(s.b2)*levels*levels + int(s.b1)*levels + int(lvl)
	novel := s.seen[key>>3]&(1<<(key&7)) == 0
	s.seen[key>>3] |= 1 << (key & 7)
	s.b2, s.b1 = s.b1, lvl
	if novel {
		raw = max(raw, d.cfg.NoveltyScore)
	}
	if s.seenLvl&(1<<lvl) == 0 {
		raw = 1
		s.seenLvl |= 1 << lvl
	}
	if seasonal {
		// The profile explains the series better than the slow forecast:
		// a sample is anomalous when it is unusual for its time of day.
		raw = d.ramp(math.Abs(v-s.pLvl[bin]) / (1.25*s.pMAD[bin] + floor))
	}

	// Forecast updates (after scoring: the score never sees the sample it
	// forecasts).
	e := min(max(v-s.bandMean, -3*sdBand), 3*sdBand)
	if s.n <= 3 {
		e = v - s.bandMean // no deviation to clip with yet
	}
	s.bandMean += d.aBand * e
	s.bandVar = (1 - d.aBand) * (s.bandVar + d.aBand*e*e)
	e = v - s.fastMean
	s.fastMean += d.aFast * e
	s.fastMAD += d.aFast * (math.Abs(e) - s.fastMAD)
	if s.pCnt[bin] == 0 {
		s.pLvl[bin] = v
	} else {
		// A running mean until the EWMA weight, 2/(span+1), takes over.
		span := d.seasDays * perBin
		a := 2 / (span + 1)
		if cnt+1 < (span+1)/2 {
			a = 1 / (cnt + 1)
		}
		e = v - s.pLvl[bin]
		s.seasMAD += d.aSlow * (math.Abs(e) - s.seasMAD)
		s.pLvl[bin] += a * e
		s.pMAD[bin] += a * (math.Abs(e) - s.pMAD[bin])
	}
	if s.pCnt[bin] < math.MaxUint16 {
		s.pCnt[bin]++
	}
	e = v - s.slowMean
	s.slowMean += d.aSlow * e
	s.slowMAD += d.aSlow * (math.Abs(e) - s.slowMAD)

	// Anomaly likelihood of the recent mean raw score. The floor on its
	// deviation is a quarter of what one sample at the top of the ramp
	// adds to the recent mean (aShort): on a quiet series such a sample
	// alone is about 3 deviations out (score 0.25), two in a row a
	// detection. A fixed floor let one 4-deviation sample of Gaussian
	// noise fire (bench/RESULTS-anomaly.md, section 2f).
	s.short += d.aShort * (raw - s.short)
	mean := max(s.histMean, 0.03)
	sd := max(math.Sqrt(s.histVar), d.aShort/4)
	tail := 0.5 * math.Erfc((s.short-mean)/(sd*math.Sqrt2))
	e = s.short - s.histMean
	s.histMean += d.aHist * e
	s.histVar = (1 - d.aHist) * (s.histVar + d.aHist*e*e)

	if !warm {
		return res
	}
	score := math.Log(tail+1e-10) / math.Log(1e-10)
	if spatial {
		score = 1
	}
	score = min(max(score, 0), 1)
	if s.quiet > 0 {
		s.quiet--
		score = 0
		if s.quiet == 0 && d.cfg.LevelShift >= 0 && math.Abs(s.fastMean-s.slowMean) > d.cfg.LevelShift*sdSlow {
			// The level moved and stayed: learn it once.
			s.slowMean = s.fastMean
			s.slowMAD = max(s.slowMAD, s.fastMAD)
		}
	} else if score >= d.detectAt {
		s.quiet = d.quiet
		res.Detected = true
	}
	res.Score = score
	return res
}

// ramp maps a z-score to the raw residual score.
func (d *Detector) ramp(z float64) float64 {
	return min(max((z-d.cfg.ZLow)/(d.cfg.ZHigh-d.cfg.ZLow), 0), 1)
}
