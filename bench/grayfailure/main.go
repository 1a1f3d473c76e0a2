// Command grayfailure measures the zonal gray-failure detector on simulated
// three-zone traffic: added latency, errors and packet loss in one zone (to
// detect and shift), a drained node and region-wide slowdowns (never to
// shift for), and healthy days (to count false shifts). It prints markdown
// tables: the suite at 15 s scrapes, detection delay against degradation
// size and scrape interval (also drawn to -plot), and the false-alarm
// rate observed on quiet healthy days against the false_alarm_days setting.
//
//	go run ./bench/grayfailure [-runs 30] [-days 30] [-seeds 3] [-plot bench/grayfailure-delay.svg]
package main

import (
	"flag"
	"fmt"
	"image/color"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/augur-ops/augur/bench/grayfailure/scenario"
)

func main() {
	runs := flag.Int("runs", 30, "runs per scenario")
	days := flag.Int("days", 30, "healthy days to simulate per seed")
	seeds := flag.Int("seeds", 3, "seeds of the healthy days (1..seeds)")
	samples := flag.Int("samples", 4000, "latency samples per zone and minute")
	plotFile := flag.String("plot", "", "write the delay picture (SVG) here")
	calDays := flag.Int("calibration-days", 30, "quiet healthy days per false_alarm_days setting")
	flag.Parse()
	if err := run(*runs, *days, *seeds, *samples, *calDays, *plotFile); err != nil {
		fmt.Fprintln(os.Stderr, "grayfailure:", err)
		os.Exit(1)
	}
}

