package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/augur-ops/augur/detectors/gpu"
	"github.com/augur-ops/augur/proto"
)

// shapeCounts is what the synthetic job shapes gave (see shapes).
type shapeCounts struct {
	Groups, GroupsTainted             int // jobs with 3 or more of 10 slow; those with a node tainted
	StartGroups, StartGroupsOneAlert  int // 3 or more slow from the first window; those with one job-level alert and nothing else
	LateGroups, LateGroupsOneAlert    int // 3 or more slowing down at window 20; the same
	StartMinority, StartStragglers    int // 1 or 2 slow from the first window; those called stragglers
	LateMinority, LateEachAndNothing  int // 1 or 2 slowing down at window 20; those with a straggler each and nothing else
	BimodalLow, BimodalLowWithActions int // half slower by 1.25x or 1.35x; those with a node action
}

// shapes plays 192 synthetic 10-worker jobs through the detector
// (StragglerCordon on): 1, 2, 3, 4, 5 or 7 workers slower by 1.25x, 1.35x,
// 1.5x or 2x, from the first one-minute window or from the 20th, uniform
// step-time noise of 0, ±5, ±10 or ±20% (a fixed seed), 60 windows.
func shapes() (shapeCounts, error) {
	var c shapeCounts
	for _, slow := range []int{1, 2, 3, 4, 5, 7} {
		for _, f := range []float64{1.25, 1.35, 1.5, 2} {
			for _, noise := range []float64{0, 0.05, 0.1, 0.2} {
				for _, onset := range []int{1, 20} {
					o, err := playShape(slow, f, noise, onset)
					if err != nil {
						return c, err
					}
					c.add(slow, f, onset, o)
				}
			}
		}
	}
	return c, nil
}

// shapeOutcome counts one job's decisions by kind.
type shapeOutcome struct{ stragglers, jobAlerts, taints int }

// playShape plays one job: workers 0..slow-1 slower by f from window
// onset on.
func playShape(slow int, f, noise float64, onset int) (shapeOutcome, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	return play(10, 60, func(w, m int) float64 {
		v := 1.0
		if w < slow && m >= onset {
			v = f
		}
		return v * (1 + noise*(2*rng.Float64()-1))
	})
}

