package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tsLayout is the timestamp format of NAB data files; parsing also accepts
// the fractional seconds used in the label files.
const tsLayout = "2006-01-02 15:04:05"

// dataFile is one NAB series with its label windows as row indices.
type dataFile struct {
	Name    string // relative path, e.g. "realKnownCause/nyc_taxi.csv"
	Times   []int64
	Values  []float64
	Windows [][2]int // inclusive [first, last] row of each window
}

// loadCorpus reads every CSV under dir/data and maps the windows of
// dir/labels/combined_windows.json onto rows. A window boundary that is not
// exactly a data timestamp is an error, as in NAB's labeler.
func loadCorpus(dir string) ([]dataFile, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	var windows map[string][][2]string
	if err := json.Unmarshal(raw, &windows); err != nil {
		return nil, fmt.Errorf("decode windows: %w", err)
	}
	dataDir := filepath.Join(dir, "data")
	var files []dataFile
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".csv") {
			return err
		}
		rel, err := filepath.Rel(dataDir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := readDataFile(path)
		if err != nil {
			return err
		}
		f.Name = rel
		wins, ok := windows[rel]
		if !ok {
			return fmt.Errorf("no label windows for %s", rel)
		}
		for _, w := range wins {
			a, err := rowOf(f.Times, w[0])
			if err != nil {
				return fmt.Errorf("window of %s: %w", rel, err)
			}
			b, err := rowOf(f.Times, w[1])
			if err != nil {
				return fmt.Errorf("window of %s: %w", rel, err)
			}
			f.Windows = append(f.Windows, [2]int{a, b})
		}
		slices.SortFunc(f.Windows, func(x, y [2]int) int { return x[0] - y[0] })
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load corpus %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load corpus %s: no data files", dir)
	}
	return files, nil
}

func parseTime(s string) (int64, error) {
	t, err := time.Parse(tsLayout, strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Unix(), nil
}

// rowOf returns the row whose timestamp is exactly ts.
func rowOf(times []int64, ts string) (int, error) {
	t, err := parseTime(ts)
	if err != nil {
		return 0, err
	}
	if i, ok := slices.BinarySearch(times, t); ok {
		return i, nil
	}
	return 0, fmt.Errorf("timestamp %s is not in the data", ts)
}

// readDataFile reads a NAB `timestamp,value` file.
func readDataFile(path string) (dataFile, error) {
	var f dataFile
	err := readCSV(path, "value", func(ts int64, v float64) {
		f.Times = append(f.Times, ts)
		f.Values = append(f.Values, v)
	})
	return f, err
}

// readScores reads a NAB results file and returns its anomaly_score column.
func readScores(path string) ([]float64, error) {
	var s []float64
	err := readCSV(path, "anomaly_score", func(_ int64, v float64) { s = append(s, v) })
	return s, err
}

// readCSV calls row with the timestamp and the named column of every row.
func readCSV(path, column string, row func(ts int64, v float64)) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	r := csv.NewReader(bufio.NewReader(fh))
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return fmt.Errorf("read header of %s: %w", path, err)
	}
	col := slices.Index(head, column)
	if col < 0 || head[0] != "timestamp" {
		return fmt.Errorf("%s: want columns timestamp and %s, got %v", path, column, head)
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		ts, err := parseTime(rec[0])
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		v, err := strconv.ParseFloat(rec[col], 64)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		row(ts, v)
	}
}

// subsample averages each file over blocks of n rows (n > 1), stamped
// with a block's first time: the same series and windows at a coarser
// sampling interval, as a metrics system that averages over longer
// periods would give them, to see how the detector carries over to
// slower series. A window keeps the blocks that start inside it.
func subsample(files []dataFile, n int) []dataFile {
	out := make([]dataFile, len(files))
	for i, f := range files {
		g := dataFile{Name: f.Name}
		for r := 0; r+n <= len(f.Values); r += n {
			sum := 0.0
			for _, v := range f.Values[r : r+n] {
				sum += v
			}
			g.Times = append(g.Times, f.Times[r])
			g.Values = append(g.Values, sum/float64(n))
		}
		for _, w := range f.Windows {
			a, b := (w[0]+n-1)/n, min(w[1]/n, len(g.Values)-1)
			if a <= b {
				g.Windows = append(g.Windows, [2]int{a, b})
			}
		}
		out[i] = g
	}
	return out
}

// split cuts each file into k consecutive parts of equal length, each a
// file of its own (name suffixed #1..#k) with the windows inside it: the
// same series as shorter files. A window that starts in a part's
// probationary period is dropped (nothing there is scored).
func split(files []dataFile, k int) []dataFile {
	var out []dataFile
	for _, f := range files {
		n := len(f.Values) / k
		prob := probationLength(n)
		for p := range k {
			lo, hi := p*n, (p+1)*n
			g := dataFile{Name: fmt.Sprintf("%s#%d", f.Name, p+1), Times: f.Times[lo:hi], Values: f.Values[lo:hi]}
			for _, w := range f.Windows {
				a, b := max(w[0], lo), min(w[1], hi-1)
				if a <= b && a-lo >= prob {
					g.Windows = append(g.Windows, [2]int{a - lo, b - lo})
				}
			}
			out = append(out, g)
		}
	}
	return out
}

// cut cuts per-row scores of whole files the way split cuts the files.
func cut(files []dataFile, scores [][]float64, k int) [][]float64 {
	var out [][]float64
	for i, f := range files {
		n := len(f.Values) / k
		for p := range k {
			out = append(out, scores[i][p*n:(p+1)*n])
		}
	}
	return out
}
