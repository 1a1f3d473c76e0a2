package anomaly

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// timeLayouts are the textual timestamps Replay accepts, besides unix
// seconds or milliseconds.
var timeLayouts = []string{"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05"}

// ParseTimestamp parses a CSV timestamp: NAB's "2006-01-02 15:04:05"
// (fractional seconds allowed), RFC 3339, or a unix time in seconds or, above
// 1e11, milliseconds. It returns unix milliseconds.
func ParseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f > 1e11 {
			return int64(f), nil
		}
		return int64(f * 1000), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q: not a known format", s)
}

// Replay runs one fresh series of d over a `timestamp,value` CSV (a header
// row, as in NAB data files; gzip-compressed input is detected) and writes
// `timestamp,value,anomaly_score` rows in input order, copying the timestamp
// and value text: NAB's results layout. It returns the number of data rows.
func Replay(dst io.Writer, src io.Reader, d *Detector) (int, error) {
	br := bufio.NewReader(src)
	if magic, err := br.Peek(2); err == nil && bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("open gzip input: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	w := bufio.NewWriter(dst)
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if _, err := w.WriteString("timestamp,value,anomaly_score\n"); err != nil {
		return 0, fmt.Errorf("write output: %w", err)
	}
	var s State
	rows := 0
	buf := make([]byte, 0, 128)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if text == "" {
			continue
		}
		tsText, valText, ok := strings.Cut(text, ",")
		if !ok {
			return rows, fmt.Errorf("line %d: want timestamp,value", line)
		}
		valText, _, _ = strings.Cut(valText, ",")
		ts, err := ParseTimestamp(tsText)
		if err != nil {
			if line == 1 {
				continue // header
			}
			return rows, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(valText), 64)
		if err != nil {
			return rows, fmt.Errorf("line %d: value: %w", line, err)
		}
		r := d.Update(&s, ts, v)
		buf = append(buf[:0], tsText...)
		buf = append(buf, ',')
		buf = append(buf, valText...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, r.Score, 'g', -1, 64)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return rows, fmt.Errorf("write output: %w", err)
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		return rows, fmt.Errorf("read input: %w", err)
	}
	if err := w.Flush(); err != nil {
		return rows, fmt.Errorf("write output: %w", err)
	}
	if rows == 0 {
		return 0, errors.New("read input: no data rows")
	}
	return rows, nil
}
