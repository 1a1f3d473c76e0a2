package backtest

import (
	"bytes"
	"compress/gzip"
	"math"
	"strings"
	"testing"
	"time"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name, in string
		want     []Point
		wantErr  bool
	}{
		{"unix ts", "ts,value\n60,1.5\n120,2\n", []Point{{60_000, 1.5}, {120_000, 2}}, false},
		{"iso space", "timestamp,value\n2014-02-14 14:30:00,3\n", []Point{{1392388200_000, 3}}, false},
		{"rfc3339", "timestamp,value\n2014-02-14T14:30:00Z,3\n", []Point{{1392388200_000, 3}}, false},
		{"value first", "value,timestamp\n3,60\n", []Point{{60_000, 3}}, false},
		{"no value column", "ts,v\n60,1\n", nil, true},
		{"bad time", "ts,value\nyesterday,1\n", nil, true},
		{"bad value", "ts,value\n60,x\n", nil, true},
		{"empty", "ts,value\n", nil, true},
		{"gaps", "ts,value\n60,1\n120,\n180,NaN\n240,null\n300,+Inf\n360,2\n", []Point{{60_000, 1}, {360_000, 2}}, false},
		{"only gaps", "ts,value\n60,\n120,NaN\n", nil, true},
		{"no header", "60,1\n120,2\n", []Point{{60_000, 1}, {120_000, 2}}, false},
		{"no header, iso", "2014-02-14 14:30:00,3\n", []Point{{1392388200_000, 3}}, false},
		{"unknown header", "when,what\n60,1\n", nil, true},
		{"out of order", "ts,value\n120,2\n60,1\n120,3\n", []Point{{60_000, 1}, {120_000, 2}, {120_000, 3}}, false},
	}
	for _, tt := range tests {
		got, err := ReadCSV(strings.NewReader(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !equalPoints(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// FuzzReadCSV: any input is a series in time order of finite values, or an
// error; never a panic.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("ts,value\n60,1.5\n120,2\n"))
	f.Add([]byte("timestamp,value\n2014-02-14 14:30:00,3\n2014-02-14 14:25:00,NaN\n"))
	f.Add([]byte("value,timestamp\n,60\n1e308,1e14\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := ReadCSV(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(pts) == 0 {
			t.Fatal("no points and no error")
		}
		for i, p := range pts {
			if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				t.Fatalf("point %d: value %v", i, p.Value)
			}
			if i > 0 && p.Ts < pts[i-1].Ts {
				t.Fatalf("point %d before point %d", i, i-1)
			}
		}
	})
}

func equalPoints(a, b []Point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadCSVGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("ts,value\n60,1\n120,2\n"))
	zw.Close()
	got, err := ReadCSV(&buf)
	if err != nil || len(got) != 2 || got[1].Value != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
}

// TestRunUsesOnlyPastData checks the no-look-ahead contract: changing a
// value can only change forecasts for rows at least one horizon later.
func TestRunUsesOnlyPastData(t *testing.T) {
	var pts []Point
	for i := 0; i < 3*288; i++ {
		pts = append(pts, Point{Ts: int64(i) * 300_000, Value: 50 + 20*math.Sin(2*math.Pi*float64(i)/288) + float64(i%7)})
	}
	opt := Options{Horizon: 30 * time.Minute, Warmup: 12 * time.Hour}
	a, err := Run(pts, opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3*288 - 144; len(a.Rows) != want {
		t.Fatalf("rows = %d, want %d (one per row after warm-up)", len(a.Rows), want)
	}
	k := 2 * 288
	pts[k].Value += 1000
	b, _ := Run(pts, opt)
	for i := range a.Rows {
		changed := a.Rows[i].Forecasts != b.Rows[i].Forecasts
		if changed && a.Rows[i].Ts < pts[k].Ts+opt.Horizon.Milliseconds() {
			t.Fatalf("row at %d changed by a value at %d, less than one horizon earlier", a.Rows[i].Ts, pts[k].Ts)
		}
	}
	m := a.Metrics[ColBank]
	if !(m.MASE < 1) || m.Coverage < 0.5 {
		t.Errorf("bank metrics on a clean cycle: %+v", m)
	}
}
