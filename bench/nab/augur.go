package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/augur-ops/augur/detectors/anomaly"
)

// configFlags registers flags for the detector's tunable fields; zero keeps
// the package default.
func configFlags(fs *flag.FlagSet) *anomaly.Config {
	c := &anomaly.Config{}
	fs.IntVar(&c.FastWindow, "fast", 0, "fast EWMA span (0: default)")
	fs.IntVar(&c.SlowWindow, "slow", 0, "slow EWMA span (0: default)")
	fs.IntVar(&c.ShortWindow, "short", 0, "recent raw-score span (0: default)")
	fs.IntVar(&c.HistoryWindow, "history", 0, "raw-score history span (0: default)")
	fs.IntVar(&c.Quiet, "quiet", 0, "quiet samples after a detection (0: default, <0: off)")
	fs.IntVar(&c.Warmup, "warmup", 0, "warm-up samples (0: default)")
	fs.Float64Var(&c.DetectLevel, "detect", 0, "score that starts a quiet period (0: default)")
	fs.Float64Var(&c.ZLow, "zlow", 0, "z-score where the raw residual score starts (0 with -zhigh 0: default)")
	fs.Float64Var(&c.ZHigh, "zhigh", 0, "z-score where the raw residual score reaches 1")
	fs.Float64Var(&c.NoveltyScore, "novelty", 0, "raw score of an unseen 3-gram of levels (0: default, <0: off)")
	fs.Float64Var(&c.RangeTolerance, "range", 0, "share of the range beyond which a sample scores 1 (0: default, <0: off)")
	fs.Float64Var(&c.LevelShift, "levelshift", 0, "slow deviations between the fast and slow forecasts at the end of a quiet period beyond which the slow one takes the new level (0: default, <0: off)")
	fs.IntVar(&c.SeasonalDays, "seasdays", 0, "memory of the time-of-day profile in days (0: default)")
	fs.Float64Var(&c.SeasonalGate, "seasgate", 0, "profile trusted while its residual is below this share of the slow EWMA's (0: default, <0: off)")
	return c
}

// runAugur scores every file with a fresh series of augur's detector and
// also returns the band alarm of every row.
func runAugur(files []dataFile, cfg anomaly.Config) ([][]float64, [][]bool, error) {
	d, err := anomaly.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	scores := make([][]float64, len(files))
	alarms := make([][]bool, len(files))
	for i, f := range files {
		var s anomaly.State
		scores[i] = make([]float64, len(f.Values))
		alarms[i] = make([]bool, len(f.Values))
		for j, v := range f.Values {
			r := d.Update(&s, f.Times[j]*1000, v)
			scores[i][j], alarms[i][j] = r.Score, r.Alarm
		}
	}
	return scores, alarms, nil
}

// operational summarises detections at a fixed rule, outside NAB's scoring:
// how late each labelled anomaly is caught and how often the rule fires
// where nothing is labelled.
type operational struct {
	Windows, Detected  int
	Delays             []float64 // minutes from the labelled anomaly to the first detection in its window
	FalseAlarms        int       // detection onsets outside windows, after probation
	DaysOutsideWindows float64
	// Onsets in the probation outside windows: the first 15% of each file,
	// which NAB does not score, is a new series (after the detector's
	// warm-up, it may alert there).
	YoungAlarms int
	YoungDays   float64
}