// play plays a job of n workers for windows one-minute windows through
// the detector (StragglerCordon on); step(w, m) is worker w's step time
// in window m.
func play(n, windows int, step func(w, m int) float64) (shapeOutcome, error) {
	var o shapeOutcome
	d, err := gpu.New(gpu.Config{StragglerCordon: true})
	if err != nil {
		return o, err
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for m := 1; m <= windows; m++ {
		at := t0.Add(time.Duration(m) * time.Minute)
		for w := range n {
			v := step(w, m)
			d.ObserveStep("train", "w"+strconv.Itoa(w), "node-"+strconv.Itoa(w), at.UnixMilli()-1000, v)
		}
		for _, dec := range d.Tick(at) {
			switch {
			case dec.GetKind() == proto.KindTaintNode:
				o.taints++
			case dec.GetDesired().GetAlert().GetReason() == "straggler":
				o.stragglers++
			case dec.GetTarget() == "job/train":
				o.jobAlerts++
			}
		}
	}
	return o, nil
}

// add counts one job's outcome in its class.
func (c *shapeCounts) add(slow int, f float64, onset int, o shapeOutcome) {
	switch {
	case slow >= 3:
		c.Groups++
		if o.taints > 0 {
			c.GroupsTainted++
		}
		one := o.jobAlerts == 1 && o.stragglers == 0 && o.taints == 0
		if onset == 1 {
			c.StartGroups++
			if one {
				c.StartGroupsOneAlert++
			}
		} else {
			c.LateGroups++
			if one {
				c.LateGroupsOneAlert++
			}
		}
		if slow == 5 && f < 1.4 {
			c.BimodalLow++
			if o.taints > 0 {
				c.BimodalLowWithActions++
			}
		}
	case onset == 1:
		c.StartMinority++
		if o.stragglers > 0 {
			c.StartStragglers++
		}
	default:
		c.LateMinority++
		if o.stragglers == slow && o.jobAlerts == 0 {
			c.LateEachAndNothing++
		}
	}
}

func printShapes(w io.Writer, c shapeCounts) {
	fmt.Fprintf(w, "synthetic jobs, 10 workers, 192 shapes (see bench/straggler/shapes.go):\n")
	fmt.Fprintf(w, "  3 or more slow: %d jobs, a node tainted in %d\n", c.Groups, c.GroupsTainted)
	fmt.Fprintf(w, "  3 or more slow from the first window: %d jobs, one job-level alert and nothing else in %d\n", c.StartGroups, c.StartGroupsOneAlert)
	fmt.Fprintf(w, "  3 or more slowing down at window 20: %d jobs, one job-level alert and nothing else in %d\n", c.LateGroups, c.LateGroupsOneAlert)
	fmt.Fprintf(w, "  half slower by 1.25x or 1.35x: %d jobs, a node tainted in %d\n", c.BimodalLow, c.BimodalLowWithActions)
	fmt.Fprintf(w, "  1 or 2 slow from the first window: %d jobs, called stragglers in %d\n", c.StartMinority, c.StartStragglers)
	fmt.Fprintf(w, "  1 or 2 slowing down at window 20: %d jobs, a straggler each and nothing else in %d\n", c.LateMinority, c.LateEachAndNothing)
}

// quietCounts is what jobs with no slow worker gave (see quietJobs): for
// each noise level, with and without slow windows, and job size, the
// decisions of 20 jobs.
type quietCounts map[quietClass]shapeOutcome

type quietClass struct {
	noise   float64
	spikes  bool
	workers int
}

// The noise levels and job sizes of quietJobs.
var (
	quietNoise = []float64{0.05, 0.1, 0.2, 0.3}
	quietSizes = []int{4, 6, 10, 32}
)

// quietJobs plays jobs with no slow worker through the detector, 20 per
// class (seeds 0-19), 600 one-minute windows (10 hours) each: 4, 6, 10 or
// 32 workers, uniform step-time noise of ±5, ±10, ±20 or ±30%, and with
// spikes one window in a thousand per worker three times slower (a
// checkpoint written). Any decision is a false one.
func quietJobs() (quietCounts, error) {
	c := quietCounts{}
	for _, spikes := range []bool{false, true} {
		for _, noise := range quietNoise {
			for _, n := range quietSizes {
				var sum shapeOutcome
				for seed := range uint64(20) {
					rng := rand.New(rand.NewPCG(seed, 7))
					o, err := play(n, 600, func(w, m int) float64 {
						v := 1 + noise*(2*rng.Float64()-1)
						if spikes && rng.Float64() < 0.001 {
							v *= 3
						}
						return v
					})
					if err != nil {
						return nil, err
					}
					sum.stragglers += o.stragglers
					sum.jobAlerts += o.jobAlerts
					sum.taints += o.taints
				}
				c[quietClass{noise, spikes, n}] = sum
			}
		}
	}
	return c, nil
}

func printQuiet(w io.Writer, c quietCounts) {
	fmt.Fprintf(w, "jobs with no slow worker, 20 per row and size, 10 hours each: stragglers / taints / job-level alerts\n")
	fmt.Fprintf(w, "  %-34s", "noise \\ workers")
	for _, n := range quietSizes {
		fmt.Fprintf(w, " %-12d", n)
	}
	fmt.Fprintln(w)
	for _, spikes := range []bool{false, true} {
		for _, noise := range quietNoise {
			name := fmt.Sprintf("±%.0f%%", noise*100)
			if spikes {
				name += ", a 3x window per 1000"
			}
			fmt.Fprintf(w, "  %-34s", name)
			for _, n := range quietSizes {
				o := c[quietClass{noise, spikes, n}]
				fmt.Fprintf(w, " %-12s", fmt.Sprintf("%d/%d/%d", o.stragglers, o.taints, o.jobAlerts))
			}
			fmt.Fprintln(w)
		}
	}
}
