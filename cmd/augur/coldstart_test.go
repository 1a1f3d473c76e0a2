package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
)

// TestFirstDecisionWithinTwoWindows: a new scaling rule decides no later
// than its horizon plus two windows after its first sample (event time),
// through `augur run` and a stream of remote-write requests, one scrape
// every 5 s of a counter rising 17.3 per second.
func TestFirstDecisionWithinTwoWindows(t *testing.T) {
	broker, listen := startScalingRun(t, "api")

	// Three minutes of scrapes, starting mid-window, pushed as they come.
	first := time.Now().Add(-10 * time.Minute).Truncate(10 * time.Second).Add(3 * time.Second)
	for i := range 36 {
		ts := first.Add(time.Duration(i) * 5 * time.Second)
		pushV1(t, "http://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: "a:80"}, {Name: "job", Value: "api"}},
			Samples: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: 17.3 * 5 * float64(i)}},
		}}})
	}
	var d *proto.Decision
	readTopic(t, broker, "augur.decisions", func(r *kgo.Record) bool {
		dec, err := proto.UnmarshalDecision(r.Value)
		if err == nil && dec.GetKind() == proto.KindScale {
			d = dec
		}
		return d != nil
	})
	after := d.GetCreatedAt().AsTime().Sub(first)
	t.Logf("first decision %v after the first sample: %s", after, d.GetSummary())
	if limit := time.Minute + 2*10*time.Second; after > limit {
		t.Errorf("first decision %v after the first sample, want at most horizon + 2 windows = %v", after, limit)
	}
	if n := d.GetDesired().GetReplicas(); n != 9 {
		t.Errorf("first decision for %d replicas, want 9 (17.3 req/s at 2 per pod)", n)
	}

	// The rule's forecast points, from augur.forecasts through the API.
	var fc struct {
		Points []proto.ForecastPoint `json:"points"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(fc.Points) == 0 && time.Now().Before(deadline) {
		_ = json.Unmarshal([]byte(scrape(t, "http://"+listen+"/api/v1/forecasts?rule=api")), &fc)
		time.Sleep(200 * time.Millisecond)
	}
	if len(fc.Points) == 0 {
		t.Fatal("no forecast points served for rule api")
	}
	last := fc.Points[len(fc.Points)-1]
	if last.Target != "k8s/deployment/demo/api" || math.Abs(last.Observed-17.3) > 0.1 || math.Abs(last.Forecast-17.3) > 0.9 || last.Decided != 9 || last.Recommended != 9 {
		t.Errorf("last forecast point %+v: want observed and forecast near 17.3, 9 replicas recommended and decided", last)
	}
}

// TestRampForecastLeadsTheLoad: on a load that ramps, the served forecast
// leads it: through `augur run` and a stream of remote-write requests (a
// counter scraped every 5 s whose rate rises from 10 to 28 req/s over six
// minutes, and on), every forecast made from three minutes on (two horizons and
// the first window) is within 5% of the load observed one horizon later.
// The last value, served alone before the drift member, was a horizon's
// rise (3 req/s, 11-14%) short.
func TestRampForecastLeadsTheLoad(t *testing.T) {
	_, listen := startScalingRun(t, "ramp")

	// rate(s) = 10 + 0.05 s req/s: the counter is its integral. Samples
	// go on for a minute after the six checked, so their windows close.
	first := time.Now().Add(-20 * time.Minute).Truncate(10 * time.Second)
	const n = 7*12 + 1
	for i := range n {
		s := 5 * float64(i)
		pushV1(t, "http://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: "a:80"}, {Name: "job", Value: "ramp"}},
			Samples: []prompb.Sample{{Timestamp: first.Add(time.Duration(i) * 5 * time.Second).UnixMilli(), Value: 10*s + 0.025*s*s}},
		}}})
	}
	var fc struct {
		Points []proto.ForecastPoint `json:"points"`
	}
	lastEnd := first.Add(6 * time.Minute).UnixMilli()
	waitFor(t, time.Minute, "forecast points up to the end of the ramp", func() (bool, string) {
		_ = json.Unmarshal([]byte(scrape(t, "http://"+listen+"/api/v1/forecasts?rule=ramp")), &fc)
		if len(fc.Points) == 0 {
			return false, "no points"
		}
		end := fc.Points[len(fc.Points)-1].WindowEnd
		return end >= lastEnd, fmt.Sprintf("last window end %v", time.UnixMilli(end).Sub(first))
	})
	observed := map[int64]float64{}
	for _, p := range fc.Points {
		observed[p.WindowEnd] = p.Observed
	}
	checked, worst := 0, 0.0
	for _, p := range fc.Points {
		later, ok := observed[p.WindowEnd+int64(p.HorizonSeconds*1000)]
		if !ok || p.WindowEnd < first.Add(3*time.Minute).UnixMilli() {
			continue
		}
		checked++
		worst = max(worst, math.Abs(p.Forecast/later-1))
		if math.Abs(p.Forecast-later) > 0.05*later {
			t.Errorf("forecast at %v by %s: %.2f for %.2f observed one horizon later (now %.2f), want within 5%%",
				time.UnixMilli(p.WindowEnd).Sub(first), p.Model, p.Forecast, later, p.Observed)
		}
	}
	t.Logf("%d forecasts checked against the load a horizon later: worst %.1f%% off", checked, 100*worst)
	if checked < 10 {
		t.Errorf("%d forecasts checked against the load a horizon later, want at least 10 (points: %d)", checked, len(fc.Points))
	}
}

// startScalingRun starts `augur run` (embedded broker) with one scaling
// rule, named name, on http_requests_total{job=name}: a 10 s window, a
// 1 min horizon, 2 req/s per pod, target demo/name. It returns the
// broker's and augur's addresses.
func startScalingRun(t *testing.T, name string) (broker, listen string) {
	t.Helper()
	dir := t.TempDir()
	broker, listen = freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "rules.yaml"), fmt.Sprintf(`rules:
- name: %[1]s
  scaling:
    selector: 'http_requests_total{job="%[1]s"}'
    capacity_per_pod: 2
    window: 10s
    horizon: 1m
    min_replicas: 1
    max_replicas: 50
    target: {namespace: demo, name: %[1]s}
`, name))
	writeFile(t, filepath.Join(dir, "augur.yaml"), fmt.Sprintf(`listen: %s
data_dir: %s
kafka: {embedded_addr: %s, partitions: 2}
rules_file: %s
`, listen, filepath.Join(dir, "data"), broker, filepath.Join(dir, "rules.yaml")))
	startRun(t, filepath.Join(dir, "augur.yaml"), listen)
	return broker, listen
}
