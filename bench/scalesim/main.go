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
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/devdata"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/internal/whatif"
	"github.com/augur-ops/augur/models/backtest"
	"github.com/augur-ops/augur/proto"
)

// Scrape is the sampling interval of the counters the traces become.
const Scrape = 15 * time.Second

func main() {
	data := flag.String("data", devdata.Dir(), "folder holding traces/crane and nab/data")
	start := flag.Duration("pod-start", 90*time.Second, "pod start time (created to ready)")
	horizon := flag.Duration("horizon", 0, "the rule's horizon (default: one trace step plus pod start, rounded up to the step)")
	stab := flag.Duration("stab", 5*time.Minute, "the rule's scale_down_delay (the HPA's stabilization too)")
	icap := flag.Float64("interval-cap", -1, "variant: scaling.Config.IntervalCap (negative: the stream's)")
	fcHold := flag.Duration("forecast-hold", 0, "variant: scaling.Config.ForecastHold (0: the stream's)")
	upStep := flag.Float64("max-scale-up", 0, "variant: scaling.Config.MaxScaleUp (0: the stream's)")
	downStep := flag.Float64("max-scale-down", 0, "variant: scaling.Config.MaxScaleDown (0: the stream's)")
	guard := flag.Duration("reversal-guard", -1, "variant: scaling.Config.ReversalGuard (negative: the stream's)")
	hpaMin := flag.Bool("hpa-min", false, "the rule's mode is hpa_min: augur raises the HPA's minReplicas (replicas = max of both)")
	useOracle := flag.Bool("oracle", false, "replace augur by an oracle that knows the load over the next pod start + tick and sizes it at the HPA's target")
	summary := flag.Bool("summary", false, "print only the totals line")
	podsAtP90 := flag.Float64("pods-at-p90", 10, "capacity per pod is the trace's 90th percentile load over this")
	heldout := flag.Bool("heldout", false, "choose the interval cap, forecast hold and reversal guard leaving one trace out, and print in-sample and held-out totals")
	synthetic := flag.Bool("synthetic", false, "play generated traces (load shapes at three noise levels) instead of -data's")
	flag.Parse()
	var files []string
	for _, g := range []string{"traces/crane/*.csv.gz", "nab/data/realAWSCloudwatch/*.csv"} {
		m, _ := filepath.Glob(filepath.Join(*data, g))
		files = append(files, m...)
	}
	sort.Strings(files)
	v := variant{cap: *icap, hold: *fcHold, up: *upStep, down: *downStep, guard: *guard}
	st := settings{podStart: *start, horizon: *horizon, stab: *stab, hpaMin: *hpaMin, oracle: *useOracle, podsAtP90: *podsAtP90}
	var traces []trace
	switch {
	case *synthetic:
		traces = syntheticTraces()
	case len(files) == 0:
		fmt.Fprintln(os.Stderr, "no traces under", *data)
		os.Exit(1)
	default:
		traces = loadTraces(files)
	}
	if *heldout {
		heldOut(traces, st)
		return
	}
	runs := runTraces(traces, st, v)
	if !*summary {
		fmt.Println("| trace | step | capacity/pod | HPA under-prov. min | augur under-prov. min | HPA pod-h | augur pod-h | under-prov. change | pod-h change | reversals HPA / augur |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range runs {
			hu, a := r.hpa, r.augur
			fmt.Printf("| %s | %v | %.4g | %.0f | %.0f | %.1f | %.1f | %s | %s | %d / %d |\n", r.name, r.step, r.capacity,
				hu.UnderProvisionedMinutes, a.UnderProvisionedMinutes, hu.PodHours, a.PodHours,
				pct(a.UnderProvisionedMinutes, hu.UnderProvisionedMinutes), pct(a.PodHours, hu.PodHours), hu.Reversals, a.Reversals)
		}
	} else {
		fmt.Println("| trace | step | capacity/pod | HPA under-prov. min | augur under-prov. min | HPA pod-h | augur pod-h | under-prov. change | pod-h change | reversals HPA / augur |")
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	}
	t := total(runs)
	fmt.Printf("| **total** | | | %.0f | %.0f | %.1f | %.1f | %+.1f%% | %+.1f%% | %d / %d |\n", t.hu, t.au, t.hp, t.ap, 100*t.du(), 100*t.dp(), t.hr, t.ar)
	mu, mp, meets := perTrace(runs)
	fmt.Printf("\nmedian per trace: under-provisioned minutes %+.0f%%, pod-hours %+.0f%%; traces meeting the target (≥50%% fewer under-provisioned minutes at ≤10%% more pod-hours): %d of %d\n",
		100*mu, 100*mp, meets, len(runs))
}

// variant adjusts the scaler the stream maps a rule to (negative or zero
// fields: the stream's own).
type variant struct {
	cap         float64
	hold, guard time.Duration
	up, down    float64
}

