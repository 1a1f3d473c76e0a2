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
	dir := t.TempDir()
	broker, listen := freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "rules.yaml"), `rules:
- name: api
  scaling:
    selector: 'http_requests_total{job="api"}'
    capacity_per_pod: 2
    window: 10s
    horizon: 1m
    min_replicas: 1
    max_replicas: 50
    target: {namespace: demo, name: api}
`)
	writeFile(t, filepath.Join(dir, "augur.yaml"), fmt.Sprintf(`listen: %s
data_dir: %s
kafka: {embedded_addr: %s, partitions: 2}
rules_file: %s
`, listen, filepath.Join(dir, "data"), broker, filepath.Join(dir, "rules.yaml")))
	startRun(t, filepath.Join(dir, "augur.yaml"), listen)

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
