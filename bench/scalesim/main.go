// Command scalesim replays each trace of the forecast benchmark as request
// load against pods that take 90 s to start and compares a reactive policy
// like the Kubernetes HPA (target 70% utilisation, 5-minute scale-down
// stabilization) with augur's predictive policy (models/bank feeding
// detectors/scaling). It reports under-provisioned minutes (demand above the
// capacity of ready pods) and pod-hours for both.
//
//	go run ./bench/scalesim [-data /work/shared/data]
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
	"github.com/augur-ops/augur/models/backtest"
	"github.com/augur-ops/augur/models/bank"
)

func main() {
	data := flag.String("data", "/work/shared/data", "folder holding traces/crane and nab/data")
	start := flag.Duration("pod-start", 90*time.Second, "pod start time (created to ready)")
	util := flag.Float64("util", 0.7, "augur's target utilisation: its capacity per pod is this share of the pod's full capacity (the HPA's target is 0.7)")
	icap := flag.Float64("interval-cap", 1.5, "augur's scaling.Config.IntervalCap (0: size on the upper bound uncapped)")
	stab := flag.Duration("stab", 5*time.Minute, "augur's scale-down stabilization")
	fcHold := flag.Duration("forecast-hold", 2*time.Minute, "augur's scaling.Config.ForecastHold: how long whole recommendations, the forecast's headroom included, are held before a scale down (at most -stab; negative: not held)")
	minH := flag.Duration("min-horizon", 5*time.Minute, "least decision horizon of the forecaster bank (its scoring horizon)")
	hpaMin := flag.Bool("hpa-min", false, "augur raises the HPA's minReplicas instead of scaling directly (replicas = max of both)")
	useOracle := flag.Bool("oracle", false, "replace augur by an oracle that knows the load over the next pod start + tick and sizes it at -util")
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
	fmt.Println("| trace | step | capacity/pod | HPA under-prov. min | augur under-prov. min | HPA pod-h | augur pod-h | under-prov. change | pod-h change | reversals HPA / augur |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	var sumHU, sumAU, sumHP, sumAP float64
	var sumHR, sumAR int
	var dU, dP []float64
	meets := 0
	for _, f := range files {
		pts, err := backtest.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		step := backtest.InferStep(pts)
		vals := make([]float64, len(pts))
		for i, p := range pts {
			vals[i] = p.Value
		}
		slices.Sort(vals)
		p90 := vals[len(vals)*9/10]
		if p90 <= 0 {
			p90 = vals[len(vals)-1]
		}
		capacity := p90 / *podsAtP90
		sc := scenario{pts: pts, capacity: capacity, start: *start, tick: 15 * time.Second,
			warmup: 24 * time.Hour, minPods: 2, maxPods: 1000}
		h := run(sc, &hpa{capacity: capacity, target: 0.7, stab: (5 * time.Minute).Milliseconds(), min: sc.minPods, max: sc.maxPods})
		// The bank is scored at the decision horizon (at least -min-horizon);
		// the scaler sizes on the forecast path up to the next sample plus
		// pod start, the time within which pods ordered now must be ready.
		horizon := max(*minH, ((step+*start)+step-1)/step*step)
		bk, err := bank.New(bank.Config{Step: step, Horizon: horizon, MaxHorizon: max(30*time.Minute, horizon)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// No step bounds: the simulated HPA has none either.
		s, err := scaling.New(scaling.Config{Rule: "sim", Target: scaling.Object{Namespace: "sim", Name: "app"},
			CapacityPerPod: capacity * *util, MinReplicas: sc.minPods, MaxReplicas: sc.maxPods, Horizon: step + *start,
			Stabilization: *stab, MaxScaleUp: float64(sc.maxPods), MaxScaleDown: 1, IntervalCap: *icap, ForecastHold: min(*fcHold, *stab)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var p policy = &predictive{b: bk, s: s}
		if *hpaMin {
			p.(*predictive).floor = &hpa{capacity: capacity, target: 0.7, stab: (5 * time.Minute).Milliseconds(), min: sc.minPods, max: sc.maxPods}
		}
		if *useOracle {
			p = &oracle{pts: pts, capacity: capacity, u: *util, lead: (*start + sc.tick).Milliseconds(), min: sc.minPods, max: sc.maxPods}
		}
		a := run(sc, p)
		sumHR += h.reversals
		sumAR += a.reversals
		sumHU += h.underMin
		sumAU += a.underMin
		sumHP += h.podHours
		sumAP += a.podHours
		du := 0.0
		if h.underMin > 0 {
			du = (a.underMin - h.underMin) / h.underMin
		} else if a.underMin > 0 {
			du = math.Inf(1)
		}
		dp := (a.podHours - h.podHours) / h.podHours
		dU, dP = append(dU, du), append(dP, dp)
		if (du <= -0.5 || (h.underMin == 0 && a.underMin == 0)) && dp <= 0.1 {
			meets++
		}
		if *summary {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".gz"), ".csv")
		fmt.Printf("| %s | %v | %.4g | %.0f | %.0f | %.1f | %.1f | %s | %s | %d / %d |\n", name, step, capacity,
			h.underMin, a.underMin, h.podHours, a.podHours, pct(a.underMin, h.underMin), pct(a.podHours, h.podHours), h.reversals, a.reversals)
	}
	fmt.Printf("| **total** | | | %.0f | %.0f | %.1f | %.1f | %+.1f%% | %+.1f%% | %d / %d |\n", sumHU, sumAU, sumHP, sumAP, 100*(sumAU-sumHU)/sumHU, 100*(sumAP-sumHP)/sumHP, sumHR, sumAR)
	slices.Sort(dU)
	slices.Sort(dP)
	fmt.Printf("\nmedian per trace: under-provisioned minutes %+.0f%%, pod-hours %+.0f%%; traces meeting the target (≥50%% fewer under-provisioned minutes at ≤10%% more pod-hours): %d of %d\n",
		100*dU[len(dU)/2], 100*dP[len(dP)/2], meets, len(dU))
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
