package main

import (
	"testing"

	"github.com/augur-ops/augur/detectors/anomaly"
)

// TestSyntheticQuality: on generated series with fixed seeds, a clean
// daily series is rarely alerted on and bursts of counts are found. 44
// and 16 of 30 / 131 at the time of writing; a fixed floor under the
// likelihood's deviation (the version before) gave 61 on clean series.
func TestSyntheticQuality(t *testing.T) {
	d, err := anomaly.New(anomaly.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := cleanDetections(d, 1); n > 50 {
		t.Errorf("clean daily series, noise 1: %d false detections in 148,000 samples, want at most 50", n)
	}
	if found, falses := countBursts(d, 0.8, 50); found < 28 || falses > 25 {
		t.Errorf("counts around 50 per interval: %d of 30 bursts found with %d false detections, want >= 28 and <= 25", found, falses)
	}
}
