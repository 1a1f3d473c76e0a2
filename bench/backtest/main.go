// Command backtest reproduces the forecast accuracy table of
// bench/RESULTS-forecast.md: every series of the crane traces and of NAB's
// realAWSCloudwatch set, backtested at a 30-minute horizon, each forecaster
// against the baselines.
//
//	go run ./bench/backtest [-data ../shared/data] [-horizon 30m] [-heldout]
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/augur-ops/augur/internal/devdata"
	"github.com/augur-ops/augur/models/backtest"
)

func main() {
	data := flag.String("data", devdata.Dir(), "folder holding traces/crane and nab/data")
	horizon := flag.Duration("horizon", 30*time.Minute, "forecast horizon")
	verbose := flag.Bool("v", false, "print every series' metrics")
	heldout := flag.Bool("heldout", false, "choose the bank's score memory and refit accuracy among a grid leaving one series out, and print the bank's in-sample and held-out accuracy")
	flag.Parse()
	var files []string
	for _, g := range []string{"traces/crane/*.csv.gz", "nab/data/realAWSCloudwatch/*.csv"} {
		m, err := filepath.Glob(filepath.Join(*data, g))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	files = scoreable(files)
	if len(files) == 0 {
		fmt.Fprintln(os.Stderr, "no series to score under", *data)
		os.Exit(1)
	}
	if *heldout {
		if err := heldOut(os.Stdout, files, *horizon); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	cols := []int{backtest.ColSeasonalNaive, backtest.ColHoltWinters, backtest.ColFourier, backtest.ColDrift, backtest.ColBank,
		backtest.ColDailyNaive, backtest.ColNaive, backtest.ColHolt}
	var sumMASE, sumSMAPE, sumCov [backtest.NumCols]float64
	var wins, winsNaive, n int
	var cpu time.Duration
	var rowsTotal int
	fmt.Printf("| series | step | periods | %s |\n", strings.Join(names(cols), " | "))
	fmt.Printf("|---|---|---|%s\n", strings.Repeat("---|", len(cols)))
	for _, f := range files {
		pts, err := backtest.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c0 := cpuTime()
		res, err := backtest.Run(pts, backtest.Options{Horizon: *horizon})
		cpu += cpuTime() - c0
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		rowsTotal += len(pts)
		n++
		m := res.Metrics
		if m[backtest.ColBank].MASE < m[backtest.ColDailyNaive].MASE {
			wins++
		}
		if m[backtest.ColBank].MASE < m[backtest.ColNaive].MASE {
			winsNaive++
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			sumMASE[c] += m[c].MASE
			sumSMAPE[c] += m[c].SMAPE
			sumCov[c] += m[c].Coverage
			cells[i] = fmt.Sprintf("%.3f / %.0f%%", m[c].MASE, 100*m[c].Coverage)
		}
		fmt.Printf("| %s | %v | %v | %s |\n", backtest.SeriesName(f),
			res.Step, res.Periods, strings.Join(cells, " | "))
		if *verbose {
			for _, c := range cols {
				fmt.Fprintf(os.Stderr, "  %-14s MASE %.3f sMAPE %6.2f MAPE %8.2f cover %.3f\n", m[c].Name, m[c].MASE, m[c].SMAPE, m[c].MAPE, m[c].Coverage)
			}
			fmt.Fprintln(os.Stderr, "  served", res.Served, "refits", res.Refits)
		}
	}
	fn := float64(n)
	fmt.Println()
	fmt.Println("| forecaster | mean MASE | mean sMAPE % | mean 80% coverage |")
	fmt.Println("|---|---|---|---|")
	for _, c := range cols {
		fmt.Printf("| %s | %.3f | %.2f | %.1f%% |\n", backtest.ColNames[c], sumMASE[c]/fn, sumSMAPE[c]/fn, 100*sumCov[c]/fn)
	}
	fmt.Println()
	fmt.Printf("bank beats daily seasonal naive (MASE) on %d of %d series (%.0f%%); beats naive on %d of %d\n",
		wins, n, 100*float64(wins)/fn, winsNaive, n)
	fmt.Printf("replay CPU time: %v for %d samples (%.2f µs per sample: bank, three baselines, %d forecasts per row and scoring)\n",
		cpu.Round(time.Millisecond), rowsTotal, float64(cpu.Microseconds())/float64(rowsTotal), backtest.NumCols)
}

// cpuTime returns the process's user+system CPU time (wall time on a shared
// machine overstates cost).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func names(cols []int) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = backtest.ColNames[c] + " MASE / cover"
	}
	return out
}

// scoreable leaves out, and names, the series MASE is not defined on: a
// constant series (the naive forecast is never wrong, so every MASE is
// 0/0), whose NaN made every mean NaN and every held-out choice the grid's
// first setting.
func scoreable(files []string) []string {
	var out []string
	for _, f := range files {
		pts, err := backtest.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range pts {
			lo, hi = min(lo, p.Value), max(hi, p.Value)
		}
		if !(hi > lo) {
			fmt.Fprintf(os.Stderr, "backtest: %s: constant (%v), MASE undefined; left out\n", backtest.SeriesName(f), lo)
			continue
		}
		out = append(out, f)
	}
	return out
}
