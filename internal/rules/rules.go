// Package rules loads the augur rules file: what to watch and what to decide.
//
// A rules file (YAML) lists rules, each with a unique name and exactly one of
// scaling, gray_failure, gpu or anomaly. Load validates every field and names
// the bad one in its error (`rules[2].scaling.capacity_per_pod: must be > 0`).
//
// The compiled Set is also the routing contract shared by ingest and stream:
// RoutingKey gives the Kafka record key of a series, so that every series a
// workload rule needs meets on one partition of augur.samples, and Partition
// maps the key to a partition. Both are allocation-free and safe for
// concurrent use.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/augur-ops/augur/detectors/anomaly"
	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/proto"
)

// Label is one label of a series, as carried by the samples block.
type Label = proto.Label

// Kind is the kind of a rule: which of its sections is set.
type Kind uint8

// Rule kinds.
const (
	KindScaling Kind = iota + 1
	KindGrayFailure
	KindGPU
	KindAnomaly
)

// String returns the YAML section name of k.
func (k Kind) String() string {
	switch k {
	case KindScaling:
		return "scaling"
	case KindGrayFailure:
		return "gray_failure"
	case KindGPU:
		return "gpu"
	case KindAnomaly:
		return "anomaly"
	}
	return "unknown"
}

// Scaling modes: what a scaling rule acts on.
const (
	// ModeScale sets the replicas of the workload directly.
	ModeScale = "scale"
	// ModeHPAMin raises the minReplicas of the workload's HorizontalPodAutoscaler.
	ModeHPAMin = "hpa_min"
	// ModeReserveCapacity sizes the placeholder capacity-reservation
	// Deployment so that nodes are provisioned ahead of the load.
	ModeReserveCapacity = "reserve_capacity"
)

// MaxHorizon is the longest forecast horizon of a scaling rule: pod start
// plus node provisioning rarely exceeds it, and forecasts further out are
// too wide to size a workload by.
const MaxHorizon = 30 * time.Minute

// DefaultIntervalCap is a scaling rule's default interval_cap: size on at
// most three times the point forecast. Chosen in bench/scalesim leaving one
// trace out (-heldout, at a 90-s pod start) among caps 0.5-2
// (bench/RESULTS-forecast.md).
const DefaultIntervalCap = 2

// AggregationSumRate is the only aggregation of scaling signals: the sum over
// the selected series of their per-second rate.
const AggregationSumRate = "sum_rate"

// File is the rules file as written.
type File struct {
	// Rules are evaluated in order; a series is routed by the first
	// workload rule (scaling, gray_failure, gpu) it matches.
	Rules []Rule `yaml:"rules"`
}

// Rule is one entry of the rules file. Exactly one of Scaling, GrayFailure,
// GPU and Anomaly is set.
type Rule struct {
	// Name identifies the rule in decisions and routing keys; unique,
	// [a-zA-Z0-9_.-]+, at most 128 bytes.
	Name string `yaml:"name"`
	// Tenant restricts the rule to series of one tenant (X-Scope-OrgID).
	// Empty matches every tenant; groups are still kept per tenant.
	Tenant string `yaml:"tenant,omitempty"`

	Scaling     *Scaling     `yaml:"scaling,omitempty"`
	GrayFailure *GrayFailure `yaml:"gray_failure,omitempty"`
	GPU         *GPU         `yaml:"gpu,omitempty"`
	Anomaly     *Anomaly     `yaml:"anomaly,omitempty"`
}

