package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// profile is one NAB application profile.
type profile struct {
	Name string
	Cost CostMatrix
}

// nabProfiles are NAB's three scoring profiles (its config/profiles.json),
// for a corpus folder without reference/profiles.json: the profiles are
// the benchmark's, not the folder's.
var nabProfiles = []profile{
	{"reward_low_FN_rate", CostMatrix{TP: 1, FN: 2, FP: 0.11, TN: 1}},
	{"reward_low_FP_rate", CostMatrix{TP: 1, FN: 1, FP: 0.22, TN: 1}},
	{"standard", CostMatrix{TP: 1, FN: 1, FP: 0.11, TN: 1}},
}

// loadProfiles reads NAB's profiles.json, sorted by name; without the file,
// NAB's own (nabProfiles).
func loadProfiles(path string) ([]profile, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return slices.Clone(nabProfiles), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	var m map[string]struct {
		CostMatrix CostMatrix `json:"CostMatrix"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode profiles: %w", err)
	}
	var out []profile
	for name, p := range m {
		out = append(out, profile{Name: name, Cost: p.CostMatrix})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fileResult is one row of a NAB score table.
type fileResult struct {
	File string
	Tally
	Total int
}

// profileResult is a detector's outcome on the corpus for one profile.
type profileResult struct {
	Profile    string
	Threshold  float64 // optimised over the corpus
	Raw        float64 // sum of the per-file raw scores at Threshold
	Null       float64 // raw score of the detector that never fires
	Perfect    float64 // raw score of the perfect detector
	Normalized float64 // 100*(Raw-Null)/(Perfect-Null)
	Files      []fileResult
}

// sweepCorpus pools the sweep points of all files; window ids are global.
func sweepCorpus(files []dataFile, scores [][]float64, cm CostMatrix) ([]point, int) {
	var pts []point
	id := 0
	for i, f := range files {
		pts = sweep(pts, scores[i], f.Windows, id, cm)
		id += len(f.Windows)
	}
	return pts, id
}

// scoreFiles scores each file at a fixed threshold, like NAB's scorer.
func scoreFiles(files []dataFile, scores [][]float64, cm CostMatrix, threshold float64) ([]fileResult, float64, error) {
	var out []fileResult
	sum := 0.0
	for i, f := range files {
		pts := sweep(nil, scores[i], f.Windows, 0, cm)
		t, ok := atThreshold(scoreByThreshold(pts, len(f.Windows), cm), threshold)
		if !ok {
			return nil, 0, fmt.Errorf("%s: threshold %v is below every score", f.Name, threshold)
		}
		t.Threshold = threshold
		out = append(out, fileResult{File: f.Name, Tally: t, Total: len(f.Values)})
		sum += t.Score
	}
	return out, sum, nil
}

// evaluate runs NAB's optimise, score and normalise steps for one profile.
func evaluate(files []dataFile, scores [][]float64, p profile) (profileResult, error) {
	pts, nw := sweepCorpus(files, scores, p.Cost)
	best := bestThreshold(scoreByThreshold(pts, nw, p.Cost))
	res, raw, err := scoreFiles(files, scores, p.Cost, best.Threshold)
	if err != nil {
		return profileResult{}, err
	}
	// The null detector gives every row 0.5; NAB scores it the same way.
	null := make([][]float64, len(files))
	for i, f := range files {
		null[i] = make([]float64, len(f.Values))
		for j := range null[i] {
			null[i][j] = 0.5
		}
	}
	npts, _ := sweepCorpus(files, null, p.Cost)
	nbest := bestThreshold(scoreByThreshold(npts, nw, p.Cost))
	_, nullRaw, err := scoreFiles(files, null, p.Cost, nbest.Threshold)
	if err != nil {
		return profileResult{}, err
	}
	perfect := float64(nw) * p.Cost.TP
	return profileResult{
		Profile:    p.Name,
		Threshold:  best.Threshold,
		Raw:        raw,
		Null:       nullRaw,
		Perfect:    perfect,
		Normalized: 100 * (raw - nullRaw) / (perfect - nullRaw),
		Files:      res,
	}, nil
}

// referenceScores reads NAB's published per-row outputs of a detector,
// stored as dir/<detector>/<category>/<detector>_<file>.
func referenceScores(dir, detector string, files []dataFile) ([][]float64, error) {
	out := make([][]float64, len(files))
	for i, f := range files {
		path := filepath.Join(dir, detector, filepath.Dir(f.Name), detector+"_"+filepath.Base(f.Name))
		s, err := readScores(path)
		if err != nil {
			return nil, err
		}
		if len(s) != len(f.Values) {
			return nil, fmt.Errorf("%s: %d scores for %d rows", path, len(s), len(f.Values))
		}
		out[i] = s
	}
	return out, nil
}
