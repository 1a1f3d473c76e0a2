package scenario

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/augur-ops/augur/detectors/grayfailure"
)

// BenchDetectorConfig is the detector configuration the suite measures: the
// defaults, plus an operator's absolute mean-latency limit of 100 ms (the
// simulated service's healthy mean peaks near 50 ms).
func BenchDetectorConfig() grayfailure.Config {
	return grayfailure.Config{
		Resource:         "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/web/0123456789abcdef",
		MeanLatencyLimit: 0.100,
	}
}

// Summary aggregates the runs of one scenario kind.
type Summary struct {
	Name           string
	Runs           int
	Windows        int
	Detected       int
	Missed         int
	Delays         []time.Duration // detected faults (or regional alerts)
	CancelDelays   []time.Duration
	Shifts         int
	FalseShifts    int
	RegionalShifts int
	DrainShifts    int
	Warnings       int
	Alerts         int
	cancels        int
	// Reasons counts alerts by reason.
	Reasons map[string]int
}

// SuiteConfig sizes the suite.
type SuiteConfig struct {
	// Runs per scenario. Each run is FaultRunLength long with one fault
	// of FaultLength on a random zone, starting 30 to 90 minutes (at a
	// random second) into the run; runs start at a random time of day.
	// FaultRunLength should leave time after the fault for the hold-down.
	Runs           int
	FaultRunLength time.Duration
	FaultLength    time.Duration
	// Healthy is how long to simulate without faults.
	Healthy time.Duration
	// Samples per zone and minute (see Config.Samples).
	Samples int
	// Step is the scrape interval and window (default 15s).
	Step time.Duration
	Seed uint64
}

// Scenario is one kind of run of the suite.
type Scenario struct {
	Name string
	Kind FaultKind
	// Size and Stagger as in Fault.
	Size    float64
	Stagger time.Duration
}

// Scenarios are the suite's fault scenarios, in order.
var Scenarios = []Scenario{
	{Name: "latency+200ms", Kind: Latency, Size: 0.200},
	{Name: "latency+80ms", Kind: Latency, Size: 0.080},
	{Name: "errors_5pct", Kind: Errors, Size: 0.05},
	{Name: "packet_loss_5pct", Kind: PacketLoss},
	{Name: "drained_node", Kind: DrainNode},
	{Name: "regional_slowdown", Kind: Regional},
	{Name: "regional_staggered_1m", Kind: Regional, Stagger: time.Minute},
}

// Suite runs every scenario and the healthy days and returns one Summary
// each, in a fixed order.
func Suite(sc SuiteConfig, dcfg grayfailure.Config) ([]Summary, error) {
	var out []Summary
	for _, scn := range Scenarios {
		sum, err := RunScenario(sc, dcfg, scn)
		if err != nil {
			return nil, err
		}
		out = append(out, sum)
	}
	if sc.Healthy > 0 {
		cfg := Config{Seed: sc.Seed, Samples: sc.Samples, Step: sc.Step}
		res, err := Run("healthy", cfg, dcfg, sc.Healthy)
		if err != nil {
			return nil, err
		}
		sum := Summary{Name: fmt.Sprintf("healthy_%gd", sc.Healthy.Hours()/24)}
		sum.add(res)
		out = append(out, sum)
	}
	return out, nil
}

// RunScenario runs sc.Runs runs of one scenario.
func RunScenario(sc SuiteConfig, dcfg grayfailure.Config, scn Scenario) (Summary, error) {
	rng := rand.New(rand.NewPCG(sc.Seed, 7+uint64(scn.Kind)))
	sum := Summary{Name: scn.Name}
	for r := range sc.Runs {
		start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		warm := 30*time.Minute + time.Duration(rng.IntN(60))*time.Minute + time.Duration(rng.IntN(60))*time.Second
		f := Fault{Kind: scn.Kind, Zone: rng.IntN(3), Start: start.Add(warm), End: start.Add(warm + sc.FaultLength), Size: scn.Size, Stagger: scn.Stagger}
		cfg := Config{Start: start, Seed: sc.Seed*1000 + uint64(r) + uint64(scn.Kind)*100, Samples: sc.Samples, Step: sc.Step, Faults: []Fault{f}}
		res, err := Run(fmt.Sprintf("%s/%d", scn.Name, r), cfg, dcfg, sc.FaultRunLength)
		if err != nil {
			return sum, err
		}
		sum.add(res)
		for _, d := range append(res.DetectDelay, res.RegionalAlertDelay...) {
			if d >= 0 {
				sum.Detected++
				sum.Delays = append(sum.Delays, d)
			} else {
				sum.Missed++
			}
		}
		for _, d := range res.CancelDelay {
			if d >= 0 {
				sum.CancelDelays = append(sum.CancelDelays, d)
			}
		}
	}
	return sum, nil
}

func (s *Summary) add(r Result) {
	if s.Reasons == nil {
		s.Reasons = map[string]int{}
	}
	for _, e := range r.Events {
		if e.Kind == "alert" {
			s.Reasons[e.Reason]++
		}
	}
	s.Runs++
	s.Windows += r.Windows
	s.Shifts += r.Shifts
	s.FalseShifts += r.FalseShifts
	s.RegionalShifts += r.RegionalShifts
	s.DrainShifts += r.DrainShifts
	s.cancels += r.Cancels
	s.Warnings += r.Warnings
	s.Alerts += r.Alerts
}

// Cancels counts the cancel_zonal_shift decisions.
func (s *Summary) Cancels() int { return s.cancels }

// Summarize makes the Summary of one run.
func Summarize(name string, r Result) Summary {
	s := Summary{Name: name}
	s.add(r)
	return s
}

// Quantiles returns the median and maximum of ds (0, 0 when empty).
func Quantiles(ds []time.Duration) (time.Duration, time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// WriteMarkdown writes the summaries as a markdown table.
func WriteMarkdown(w io.Writer, sums []Summary) error {
	if _, err := fmt.Fprintln(w, "| scenario | runs | windows | detected | missed | time to detect median / max | cancel after fault end median / max | shifts | false shifts | shifts in regional | shifts in drain | warnings | critical alerts |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	for _, s := range sums {
		med, mx := Quantiles(s.Delays)
		cmed, cmx := Quantiles(s.CancelDelays)
		det, ttd, cancel := fmt.Sprint(s.Detected), fmt.Sprintf("%v / %v", med, mx), fmt.Sprintf("%v / %v", cmed, cmx)
		if len(s.Delays) == 0 {
			ttd = "-"
		}
		if len(s.CancelDelays) == 0 {
			cancel = "-"
		}
		if _, err := fmt.Fprintf(w, "| %s | %d | %d | %s | %d | %s | %s | %d | %d | %d | %d | %d | %d |\n",
			s.Name, s.Runs, s.Windows, det, s.Missed, ttd, cancel, s.Shifts, s.FalseShifts, s.RegionalShifts,
			s.DrainShifts, s.Warnings, s.Alerts); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	if _, err := fmt.Fprintln(w, "\nalerts by reason:"); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	for _, s := range sums {
		if len(s.Reasons) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(s.Reasons))
		line := "- " + s.Name + ":"
		for _, k := range keys {
			line += fmt.Sprintf(" %s %d", k, s.Reasons[k])
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	}
	return nil
}
