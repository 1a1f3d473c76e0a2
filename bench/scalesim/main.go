// Command scalesim replays each trace of the forecast benchmark as request
// load against pods that take 90 s to start and compares a reactive policy
// like the Kubernetes HPA (target 70% utilisation, 5-minute scale-down
// stabilization) with augur's predictive policy. It reports
// under-provisioned minutes (demand above the capacity of ready pods) and
// pod-hours for both.
//
// augur's decisions are the stream's own: each trace becomes a counter
// scraped every 15 s (whatif.CounterFromTrace) and is replayed through the
// stream (stream.Replayer) under a scaling rule, exactly as augur whatif
// replays a user's Prometheus history; the pods are played by
// internal/whatif's simulator, as in whatif's report.
//
//	go run ./bench/scalesim [-data ../shared/data]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/internal/whatif"
	"github.com/augur-ops/augur/models/backtest"
	"github.com/augur-ops/augur/proto"
)

// Scrape is the sampling interval of the counters the traces become.
const Scrape = 15 * time.Second

func main() {
	data := flag.String("data", defaultData(), "folder holding traces/crane and nab/data")
	start := flag.Duration("pod-start", 90*time.Second, "pod start time (created to ready)")
	horizon := flag.Duration("horizon", 0, "the rule's horizon (default: one trace step plus pod start, rounded up to the step)")
	stab := flag.Duration("stab", 5*time.Minute, "the rule's scale_down_delay (the HPA's stabilization too)")
	icap := flag.Float64("interval-cap", -1, "variant: scaling.Config.IntervalCap (negative: the stream's)")
	fcHold := flag.Duration("forecast-hold", 0, "variant: scaling.Config.ForecastHold (0: the stream's)")
	upStep := flag.Float64("max-scale-up", 0, "variant: scaling.Config.MaxScaleUp (0: the stream's)")
	downStep := flag.Float64("max-scale-down", 0, "variant: scaling.Config.MaxScaleDown (0: the stream's)")
	hpaMin := flag.Bool("hpa-min", false, "the rule's mode is hpa_min: augur raises the HPA's minReplicas (replicas = max of both)")
	useOracle := flag.Bool("oracle", false, "replace augur by an oracle that knows the load over the next pod start + tick and sizes it at the HPA's target")
	summary := flag.Bool("summary", false, "print only the totals line")
	podsAtP90 := flag.Float64("pods-at-p90", 10, "capacity per pod is the trace's 90th percentile load over this")
	flag.Parse()
	var files []string
	for _, g := range []string{"traces/crane/*.csv.gz", "nab/data/realAWSCloudwatch/*.csv"} {
		m, _ := filepath.Glob(filepath.Join(*data, g))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "no traces under", *data)
		os.Exit(1)
	}
	var variant func(*scaling.Config)
	if *icap >= 0 || *fcHold != 0 || *upStep != 0 || *downStep != 0 {
		variant = func(c *scaling.Config) {
			if *upStep != 0 {
				c.MaxScaleUp = *upStep
			}
			if *downStep != 0 {
				c.MaxScaleDown = *downStep
			}
			if *icap >= 0 {
				c.IntervalCap = *icap
			}
			if *fcHold != 0 {
				c.ForecastHold = min(*fcHold, c.Stabilization)
			}
		}
	}
	fmt.Println("| trace | step | capacity/pod | HPA under-prov. min | augur under-prov. min | HPA pod-h | augur pod-h | under-prov. change | pod-h change | reversals HPA / augur |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	var sumHU, sumAU, sumHP, sumAP float64
	var sumHR, sumAR int
	var dU, dP []float64
	meets := 0
	for _, f := range files {
		pts, err := backtest.ReadFile(f)
		if err != nil {
			fail(err)
		}
		step := backtest.InferStep(pts)
		trace := make([]whatif.Point, len(pts))
		vals := make([]float64, len(pts))
		for i, p := range pts {
			trace[i] = whatif.Point{Ts: p.Ts, Value: p.Value}
			vals[i] = p.Value
		}
		slices.Sort(vals)
		p90 := vals[len(vals)*9/10]
		if p90 <= 0 {
			p90 = vals[len(vals)-1]
		}
		capacity := p90 / *podsAtP90
		h := *horizon
		if h == 0 {
			h = min((step+*start+step-1)/step*step, rules.MaxHorizon)
		}
		rule, err := traceRule(step, h, *stab, capacity*whatif.HPATarget, *hpaMin)
		if err != nil {
			fail(err)
		}
		ts, vs := whatif.CounterFromTrace(trace, Scrape)
		series := []whatif.Series{{Labels: []proto.Label{{Name: "__name__", Value: "requests_total"}}, Type: "counter", Ts: ts, Vs: vs}}
		rep, err := whatif.Replay(rule, series, Scrape, variant)
		if err != nil {
			fail(err)
		}
		opts := whatif.ScalingOptions{PodStart: *start, Warmup: 24 * time.Hour}
		res := whatif.EvaluateScaling(rule, rep, nil, opts)
		hu, a := res.Baseline, res.Augur
		if *useOracle {
			sc := whatif.ScalingScenario(rule, res.Demand, opts)
			a = whatif.Simulate(sc, &oracle{pts: res.Demand, capacity: sc.Capacity, lead: (*start + sc.Tick).Milliseconds(), min: sc.MinPods, max: sc.MaxPods})
		}
		sumHR += hu.Reversals
		sumAR += a.Reversals
		sumHU += hu.UnderProvisionedMinutes
		sumAU += a.UnderProvisionedMinutes
		sumHP += hu.PodHours
		sumAP += a.PodHours
		du := 0.0
		if hu.UnderProvisionedMinutes > 0 {
			du = (a.UnderProvisionedMinutes - hu.UnderProvisionedMinutes) / hu.UnderProvisionedMinutes
		} else if a.UnderProvisionedMinutes > 0 {
			du = math.Inf(1)
		}
		dp := (a.PodHours - hu.PodHours) / hu.PodHours
		dU, dP = append(dU, du), append(dP, dp)
		if (du <= -0.5 || (hu.UnderProvisionedMinutes == 0 && a.UnderProvisionedMinutes == 0)) && dp <= 0.1 {
			meets++
		}
		if *summary {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".gz"), ".csv")
		fmt.Printf("| %s | %v | %.4g | %.0f | %.0f | %.1f | %.1f | %s | %s | %d / %d |\n", name, step, capacity,
			hu.UnderProvisionedMinutes, a.UnderProvisionedMinutes, hu.PodHours, a.PodHours,
			pct(a.UnderProvisionedMinutes, hu.UnderProvisionedMinutes), pct(a.PodHours, hu.PodHours), hu.Reversals, a.Reversals)
	}
	fmt.Printf("| **total** | | | %.0f | %.0f | %.1f | %.1f | %+.1f%% | %+.1f%% | %d / %d |\n", sumHU, sumAU, sumHP, sumAP, 100*(sumAU-sumHU)/sumHU, 100*(sumAP-sumHP)/sumHP, sumHR, sumAR)
	slices.Sort(dU)
	slices.Sort(dP)
	fmt.Printf("\nmedian per trace: under-provisioned minutes %+.0f%%, pod-hours %+.0f%%; traces meeting the target (≥50%% fewer under-provisioned minutes at ≤10%% more pod-hours): %d of %d\n",
		100*dU[len(dU)/2], 100*dP[len(dP)/2], meets, len(dU))
}

