// Package whatif replays a user's Prometheus history through the stream's
// own code (stream.Replayer) and reports what augur would have done: for
// scaling rules the replicas it would have run against the reactive
// baseline (the workload's actual replicas or a simulated HPA), for every
// rule the decisions it would have made. augur whatif is its command;
// bench/scalesim plays the benchmark traces through the same code.
package whatif

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
	"github.com/augur-ops/augur/stream"
)

// Options configure a Run.
type Options struct {
	From, To time.Time
	// Step is the scrape interval of the series read; 0 estimates each
	// rule's (DefaultStep when Prometheus cannot tell). A Step longer than
	// the interval estimated gives way to it.
	Step time.Duration
	// MaxSeries bounds the series one rule may select (default 2000).
	MaxSeries int
	// Scaling configures the evaluation of scaling rules.
	Scaling ScalingOptions
	// Progress, when set, is told what is being read and how far.
	Progress func(rule, phase string, done float64)
}

// DefaultStep is the step used when a rule's scrape interval cannot be
// estimated.
const DefaultStep = 15 * time.Second

// Report is what a Run found, per rule.
type Report struct {
	Prometheus      string       `json:"prometheus"`
	From            time.Time    `json:"from"`
	To              time.Time    `json:"to"`
	PodStartSeconds float64      `json:"pod_start_seconds"`
	Rules           []RuleReport `json:"rules"`
}

// RuleReport is one rule's replay.
type RuleReport struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Selector string `json:"selector"`
	// Error says why the rule could not be replayed; the other fields are
	// then empty.
	Error       string  `json:"error,omitempty"`
	Series      int     `json:"series"`
	StepSeconds float64 `json:"step_seconds"`
	// Notes are things the reader should know (a step guessed, samples
	// dropped).
	Notes []string `json:"notes,omitempty"`
	// Gaps are spans with no sample of any selected series.
	Gaps []Gap `json:"gaps,omitempty"`
	// Scaling rules only.
	Augur    *Outcome       `json:"augur,omitempty"`
	Baseline *Baseline      `json:"baseline,omitempty"`
	Forecast *ForecastScore `json:"forecast,omitempty"`
	// Decisions the stream would have made, oldest first (at most
	// MaxListed); DecisionCounts counts them all by kind.
	Decisions      []DecisionRow  `json:"decisions"`
	DecisionCounts map[string]int `json:"decision_counts"`

	points []*proto.ForecastPoint
	result *ScalingResult
}

// Baseline is the reactive baseline's outcome and what it is.
type Baseline struct {
	Kind string `json:"kind"`
	Outcome
}

// DecisionRow is one decision in a report.
type DecisionRow struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Target  string    `json:"target"`
	Summary string    `json:"summary"`
}

// MaxListed bounds the decisions listed per rule.
const MaxListed = 500

// selector returns a rule's selector and kind.
func selector(r *rules.Rule) (sel, kind string) {
	switch {
	case r.Scaling != nil:
		return r.Scaling.Selector, "scaling"
	case r.GrayFailure != nil:
		return r.GrayFailure.Selector, "gray_failure"
	case r.GPU != nil:
		return r.GPU.Selector, "gpu"
	case r.Anomaly != nil:
		return r.Anomaly.Selector, "anomaly"
	}
	return "", ""
}

// needs is the least history a rule needs to say anything: a scaling rule
// one horizon and two windows (a forecast scored), a gray-failure or GPU
// rule three windows, an anomaly rule its warmup.
func needs(r *rules.Rule, step time.Duration) time.Duration {
	switch {
	case r.Scaling != nil:
		return r.Scaling.Horizon + 2*r.Scaling.Window
	case r.GrayFailure != nil:
		return 3 * r.GrayFailure.Window
	case r.GPU != nil:
		return 3 * r.GPU.Window
	case r.Anomaly != nil:
		return time.Duration(r.Anomaly.Warmup) * step
	}
	return 0
}