// Scaling declares a workload whose replicas augur sizes ahead of its load.
type Scaling struct {
	// Selector is a PromQL metric selector of the counters that carry the
	// workload's load, e.g. `http_requests_total{namespace="payment"}`.
	Selector string `yaml:"selector"`
	// Aggregation across the selected series; only "sum_rate" (the default).
	Aggregation string `yaml:"aggregation,omitempty"`
	// CapacityPerPod is how much of the aggregated signal (per second) one
	// pod serves at its target utilisation; > 0.
	CapacityPerPod float64 `yaml:"capacity_per_pod"`
	// Horizon is how far ahead the forecast looks; it should exceed pod
	// start plus node provisioning time. Default 5m, at least Window and at
	// most MaxHorizon (30m).
	Horizon time.Duration `yaml:"horizon,omitempty"`
	// Window is the aggregation window of the signal. Default 30s, >= 1s.
	Window time.Duration `yaml:"window,omitempty"`
	// MinReplicas and MaxReplicas bound the decision; 1 <= min <= max.
	MinReplicas int32 `yaml:"min_replicas"`
	MaxReplicas int32 `yaml:"max_replicas"`
	// Target is the Kubernetes object acted on (for mode reserve_capacity,
	// the placeholder Deployment).
	Target KubeObject `yaml:"target"`
	// Mode is scale (default), hpa_min or reserve_capacity.
	Mode string `yaml:"mode,omitempty"`
	// ScaleDownDelay is how long the replicas the observed load needed are
	// kept before a smaller decision; whole recommendations, the forecast's
	// headroom included, are kept for 1m or this delay if shorter
	// (detectors/scaling Config.ForecastHold). Default 5m (the HPA's
	// scale-down stabilization).
	ScaleDownDelay time.Duration `yaml:"scale_down_delay,omitempty"`
	// IntervalCap bounds the headroom the forecast's uncertainty adds:
	// augur sizes on the forecast's 80% upper bound, but on at most the
	// point forecast times (1 + IntervalCap) (detectors/scaling
	// Config.IntervalCap). Default DefaultIntervalCap; > 0 and finite.
	// Smaller spends fewer pod-hours and leaves more minutes short.
	IntervalCap float64 `yaml:"interval_cap,omitempty"`
	// DecisionTTL is how long a decision may be carried out, counted from
	// when its window closes (its end plus the stream's allowed lateness).
	// Default the larger of 2*Window and a minute; > 0.
	DecisionTTL time.Duration `yaml:"decision_ttl,omitempty"`
}

// KubeObject names a Kubernetes object.
type KubeObject struct {
	// Kind is Deployment (default), StatefulSet or HorizontalPodAutoscaler.
	Kind      string `yaml:"kind,omitempty"`
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
}

// GrayFailure declares a service spread over availability zones whose zones
// are compared with their peers.
type GrayFailure struct {
	// Selector selects the per-zone health series (request and error
	// counters, latency histograms or gauges, packet loss, probes).
	Selector string `yaml:"selector"`
	// ZoneLabel is the label naming the zone (an AZ ID such as use1-az1).
	ZoneLabel string `yaml:"zone_label"`
	// InstanceLabel is the label naming the instance that reported a series;
	// a zone's instances are the distinct values seen in a window. Default
	// "instance" (a series without it counts by its pod label).
	InstanceLabel string `yaml:"instance_label,omitempty"`
	// Thresholds are the absolute limits an operator sets.
	Thresholds GrayThresholds `yaml:"thresholds"`
	// MinInstances is how many instances must report in a zone for its
	// window to count. Default 2, >= 1.
	MinInstances int `yaml:"min_instances,omitempty"`
	// MinRequests is how many requests (or probes) per minute a zone must
	// have served in a window for it to count (scaled to the window).
	// Default 50, >= 0.
	MinRequests float64 `yaml:"min_requests,omitempty"`
	// FalseAlarmDays is the false-alarm rate the shift threshold is set
	// for: at most one false zonal shift per zone per this many days under
	// the zone's own healthy noise. Default 90, 0.01 to 36500.
	FalseAlarmDays float64 `yaml:"false_alarm_days,omitempty"`
	// ResourceARN is the AWS resource (load balancer) to shift away from a
	// sick zone.
	ResourceARN string `yaml:"resource_arn"`
	// Window is the comparison window: the scrape interval of the
	// selected series, so that evidence is weighed at every scrape.
	// Default 15s, >= 1s.
	Window time.Duration `yaml:"window,omitempty"`
	// ShiftExpiry is the lifetime of a zonal shift at AWS; the shift is
	// extended while the zone stays sick. Default 30m, between 1m and 72h
	// (the ARC limit is three days).
	ShiftExpiry time.Duration `yaml:"shift_expiry,omitempty"`
}

