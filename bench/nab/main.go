// Command nab scores anomaly detectors on the Numenta Anomaly Benchmark the
// way NAB's own scorer does (sweeper, profiles, corpus-wide threshold,
// normalisation between the null and the perfect detector).
//
//	go run ./bench/nab -detector augur
//	go run ./bench/nab -detector numenta   # NAB's published outputs
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/augur-ops/augur/internal/devdata"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nab:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("nab", flag.ContinueOnError)
	dir := fs.String("data", filepath.Join(devdata.Dir(), "nab"), "NAB folder with data/, labels/ and reference/")
	det := fs.String("detector", "augur", "augur, or the name of a detector in <data>/reference (numenta, windowedGaussian)")
	verbose := fs.Bool("v", false, "print the per-file table of every profile")
	loco := fs.Bool("loco", false, "leave one category out: choose augur's setting among a grid on the other categories (by the standard profile) and each profile's threshold, score each category with them, for the standard and reward_low_FP_rate profiles")
	perProfile := fs.Bool("loco-per-profile", false, "with -loco: choose the detector setting for each profile on its own score (default: one setting for both, chosen by the standard profile, as the detector ships one; each profile chooses its threshold)")
	every := fs.Int("every", 1, "average each file over blocks of n rows (a coarser sampling interval; windows keep the blocks starting inside them)")
	parts := fs.Int("split", 1, "cut each file into this many consecutive shorter files and score augur on them from a fresh detector and from the whole file's run (how quickly a new series becomes useful)")
	synthetic := fs.Bool("synthetic", false, "score augur on generated series instead (clean daily series, counts with bursts) and print false detections and bursts found")
	cfg := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *synthetic {
		return syntheticReport(out, *cfg)
	}
	files, err := loadCorpus(*dir)
	if err != nil {
		return err
	}
	if *every > 1 {
		files = subsample(files, *every)
	}
	profiles, err := loadProfiles(filepath.Join(*dir, "reference", "profiles.json"))
	if err != nil {
		return err
	}
	if *parts > 1 {
		return splitReport(out, files, *parts, *cfg, profiles, filepath.Join(*dir, "reference"))
	}
	labels, err := loadLabels(*dir)
	if err != nil {
		return err
	}
	if *loco {
		var std profile
		for _, p := range profiles {
			if p.Name == "standard" {
				std = p
			}
		}
		for _, p := range profiles {
			if p.Name == "standard" || p.Name == "reward_low_FP_rate" {
				sel := std
				if *perProfile {
					sel = p
				}
				if err := leaveOneCategoryOut(out, files, labels, p, sel, *cfg); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var scores [][]float64
	var alarms [][]bool
	if *det == "augur" {
		scores, alarms, err = runAugur(files, *cfg)
		if err != nil {
			return err
		}
	} else {
		scores, err = referenceScores(filepath.Join(*dir, "reference"), *det, files)
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "detector %s: %d files, %d windows\n", *det, len(files), countWindows(files))
	for _, p := range profiles {
		r, err := evaluate(files, scores, p)
		if err != nil {
			return err
		}
		if *verbose {
			for _, f := range r.Files {
				fmt.Fprintf(out, "  %-55s %8.3f TP %4d FP %4d FN %4d\n", f.File, f.Score, f.TP, f.FP, f.FN)
			}
		}
		fmt.Fprintf(out, "%-20s threshold %.6f raw %8.3f (null %.1f, perfect %.1f) normalised %6.2f\n",
			r.Profile, r.Threshold, r.Raw, r.Null, r.Perfect, r.Normalized)
	}
	// Operational view at rules fixed in advance: the detector's own
	// DetectLevel (0.5, a 1e-5 tail probability) and, for augur, the
	// band alarm (2 of 3 points outside forecast ± 2 sd).
	printOperational(out, "score >= 0.5:", measure(files, labels, threshold(scores, 0.5)))
	if alarms != nil {
		printOperational(out, "band alarm (2 of 3 outside):", measure(files, labels, alarms))
	}
	// The same per category: where the fixed threshold works and where
	// it does not.
	fired := threshold(scores, 0.5)
	for _, cat := range categories(files) {
		var fs []dataFile
		var fc [][]bool
		for i, f := range files {
			if filepath.Dir(f.Name) == cat {
				fs, fc = append(fs, f), append(fc, fired[i])
			}
		}
		printOperational(out, "  "+cat+":", measure(fs, labels, fc))
	}
	return nil
}

// categories returns the corpus' categories (the folders of its files) in
// order of first appearance.
func categories(files []dataFile) []string {
	var cats []string
	for _, f := range files {
		if c := filepath.Dir(f.Name); !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	return cats
}

func countWindows(files []dataFile) int {
	n := 0
	for _, f := range files {
		n += len(f.Windows)
	}
	return n
}
