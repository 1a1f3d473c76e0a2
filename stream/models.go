package stream

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// SeriesDetector scores the samples of one series against a band around an
// online baseline. The stream keeps one per watched series and calls Update
// with the series' samples in event-time order (counters as per-second
// rates). Implementations live in detectors/ and know nothing of Kafka.
type SeriesDetector interface {
	// Update feeds one sample and returns its anomaly score in [0,1], the
	// band [lo, hi] the sample was judged against and whether the series is
	// in alarm after it.
	Update(ts int64, v float64) (score, lo, hi float64, alarm bool)
	// AppendBinary appends the detector state for a checkpoint.
	AppendBinary(dst []byte) ([]byte, error)
	// UnmarshalBinary restores state written by AppendBinary.
	UnmarshalBinary(b []byte) error
}

// NewSeriesDetector makes the detector of a new series watched by an anomaly
// rule.
type NewSeriesDetector func(rule *rules.Anomaly) SeriesDetector

// Forecaster predicts a workload's aggregated signal. The stream keeps one
// per scaling group and calls Update once per closed aggregation window, in
// window order. Implementations live in models/ and know nothing of Kafka.
type Forecaster interface {
	// Update feeds the signal of the window ending at ts (unix ms).
	Update(ts int64, v float64)
	// Forecast returns the point forecast and its interval at horizon ahead
	// of the last update; ok is false while the model is warming up.
	Forecast(horizon time.Duration) (point, lo, hi float64, ok bool)
	// AppendBinary appends the model state for a checkpoint.
	AppendBinary(dst []byte) ([]byte, error)
	// UnmarshalBinary restores state written by AppendBinary.
	UnmarshalBinary(b []byte) error
}

// NewForecaster makes the forecaster of a new scaling group.
type NewForecaster func(rule *rules.Scaling) Forecaster

// GroupDetector judges one gray-failure or GPU group: the series a rule
// selects for one tenant and group-by values, which routing brings to one
// partition. The stream feeds it every accepted sample of those series, in
// per-series event-time order, and closes a window (the rule's window) each
// time the partition watermark passes its end. Implementations live in
// detectors/ and know nothing of Kafka. The stream signs what they return.
type GroupDetector interface {
	// Observe feeds one sample. lbls are the series labels sorted by name,
	// valid only during the call. rate is the per-second rate of a counter
	// since its previous sample (reset-corrected), NaN for gauges and for a
	// counter's first sample.
	Observe(lbls []proto.Label, ts int64, v, rate float64)
	// Close ends the window ending at end (unix ms) and returns the
	// decisions it leads to (unsigned; nil for none).
	Close(end int64) []*proto.Decision
	// AppendBinary appends the detector state for a checkpoint.
	AppendBinary(dst []byte) ([]byte, error)
	// UnmarshalBinary restores state written by AppendBinary.
	UnmarshalBinary(b []byte) error
}

// NewGroupDetector makes the detector of a new gray-failure or GPU group.
// rule is the whole rule (its GrayFailure or GPU section is set); groupVals
// are the values of the rule's group_by labels.
type NewGroupDetector func(rule *rules.Rule, tenant string, groupVals []string) GroupDetector

var errShortState = errors.New("short state")

// EWMABand is the stream's built-in SeriesDetector until detectors/anomaly
// is wired in: an exponentially weighted mean and variance as the baseline,
// a band of Sensitivity standard deviations around it, and m-of-n alarming.
// It holds 40 bytes per series.
type EWMABand struct {
	p    *bandParams
	mean float64
	vr   float64
	n    uint32
	hist uint64 // bit i set: sample i back was outside the band
}

type bandParams struct {
	alpha   float64
	k       float64
	warmup  uint32
	m       int
	nMask   uint64
	minBand float64
}

// NewEWMABand returns an EWMABand configured by rule (smoothing 0.1).
func NewEWMABand(rule *rules.Anomaly) SeriesDetector {
	return &EWMABand{p: bandParamsFor(rule)}
}

// bandParamsFor shares one parameter block per rule so a series pays only
// for its own state.
func bandParamsFor(r *rules.Anomaly) *bandParams {
	mask := uint64(math.MaxUint64)
	if r.N < 64 {
		mask = 1<<uint(r.N) - 1
	}
	return &bandParams{alpha: 0.1, k: r.Sensitivity, warmup: uint32(r.Warmup), m: r.M, nMask: mask, minBand: 1e-9}
}