// Run replays every rule of set over [From, To] read from p. A rule that
// cannot be replayed (its selector matches nothing, too little history)
// gets an Error in the report and the others go on; errors reaching
// Prometheus end the run.
func Run(ctx context.Context, p *Prometheus, set *rules.Set, o Options) (*Report, error) {
	if !o.To.After(o.From) {
		return nil, fmt.Errorf("range: from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if o.MaxSeries == 0 {
		o.MaxSeries = 2000
	}
	o.Scaling.defaults()
	if err := p.Check(ctx); err != nil {
		return nil, err
	}
	rep := &Report{Prometheus: p.addr, From: o.From.UTC(), To: o.To.UTC(), PodStartSeconds: o.Scaling.PodStart.Seconds()}
	for i := range set.Len() {
		rr, err := runRule(ctx, p, set.Rule(i), o)
		if err != nil {
			return nil, err
		}
		rep.Rules = append(rep.Rules, *rr)
	}
	return rep, nil
}

// ruleError is a rule that cannot be replayed, reported in its RuleReport.
type ruleError struct{ msg string }

func (e ruleError) Error() string { return e.msg }

func runRule(ctx context.Context, p *Prometheus, r *rules.Rule, o Options) (*RuleReport, error) {
	sel, kind := selector(r)
	rr := &RuleReport{Name: r.Name, Kind: kind, Selector: sel, Decisions: []DecisionRow{}, DecisionCounts: map[string]int{}}
	if err := replayRule(ctx, p, r, o, rr); err != nil {
		var re ruleError
		if !errors.As(err, &re) {
			return nil, err
		}
		rr.Error = re.msg
	}
	return rr, nil
}

func replayRule(ctx context.Context, p *Prometheus, r *rules.Rule, o Options, rr *RuleReport) error {
	progress := func(phase string, done float64) {
		if o.Progress != nil {
			o.Progress(r.Name, phase, done)
		}
	}
	progress("series", 0)
	n, err := p.CountSeries(ctx, rr.Selector, o.From, o.To)
	if err != nil {
		return err
	}
	switch {
	case n == 0:
		return ruleError{fmt.Sprintf("selector %s matches no series between %s and %s", rr.Selector, o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339))}
	case n > o.MaxSeries:
		return ruleError{fmt.Sprintf("selector %s matches %d series, more than -max-series %d: narrow the selector or raise the limit", rr.Selector, n, o.MaxSeries)}
	}
	// The step is the scrape interval: raw samples are read in chunks of
	// a number of steps, and replayed a step at a time, each decision
	// made at the end of its step. A -step longer than the scrape
	// interval only delayed decisions by up to a step and made queries
	// larger, so the interval estimated wins over it.
	est, err := p.ScrapeInterval(ctx, rr.Selector, o.From, o.To)
	if err != nil {
		return err
	}
	step := o.Step
	switch {
	case step == 0 && est == 0:
		step = DefaultStep
		rr.Notes = append(rr.Notes, fmt.Sprintf("scrape interval not estimated (no series has two samples within 10 minutes at the times tried): read at %v", step))
	case step == 0:
		step = est
	case est != 0 && est < step:
		rr.Notes = append(rr.Notes, fmt.Sprintf("-step %v is longer than the scrape interval %v estimated: read and replayed at %v", step, est, est))
		step = est
	}
	rr.StepSeconds = step.Seconds()
	series, err := p.Raw(ctx, rr.Selector, n, o.From, o.To, step, func(f float64) { progress("reading", f) })
	if err != nil {
		return err
	}
	if err := p.Types(ctx, series); err != nil {
		return err
	}
	rr.Series = len(series)
	first, last := span(series)
	if first > last {
		return ruleError{fmt.Sprintf("selector %s has no samples between %s and %s", rr.Selector, o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339))}
	}
	if have, need := time.Duration(last-first)*time.Millisecond, needs(r, step); have < need {
		return ruleError{fmt.Sprintf("needs at least %v of history, Prometheus has %v (%s to %s)", need, have,
			time.UnixMilli(first).UTC().Format(time.RFC3339), time.UnixMilli(last).UTC().Format(time.RFC3339))}
	}
	rr.Gaps = Gaps(series, o.From, o.To, step)
	progress("replaying", 0)
	replayed, err := Replay(r, series, o.To, step, nil)
	if err != nil {
		return err
	}
	if replayed.Dropped > 0 {
		rr.Notes = append(rr.Notes, fmt.Sprintf("%d of %d samples dropped as late or repeated", replayed.Dropped, replayed.Samples+replayed.Dropped))
	}
	if replayed.Future > 0 {
		rr.Notes = append(rr.Notes, futureNote(replayed.Future))
	}
	for _, d := range replayed.Decisions {
		rr.DecisionCounts[d.Decision.Kind]++
		if len(rr.Decisions) < MaxListed {
			rr.Decisions = append(rr.Decisions, DecisionRow{Time: time.UnixMilli(d.MadeAt).UTC(), Kind: d.Decision.Kind,
				Target: d.Decision.Target, Summary: d.Decision.Summary})
		}
	}
	if r.Scaling != nil {
		actual, err := p.actualReplicas(ctx, r.Scaling.Target, o.From, o.To, r.Scaling.Window)
		if err != nil {
			return err
		}
		if r.Scaling.Mode == rules.ModeReserveCapacity {
			rr.Notes = append(rr.Notes, "mode reserve_capacity sizes a placeholder Deployment, not the workload: its replicas are the baseline's, and the forecast is what is scored")
		}
		res := EvaluateScaling(r, replayed, actual, o.Scaling)
		rr.Augur, rr.Forecast = &res.Augur, &res.Forecast
		rr.Baseline = &Baseline{Kind: res.BaselineKind, Outcome: res.Baseline}
		rr.points, rr.result = replayed.Points, &res
	}
	progress("done", 1)
	return nil
}

