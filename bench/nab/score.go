package main

import (
	"cmp"
	"math"
	"slices"
)

// CostMatrix holds the weights of one NAB application profile.
type CostMatrix struct {
	TP float64 `json:"tpWeight"`
	FN float64 `json:"fnWeight"`
	FP float64 `json:"fpWeight"`
	TN float64 `json:"tnWeight"`
}

// probationPercent is NAB's probationary share of each file.
const probationPercent = 0.15

// probationLength returns the number of leading rows NAB does not score:
// floor(15% of the rows), capped at 15% of 5000 = 750 rows.
func probationLength(n int) int {
	return int(math.Min(math.Floor(probationPercent*float64(n)), probationPercent*5000))
}

// scaledSigmoid is NAB's scoring curve: about +0.987 at the left edge of a
// window (position -1), 0 at its right edge (0), and down to -1 far after it.
func scaledSigmoid(pos float64) float64 {
	if pos >= 3.0 {
		return -1.0
	}
	return 2/(1+math.Exp(5*pos)) - 1.0
}

// point is one scored row of one file, as NAB's sweeper sees it.
type point struct {
	score  float64 // detector's anomaly score
	weight float64 // sweep score: what detecting this row is worth
	window int     // global window id, -1 outside windows
	probe  bool    // within the probationary period
}

// sweep assigns each row of a file its sweep score, following NAB's
// Sweeper.calcSweepScore: a row inside a window is worth
// scaledSigmoid(-(right-i+1)/width)*tpWeight/scaledSigmoid(-1); a row outside
// any window costs scaledSigmoid(|prevRight-i|/(prevWidth-1))*fpWeight relative
// to the closest preceding window, or the full fpWeight before the first one.
// windows holds row index pairs [first, last]; window ids are firstID+k.
func sweep(dst []point, scores []float64, windows [][2]int, firstID int, cm CostMatrix) []point {
	maxTP := scaledSigmoid(-1.0)
	prob := probationLength(len(scores))
	cur := -1 // index into windows of the window we are in
	next := 0
	prevRight, prevWidth := -1, 0.0
	for i, s := range scores {
		if next < len(windows) && i == windows[next][0] {
			cur = next
			next++
		}
		p := point{score: s, window: -1, probe: i < prob}
		if cur >= 0 {
			w := windows[cur]
			width := float64(w[1] - w[0] + 1)
			p.weight = scaledSigmoid(-float64(w[1]-i+1)/width) * cm.TP / maxTP
			p.window = firstID + cur
		} else {
			pos := 3.0
			if prevRight >= 0 {
				pos = math.Abs(float64(prevRight-i)) / (prevWidth - 1)
			}
			p.weight = scaledSigmoid(pos) * cm.FP
		}
		dst = append(dst, p)
		if cur >= 0 && i == windows[cur][1] {
			prevRight = i
			prevWidth = float64(windows[cur][1] - windows[cur][0] + 1)
			cur = -1
		}
	}
	return dst
}

// Tally is the outcome of one threshold: the NAB raw score and row counts.
type Tally struct {
	Threshold      float64
	Score          float64
	TP, TN, FP, FN int
}

// scoreByThreshold is NAB's Sweeper.calcScoreByThreshold: it walks the
// non-probationary rows from the highest anomaly score down and records the
// raw score for every distinct threshold (detections are rows with a score at
// or above it). Each window counts once, with its best (earliest) detection;
// every detection outside windows adds its (negative) sweep score. The first
// entry, threshold 1.1, is the detector that never fires.
func scoreByThreshold(points []point, numWindows int, cm CostMatrix) []Tally {
	rows := make([]point, 0, len(points))
	for _, p := range points {
		if !p.probe {
			rows = append(rows, p)
		}
	}
	slices.SortStableFunc(rows, func(a, b point) int { return cmp.Compare(b.score, a.score) })
	best := make([]float64, numWindows)
	scored := make([]bool, numWindows)
	var t Tally
	for _, p := range rows {
		if p.window >= 0 {
			if !scored[p.window] {
				scored[p.window] = true
				best[p.window] = -cm.FN
			}
			t.FN++
		} else {
			t.TN++
		}
	}
	fp := 0.0
	total := func() float64 {
		s := fp
		for w, ok := range scored {
			if ok {
				s += best[w]
			}
		}
		return s
	}
	var out []Tally
	t.Threshold = 1.1
	for _, p := range rows {
		if p.score != t.Threshold {
			t.Score = total()
			out = append(out, t)
			t.Threshold = p.score
		}
		if p.window >= 0 {
			t.TP++
			t.FN--
			best[p.window] = math.Max(best[p.window], p.weight)
		} else {
			t.FP++
			t.TN--
			fp += p.weight
		}
	}
	t.Score = total()
	return append(out, t)
}

// atThreshold picks the tally NAB's Sweeper.scoreDataSet reports for a fixed
// threshold: the entry equal to it, else the last entry above it.
func atThreshold(tallies []Tally, threshold float64) (Tally, bool) {
	var prev Tally
	havePrev := false
	for _, t := range tallies {
		if t.Threshold == threshold {
			return t, true
		}
		if t.Threshold < threshold {
			return prev, havePrev
		}
		prev, havePrev = t, true
	}
	// Every threshold is above the requested one: NAB has no row to report.
	return Tally{}, false
}

// bestThreshold is NAB's optimizer: the highest-scoring entry of the sweep
// over the rows of all files pooled together (ties keep the higher
// threshold, as Python's stable sort does).
func bestThreshold(tallies []Tally) Tally {
	best := tallies[0]
	for _, t := range tallies[1:] {
		if t.Score > best.Score {
			best = t
		}
	}
	return best
}