// Update implements SeriesDetector.
func (b *EWMABand) Update(_ int64, v float64) (score, lo, hi float64, alarm bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, b.mean, b.mean, b.alarm()
	}
	if b.n == 0 {
		b.mean, b.vr, b.n = v, 0, 1
		return 0, v, v, false
	}
	sd := math.Sqrt(b.vr)
	// A floor relative to the level keeps a flat series from alarming on
	// rounding noise.
	sd = max(sd, b.p.minBand, 1e-3*math.Abs(b.mean))
	lo, hi = b.mean-b.p.k*sd, b.mean+b.p.k*sd
	d := v - b.mean
	z := math.Abs(d) / sd
	out := b.n >= b.p.warmup && (v < lo || v > hi)
	score = 1 - math.Exp(-z/b.p.k)
	a := b.p.alpha
	if n := b.p.k * sd; d > n || d < -n {
		// Outliers enter the baseline clipped to the band's edge (a
		// winsorised update), so a spike does not widen the band for the
		// samples after it.
		d = math.Copysign(n, d)
	}
	b.mean += a * d
	b.vr = (1 - a) * (b.vr + a*d*d)
	if b.n < math.MaxUint32 {
		b.n++
	}
	b.hist <<= 1
	if out {
		b.hist |= 1
	}
	return score, lo, hi, b.alarm()
}

func (b *EWMABand) alarm() bool {
	return bits.OnesCount64(b.hist&b.p.nMask) >= b.p.m
}

// AppendBinary implements SeriesDetector.
func (b *EWMABand) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(b.mean))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(b.vr))
	dst = binary.LittleEndian.AppendUint32(dst, b.n)
	return binary.LittleEndian.AppendUint64(dst, b.hist), nil
}

// UnmarshalBinary implements SeriesDetector.
func (b *EWMABand) UnmarshalBinary(p []byte) error {
	if len(p) != 28 {
		return errShortState
	}
	b.mean = math.Float64frombits(binary.LittleEndian.Uint64(p))
	b.vr = math.Float64frombits(binary.LittleEndian.Uint64(p[8:]))
	b.n = binary.LittleEndian.Uint32(p[16:])
	b.hist = binary.LittleEndian.Uint64(p[20:])
	return nil
}

// HoltBaseline is the stream's built-in Forecaster until the models/ bank is
// wired in: Holt's linear trend (double exponential smoothing) with an
// interval from the smoothed squared one-step error. It needs three windows
// before it forecasts.
type HoltBaseline struct {
	step           int64 // window length, ms
	level, trend   float64
	errVar         float64
	n              uint32
	alpha, beta, z float64
}

// NewHoltBaseline returns a HoltBaseline for windows of rule.Window.
func NewHoltBaseline(rule *rules.Scaling) Forecaster {
	return &HoltBaseline{step: rule.Window.Milliseconds(), alpha: 0.5, beta: 0.2, z: 2}
}

// Update implements Forecaster.
func (h *HoltBaseline) Update(_ int64, v float64) {
	switch h.n {
	case 0:
		h.level = v
	case 1:
		h.trend = v - h.level
		h.level = v
	default:
		pred := h.level + h.trend
		e := v - pred
		h.errVar = 0.8*h.errVar + 0.2*e*e
		l := h.alpha*v + (1-h.alpha)*pred
		h.trend = h.beta*(l-h.level) + (1-h.beta)*h.trend
		h.level = l
	}
	if h.n < math.MaxUint32 {
		h.n++
	}
}

// Forecast implements Forecaster.
func (h *HoltBaseline) Forecast(horizon time.Duration) (point, lo, hi float64, ok bool) {
	if h.n < 3 {
		return 0, 0, 0, false
	}
	k := float64(max(1, horizon.Milliseconds()/max(h.step, 1)))
	point = max(0, h.level+k*h.trend)
	w := h.z * math.Sqrt(h.errVar*k)
	return point, max(0, point-w), point + w, true
}

// AppendBinary implements Forecaster.
func (h *HoltBaseline) AppendBinary(dst []byte) ([]byte, error) {
	for _, f := range [...]float64{h.level, h.trend, h.errVar} {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
	}
	return binary.LittleEndian.AppendUint32(dst, h.n), nil
}

// UnmarshalBinary implements Forecaster.
func (h *HoltBaseline) UnmarshalBinary(p []byte) error {
	if len(p) != 28 {
		return errShortState
	}
	h.level = math.Float64frombits(binary.LittleEndian.Uint64(p))
	h.trend = math.Float64frombits(binary.LittleEndian.Uint64(p[8:]))
	h.errVar = math.Float64frombits(binary.LittleEndian.Uint64(p[16:]))
	h.n = binary.LittleEndian.Uint32(p[24:])
	return nil
}
