package main

import (
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/augur-ops/augur/internal/devdata"
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

// TestSplitAndSubsample: the transforms keep each window on the rows that
// carry it.
func TestSplitAndSubsample(t *testing.T) {
	f := dataFile{Name: "c/f.csv"}
	for i := range 1000 {
		f.Times = append(f.Times, int64(i)*300)
		f.Values = append(f.Values, float64(i))
	}
	// In the first half's probation (75 rows), across the cut, inside the second half.
	f.Windows = [][2]int{{10, 20}, {450, 560}, {800, 850}}
	parts := split([]dataFile{f}, 2)
	if len(parts) != 2 || parts[0].Name != "c/f.csv#1" || len(parts[1].Values) != 500 || parts[1].Times[0] != 500*300 {
		t.Fatalf("parts %d, %q, %d rows", len(parts), parts[0].Name, len(parts[1].Values))
	}
	if got, want := parts[0].Windows, [][2]int{{450, 499}}; !slices.Equal(got, want) {
		t.Errorf("first half's windows %v, want %v", got, want)
	}
	// The window across the cut starts in the second half's probation.
	if got, want := parts[1].Windows, [][2]int{{300, 350}}; !slices.Equal(got, want) {
		t.Errorf("second half's windows %v, want %v", got, want)
	}
	scores := [][]float64{f.Values}
	if c := cut([]dataFile{f}, scores, 2); len(c) != 2 || c[1][0] != 500 {
		t.Errorf("cut scores %d parts, second starts at %v", len(c), c[1][0])
	}
	g := subsample([]dataFile{f}, 3)[0]
	if len(g.Values) != 333 || g.Values[1] != 4 || g.Times[1] != 900 {
		t.Errorf("subsample: %d rows, second %v at %d", len(g.Values), g.Values[1], g.Times[1])
	}
	if got, want := g.Windows, [][2]int{{4, 6}, {150, 186}, {267, 283}}; !slices.Equal(got, want) {
		t.Errorf("subsampled windows %v, want %v", got, want)
	}
}

// TestProfilesWithoutTheFile: a corpus folder without
// reference/profiles.json is scored with NAB's own profiles (the file's,
// byte for byte where it exists).
func TestProfilesWithoutTheFile(t *testing.T) {
	got, err := loadProfiles(filepath.Join(t.TempDir(), "reference", "profiles.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Name != "standard" || got[2].Cost.FP != 0.11 || got[1].Cost.FP != 0.22 || got[0].Cost.FN != 2 {
		t.Fatalf("profiles without the file: %+v", got)
	}
	if shared, err := loadProfiles(filepath.Join(devdata.Dir(), "nab", "reference", "profiles.json")); err == nil && !reflect.DeepEqual(shared, got) {
		t.Errorf("NAB's profiles.json %+v differs from the built-in %+v", shared, got)
	}
}
