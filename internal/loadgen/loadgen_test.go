package loadgen

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// decoded is what a reference decoder read from one request.
type decoded struct {
	series [][]prompb.Label
	ts     []int64
}

func decodeRef(t *testing.T, protocol string, body []byte) decoded {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var d decoded
	switch protocol {
	case "v1":
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		for _, s := range req.Timeseries {
			if len(s.Samples) != 1 {
				t.Fatalf("%d samples in a series, want 1", len(s.Samples))
			}
			d.series = append(d.series, s.Labels)
			d.ts = append(d.ts, s.Samples[0].Timestamp)
		}
	case "v2":
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		if req.Symbols[0] != "" {
			t.Fatalf("symbols[0] = %q", req.Symbols[0])
		}
		for _, s := range req.Timeseries {
			var l []prompb.Label
			for i := 0; i < len(s.LabelsRefs); i += 2 {
				l = append(l, prompb.Label{Name: req.Symbols[s.LabelsRefs[i]], Value: req.Symbols[s.LabelsRefs[i+1]]})
			}
			if s.Metadata.Type == writev2.Metadata_METRIC_TYPE_UNSPECIFIED || req.Symbols[s.Metadata.HelpRef] == "" {
				t.Fatalf("series %v lacks metadata", l)
			}
			d.series = append(d.series, l)
			d.ts = append(d.ts, s.Samples[0].Timestamp)
		}
	}
	return d
}

func TestBodiesAreRealisticRequests(t *testing.T) {
	for _, protocol := range []string{"v1", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			const perReq = 2000
			cfg := Config{Protocol: protocol, SeriesPerRequest: perReq, Series: 4000, Pool: 4}
			bodies, err := Bodies(cfg, 1_700_000_000_000)
			if err != nil {
				t.Fatal(err)
			}
			if len(bodies) != 4 {
				t.Fatalf("%d bodies, want 4", len(bodies))
			}
			values := map[string]map[string]bool{}
			last := map[string]int64{} // series -> last timestamp
			for _, b := range bodies {
				d := decodeRef(t, protocol, b)
				if len(d.series) != perReq {
					t.Fatalf("%d series in a request, want %d", len(d.series), perReq)
				}
				for i, l := range d.series {
					if len(l) < 11 || len(l) > 13 {
						t.Errorf("series %v has %d labels, want about 12", l, len(l))
					}
					if !slices.IsSortedFunc(l, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
						t.Errorf("labels not sorted: %v", l)
					}
					var key strings.Builder
					for _, x := range l {
						if values[x.Name] == nil {
							values[x.Name] = map[string]bool{}
						}
						values[x.Name][x.Value] = true
						key.WriteString(x.Name + "=" + x.Value + ",")
					}
					// Each series' timestamps increase along the pool.
					if prev, ok := last[key.String()]; ok && d.ts[i] <= prev {
						t.Errorf("series %s: timestamp %d after %d", key.String(), d.ts[i], prev)
					}
					last[key.String()] = d.ts[i]
				}
			}
			if len(last) != 4000 {
				t.Errorf("%d distinct series, want 4000", len(last))
			}
			for name, want := range map[string]int{"pod": numPods, "zone": numZones, "namespace": numNamespaces, "node": numNodes, "instance": numInstances, "job": numJobs} {
				if got := len(values[name]); got != want {
					t.Errorf("%d values of %s, want %d", got, name, want)
				}
			}
			if got := len(values["__name__"]); got != 2 {
				t.Errorf("%d metric names over 4000 series, want 2 (2000 pods each)", got)
			}
		})
	}
}

func TestRunCountsWhatTheReceiverAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol string
		rate     float64
	}{
		{"flat out v1", "v1", 0},
		{"fixed rate v2", "v2", 200_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			received, failed := 0, 0
			var ctypes []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				d := decodeRef(t, tc.protocol, b)
				mu.Lock()
				defer mu.Unlock()
				ctypes = append(ctypes, r.Header.Get("Content-Type"))
				// Every third request fails: those samples are not acknowledged.
				if (received+failed)%3 == 2 {
					failed += len(d.series)
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				received += len(d.series)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			res, err := Run(t.Context(), Config{
				URL: srv.URL, Protocol: tc.protocol, SeriesPerRequest: 100, Series: 1000, Pool: 10,
				Rate: tc.rate, Duration: 300 * time.Millisecond, Concurrency: 2,
			}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if res.SamplesAcked != received || res.SamplesSent != received+failed {
				t.Errorf("acked %d sent %d; receiver took %d and refused %d", res.SamplesAcked, res.SamplesSent, received, failed)
			}
			if res.Status["204"]*100 != received || res.Status["503"]*100 != failed {
				t.Errorf("status counts %v, receiver took %d refused %d samples", res.Status, received, failed)
			}
			// No warm-up: every request the server saw was taken from the
			// pool of 10 in the measured window; past 10 they repeat.
			if sent := (received + failed) / 100; res.SamplesRepeated != max(0, sent-10)*100 || sent <= 10 {
				t.Errorf("samples repeated %d after %d requests from a pool of 10, want %d", res.SamplesRepeated, sent, max(0, sent-10)*100)
			}
			if res.Requests == 0 || res.P50 <= 0 || res.P99 < res.P50 {
				t.Errorf("requests %d p50 %s p99 %s", res.Requests, res.P50, res.P99)
			}
			want := "application/x-protobuf"
			if tc.protocol == "v2" {
				want = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
			}
			if ctypes[0] != want {
				t.Errorf("content type %q, want %q", ctypes[0], want)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		line string
		want float64
		ok   bool
	}{
		{"1234 (augur) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0 0", 3.25, true},
		{"99 (a (weird) name) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 0.10, true},
		{"garbage", 0, false},
		{"1 (x) S 1 2", 0, false},
	} {
		got, err := parseStat([]byte(tc.line))
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseStat(%q) = %v, %v; want %v ok=%v", tc.line, got, err, tc.want, tc.ok)
		}
	}
}

func TestValidateNamesBadFields(t *testing.T) {
	c := Config{Protocol: "v3", SeriesPerRequest: 10, Series: 5, Rate: -1}
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"url", "protocol", "series_per_request 10 exceeds series 5", "rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