// traceRule is the scaling rule a trace is replayed under: one window per
// trace step, 2 to 1000 replicas.
func traceRule(step, horizon, stab time.Duration, capacityPerPod float64, hpaMin bool) (*rules.Rule, error) {
	sc := &rules.Scaling{Selector: "requests_total", CapacityPerPod: capacityPerPod, Window: step, Horizon: horizon,
		MinReplicas: 2, MaxReplicas: 1000, ScaleDownDelay: stab, Target: rules.KubeObject{Namespace: "sim", Name: "app"}}
	if hpaMin {
		sc.Mode, sc.Target.Kind = rules.ModeHPAMin, "HorizontalPodAutoscaler"
	}
	set, err := rules.Compile(rules.File{Rules: []rules.Rule{{Name: "trace", Scaling: sc}}})
	if err != nil {
		return nil, err
	}
	return set.Rule(0), nil
}

// defaultData is ../shared/data next to the repository.
func defaultData() string {
	if wd, err := os.Getwd(); err == nil {
		for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, "..", "shared", "data")
			}
		}
	}
	return filepath.Join("..", "shared", "data")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func pct(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "0%"
		}
		return "n/a"
	}
	return fmt.Sprintf("%+.0f%%", 100*(a-b)/b)
}

// oracle knows the load ahead: it runs the pods that the peak load over the
// next lead (pod start plus one tick) needs at the HPA's target, with no
// stabilization. It bounds what any forecast could do with these pods.
type oracle struct {
	pts      []whatif.Point
	capacity float64
	lead     int64 // ms
	min, max int32
	i        int
}

func (o *oracle) Observe(int64, float64) {}

func (o *oracle) Want(now int64, _ int32) int32 {
	pk := 0.0
	i := o.i
	for t := now; t <= now+o.lead; t += 5000 {
		pk = max(pk, whatif.DemandAt(o.pts, &i, t))
	}
	for o.i+1 < len(o.pts) && o.pts[o.i+1].Ts <= now {
		o.i++
	}
	return scaling.Replicas(pk, o.capacity*whatif.HPATarget, o.min, o.max)
}