// measure applies fired (one bool per row) to the corpus. A detection is the
// onset of a run of firing rows. A window counts as detected by its first
// onset inside it; its delay is measured from the labelled anomaly time
// (windows are centred on it, so early detections have negative delay).
func measure(files []dataFile, labels map[string][]int64, fired [][]bool) operational {
	var op operational
	for i, f := range files {
		prob := probationLength(len(f.Values))
		inWindow := make([]int, len(f.Values))
		for j := range inWindow {
			inWindow[j] = -1
		}
		for w, win := range f.Windows {
			for j := win[0]; j <= win[1]; j++ {
				inWindow[j] = w
			}
		}
		found := make([]bool, len(f.Windows))
		outside, young := 0, 0 // rows outside windows, after and in the probation
		for j := range f.Values {
			switch {
			case inWindow[j] >= 0:
			case j < prob:
				young++
			default:
				outside++
			}
			if !fired[i][j] || (j > 0 && fired[i][j-1]) {
				continue
			}
			w := inWindow[j]
			switch {
			case w < 0 && j < prob: // a new series' alert
				op.YoungAlarms++
			case j < prob: // NAB scores nothing in the probation
			case w < 0:
				op.FalseAlarms++
			case !found[w]:
				found[w] = true
				label := labelIn(labels[f.Name], f.Times[f.Windows[w][0]], f.Times[f.Windows[w][1]])
				op.Delays = append(op.Delays, float64(f.Times[j]-label)/60)
			}
		}
		op.Windows += len(f.Windows)
		for _, ok := range found {
			if ok {
				op.Detected++
			}
		}
		if len(f.Times) > 1 {
			step := float64(f.Times[len(f.Times)-1]-f.Times[0]) / float64(len(f.Times)-1)
			op.DaysOutsideWindows += float64(outside) * step / 86400
			op.YoungDays += float64(young) * step / 86400
		}
	}
	slices.Sort(op.Delays)
	return op
}

// labelIn returns the labelled anomaly time inside [a, b], or a if none.
func labelIn(labels []int64, a, b int64) int64 {
	for _, l := range labels {
		if l >= a && l <= b {
			return l
		}
	}
	return a
}

// loadLabels reads NAB's combined_labels.json as unix seconds per file.
func loadLabels(dir string) (map[string][]int64, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "labels", "combined_labels.json"))
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	var m map[string][]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	out := make(map[string][]int64, len(m))
	for k, ts := range m {
		for _, s := range ts {
			t, err := parseTime(s)
			if err != nil {
				return nil, fmt.Errorf("label of %s: %w", k, err)
			}
			out[k] = append(out[k], t)
		}
	}
	return out, nil
}

func printOperational(out io.Writer, name string, op operational) {
	med, p90 := quantile(op.Delays, 0.5), quantile(op.Delays, 0.9)
	fmt.Fprintf(out, "%-28s windows detected %d/%d, delay from label median %.0f min (p90 %.0f), false alarms %d in %.0f days = %.2f/day; in the probation (a new series): %d in %.0f days = %.2f/day\n",
		name, op.Detected, op.Windows, med, p90, op.FalseAlarms, op.DaysOutsideWindows, float64(op.FalseAlarms)/op.DaysOutsideWindows,
		op.YoungAlarms, op.YoungDays, float64(op.YoungAlarms)/op.YoungDays)
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1))]
}

// threshold returns one bool per row: score at or above t.
func threshold(scores [][]float64, t float64) [][]bool {
	out := make([][]bool, len(scores))
	for i, s := range scores {
		out[i] = make([]bool, len(s))
		for j, v := range s {
			out[i][j] = v >= t
		}
	}
	return out
}

// splitReport scores augur on the files cut into k shorter ones (split),
// from a fresh detector on each part and from the whole file's run cut
// the same way, with Numenta's reference scores cut the same way for
// comparison: the difference between fresh and whole-file is what a new
// series costs the detector before it has learnt the series.
func splitReport(out io.Writer, files []dataFile, k int, cfg anomaly.Config, profiles []profile, refDir string) error {
	parts := split(files, k)
	fresh, _, err := runAugur(parts, cfg)
	if err != nil {
		return err
	}
	whole, _, err := runAugur(files, cfg)
	if err != nil {
		return err
	}
	type run struct {
		name   string
		scores [][]float64
	}
	runs := []run{{"augur, a fresh detector per part", fresh}, {"augur, the whole file's run", cut(files, whole, k)}}
	if ref, err := referenceScores(refDir, "numenta", files); err == nil {
		runs = append(runs, run{"numenta, the whole file's run", cut(files, ref, k)})
	}
	fmt.Fprintf(out, "%d files cut into %d parts each: %d files, %d windows (windows starting in a part's probation dropped)\n", len(files), k, len(parts), countWindows(parts))
	for _, p := range profiles {
		for _, r := range runs {
			res, err := evaluate(parts, r.scores, p)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%-20s %-34s threshold %.6f normalised %6.2f\n", res.Profile, r.name, res.Threshold, res.Normalized)
		}
	}
	return nil
}