func (v variant) String() string {
	return fmt.Sprintf("-interval-cap %g -forecast-hold %v -reversal-guard %v", v.cap, v.hold, v.guard)
}

func (v variant) apply() func(*scaling.Config) {
	if v.cap < 0 && v.hold == 0 && v.up == 0 && v.down == 0 && v.guard < 0 {
		return nil
	}
	return func(c *scaling.Config) {
		if v.guard >= 0 {
			c.ReversalGuard = v.guard
		}
		if v.up != 0 {
			c.MaxScaleUp = v.up
		}
		if v.down != 0 {
			c.MaxScaleDown = v.down
		}
		if v.cap >= 0 {
			c.IntervalCap = v.cap
		}
		if v.hold != 0 {
			c.ForecastHold = min(v.hold, c.Stabilization)
		}
	}
}

// settings are the scenario's: the same for every variant.
type settings struct {
	podStart, horizon, stab time.Duration
	hpaMin, oracle          bool
	podsAtP90               float64
}

// traceRun is one trace played under the HPA and augur.
type traceRun struct {
	name       string
	step       time.Duration
	capacity   float64
	hpa, augur whatif.Outcome
}

// warmup is each trace's first stretch: fed to both policies, not scored.
const warmup = 24 * time.Hour

// trace is one trace file, read once: the counter it becomes, its step and
// the 90th percentile its pods are sized from.
type trace struct {
	name string
	step time.Duration
	p90  float64
	ts   []int64
	vs   []float64
}

// loadTraces reads every file once. A trace that cannot be played is left
// out and named, so that one odd file does not stop the run: one no longer
// than the warm-up (nothing scored), one whose step is longer than a rule's
// longest horizon (no rule can have it as its window), one with no load at
// all (no capacity per pod to size from).
func loadTraces(files []string) []trace {
	var out []trace
	for _, f := range files {
		pts, err := backtest.ReadFile(f)
		if err != nil {
			fail(err)
		}
		name := backtest.SeriesName(f)
		if why := unplayable(pts); why != "" {
			fmt.Fprintf(os.Stderr, "scalesim: %s: %s; left out\n", name, why)
			continue
		}
		out = append(out, newTrace(name, pts))
	}
	if len(out) == 0 {
		fail(fmt.Errorf("none of %d traces can be played (each named above)", len(files)))
	}
	return out
}

// unplayable says why a trace cannot be played, "" when it can.
func unplayable(pts []backtest.Point) string {
	if span := time.Duration(pts[len(pts)-1].Ts-pts[0].Ts) * time.Millisecond; span <= warmup {
		return fmt.Sprintf("nothing scored (%v of samples, the first %v are warm-up)", span, warmup)
	}
	if step := backtest.InferStep(pts); step > rules.MaxHorizon {
		return fmt.Sprintf("a step of %v, longer than a scaling rule's longest horizon (%v)", step, rules.MaxHorizon)
	}
	for _, p := range pts {
		if p.Value > 0 {
			return ""
		}
	}
	return "no load above 0 (no capacity per pod to size from)"
}

// newTrace makes the counter a trace's load becomes.
func newTrace(name string, pts []backtest.Point) trace {
	points := make([]whatif.Point, len(pts))
	vals := make([]float64, len(pts))
	for i, p := range pts {
		points[i] = whatif.Point{Ts: p.Ts, Value: p.Value}
		vals[i] = p.Value
	}
	slices.Sort(vals)
	p90 := vals[len(vals)*9/10]
	if p90 <= 0 {
		p90 = vals[len(vals)-1]
	}
	ts, vs := whatif.CounterFromTrace(points, Scrape)
	return trace{name: name, step: backtest.InferStep(pts), p90: p90, ts: ts, vs: vs}
}

func runTraces(traces []trace, st settings, v variant) []traceRun {
	runs := make([]traceRun, 0, len(traces))
	for _, tr := range traces {
		step := tr.step
		capacity := tr.p90 / st.podsAtP90
		h := st.horizon
		if h == 0 {
			h = min((step+st.podStart+step-1)/step*step, rules.MaxHorizon)
		}
		rule, err := traceRule(step, h, st.stab, capacity*whatif.HPATarget, st.hpaMin)
		if err != nil {
			fail(err)
		}
		series := []whatif.Series{{Labels: []proto.Label{{Name: "__name__", Value: "requests_total"}}, Type: "counter", Ts: tr.ts, Vs: tr.vs}}
		rep, err := whatif.Replay(rule, series, time.UnixMilli(tr.ts[len(tr.ts)-1]), Scrape, v.apply())
		if err != nil {
			fail(err)
		}
		opts := whatif.ScalingOptions{PodStart: st.podStart, Warmup: warmup}
		res := whatif.EvaluateScaling(rule, rep, nil, opts)
		a := res.Augur
		if st.oracle {
			sc := whatif.ScalingScenario(rule, res.Demand, opts)
			a = whatif.Simulate(sc, &oracle{pts: res.Demand, capacity: sc.Capacity, lead: (st.podStart + sc.Tick).Milliseconds(), min: sc.MinPods, max: sc.MaxPods})
		}
		runs = append(runs, traceRun{name: tr.name, step: step, capacity: capacity, hpa: res.Baseline, augur: a})
	}
	return runs
}

