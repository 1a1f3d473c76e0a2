package main

import (
	"testing"

	"github.com/augur-ops/augur/detectors/anomaly"
)

// TestSyntheticQuality: on generated series with fixed seeds, a clean
// daily series is rarely alerted on and bursts of counts are found: 33
// false detections, and 30 of 30 bursts with 14 false, at the time of
// writing. Every new high or low scored 1 outright (the version before):
// 44; with a fixed floor under the likelihood's deviation as well: 61.
func TestSyntheticQuality(t *testing.T) {
	d, err := anomaly.New(anomaly.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := cleanDetections(d, 10, 1); n > 40 {
		t.Errorf("clean daily series, noise 1: %d false detections in 148,000 samples, want at most 40", n)
	}
	if found, falses := countBursts(d, 0.8, 50); found < 28 || falses > 20 {
		t.Errorf("counts around 50 per interval: %d of 30 bursts found with %d false detections, want >= 28 and <= 20", found, falses)
	}
}