func run(runs, days, seeds, samples, calDays int, plotFile string) error {
	dcfg := scenario.BenchDetectorConfig()
	sc := scenario.SuiteConfig{Runs: runs, FaultRunLength: 4 * time.Hour, FaultLength: 30 * time.Minute, Samples: samples, Seed: 1}
	sums, err := scenario.Suite(sc, dcfg)
	if err != nil {
		return err
	}
	for seed := 1; seed <= seeds; seed++ {
		sc := scenario.SuiteConfig{Healthy: time.Duration(days) * 24 * time.Hour, Samples: samples, Seed: uint64(seed)}
		res, err := scenario.Run("healthy", scenario.Config{Seed: sc.Seed, Samples: samples}, dcfg, sc.Healthy)
		if err != nil {
			return err
		}
		sums = append(sums, scenario.Summarize(fmt.Sprintf("healthy_%dd_seed%d", days, seed), res))
	}
	fmt.Printf("## Suite: 15 s scrapes, %d runs per scenario\n\n", runs)
	fmt.Printf("detector: defaults (shift at 1.3x peers by sequential evidence, min evidence %g, false_alarm_days %g, p99 alone needs 5x the evidence; warnings 1.2x in 10 of 16 windows; >= 2 instances; hold-down 15m) + mean latency limit %v\n\n",
		30.0, 90.0, time.Duration(dcfg.MeanLatencyLimit*float64(time.Second)))
	if err := scenario.WriteMarkdown(os.Stdout, sums); err != nil {
		return err
	}

	// Delay against degradation size and scrape interval.
	type cell struct {
		name  string
		kind  scenario.FaultKind
		size  float64
		label string
	}
	cells := []cell{
		{"latency", scenario.Latency, 0.040, "+40ms"}, {"latency", scenario.Latency, 0.080, "+80ms"},
		{"latency", scenario.Latency, 0.200, "+200ms"}, {"latency", scenario.Latency, 0.500, "+500ms"},
		{"errors", scenario.Errors, 0.01, "1%"}, {"errors", scenario.Errors, 0.02, "2%"},
		{"errors", scenario.Errors, 0.05, "5%"}, {"errors", scenario.Errors, 0.10, "10%"},
	}
	steps := []time.Duration{15 * time.Second, 30 * time.Second, time.Minute}
	fmt.Printf("\n## Time to shift against degradation size and scrape interval (%d runs each)\n\n", runs)
	fmt.Println("Median / worst from the fault's start to the end of the window the shift is decided on; augur run decides on the arrival of the next scrape, one scrape interval later (see TestZonalShiftWithinAMinute). `missed`: no shift during the 30-minute fault.")
	fmt.Println()
	fmt.Print("| fault |")
	for _, st := range steps {
		fmt.Printf(" %v scrapes |", st)
	}
	fmt.Print("\n|---|")
	for range steps {
		fmt.Print("---|")
	}
	fmt.Println()
	medians := map[time.Duration][]float64{}
	for _, c := range cells {
		fmt.Printf("| %s %s |", c.name, c.label)
		for _, st := range steps {
			d := dcfg
			d.Step = st
			s, err := scenario.RunScenario(scenario.SuiteConfig{Runs: runs, FaultRunLength: 2 * time.Hour, FaultLength: 30 * time.Minute, Samples: samples, Step: st, Seed: 11},
				d, scenario.Scenario{Name: c.name + c.label, Kind: c.kind, Size: c.size})
			if err != nil {
				return err
			}
			med, worst := scenario.Quantiles(s.Delays)
			if len(s.Delays) == 0 {
				fmt.Printf(" missed %d |", s.Missed)
				medians[st] = append(medians[st], -1)
				continue
			}
			miss := ""
			if s.Missed > 0 {
				miss = fmt.Sprintf(", missed %d", s.Missed)
			}
			fmt.Printf(" %v / %v%s (false %d) |", med, worst, miss, s.FalseShifts)
			if s.Missed > s.Detected {
				medians[st] = append(medians[st], -1) // mostly missed: not drawn
			} else {
				medians[st] = append(medians[st], med.Seconds())
			}
		}
		fmt.Println()
	}
	if plotFile != "" {
		if err := drawDelays(plotFile, cells2labels(cells, func(c cell) string { return c.name + " " + c.label }), steps, medians); err != nil {
			return err
		}
	}

	// False alarms on quiet healthy days (no stalls or bursts: only the
	// noise the threshold is computed from), evidence floor off.
	fmt.Printf("\n## False shifts on quiet healthy days against false_alarm_days (%d days, 3 zones, min evidence 0.01, 100 latency samples per zone and minute)\n\n", calDays)
	fmt.Println("| false_alarm_days | expected at most (zones x days / setting) | observed |")
	fmt.Println("|---|---|---|")
	for _, fa := range []float64{0.25, 1, 4, 90} {
		d := dcfg
		d.FalseAlarmDays, d.MinEvidence, d.MeanLatencyLimit = fa, 0.01, 0
		res, err := scenario.Run("quiet", scenario.Config{Seed: 5, Samples: 100, Quiet: true}, d, time.Duration(calDays)*24*time.Hour)
		if err != nil {
			return err
		}
		fmt.Printf("| %g | %.1f | %d |\n", fa, 3*float64(calDays)/fa, res.Shifts)
	}
	return nil
}

func cells2labels[T any](cs []T, f func(T) string) []string {
	var out []string
	for _, c := range cs {
		out = append(out, f(c))
	}
	return out
}

// drawDelays draws the median delay per fault, one line per scrape
// interval; a fault missed in most runs is left out.
func drawDelays(file string, labels []string, steps []time.Duration, medians map[time.Duration][]float64) error {
	p := plot.New()
	p.Title.Text = "augur gray failure: median time to zonal shift"
	p.X.Label.Text = "fault"
	p.Y.Label.Text = "seconds from fault start (window end)"
	p.Y.Min = 0
	p.NominalX(labels...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	colors := []color.RGBA{{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255}}
	for i, st := range steps {
		var pts plotter.XYs
		for j, v := range medians[st] {
			if v >= 0 {
				pts = append(pts, plotter.XY{X: float64(j), Y: v})
			}
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color, s.Color = colors[i%len(colors)], colors[i%len(colors)]
		p.Add(l, s)
		p.Legend.Add(fmt.Sprintf("%v scrapes", st), l, s)
	}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	if err := p.Save(8*vg.Inch, 4.5*vg.Inch, file); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
