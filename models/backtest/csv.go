// Package backtest replays a recorded series through the forecaster bank
// the way the stream would see it, and scores every forecast against what
// happened, with the baselines people run today (seasonal naive, naive,
// Prometheus' double_exponential_smoothing) side by side.
package backtest

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Point is one sample: event time in unix milliseconds and its value.
type Point struct {
	Ts    int64
	Value float64
}

// ReadFile reads a series from a CSV file, gzip-compressed or not.
func ReadFile(path string) ([]Point, error) {
	pts, _, err := ReadFileFormat(path)
	return pts, err
}

// ReadFileFormat is ReadFile that also reports whether the first timestamp
// was ISO 8601 (else unix seconds), so output can use the input's format.
func ReadFileFormat(path string) (pts []Point, iso bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("open series: %w", err)
	}
	defer f.Close()
	pts, iso, err = readCSV(f)
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", path, err)
	}
	return pts, iso, nil
}

// FormatTime formats unix milliseconds as unix seconds, or as RFC 3339 in
// UTC when iso is set.
func FormatTime(ms int64, iso bool) string {
	if iso {
		return time.UnixMilli(ms).UTC().Format(time.RFC3339)
	}
	if ms%1000 == 0 {
		return strconv.FormatInt(ms/1000, 10)
	}
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

// ReadCSV reads a series: a header naming the columns (timestamp or ts, and
// value), then one sample per line. Timestamps are unix seconds (integer or
// fractional) or ISO 8601 ("2006-01-02 15:04:05", RFC 3339, with or without
// zone; no zone means UTC). A file with no header and two columns is read
// as timestamp and value. A missing value (empty, NaN, null, NA, none or
// infinite, as exports of metrics with gaps write them) is a gap: its line
// is skipped. Lines out of time order are put in order (equal timestamps
// keep the file's order). The input may be gzip-compressed.
func ReadCSV(r io.Reader) ([]Point, error) {
	pts, _, err := readCSV(r)
	return pts, err
}

func readCSV(r io.Reader) (pts []Point, iso bool, err error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, fmt.Errorf("open gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, false, fmt.Errorf("read header: %w", err)
	}
	cr.ReuseRecord = true
	ti, vi := -1, -1
	for i, h := range head {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "timestamp", "ts", "time":
			ti = i
		case "value":
			vi = i
		}
	}
	// No header: two columns, a time and a number, are the first sample.
	first := 2
	if ti < 0 && vi < 0 && len(head) == 2 && isSample(head) {
		ti, vi, first = 0, 1, 1
	}
	if ti < 0 || vi < 0 {
		return nil, false, fmt.Errorf("header %q: want columns timestamp (or ts) and value", head)
	}
	for line := first; ; line++ {
		rec := head
		if line > 1 {
			rec, err = cr.Read()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("line %d: %w", line, err)
		}
		if len(rec) <= max(ti, vi) {
			return nil, false, fmt.Errorf("line %d: %d columns, want at least %d", line, len(rec), max(ti, vi)+1)
		}
		if line == first {
			_, numErr := strconv.ParseFloat(strings.TrimSpace(rec[ti]), 64)
			iso = numErr != nil
		}
		ts, err := ParseTime(rec[ti])
		if err != nil {
			return nil, false, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := ParseValue(rec[vi])
		if err != nil {
			return nil, false, fmt.Errorf("line %d: %w", line, err)
		}
		if math.IsNaN(v) {
			continue // a gap
		}
		pts = append(pts, Point{Ts: ts, Value: v})
	}
	if len(pts) == 0 {
		return nil, false, errors.New("no samples")
	}
	if !slices.IsSortedFunc(pts, byTime) {
		slices.SortStableFunc(pts, byTime)
	}
	return pts, iso, nil
}

// isSample reports whether rec is a time and a number.
func isSample(rec []string) bool {
	_, terr := ParseTime(rec[0])
	_, verr := ParseValue(rec[1])
	return terr == nil && verr == nil
}

func byTime(a, b Point) int { return cmp.Compare(a.Ts, b.Ts) }

// ParseValue parses a sample's value; a missing one (empty, NaN, null,
// NA, none or infinite) is NaN, a gap.
func ParseValue(s string) (float64, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "nan", "null", "na", "none":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: want a number", s)
	}
	if math.IsInf(v, 0) {
		return math.NaN(), nil
	}
	return v, nil
}

// SeriesName is a series file's name without its folder, .gz and .csv:
// what the benchmarks' tables call it.
func SeriesName(path string) string {
	return strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".gz"), ".csv")
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"}

// ParseTime parses unix seconds or an ISO 8601 time into unix milliseconds.
func ParseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e14 {
			return 0, fmt.Errorf("timestamp %q out of range", s)
		}
		return int64(math.Round(f * 1000)), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q: want unix seconds or ISO 8601", s)
}

// InferStep returns the median spacing of pts, at least one second.
func InferStep(pts []Point) time.Duration {
	if len(pts) < 2 {
		return time.Minute
	}
	d := make([]int64, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		if g := pts[i].Ts - pts[i-1].Ts; g > 0 {
			d = append(d, g)
		}
	}
	if len(d) == 0 {
		return time.Minute
	}
	slices.Sort(d)
	return max(time.Duration(d[len(d)/2])*time.Millisecond, time.Second).Round(time.Second)
}
