package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/augur-ops/augur/models/backtest"
	"github.com/augur-ops/augur/models/bank"
)

// setting is one point of the held-out grid: the bank's two settings
// that are not a model constant.
type setting struct {
	memory   time.Duration // bank.Config.ScoreMemory
	accuracy float64       // bank.Config.AccuracyThreshold; negative: off
}

func (s setting) String() string {
	acc := "off"
	if s.accuracy >= 0 {
		acc = fmt.Sprint(s.accuracy)
	}
	return fmt.Sprintf("score memory %v, refit below accuracy %s", s.memory, acc)
}

// heldOutGrid is what -heldout chooses among; the defaults (6h, 85) are
// in it.
func heldOutGrid() []setting {
	var g []setting
	for _, m := range []time.Duration{time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		for _, a := range []float64{-1, 75, 85, 95} {
			g = append(g, setting{m, a})
		}
	}
	return g
}

// scored is one series backtested under one setting.
type scored struct {
	mase, cover, dailyNaive float64
}

// heldOut backtests every series under every setting of the grid and
// prints the bank's accuracy twice: with the setting best on all series
// (in-sample) and with each series scored under the setting best on the
// others (leave one series out). Best is the lowest mean bank MASE.
func heldOut(out io.Writer, files []string, horizon time.Duration) error {
	grid := heldOutGrid()
	res := make([][]scored, len(grid)) // [setting][series]
	for s := range res {
		res[s] = make([]scored, len(files))
	}
	for i, f := range files {
		pts, err := backtest.ReadFile(f)
		if err != nil {
			return err
		}
		for s, st := range grid {
			r, err := backtest.Run(pts, backtest.Options{Horizon: horizon, Bank: bank.Config{ScoreMemory: st.memory, AccuracyThreshold: st.accuracy}})
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			m := r.Metrics
			res[s][i] = scored{m[backtest.ColBank].MASE, m[backtest.ColBank].Coverage, m[backtest.ColDailyNaive].MASE}
		}
	}
	// best returns the setting with the lowest mean bank MASE over every
	// series but skip (-1: none skipped).
	best := func(skip int) int {
		b, bm := 0, math.Inf(1)
		for s := range grid {
			sum := 0.0
			for i, r := range res[s] {
				if i != skip {
					sum += r.mase
				}
			}
			if sum < bm {
				b, bm = s, sum
			}
		}
		return b
	}
	inSample := best(-1)
	// summary is the bank's mean MASE, mean coverage and wins over the
	// daily seasonal naive with series i scored under setting pick(i).
	summary := func(pick func(i int) int) (mase, cover float64, wins int) {
		for i := range files {
			r := res[pick(i)][i]
			mase += r.mase
			cover += r.cover
			if r.mase < r.dailyNaive {
				wins++
			}
		}
		n := float64(len(files))
		return mase / n, cover / n, wins
	}
	fmt.Fprintf(out, "| setting | bank mean MASE, all series | mean 80%% coverage |\n|---|---|---|\n")
	for s, st := range grid {
		m, c, _ := summary(func(int) int { return s })
		fmt.Fprintf(out, "| %v | %.3f | %.1f%% |\n", st, m, 100*c)
	}
	fmt.Fprintln(out)
	chosen := make([]int, len(files))
	count := make([]int, len(grid))
	for i := range files {
		chosen[i] = best(i)
		count[chosen[i]]++
	}
	fmt.Fprintf(out, "| selection (horizon %v, %d series, %d settings) | bank mean MASE | mean 80%% coverage | beats daily seasonal naive |\n|---|---|---|---|\n", horizon, len(files), len(grid))
	m, c, w := summary(func(int) int { return inSample })
	fmt.Fprintf(out, "| in-sample: best on all series, %v | %.3f | %.1f%% | %d of %d |\n", grid[inSample], m, 100*c, w, len(files))
	m, c, w = summary(func(i int) int { return chosen[i] })
	fmt.Fprintf(out, "| held-out: each series scored with the setting best on the others | %.3f | %.1f%% | %d of %d |\n\n", m, 100*c, w, len(files))
	for s := range grid {
		if count[s] > 0 {
			fmt.Fprintf(out, "- %v: chosen for %d of %d held-out series\n", grid[s], count[s], len(files))
		}
	}
	var differ []string
	for i, f := range files {
		if d := res[chosen[i]][i].mase - res[inSample][i].mase; d != 0 {
			differ = append(differ, fmt.Sprintf("%s %+.3f", backtest.SeriesName(f), d))
		}
	}
	if len(differ) > 0 {
		fmt.Fprintf(out, "\nbank MASE held out minus in-sample, where they differ: %s\n", strings.Join(differ, ", "))
	}
	return nil
}