// totals sums traces.
type totals struct {
	hu, au, hp, ap float64
	hr, ar         int
}

func (t totals) du() float64 { return (t.au - t.hu) / t.hu }
func (t totals) dp() float64 { return (t.ap - t.hp) / t.hp }

func total(runs []traceRun) totals {
	var t totals
	for _, r := range runs {
		t.hu += r.hpa.UnderProvisionedMinutes
		t.au += r.augur.UnderProvisionedMinutes
		t.hp += r.hpa.PodHours
		t.ap += r.augur.PodHours
		t.hr += r.hpa.Reversals
		t.ar += r.augur.Reversals
	}
	return t
}

// perTrace returns the median changes per trace and how many traces meet
// both limits.
func perTrace(runs []traceRun) (mu, mp float64, meets int) {
	var dU, dP []float64
	for _, r := range runs {
		hu, a := r.hpa, r.augur
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
	}
	slices.Sort(dU)
	slices.Sort(dP)
	return dU[len(dU)/2], dP[len(dP)/2], meets
}

// better reports whether totals a beat b under the target: meeting both
// limits (pod-hours at most +10%, no more reversals than the HPA) first,
// then fewer under-provisioned minutes; between settings that miss, the
// smaller excess over the limits.
func better(a, b totals) bool {
	excess := func(t totals) float64 {
		return max(0, t.dp()-0.10) + max(0, float64(t.ar-t.hr)/float64(max(t.hr, 1)))
	}
	ea, eb := excess(a), excess(b)
	if ea != eb {
		return ea < eb
	}
	return a.du() < b.du()
}

// grid is the settings heldOut chooses among. The forecast holds reach the
// stabilization (5 minutes) and the caps go down to 0.5: the first grid
// (caps 1-2, holds 1-3m) chose at its edge.
func grid() []variant {
	var vs []variant
	for _, g := range []time.Duration{0, time.Minute, 2 * time.Minute, 5 * time.Minute} {
		for _, c := range []float64{0.5, 1, 1.5, 2} {
			for _, h := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute} {
				vs = append(vs, variant{cap: c, hold: h, guard: g})
			}
		}
	}
	return vs
}

// heldOut chooses settings leaving one trace out: for each trace, the
// setting of grid() best on the other traces (better), scored on the
// trace left out; the held-out totals sum those. The in-sample row is the
// setting best on all traces, scored on them.
func heldOut(traces []trace, st settings) {
	vs := grid()
	all := make([][]traceRun, len(vs))
	for i, v := range vs {
		all[i] = runTraces(traces, st, v)
		t := total(all[i])
		fmt.Fprintf(os.Stderr, "%s: %+.1f%% / %+.1f%%, reversals %d / %d\n", v, 100*t.du(), 100*t.dp(), t.hr, t.ar)
	}
	pick := func(skip int) int {
		best, bt := -1, totals{}
		for i := range vs {
			var rs []traceRun
			for j, r := range all[i] {
				if j != skip {
					rs = append(rs, r)
				}
			}
			if t := total(rs); best < 0 || better(t, bt) {
				best, bt = i, t
			}
		}
		return best
	}
	in := pick(-1)
	var held []traceRun
	chosen := map[int]int{}
	for j := range traces {
		i := pick(j)
		chosen[i]++
		held = append(held, all[i][j])
	}
	fmt.Printf("| selection (pod start %v) | total under-prov. / pod-h | reversals HPA / augur | median per trace | traces meeting both |\n|---|---|---|---|---|\n", st.podStart)
	row := func(name string, runs []traceRun) {
		t := total(runs)
		mu, mp, meets := perTrace(runs)
		fmt.Printf("| %s | %+.1f%% / %+.1f%% | %d / %d | %+.0f%% / %+.0f%% | %d of %d |\n", name, 100*t.du(), 100*t.dp(), t.hr, t.ar, 100*mu, 100*mp, meets, len(runs))
	}
	row("in-sample: best on all traces, `"+vs[in].String()+"`", all[in])
	row("held-out: each trace scored with the setting best on the others", held)
	fmt.Println()
	order := slices.Collect(maps.Keys(chosen))
	slices.SortFunc(order, func(a, b int) int { return cmp.Or(chosen[b]-chosen[a], a-b) })
	for _, i := range order {
		fmt.Printf("- `%s` chosen for %d of %d held-out traces\n", vs[i], chosen[i], len(traces))
	}
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