// GrayThresholds are the absolute limits of a gray-failure group; a zero
// field is not checked. A zone worse than its peers on a signal with a
// limit counts only when it is above the limit too, and two or more zones
// above any limit are a regional event (alert, never a shift).
type GrayThresholds struct {
	// MeanLatencySeconds limits the mean request latency of a zone.
	MeanLatencySeconds float64 `yaml:"mean_latency_seconds,omitempty"`
	// P99LatencySeconds limits the 99th percentile latency of a zone.
	P99LatencySeconds float64 `yaml:"p99_latency_seconds,omitempty"`
	// MaxLatencySeconds limits the largest latency reported in a zone.
	MaxLatencySeconds float64 `yaml:"max_latency_seconds,omitempty"`
	// ErrorRatio in [0,1]: a zone whose error share exceeds this is impaired.
	ErrorRatio float64 `yaml:"error_ratio,omitempty"`
	// PacketLoss in [0,1].
	PacketLoss float64 `yaml:"packet_loss,omitempty"`
	// PeerRatio (> 1 when set): a zone worse than its peers' median by this
	// factor, in 3 of 5 windows, is impaired. Default (0) 1.3; warnings fire
	// at 1.2 or PeerRatio, whichever is lower.
	PeerRatio float64 `yaml:"peer_ratio,omitempty"`
}

// GPU declares a group of GPU nodes watched through DCGM exporter metrics.
type GPU struct {
	// Selector selects the DCGM series, e.g. `{__name__=~"DCGM_FI_.*",cluster="train"}`.
	Selector string `yaml:"selector"`
	// NodeLabel is the label naming the Kubernetes node (DCGM's Hostname).
	NodeLabel string `yaml:"node_label"`
	// GroupBy are labels whose values split the group (e.g. a job label),
	// so stragglers are compared with peers in the same job.
	GroupBy []string `yaml:"group_by,omitempty"`
	// Window is the comparison window. Default 1m, >= 1s.
	Window time.Duration `yaml:"window,omitempty"`
	// TaintKey is the taint put on a sick node. Default augur.io/gpu-unhealthy.
	TaintKey string `yaml:"taint_key,omitempty"`
	// Cordon the node as well as tainting it.
	Cordon bool `yaml:"cordon,omitempty"`
	// StepTimeMetric names a gauge of training step (mini-batch) times the
	// rule's selector also selects; its series are compared per worker with
	// the other workers of the group (stragglers). Empty: none.
	StepTimeMetric string `yaml:"step_time_metric,omitempty"`
	// WorkerLabel names the worker of a step-time series. Default "pod".
	WorkerLabel string `yaml:"worker_label,omitempty"`
}

// Anomaly declares a per-series anomaly band on any selector.
type Anomaly struct {
	// Selector selects the series; counters are watched as rates.
	Selector string `yaml:"selector"`
	// Sensitivity is the band half-width in standard deviations of the
	// one-step forecast residual. Default 2 (CloudWatch's
	// ANOMALY_DETECTION_BAND(m, 2)), > 0.
	Sensitivity float64 `yaml:"sensitivity,omitempty"`
	// Warmup is how many samples a series needs before it can alarm, or
	// a day of samples if that comes first (at least 64). Default 256
	// (detectors/anomaly's default, the one scored on NAB).
	Warmup int `yaml:"warmup,omitempty"`
	// AlertOn is what raises the alert: "score" (default), a detection of
	// the anomaly score (Score reached, then quiet for the detector's
	// quiet period: one alert per incident; the score measured on NAB),
	// or "band", M of the last N samples outside the band (CloudWatch's
	// anomaly-detection alarm; many more false alarms, see
	// bench/RESULTS-anomaly.md). The band is in the evidence either way.
	AlertOn string `yaml:"alert_on,omitempty"`
	// Score is the anomaly score that is a detection, in (0, 1]. Default
	// 0.5: the recent raw scores' tail probability of 1e-5.
	Score float64 `yaml:"score,omitempty"`
	// M of N: with alert_on band, an alarm needs M of the last N samples
	// outside the band. Default 2 of 3; 1 <= M <= N <= 16.
	M int `yaml:"m,omitempty"`
	N int `yaml:"n,omitempty"`
	// Severity of the alert decision: info, warning (default) or critical.
	Severity string `yaml:"severity,omitempty"`
}

