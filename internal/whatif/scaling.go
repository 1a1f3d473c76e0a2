package whatif

import (
	"math"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// ScalingOptions are the settings of a scaling rule's evaluation.
type ScalingOptions struct {
	// PodStart is how long a new pod takes to be ready. Default 90s.
	PodStart time.Duration
	// Tick is the simulated HPA's period and the scoring step. Default 15s.
	Tick time.Duration
	// Warmup is the leading span played but not scored. Default 0: a new
	// deployment's first minutes count.
	Warmup time.Duration
	// Seen is how long after a window's end its load is seen by the
	// simulated HPA: the stream's allowed lateness (default 30s), after
	// which augur decides on the window.
	Seen time.Duration
}

// defaults fills the zero fields of o.
func (o *ScalingOptions) defaults() {
	if o.PodStart == 0 {
		o.PodStart = 90 * time.Second
	}
	if o.Tick == 0 {
		o.Tick = 15 * time.Second
	}
	if o.Seen == 0 {
		o.Seen = 30 * time.Second
	}
}

// Baseline kinds.
const (
	BaselineSimulatedHPA = "simulated_hpa"
	BaselineActual       = "actual_replicas"
)

// ScalingResult compares augur's decisions on a scaling rule's history with
// the reactive baseline.
type ScalingResult struct {
	Augur    Outcome `json:"augur"`
	Baseline Outcome `json:"baseline"`
	// BaselineKind is simulated_hpa, or actual_replicas when the
	// workload's replicas were read from kube-state-metrics.
	BaselineKind string        `json:"baseline_kind"`
	Forecast     ForecastScore `json:"forecast"`
	// Demand is the rule's signal at each window end (the stream's
	// aggregate of the selected counters).
	Demand []Point `json:"-"`
	// Decided are augur's replica decisions, when the stream made them.
	Decided []Step `json:"-"`
}

// ForecastScore scores the forecast served at each window against the
// signal one horizon later.
type ForecastScore struct {
	// MASE is the mean absolute error over that of the naive forecast (the
	// value at the window the forecast was made) on the same windows.
	MASE float64 `json:"mase"`
	// Coverage80 is the share of those windows inside the 80% interval.
	Coverage80 float64 `json:"coverage_80"`
	// Scored counts the windows scored.
	Scored int `json:"scored"`
}

// EvaluateScaling replays a scaling rule's history as the stream decided
// it (rep) against pods that take PodStart to start, and the reactive
// baseline against the same load: the workload's actual replicas when
// actual is not empty, otherwise the simulated HPA (target HPATarget,
// stabilization the rule's scale_down_delay). A pod serves
// capacity_per_pod / HPATarget at 100%. Mode hpa_min runs the simulated
// HPA under augur's minReplicas; mode reserve_capacity does not change the
// workload's replicas and is scored on its forecast only.
func EvaluateScaling(r *rules.Rule, rep *Replayed, actual []Step, o ScalingOptions) ScalingResult {
	o.defaults()
	sc := r.Scaling
	res := ScalingResult{BaselineKind: BaselineSimulatedHPA}
	for _, p := range rep.Points {
		res.Demand = append(res.Demand, Point{Ts: p.WindowEnd, Value: p.Observed})
	}
	for _, d := range rep.Decisions {
		switch d.Decision.Kind {
		case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
			if n := d.Decision.GetDesired().GetReplicas(); n > 0 {
				res.Decided = append(res.Decided, Step{At: d.MadeAt, Replicas: n})
			}
		}
	}
	res.Forecast = scoreForecasts(rep.Points, o.Warmup)
	if len(res.Demand) == 0 {
		return res
	}
	scen := ScalingScenario(r, res.Demand, o)
	hpa := func() *HPA {
		return NewHPA(scen.Capacity, HPATarget, sc.ScaleDownDelay, sc.MinReplicas, sc.MaxReplicas)
	}
	if len(actual) > 0 {
		res.BaselineKind = BaselineActual
		res.Baseline = Simulate(scen, NewRecorded(actual, nil))
	} else {
		res.Baseline = Simulate(scen, hpa())
	}
	switch sc.Mode {
	case rules.ModeHPAMin:
		res.Augur = Simulate(scen, NewRecorded(res.Decided, hpa()))
	case rules.ModeReserveCapacity:
		res.Augur = res.Baseline
	default:
		res.Augur = Simulate(scen, NewRecorded(res.Decided, nil))
	}
	return res
}

// ScalingScenario is the Scenario a scaling rule's load is played in.
func ScalingScenario(r *rules.Rule, demand []Point, o ScalingOptions) Scenario {
	o.defaults()
	sc := r.Scaling
	return Scenario{Demand: demand, Capacity: sc.CapacityPerPod / HPATarget, PodStart: o.PodStart, Tick: o.Tick,
		Seen: o.Seen, Warmup: o.Warmup, MinPods: sc.MinReplicas, MaxPods: sc.MaxReplicas}
}

// scoreForecasts scores each window's forecast against the signal at its
// target time (a later window's end), skipping targets within warmup of
// the first window.
func scoreForecasts(pts []*proto.ForecastPoint, warmup time.Duration) ForecastScore {
	var fs ForecastScore
	if len(pts) == 0 {
		return fs
	}
	at := make(map[int64]float64, len(pts))
	for _, p := range pts {
		at[p.WindowEnd] = p.Observed
	}
	scoreFrom := pts[0].WindowEnd + warmup.Milliseconds()
	var errSum, naiveSum float64
	covered := 0
	for _, p := range pts {
		if math.IsNaN(p.Forecast) || math.IsInf(p.Forecast, 0) {
			continue
		}
		target := p.WindowEnd + int64(p.HorizonSeconds*1000)
		a, ok := at[target]
		if !ok || target < scoreFrom {
			continue
		}
		fs.Scored++
		errSum += math.Abs(p.Forecast - a)
		naiveSum += math.Abs(p.Observed - a)
		if a >= p.Lower && a <= p.Upper {
			covered++
		}
	}
	if fs.Scored > 0 {
		fs.Coverage80 = float64(covered) / float64(fs.Scored)
		if naiveSum > 0 {
			fs.MASE = errSum / naiveSum
		}
	}
	return fs
}
