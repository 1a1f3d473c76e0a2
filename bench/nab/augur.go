package main

import (
	"flag"
	"fmt"
	"io"

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
	return c
}

// runAugur scores every file with a fresh series of augur's detector.
func runAugur(files []dataFile, cfg anomaly.Config) ([][]float64, error) {
	d, err := anomaly.New(cfg)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(files))
	for i, f := range files {
		var s anomaly.State
		out[i] = make([]float64, len(f.Values))
		for j, v := range f.Values {
			out[i][j] = d.Update(&s, f.Times[j], v).Score
		}
	}
	return out, nil
}

func printOperational(out io.Writer, files []dataFile, scores [][]float64) {
	fmt.Fprint(out, "")
}