// Set is a compiled rules file. It is immutable and safe for concurrent use.
type Set struct {
	rules    []Rule
	compiled []compiled
	// byName indexes workload rules by the metric name of an equality
	// __name__ matcher; anyName lists the other workload rules. The same
	// for anomaly watches.
	byName       map[string][]int
	anyName      []int
	watchByName  map[string][]int
	watchAnyName []int
}

type compiled struct {
	kind     Kind
	matchers []*labels.Matcher
	groupBy  []string
}

// Load reads and compiles the rules file at path.
func Load(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open rules: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("rules %s: %w", path, err)
	}
	return s, nil
}

// Parse reads and compiles a rules file. Unknown fields are errors.
func Parse(r io.Reader) (*Set, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode yaml: %w", err)
	}
	return Compile(f)
}

// Empty returns a Set with no rules: every series is routed by its own labels.
func Empty() *Set {
	s, _ := Compile(File{})
	return s
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// FieldError is a validation error naming the bad field.
type FieldError struct {
	// Field is the path of the field, e.g. rules[2].scaling.capacity_per_pod.
	Field string
	// Msg says what is wrong.
	Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func ferr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Compile validates f, fills defaults and compiles the selectors. The
// returned Set keeps its own copy of the rules with defaults filled.
func Compile(f File) (*Set, error) {
	s := &Set{
		rules:       make([]Rule, len(f.Rules)),
		compiled:    make([]compiled, len(f.Rules)),
		byName:      map[string][]int{},
		watchByName: map[string][]int{},
	}
	seen := map[string]int{}
	p := parser.NewParser(parser.Options{})
	var errs []error
	for i, r := range f.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		r = cloneRule(r)
		if !nameRE.MatchString(r.Name) {
			errs = append(errs, ferr(at+".name", "must match [a-zA-Z0-9_.-]{1,128}, got %q", r.Name))
		} else if j, dup := seen[r.Name]; dup {
			errs = append(errs, ferr(at+".name", "%q already used by rules[%d]", r.Name, j))
		} else {
			seen[r.Name] = i
		}
		var c compiled
		var sel string
		n := 0
		if r.Scaling != nil {
			n++
			c.kind = KindScaling
			sel = r.Scaling.Selector
			errs = append(errs, r.Scaling.validate(at+".scaling")...)
		}
		if r.GrayFailure != nil {
			n++
			c.kind = KindGrayFailure
			sel = r.GrayFailure.Selector
			errs = append(errs, r.GrayFailure.validate(at+".gray_failure")...)
		}
		if r.GPU != nil {
			n++
			c.kind = KindGPU
			sel = r.GPU.Selector
			c.groupBy = r.GPU.GroupBy
			errs = append(errs, r.GPU.validate(at+".gpu")...)
		}
		if r.Anomaly != nil {
			n++
			c.kind = KindAnomaly
			sel = r.Anomaly.Selector
			errs = append(errs, r.Anomaly.validate(at+".anomaly")...)
		}
		if n != 1 {
			errs = append(errs, ferr(at, "must have exactly one of scaling, gray_failure, gpu, anomaly (has %d)", n))
			s.rules[i], s.compiled[i] = r, c
			continue
		}
		ms, err := p.ParseMetricSelector(sel)
		if err != nil {
			errs = append(errs, ferr(at+"."+c.kind.String()+".selector", "%v", err))
		}
		c.matchers = ms
		s.rules[i], s.compiled[i] = r, c
		if err != nil {
			continue
		}
		name, ok := metricName(ms)
		switch {
		case c.kind == KindAnomaly && ok:
			s.watchByName[name] = append(s.watchByName[name], i)
		case c.kind == KindAnomaly:
			s.watchAnyName = append(s.watchAnyName, i)
		case ok:
			s.byName[name] = append(s.byName[name], i)
		default:
			s.anyName = append(s.anyName, i)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func cloneRule(r Rule) Rule {
	if r.Scaling != nil {
		c := *r.Scaling
		r.Scaling = &c
	}
	if r.GrayFailure != nil {
		c := *r.GrayFailure
		r.GrayFailure = &c
	}
	if r.GPU != nil {
		c := *r.GPU
		c.GroupBy = append([]string(nil), c.GroupBy...)
		r.GPU = &c
	}
	if r.Anomaly != nil {
		c := *r.Anomaly
		r.Anomaly = &c
	}
	return r
}

func metricName(ms []*labels.Matcher) (string, bool) {
	for _, m := range ms {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value, true
		}
	}
	return "", false
}

func (s *Scaling) validate(at string) []error {
	var errs []error
	if s.Aggregation == "" {
		s.Aggregation = AggregationSumRate
	}
	if s.Aggregation != AggregationSumRate {
		errs = append(errs, ferr(at+".aggregation", "must be %q, got %q", AggregationSumRate, s.Aggregation))
	}
	if !(s.CapacityPerPod > 0) {
		errs = append(errs, ferr(at+".capacity_per_pod", "must be > 0"))
	}
	if s.Window == 0 {
		s.Window = 30 * time.Second
	}
	if s.Window < time.Second || s.Window%time.Millisecond != 0 {
		errs = append(errs, ferr(at+".window", "must be >= 1s in whole milliseconds, got %s", s.Window))
	}
	if s.Horizon == 0 {
		s.Horizon = 5 * time.Minute
	}
	if s.Horizon < s.Window || s.Horizon > MaxHorizon {
		errs = append(errs, ferr(at+".horizon", "must be between window (%s) and %s, got %s", s.Window, MaxHorizon, s.Horizon))
	}
	if s.MinReplicas < 1 {
		errs = append(errs, ferr(at+".min_replicas", "must be >= 1"))
	}
	if s.MaxReplicas < s.MinReplicas {
		errs = append(errs, ferr(at+".max_replicas", "must be >= min_replicas (%d)", s.MinReplicas))
	}
	if s.Mode == "" {
		s.Mode = ModeScale
	}
	switch s.Mode {
	case ModeScale, ModeHPAMin, ModeReserveCapacity:
	default:
		errs = append(errs, ferr(at+".mode", "must be one of scale, hpa_min, reserve_capacity, got %q", s.Mode))
	}
	if s.Target.Kind == "" {
		s.Target.Kind = "Deployment"
		if s.Mode == ModeHPAMin {
			s.Target.Kind = "HorizontalPodAutoscaler"
		}
	}
	switch {
	case s.Mode == ModeHPAMin && s.Target.Kind != "HorizontalPodAutoscaler":
		errs = append(errs, ferr(at+".target.kind", "must be HorizontalPodAutoscaler for mode hpa_min, got %q", s.Target.Kind))
	case s.Mode == ModeReserveCapacity && s.Target.Kind != "Deployment":
		errs = append(errs, ferr(at+".target.kind", "must be Deployment for mode reserve_capacity, got %q", s.Target.Kind))
	case s.Mode == ModeScale && s.Target.Kind != "Deployment" && s.Target.Kind != "StatefulSet":
		errs = append(errs, ferr(at+".target.kind", "must be Deployment or StatefulSet for mode scale, got %q", s.Target.Kind))
	}
	if !dnsName(s.Target.Namespace) {
		errs = append(errs, ferr(at+".target.namespace", "must be a DNS label, got %q", s.Target.Namespace))
	}
	if !dnsName(s.Target.Name) {
		errs = append(errs, ferr(at+".target.name", "must be a DNS subdomain, got %q", s.Target.Name))
	}
	if s.ScaleDownDelay == 0 {
		s.ScaleDownDelay = 5 * time.Minute
	}
	if s.ScaleDownDelay < 0 {
		errs = append(errs, ferr(at+".scale_down_delay", "must be >= 0"))
	}
	if s.Window >= time.Second && s.ScaleDownDelay/s.Window >= scaling.MaxWindow {
		// The stabilization keeps one entry per window.
		errs = append(errs, ferr(at+".scale_down_delay", "must be under %d windows (%s at a window of %s), got %s",
			scaling.MaxWindow, time.Duration(scaling.MaxWindow)*s.Window, s.Window, s.ScaleDownDelay))
	}
	if s.IntervalCap == 0 {
		s.IntervalCap = DefaultIntervalCap
	}
	if !(s.IntervalCap > 0) || math.IsInf(s.IntervalCap, 0) {
		errs = append(errs, ferr(at+".interval_cap", "must be a finite number > 0, got %v", s.IntervalCap))
	}
	if s.DecisionTTL == 0 {
		s.DecisionTTL = max(2*s.Window, time.Minute)
	}
	if s.DecisionTTL < 0 {
		errs = append(errs, ferr(at+".decision_ttl", "must be > 0"))
	}
	return errs
}

var dnsRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

func dnsName(s string) bool { return dnsRE.MatchString(s) }

func (g *GrayFailure) validate(at string) []error {
	var errs []error
	if !labelName(g.ZoneLabel) {
		errs = append(errs, ferr(at+".zone_label", "must be a label name, got %q", g.ZoneLabel))
	}
	if g.InstanceLabel == "" {
		g.InstanceLabel = "instance"
	}
	if !labelName(g.InstanceLabel) {
		errs = append(errs, ferr(at+".instance_label", "must be a label name, got %q", g.InstanceLabel))
	}
	t := g.Thresholds
	for _, f := range []struct {
		name string
		v    float64
	}{{"mean_latency_seconds", t.MeanLatencySeconds}, {"p99_latency_seconds", t.P99LatencySeconds}, {"max_latency_seconds", t.MaxLatencySeconds}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			errs = append(errs, ferr(at+".thresholds."+f.name, "must be >= 0"))
		}
	}
	if !(t.ErrorRatio >= 0 && t.ErrorRatio <= 1) {
		errs = append(errs, ferr(at+".thresholds.error_ratio", "must be in [0,1]"))
	}
	if !(t.PacketLoss >= 0 && t.PacketLoss <= 1) {
		errs = append(errs, ferr(at+".thresholds.packet_loss", "must be in [0,1]"))
	}
	if t.PeerRatio != 0 && !(t.PeerRatio > 1) {
		errs = append(errs, ferr(at+".thresholds.peer_ratio", "must be > 1 when set"))
	}
	if g.MinInstances == 0 {
		g.MinInstances = 2
	}
	if g.MinInstances < 1 {
		errs = append(errs, ferr(at+".min_instances", "must be >= 1"))
	}
	if g.MinRequests == 0 {
		g.MinRequests = 50
	}
	if !(g.MinRequests >= 0) || math.IsInf(g.MinRequests, 0) {
		errs = append(errs, ferr(at+".min_requests", "must be >= 0"))
	}
	if !strings.HasPrefix(g.ResourceARN, "arn:") || strings.Count(g.ResourceARN, ":") < 5 {
		errs = append(errs, ferr(at+".resource_arn", "must be an ARN (arn:partition:service:region:account:resource), got %q", g.ResourceARN))
	}
	if g.FalseAlarmDays == 0 {
		g.FalseAlarmDays = 90
	}
	if !(g.FalseAlarmDays >= 0.01 && g.FalseAlarmDays <= 36500) {
		errs = append(errs, ferr(at+".false_alarm_days", "must be between 0.01 and 36500, got %v", g.FalseAlarmDays))
	}
	if g.Window == 0 {
		g.Window = 15 * time.Second
	}
	if g.Window < time.Second || g.Window%time.Millisecond != 0 {
		errs = append(errs, ferr(at+".window", "must be >= 1s in whole milliseconds, got %s", g.Window))
	}
	if g.ShiftExpiry == 0 {
		g.ShiftExpiry = DefaultShiftExpiry
	}
	if g.ShiftExpiry < time.Minute || g.ShiftExpiry > 72*time.Hour {
		errs = append(errs, ferr(at+".shift_expiry", "must be between 1m and 72h, got %s", g.ShiftExpiry))
	}
	return errs
}

// DefaultShiftExpiry is the default lifetime of a zonal shift. It is
// shorter than the detector's own default (1h) on purpose: the detector
// extends a shift while the zone stays sick, so the expiry only matters
// when augur stops deciding, and then traffic should return to the zone
// sooner rather than later (a stale shift silently removes a third of the
// capacity of a three-zone service).
const DefaultShiftExpiry = 30 * time.Minute

func (g *GPU) validate(at string) []error {
	var errs []error
	if !labelName(g.NodeLabel) {
		errs = append(errs, ferr(at+".node_label", "must be a label name, got %q", g.NodeLabel))
	}
	for j, l := range g.GroupBy {
		if !labelName(l) {
			errs = append(errs, ferr(fmt.Sprintf("%s.group_by[%d]", at, j), "must be a label name, got %q", l))
		}
	}
	if g.Window == 0 {
		g.Window = time.Minute
	}
	if g.Window < time.Second {
		errs = append(errs, ferr(at+".window", "must be >= 1s"))
	}
	if g.TaintKey == "" {
		g.TaintKey = "augur.io/gpu-unhealthy"
	}
	if g.StepTimeMetric != "" && !labelName(g.StepTimeMetric) {
		errs = append(errs, ferr(at+".step_time_metric", "must be a metric name, got %q", g.StepTimeMetric))
	}
	if g.WorkerLabel == "" {
		g.WorkerLabel = "pod"
	}
	if !labelName(g.WorkerLabel) {
		errs = append(errs, ferr(at+".worker_label", "must be a label name, got %q", g.WorkerLabel))
	}
	return errs
}

// DetectorConfig is the anomaly detector's configuration for the rule:
// its band, alarm, warm-up and detection level; every other field is left
// to the detector's default (filled in by Validate and anomaly.New).
func (a *Anomaly) DetectorConfig() anomaly.Config {
	return anomaly.Config{BandWidth: a.Sensitivity, Warmup: a.Warmup, AlarmM: a.M, AlarmN: a.N, DetectLevel: a.Score}
}

func (a *Anomaly) validate(at string) []error {
	var errs []error
	if a.AlertOn == "" {
		a.AlertOn = "score"
	}
	switch {
	case a.AlertOn != "score" && a.AlertOn != "band":
		errs = append(errs, ferr(at+".alert_on", "must be score or band, got %q", a.AlertOn))
	case a.AlertOn == "score" && (a.M != 0 || a.N != 0):
		errs = append(errs, ferr(at+".m", "m and n set the band alarm: only with alert_on: band (the default alerts on the anomaly score)"))
	case a.AlertOn == "band" && a.Score != 0:
		errs = append(errs, ferr(at+".score", "sets the score that alerts: only with alert_on: score"))
	}
	// The defaults and bounds are the detector's (detectors/anomaly), so
	// a rule without options runs the detector scored on NAB.
	c := a.DetectorConfig()
	var ce *anomaly.ConfigError
	switch err := c.Validate(); {
	case errors.As(err, &ce):
		option := map[string]string{"BandWidth": "sensitivity", "Warmup": "warmup", "AlarmM": "m", "AlarmN": "n", "DetectLevel": "score"}[ce.Field]
		errs = append(errs, ferr(at+"."+option, "%s", ce.Msg))
	case err != nil:
		errs = append(errs, ferr(at, "%v", err))
	}
	// Only the options of the alert in use are filled in, so a validated
	// rule validates again.
	a.Sensitivity, a.Warmup = c.BandWidth, c.Warmup
	if a.AlertOn == "band" {
		a.M, a.N = c.AlarmM, c.AlarmN
	} else {
		a.Score = c.DetectLevel
	}
	if a.Severity == "" {
		a.Severity = "warning"
	}
	switch a.Severity {
	case "info", "warning", "critical":
	default:
		errs = append(errs, ferr(at+".severity", "must be info, warning or critical, got %q", a.Severity))
	}
	return errs
}

var labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func labelName(s string) bool { return labelRE.MatchString(s) }

// Len returns the number of rules.
func (s *Set) Len() int { return len(s.rules) }

// Rule returns rule i with its defaults filled. The caller must not modify it.
func (s *Set) Rule(i int) *Rule { return &s.rules[i] }

// Kind returns the kind of rule i.
func (s *Set) Kind(i int) Kind { return s.compiled[i].kind }

// GroupBy returns the labels whose values split rule i into groups (nil when
// the rule is one group per tenant).
func (s *Set) GroupBy(i int) []string { return s.compiled[i].groupBy }

// Match returns the index of the first workload rule (scaling, gray_failure,
// gpu) that selects the series, or -1. lbls must be sorted by name.
func (s *Set) Match(tenant string, lbls []Label) int {
	return s.first(s.byName, s.anyName, tenant, lbls)
}

// MatchWatch returns the index of the first anomaly rule that selects the
// series, or -1. lbls must be sorted by name.
func (s *Set) MatchWatch(tenant string, lbls []Label) int {
	return s.first(s.watchByName, s.watchAnyName, tenant, lbls)
}

// first returns the first rule in file order, among those indexed by the
// series' metric name (byName) and those without one (anyName), that
// matches, or -1.
func (s *Set) first(byName map[string][]int, anyName []int, tenant string, lbls []Label) int {
	best := -1
	if name, ok := proto.LabelValue(lbls, model.MetricNameLabel); ok {
		for _, i := range byName[name] {
			if s.matches(i, tenant, lbls) {
				best = i
				break
			}
		}
	}
	for _, i := range anyName {
		if best >= 0 && i > best {
			break
		}
		if s.matches(i, tenant, lbls) {
			best = i
			break
		}
	}
	return best
}

func (s *Set) matches(i int, tenant string, lbls []Label) bool {
	if t := s.rules[i].Tenant; t != "" && t != tenant {
		return false
	}
	for _, m := range s.compiled[i].matchers {
		v, _ := proto.LabelValue(lbls, m.Name)
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// Routing key prefixes: a key starts with 'r' when routed by a rule's group
// and with 's' when routed by the series' own labels.
const (
	prefixRule   = 'r'
	prefixSeries = 's'
)

// RoutingKey appends the Kafka record key of a series to dst and returns it
// with the index of the workload rule that routed it (-1 when none).
//
// A series a workload rule selects is keyed by the rule's group:
// 'r' tenant 0xff rule-name (0xff group-by-value)*. Every other series is
// keyed by its own labels: 's' tenant (0xff name 0xfe value)*. lbls must be
// sorted by name (as in the samples block). RoutingKey allocates only when
// dst is too small.
func (s *Set) RoutingKey(dst []byte, tenant string, lbls []Label) (key []byte, rule int) {
	rule = s.Match(tenant, lbls)
	if rule >= 0 {
		return s.GroupKey(dst, rule, tenant, lbls), rule
	}
	return proto.AppendSeriesKey(append(dst, prefixSeries), tenant, lbls), -1
}

// GroupKey appends the group key of a series under rule i to dst: the
// routing key of every series of the group. Series of one group meet on one
// partition and are aggregated together by stream.
func (s *Set) GroupKey(dst []byte, rule int, tenant string, lbls []Label) []byte {
	dst = append(dst, prefixRule)
	dst = append(dst, tenant...)
	dst = append(dst, proto.KeySep)
	dst = append(dst, s.rules[rule].Name...)
	for _, g := range s.compiled[rule].groupBy {
		v, _ := proto.LabelValue(lbls, g)
		dst = append(dst, proto.KeySep)
		dst = append(dst, v...)
	}
	return dst
}

// ParseGroupKey splits a group key made by GroupKey into its tenant, rule
// name and group-by values (appended to vals). ok is false for a key that is
// not a group key.
func ParseGroupKey(key []byte, vals []string) (tenant, rule string, groupVals []string, ok bool) {
	if len(key) == 0 || key[0] != prefixRule {
		return "", "", vals, false
	}
	parts := bytes.Split(key[1:], []byte{proto.KeySep})
	if len(parts) < 2 {
		return "", "", vals, false
	}
	for _, p := range parts[2:] {
		vals = append(vals, string(p))
	}
	return string(parts[0]), string(parts[1]), vals, true
}

// Partition returns the partition of key among n partitions:
// xxhash64(key) mod n. n must be > 0.
func Partition(key []byte, n int32) int32 {
	return PartitionOfHash(xxhash.Sum64(key), n)
}

// PartitionOfHash is Partition given xxhash64(key), for a caller that
// keeps the hash.
func PartitionOfHash(h uint64, n int32) int32 {
	return int32(h % uint64(n))
}
