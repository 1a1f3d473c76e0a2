package anomaly

import (
	"bytes"
	"compress/gzip"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestReplayGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "ec2_request_latency_head.csv"))
	if err != nil {
		t.Fatal(err)
	}
	d := mustNew(t, Config{})
	var out bytes.Buffer
	rows, err := Replay(&out, bytes.NewReader(in), d)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 1000 {
		t.Errorf("replayed %d rows, want 1000", rows)
	}
	golden := filepath.Join("testdata", "ec2_request_latency_head.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Error("output differs from the golden file (run with -update after an intended change)")
	}
	// Same rows, same order, the input's timestamp and value text kept.
	inLines := strings.Split(strings.TrimSpace(string(in)), "\n")
	outLines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if outLines[0] != "timestamp,value,anomaly_score" || len(outLines) != len(inLines) {
		t.Fatalf("header %q, %d lines for %d input lines", outLines[0], len(outLines), len(inLines))
	}
	for i := 1; i < len(inLines); i++ {
		if !strings.HasPrefix(outLines[i], inLines[i]+",") {
			t.Fatalf("line %d: %q does not extend input %q", i, outLines[i], inLines[i])
		}
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var outGz bytes.Buffer
	if _, err := Replay(&outGz, &gz, d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(outGz.Bytes(), out.Bytes()) {
		t.Error("gzip input gives different output")
	}
}

func TestReplayErrors(t *testing.T) {
	d := mustNew(t, Config{})
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"header only", "timestamp,value\n"},
		{"no comma", "timestamp,value\n2014-01-01 00:00:00\n"},
		{"bad value", "timestamp,value\n2014-01-01 00:00:00,abc\n"},
		{"bad timestamp", "timestamp,value\n2014-01-01 00:00:00,1\nyesterday,2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Replay(&bytes.Buffer{}, strings.NewReader(tt.in), d); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"2014-04-10 07:15:00", 1397114100000},
		{"2014-04-10 07:15:00.000000", 1397114100000},
		{"2014-04-10T07:15:00Z", 1397114100000},
		{"1397114100", 1397114100000},
		{"1397114100000", 1397114100000},
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTimestamp(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func FuzzReplay(f *testing.F) {
	in, err := os.ReadFile(filepath.Join("testdata", "ec2_request_latency_head.csv"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(in[:2000])
	f.Add([]byte("timestamp,value\n1397114100,1\n1397114400,NaN\n"))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	d, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		rows, err := Replay(&out, bytes.NewReader(b), d)
		if err != nil {
			return
		}
		if got := strings.Count(out.String(), "\n"); got != rows+1 {
			t.Fatalf("%d output lines for %d rows", got, rows)
		}
	})
}
