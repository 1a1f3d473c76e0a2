package grayfailure

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/proto"
)

// recorded is a scenario file of testdata/scenarios (written by
// bench/grayfailure/scenario TestRecord): windows of zone statistics and
// the fault injected, if any.
type recorded struct {
	windows []time.Time
	stats   [][]ZoneStats
	fault   string
	zone    string
	from    time.Time
}

func readScenario(t *testing.T, name string) recorded {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "scenarios", name+".csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var r recorded
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# fault ") {
			var zone int
			var from, to int64
			if _, err := fmt.Sscanf(line, "# fault %s zone %d start %d end %d", &r.fault, &zone, &from, &to); err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			r.zone, r.from = zoneNames[zone], time.UnixMilli(from).UTC()
			continue
		}
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "end_ms") {
			continue
		}
		c := strings.Split(line, ",")
		if len(c) != 9 {
			t.Fatalf("%s: %q", name, line)
		}
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(c[i], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			return v
		}
		at := time.UnixMilli(int64(num(0))).UTC()
		if len(r.windows) == 0 || !r.windows[len(r.windows)-1].Equal(at) {
			r.windows = append(r.windows, at)
			r.stats = append(r.stats, nil)
		}
		r.stats[len(r.stats)-1] = append(r.stats[len(r.stats)-1], ZoneStats{Zone: c[1], Instances: int(num(2)), Requests: num(3), Errors: num(4),
			LatencyMean: num(5), LatencyP99: num(6), LatencyMax: num(7), PacketLoss: num(8)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecordedScenarios replays the recorded scenarios (15 s windows, three
// zones of six pods, everyday noise of stalled pods and error bursts)
// through the defaults plus a 100 ms mean latency limit: no shift in a
// healthy day, in a drain or in a regional slowdown; a +200 ms shift, 5%
// errors or 5% packet loss in one zone shifted away from within 90 s of
// its start (the end of the deciding window), +80 ms within 120 s.
func TestRecordedScenarios(t *testing.T) {
	cfg := Config{Resource: "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/web/0123456789abcdef", MeanLatencyLimit: 0.1}
	for name, limit := range map[string]time.Duration{
		"healthy_24h": 0, "drain": 0, "regional": 0,
		"latency200ms": 90 * time.Second, "errors5pct": 90 * time.Second, "packetloss5pct": 90 * time.Second,
		"latency80ms": 120 * time.Second,
	} {
		t.Run(name, func(t *testing.T) {
			r := readScenario(t, name)
			d := newDetector(t, cfg)
			var shifts []*proto.Decision
			var at []time.Time
			regional := false
			for i, w := range r.windows {
				for _, dec := range d.Update(w, r.stats[i]) {
					if dec.GetKind() == proto.KindZonalShift && !strings.Contains(dec.GetSummary(), "extend") {
						shifts = append(shifts, dec)
						at = append(at, w)
					}
					if dec.GetDesired().GetAlert().GetReason() == "regional_degradation" {
						regional = true
					}
				}
			}
			if limit == 0 {
				if len(shifts) != 0 {
					t.Errorf("%d shifts, first: %s", len(shifts), shifts[0].GetSummary())
				}
				if name == "regional" && !regional {
					t.Error("no regional_degradation alert")
				}
				t.Logf("%d windows, no shift", len(r.windows))
				return
			}
			if len(shifts) != 1 {
				t.Fatalf("%d shifts, want 1 (the fault on %s)", len(shifts), r.zone)
			}
			if away := shifts[0].GetDesired().GetZonalShift().GetAwayFrom(); away != r.zone {
				t.Errorf("shifted away from %s, want %s", away, r.zone)
			}
			delay := at[0].Sub(r.from)
			if delay < 0 || delay > limit {
				t.Errorf("shifted %v after the fault's start, want within %v", delay, limit)
			}
			t.Logf("%s: shifted away from %s %v after the fault's start", r.fault, r.zone, delay)
		})
	}
}
