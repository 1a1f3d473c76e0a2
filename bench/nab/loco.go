package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/augur-ops/augur/detectors/anomaly"
)

// locoGrid is the detector settings leave-one-category-out chooses among:
// the recent-score and history spans, the quiet period after a detection,
// and the novelty and range scores on or off. Zero fields keep the
// detector's defaults.
func locoGrid(base anomaly.Config) []anomaly.Config {
	var out []anomaly.Config
	for _, short := range []int{8, 16, 32} {
		for _, hist := range []int{512, 1024, 2048} {
			for _, quiet := range []int{64, 128, 256} {
				for _, novelty := range []float64{1, -1} {
					for _, rng := range []float64{0.01, -1} {
						c := base
						c.ShortWindow, c.HistoryWindow, c.Quiet, c.NoveltyScore, c.RangeTolerance = short, hist, quiet, novelty, rng
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

func describe(c anomaly.Config) string {
	return fmt.Sprintf("-short %d -history %d -quiet %d -novelty %g -range %g", c.ShortWindow, c.HistoryWindow, c.Quiet, c.NoveltyScore, c.RangeTolerance)
}

// leaveOneCategoryOut scores each category of the corpus with the setting
// and threshold chosen on the other categories (the setting with the best
// normalised score there under profile sel, p's threshold for it), and compares with the setting and threshold
// chosen on the whole corpus. Held-out raw scores of the categories are
// summed and normalised like the corpus' (same null and perfect scores).
func leaveOneCategoryOut(out io.Writer, files []dataFile, labels map[string][]int64, p, sel profile, base anomaly.Config) error {
	grid := locoGrid(base)
	scores := make([][][]float64, len(grid))
	for i, c := range grid {
		s, _, err := runAugur(files, c)
		if err != nil {
			return err
		}
		scores[i] = s
	}
	cats := categories(files)
	if len(cats) < 2 {
		// The only category left out leaves nothing to choose on.
		return fmt.Errorf("leave-one-category-out needs at least two categories of files, found %d (%v)", len(cats), cats)
	}
	catOf := make([]string, len(files))
	for i, f := range files {
		catOf[i] = filepath.Dir(f.Name)
	}
	subset := func(i int, keep func(string) bool) ([]dataFile, [][]float64) {
		var fs []dataFile
		var ss [][]float64
		for j, f := range files {
			if keep(catOf[j]) {
				fs, ss = append(fs, f), append(ss, scores[i][j])
			}
		}
		return fs, ss
	}
	// choose returns the grid setting best on the files kept under the
	// profile sel, and p's threshold for it there.
	choose := func(keep func(string) bool) (int, float64, error) {
		best, bestScore := -1, 0.0
		for i := range grid {
			fs, ss := subset(i, keep)
			r, err := evaluate(fs, ss, sel)
			if err != nil {
				return 0, 0, err
			}
			if best < 0 || r.Normalized > bestScore {
				best, bestScore = i, r.Normalized
			}
		}
		fs, ss := subset(best, keep)
		r, err := evaluate(fs, ss, p)
		return best, r.Threshold, err
	}
	all := func(string) bool { return true }
	in, inTh, err := choose(all)
	if err != nil {
		return err
	}
	whole, err := evaluate(files, scores[in], p)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s profile: in-sample setting `%s` (threshold %.4f)\n\n", p.Name, describe(grid[in]), inTh)
	fmt.Fprintln(out, "| category | files | in-sample raw | held-out raw | setting chosen without it | held out at score ≥ 0.5: windows detected, false alarms |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|")
	heldRaw := 0.0
	for _, c := range cats {
		without := func(k string) bool { return k != c }
		only := func(k string) bool { return k == c }
		i, th, err := choose(without)
		if err != nil {
			return err
		}
		fs, ss := subset(i, only)
		_, raw, err := scoreFiles(fs, ss, p.Cost, th)
		if err != nil {
			return err
		}
		fi, si := subset(in, only)
		_, inRaw, err := scoreFiles(fi, si, p.Cost, inTh)
		if err != nil {
			return err
		}
		heldRaw += raw
		op := measure(fs, labels, threshold(ss, 0.5))
		fmt.Fprintf(out, "| %s | %d | %.2f | %.2f | `%s` (threshold %.4f) | %d / %d, %d in %.0f days |\n", c, len(fs), inRaw, raw,
			describe(grid[i]), th, op.Detected, op.Windows, op.FalseAlarms, op.DaysOutsideWindows)
	}
	held := 100 * (heldRaw - whole.Null) / (whole.Perfect - whole.Null)
	fmt.Fprintf(out, "| **normalised** | %d | **%.2f** | **%.2f** | |\n", len(files), whole.Normalized, held)
	return nil
}
