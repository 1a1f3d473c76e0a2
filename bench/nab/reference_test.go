package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/augur-ops/augur/detectors/anomaly"
)

// minStandard is the floor for augur's standard-profile NAB score in tests,
// just under the published number.
const minStandard = 69.0

// nabDir locates the NAB copy: $AUGUR_NAB_DIR, else the shared data folder
// next to the repository.
func nabDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AUGUR_NAB_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "data", "nab")
	}
	if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err != nil {
		t.Skipf("NAB data not found at %s (set AUGUR_NAB_DIR): %v", dir, err)
	}
	return dir
}

// TestReferenceTables checks the scorer against NAB's own published score
// tables: with the published per-row outputs of windowedGaussian and numenta
// and the thresholds NAB chose for them, every file's raw score and
// TP/TN/FP/FN counts must match.
func TestReferenceTables(t *testing.T) {
	dir := nabDir(t)
	files, err := loadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := loadProfiles(filepath.Join(dir, "reference", "profiles.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "reference", "thresholds.json"))
	if err != nil {
		t.Fatal(err)
	}
	var thresholds map[string]map[string]struct{ Threshold float64 }
	if err := json.Unmarshal(raw, &thresholds); err != nil {
		t.Fatal(err)
	}
	for _, det := range []string{"windowedGaussian", "numenta"} {
		scores, err := referenceScores(filepath.Join(dir, "reference"), det, files)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range profiles {
			t.Run(det+"/"+p.Name, func(t *testing.T) {
				want := readTable(t, filepath.Join(dir, "reference", det, det+"_"+p.Name+"_scores.csv"))
				got, _, err := scoreFiles(files, scores, p.Cost, thresholds[det][p.Name].Threshold)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("scored %d files, table has %d", len(got), len(want))
				}
				for _, g := range got {
					w, ok := want[g.File]
					if !ok {
						t.Errorf("%s: not in the table", g.File)
						continue
					}
					if math.Abs(g.Score-w.Score) > 1e-9*math.Max(1, math.Abs(w.Score)) ||
						g.TP != w.TP || g.TN != w.TN || g.FP != w.FP || g.FN != w.FN || g.Total != w.Total {
						t.Errorf("%s: got score %.12g TP %d TN %d FP %d FN %d total %d, want %.12g %d %d %d %d %d",
							g.File, g.Score, g.TP, g.TN, g.FP, g.FN, g.Total, w.Score, w.TP, w.TN, w.FP, w.FN, w.Total)
					}
				}
			})
		}
	}
}

// readTable reads a NAB score table keyed by file.
func readTable(t *testing.T, path string) map[string]fileResult {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	recs, err := csv.NewReader(fh).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fileResult{}
	for _, r := range recs[1:] {
		if r[2] == "" || r[0] == "Totals" {
			continue
		}
		num := func(s string) int {
			n, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return int(n)
		}
		score, err := strconv.ParseFloat(r[4], 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out[r[2]] = fileResult{File: r[2], Tally: Tally{Score: score, TP: num(r[5]), TN: num(r[6]), FP: num(r[7]), FN: num(r[8])}, Total: num(r[9])}
	}
	return out
}

// TestAugurNAB runs augur's detector over the corpus: a regression guard on
// the published number (see bench/RESULTS-anomaly.md).
func TestAugurNAB(t *testing.T) {
	dir := nabDir(t)
	files, err := loadCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := loadProfiles(filepath.Join(dir, "reference", "profiles.json"))
	if err != nil {
		t.Fatal(err)
	}
	scores, _, err := runAugur(files, anomaly.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range profiles {
		r, err := evaluate(files, scores, p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: normalised %.2f at threshold %.4f", p.Name, r.Normalized, r.Threshold)
		if p.Name == "standard" && r.Normalized < minStandard {
			t.Errorf("standard profile scored %.2f, below %.1f", r.Normalized, minStandard)
		}
	}
}
