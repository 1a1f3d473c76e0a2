// Command straggler replays per-worker step (mini-batch) times of a
// distributed training job through the GPU detector's straggler check and
// reports which workers it flags as stragglers and when, against the point
// where a worker first became slow, and any job-level alert (the job's
// shape: a share of slow workers, two groups of step times).
//
//	go run ./bench/straggler [-input bench/straggler/testdata/job_1_norm.csv.gz]
//
// The input is the Alibaba PAI mini-batch-time layout (row, worker, gpu,
// time, batch_time_norm), gzip-compressed or not; a row with no step time
// (empty, NaN, as backtest.ParseValue reads it) is a gap. Each distinct time (a
// training iteration) is one window.
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/augur-ops/augur/detectors/gpu"
	"github.com/augur-ops/augur/models/backtest"
)

// step is one worker's step time at one iteration.
type step struct {
	iter   int
	worker string
	v      float64
}

// Flag is one straggler alert.
type Flag struct {
	Worker string
	Iter   int // iteration of the window the alert came at
	Window int // index of that window (0-based)
}

// Result of a replay.
type Result struct {
	Windows int
	Workers int
	// Emerged is the first iteration at which some worker's step time was
	// at least 1.5 times the job's median, and EmergedWorker that worker;
	// Iter -1 when none. This marks the onset independently of the
	// detector (whose threshold is 1.2 on a smoothed ratio).
	EmergedIter, EmergedWindow int
	EmergedWorker              string
	Flags                      []Flag
	JobAlerts                  []JobAlert
}

// JobAlert is one job-level alert: the job's shape (a share of slow
// workers, two groups of step times), no node action.
type JobAlert struct {
	Iter, Window int
	Summary      string
}

func load(r io.Reader) ([]step, error) {
	br := bufio.NewReader(r)
	if head, err := br.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	col := func(name string) int { return slices.Index(head, name) }
	cw, ct, cv := col("worker"), col("time"), col("batch_time_norm")
	if cw < 0 || ct < 0 || cv < 0 {
		return nil, fmt.Errorf("header %v lacks worker, time or batch_time_norm", head)
	}
	var out []step
	row := 1 // the header
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read row %d: %w", row+1, err)
		}
		row++
		it, err1 := strconv.ParseFloat(strings.TrimSpace(rec[ct]), 64)
		if err1 == nil && (it != math.Trunc(it) || math.Abs(it) > 1e15) {
			err1 = fmt.Errorf("time %q: want an iteration number", rec[ct])
		}
		v, err2 := backtest.ParseValue(rec[cv])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("row %d: %w", row, err)
		}
		if math.IsNaN(v) {
			continue // no step time from this worker in this iteration: a gap
		}
		out = append(out, step{iter: int(it), worker: rec[cw], v: v})
	}
	if len(out) == 0 {
		return nil, errors.New("no step times")
	}
	slices.SortStableFunc(out, func(a, b step) int { return a.iter - b.iter })
	return out, nil
}

// replay feeds the steps through a gpu.Detector, one window per iteration.
func replay(steps []step, cfg gpu.Config) (Result, error) {
	d, err := gpu.New(cfg)
	if err != nil {
		return Result{}, err
	}
	res := Result{EmergedIter: -1, EmergedWindow: -1}
	workers := map[string]bool{}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var vals []float64
	var names []string
	for i := 0; i < len(steps); {
		j := i
		vals, names = vals[:0], names[:0]
		for ; j < len(steps) && steps[j].iter == steps[i].iter; j++ {
			s := steps[j]
			workers[s.worker] = true
			at := base.Add(time.Duration(s.iter) * time.Second)
			d.ObserveStep("job_1", s.worker, "", at.UnixMilli(), s.v)
			vals, names = append(vals, s.v), append(names, s.worker)
		}
		if res.EmergedIter < 0 && len(vals) >= 3 {
			med := median(vals)
			for k, v := range vals {
				if v >= 1.5*med {
					res.EmergedIter, res.EmergedWindow, res.EmergedWorker = steps[i].iter, res.Windows, names[k]
					break
				}
			}
		}
		for _, dec := range d.Tick(base.Add(time.Duration(steps[i].iter) * time.Second)) {
			switch {
			case dec.GetDesired().GetAlert().GetReason() == "straggler":
				w := strings.TrimPrefix(dec.GetTarget(), "job/job_1/")
				res.Flags = append(res.Flags, Flag{Worker: w, Iter: steps[i].iter, Window: res.Windows})
			case dec.GetTarget() == "job/job_1":
				res.JobAlerts = append(res.JobAlerts, JobAlert{Iter: steps[i].iter, Window: res.Windows, Summary: dec.GetSummary()})
			}
		}
		res.Windows++
		i = j
	}
	res.Workers = len(workers)
	return res, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	input := flag.String("input", "bench/straggler/testdata/job_1_norm.csv.gz", "per-worker step times (PAI mini-batch-time CSV)")
	synthetic := flag.Bool("shapes", false, "also play the synthetic job shapes (groups, slow from the start, stragglers, with noise) and jobs with no slow worker")
	flag.Parse()
	if *synthetic {
		c, err := shapes()
		if err != nil {
			fmt.Fprintln(os.Stderr, "straggler:", err)
			os.Exit(1)
		}
		printShapes(os.Stdout, c)
		q, err := quietJobs()
		if err != nil {
			fmt.Fprintln(os.Stderr, "straggler:", err)
			os.Exit(1)
		}
		printQuiet(os.Stdout, q)
	}
	if err := run(*input, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "straggler:", err)
		os.Exit(1)
	}
}

func run(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	steps, err := load(f)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	cfg := gpu.Config{}
	res, err := replay(steps, cfg)
	if err != nil {
		return err
	}
	c, _ := gpu.New(cfg)
	cc := c.Config()
	fmt.Fprintf(w, "input %s: %d workers, %d windows (iterations %d..%d)\n", path, res.Workers, res.Windows, steps[0].iter, steps[len(steps)-1].iter)
	fmt.Fprintf(w, "detector: ratio to job median >= %.2f, smoothing %.2f, %d consecutive windows, >= %d workers\n",
		cc.StragglerRatio, cc.StragglerSmoothing, cc.StragglerWindows, cc.StragglerMinMembers)
	if res.EmergedIter >= 0 {
		fmt.Fprintf(w, "onset: worker %s first >= 1.5x the median at iteration %d (window %d)\n", res.EmergedWorker, res.EmergedIter, res.EmergedWindow)
	}
	for _, a := range res.JobAlerts {
		fmt.Fprintf(w, "job-level alert at iteration %d (window %d): %s\n", a.Iter, a.Window, a.Summary)
	}
	if len(res.Flags) == 0 {
		fmt.Fprintln(w, "flagged: none")
	}
	for _, fl := range res.Flags {
		fmt.Fprintf(w, "flagged: worker %s at iteration %d (window %d)", fl.Worker, fl.Iter, fl.Window)
		if res.EmergedIter >= 0 {
			fmt.Fprintf(w, ", %d iterations / %d windows after onset", fl.Iter-res.EmergedIter, fl.Window-res.EmergedWindow)
		}
		fmt.Fprintln(w)
	}
	return nil
}
