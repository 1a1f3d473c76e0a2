package scenario

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/augur-ops/augur/detectors/grayfailure"
)

// TestRecord writes the scenario files detectors/grayfailure replays
// (testdata/scenarios/*.csv.gz): each window's zone statistics as the stream
// would build them, with the fault in a header line. Run with
// AUGUR_RECORD=1 to write them again.
func TestRecord(t *testing.T) {
	if os.Getenv("AUGUR_RECORD") != "1" {
		t.Skip("AUGUR_RECORD=1 writes detectors/grayfailure/testdata/scenarios")
	}
	dir := filepath.Join("..", "..", "..", "detectors", "grayfailure", "testdata", "scenarios")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	fault := func(k FaultKind, zone int, size float64, stagger time.Duration) []Fault {
		return []Fault{{Kind: k, Zone: zone, Start: start.Add(2*time.Hour + 37*time.Second), End: start.Add(2*time.Hour + 20*time.Minute), Size: size, Stagger: stagger}}
	}
	for _, rec := range []struct {
		name   string
		faults []Fault
		dur    time.Duration
		seed   uint64
	}{
		{"healthy_24h", nil, 24 * time.Hour, 101},
		{"latency200ms", fault(Latency, 1, 0.2, 0), 3 * time.Hour, 102},
		{"latency80ms", fault(Latency, 2, 0.08, 0), 3 * time.Hour, 103},
		{"errors5pct", fault(Errors, 0, 0.05, 0), 3 * time.Hour, 104},
		{"packetloss5pct", fault(PacketLoss, 1, 0, 0), 3 * time.Hour, 105},
		{"regional", fault(Regional, 0, 0, 0), 3 * time.Hour, 106},
		{"drain", fault(DrainNode, 2, 0, 0), 3 * time.Hour, 107},
	} {
		f, err := os.Create(filepath.Join(dir, rec.name+".csv.gz"))
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		fmt.Fprintf(zw, "# scenario %s: bench/grayfailure/scenario seed %d, 15s windows\n", rec.name, rec.seed)
		for _, ft := range rec.faults {
			fmt.Fprintf(zw, "# fault %s zone %d start %d end %d\n", ft.Kind, ft.Zone, ft.Start.UnixMilli(), ft.End.UnixMilli())
		}
		fmt.Fprintln(zw, "end_ms,zone,instances,requests,errors,latency_mean,latency_p99,latency_max,packet_loss")
		// The traffic follows the detector's shifts as it would in
		// production: record with the bench detector in the loop.
		det, err := grayfailure.New(BenchDetectorConfig())
		if err != nil {
			t.Fatal(err)
		}
		sim := New(Config{Seed: rec.seed, Start: start, Faults: rec.faults})
		end := start.Add(rec.dur)
		for {
			at, stats := sim.Next()
			if at.After(end) {
				break
			}
			for _, s := range stats {
				fmt.Fprintf(zw, "%d,%s,%d,%g,%g,%.6g,%.6g,%.6g,%.6g\n", at.UnixMilli(), s.Zone, s.Instances, s.Requests, s.Errors, s.LatencyMean, s.LatencyP99, s.LatencyMax, s.PacketLoss)
			}
			det.Update(at, stats)
			sim.SetShifted(det.Shifted())
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
