package grayfailure

import (
	"flag"
	"math"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/wire/wiretest"
)

var update = flag.Bool("update", false, "write the golden checkpoint of a new state version")

// goldenState returns the fixed test state of the golden checkpoints: zone
// use1-az4 slow from window 1 (shifted away from at window 2), use1-az2 slow
// with it in windows 4 to 7 (a regional event that cancels the shift), and
// use1-az4 alone again in window 8.
func goldenState(t *testing.T) *Detector {
	t.Helper()
	d := newDetector(t, testConfig())
	both := func(i int, s *ZoneStats) {
		if i > 0 {
			slowZone(i, 0.3)(i, s)
		}
	}
	run(t, d, 8, []step{{from: 1, to: 4, mod: slowZone(2, 0.2)}, {from: 4, to: 8, mod: both}, {from: 8, to: 9, mod: slowZone(2, 0.2)}})
	return d
}

// TestCheckpointGoldens restores the checkpoint of every state version in
// testdata/checkpoint (see package wiretest; -update writes the golden of a
// new version) and checks it holds goldenState.
func TestCheckpointGoldens(t *testing.T) {
	wiretest.Check(t, wiretest.Format{
		Version: stateVersion,
		Exact:   true,
		Fresh: func(t *testing.T) []byte {
			b, err := goldenState(t).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Restore: func(t *testing.T, data []byte) []byte {
			d := newDetector(t, testConfig())
			if err := d.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			checkGoldenState(t, d)
			b, err := d.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}, *update)
}

// checkGoldenState checks d holds what goldenState fed it.
func checkGoldenState(t *testing.T, d *Detector) {
	t.Helper()
	if d.lastEnd != t0.Add(8*time.Minute).UnixMilli() || !d.regional || d.rhist != 0b1111 || len(d.zones) != 3 {
		t.Fatalf("last window %d, regional %v, history %b, %d zones; want %d, true, 1111, 3",
			d.lastEnd, d.regional, d.rhist, len(d.zones), t0.Add(8*time.Minute).UnixMilli())
	}
	tests := []struct {
		name                string
		valid, warn, breach uint16
		nObs                [nSignals]uint32
		healthy             uint32
		mean                float64 // mu[sigMean]
	}{
		{"use1-az1", 255, 0, 0, [nSignals]uint32{7, 7, 7, 7}, 8, -121.32945780637392},
		{"use1-az2", 255, 30, 30, [nSignals]uint32{2, 7, 7, 7}, 1, -90.90763397777154},
		{"use1-az4", 255, 255, 255, [nSignals]uint32{0, 1, 3, 3}, 0, 0},
	}
	for i, tt := range tests {
		z := &d.zones[i]
		if z.name != tt.name || z.valid != tt.valid || z.warn != tt.warn || z.breach != tt.breach ||
			z.nObs != tt.nObs || z.healthy != tt.healthy || z.mu[sigMean] != tt.mean ||
			z.warned || z.alerted || z.shiftedUntil != 0 {
			t.Errorf("zone %d: %+v\nwant %+v", i, *z, tt)
		}
	}
	z := &d.zones[2]
	if z.ev[sigMean] != 174.29034712263416 || z.ev[sigP99] != 174.7282654944926 || !math.IsNaN(z.pend[sigMean]) ||
		z.pend[sigErr] != -15.741855868049463 || d.zones[1].vr[sigP99] != 740.2088177501656 {
		t.Errorf("evidence or statistics differ: %+v, %+v", d.zones[1], *z)
	}
	if d.Shifted() != "" {
		t.Errorf("shifted away from %q during a regional event", d.Shifted())
	}
}
