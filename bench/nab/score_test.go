package main

import (
	"math"
	"testing"
)

// TestSweepByHand checks the scorer on a 10-row file whose score is easy to
// work out: probation is row 0 (floor of 15% of 10), one window spans rows
// 4..6.
func TestSweepByHand(t *testing.T) {
	cm := CostMatrix{TP: 1, FN: 1, FP: 0.11, TN: 1}
	windows := [][2]int{{4, 6}}
	maxTP := 2/(1+math.Exp(-5)) - 1
	at := func(pos float64) float64 { return 2/(1+math.Exp(5*pos)) - 1 }
	tests := []struct {
		name           string
		fire           []int
		want           float64
		tp, tn, fp, fn int
	}{
		{"nothing", nil, -1, 0, 6, 0, 3},
		{"first row of the window", []int{4}, 1, 1, 6, 0, 2},
		{"middle of the window", []int{5}, at(-2.0/3) / maxTP, 1, 6, 0, 2},
		{"only the earliest detection in a window counts", []int{5, 6}, at(-2.0/3) / maxTP, 2, 6, 0, 1},
		{"false positive before any window costs the full weight", []int{2, 5}, at(-2.0/3)/maxTP - 0.11, 1, 5, 1, 2},
		{"false positive after a window is weighted by distance", []int{8}, -1 + at(2.0/2)*0.11, 0, 5, 1, 3},
		{"probation is not scored", []int{0}, -1, 0, 6, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scores := make([]float64, 10)
			for _, i := range tt.fire {
				scores[i] = 1
			}
			pts := sweep(nil, scores, windows, 0, cm)
			got, ok := atThreshold(scoreByThreshold(pts, 1, cm), 0.5)
			if !ok {
				t.Fatal("no tally for threshold 0.5")
			}
			if math.Abs(got.Score-tt.want) > 1e-12 || got.TP != tt.tp || got.TN != tt.tn || got.FP != tt.fp || got.FN != tt.fn {
				t.Errorf("got %+v, want score %v TP %d TN %d FP %d FN %d", got, tt.want, tt.tp, tt.tn, tt.fp, tt.fn)
			}
		})
	}
}

func TestProbationLength(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{10, 1}, {4032, 604}, {5000, 750}, {10320, 750}, {1243, 186}} {
		if got := probationLength(tt.n); got != tt.want {
			t.Errorf("probationLength(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}