// futureNote is the report's note on n samples dropped as too far in the
// future.
func futureNote(n uint64) string {
	return fmt.Sprintf("%d samples dropped as too far in the future: more than %v past the replay's clock when they arrived "+
		"(augur ingest refuses them, limits.max_future_skew); the samples after them were replayed", n, stream.ReplayMaxFutureSkew)
}

// span returns the first and last sample times of series; first > last
// when they hold no sample.
func span(series []Series) (first, last int64) {
	first, last = math.MaxInt64, math.MinInt64
	for _, s := range series {
		if len(s.Ts) > 0 {
			first, last = min(first, s.Ts[0]), max(last, s.Ts[len(s.Ts)-1])
		}
	}
	return first, last
}

// actualReplicas reads the replicas the workload was scaled to from
// kube-state-metrics (the spec, or the HPA's desired replicas), nil when
// Prometheus has none. Not its status replicas: those count a rolling
// update's surge pods, which read as scaling reversals and pod-hours of
// the baseline's own making (a workload deployed daily flattered augur).
func (p *Prometheus) actualReplicas(ctx context.Context, t rules.KubeObject, from, to time.Time, step time.Duration) ([]Step, error) {
	var q string
	switch strings.ToLower(t.Kind) {
	case "", "deployment":
		q = fmt.Sprintf(`kube_deployment_spec_replicas{namespace=%q,deployment=%q}`, t.Namespace, t.Name)
	case "statefulset":
		q = fmt.Sprintf(`kube_statefulset_replicas{namespace=%q,statefulset=%q}`, t.Namespace, t.Name)
	case "horizontalpodautoscaler":
		q = fmt.Sprintf(`kube_horizontalpodautoscaler_status_desired_replicas{namespace=%q,horizontalpodautoscaler=%q}`, t.Namespace, t.Name)
	default:
		return nil, nil
	}
	series, err := p.QueryRange(ctx, "max("+q+")", from, to, step)
	if err != nil || len(series) == 0 {
		return nil, err
	}
	var steps []Step
	s := series[0]
	for i, ts := range s.Ts {
		n := int32(s.Vs[i])
		if len(steps) == 0 || steps[len(steps)-1].Replicas != n {
			steps = append(steps, Step{At: ts, Replicas: n})
		}
	}
	return steps, nil
}

// Fired returns the decisions of kind other than the scaling kinds in a
// report, oldest first: alerts, zonal shifts, taints.
func (r *Report) Fired() []DecisionRow {
	var out []DecisionRow
	for _, rr := range r.Rules {
		for _, d := range rr.Decisions {
			switch d.Kind {
			case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
			default:
				out = append(out, d)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
