package grayfailure

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/proto"
)

// TestGrayWindowClosesOnNextScrape: a gray-failure window is judged as soon
// as every instance that reported in it has reported in a later window (the
// next scrape), not allowed_lateness after its end; an instance that stops
// reporting leaves its window to the watermark's Close. A shift decided on
// a window comes at that moment, from Observe.
func TestGrayWindowClosesOnNextScrape(t *testing.T) {
	// The configuration a gray_failure rule with a 15 s window and the
	// rules' defaults maps to.
	cfg := Config{Rule: "zones", Resource: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1",
		Step: 15 * time.Second, MinInstances: 2, MinRequests: 50, FalseAlarmDays: 90, ShiftExpiry: 30 * time.Minute}
	g, err := NewGroup(cfg, "zone", "instance")
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1_700_000_010_000) // a multiple of 15 s
	// One scrape: 3 zones x 3 instances, each with a 200 and a 500 counter
	// (6000 and errs(zone) requests per scrape).
	scrape := func(k int, errs func(zone int) float64, skip string) []*proto.Decision {
		var out []*proto.Decision
		ts := t0 + int64(k)*15000 + 2000
		for z := range 3 {
			for i := range 3 {
				inst := fmt.Sprintf("10.0.%d.%d:8080", z, i)
				if inst == skip {
					continue
				}
				for _, c := range []struct {
					code string
					inc  float64
				}{{"200", 6000}, {"500", errs(z)}} {
					p := detectors.Point{Labels: labelsOf("__name__", "http_requests_total", "code", c.code, "instance", inst, "service", "web", "zone", fmt.Sprintf("use1-az%d", z+1)),
						Ts: ts, Value: 0, Increase: c.inc}
					out = append(out, g.Observe(&p)...)
				}
			}
		}
		return out
	}
	healthy := func(int) float64 { return 6 }
	sick := func(z int) float64 {
		if z == 1 {
			return 600 // 10% errors in use1-az2
		}
		return 6
	}
	for k := range 20 {
		if ds := scrape(k, healthy, ""); len(ds) != 0 {
			t.Fatalf("scrape %d healthy: %v", k, ds)
		}
		if k > 0 && (len(g.wins) != 1 || g.det.Config().Step.Milliseconds() != 15000) {
			t.Fatalf("scrape %d: %d windows open, want the newest only (the previous judged on its arrival)", k, len(g.wins))
		}
	}
	var shift []*proto.Decision
	k := 20
	for ; k < 26 && len(shift) == 0; k++ {
		shift = scrape(k, sick, "")
	}
	if len(shift) != 1 || shift[0].GetKind() != proto.KindZonalShift || shift[0].GetDesired().GetZonalShift().GetAwayFrom() != "use1-az2" {
		t.Fatalf("decisions %v: want one zonal shift away from use1-az2", shift)
	}
	// Decided on the arrival of the scrape after the second sick window.
	if k-1 != 22 {
		t.Errorf("shift on the arrival of scrape %d, want 22 (sick windows 20 and 21)", k-1)
	}
	// An instance that stops reporting: its last window waits for Close.
	scrape(k, healthy, "10.0.0.0:8080")
	if len(g.wins) != 2 {
		t.Fatalf("%d windows open after a scrape without 10.0.0.0:8080, want 2", len(g.wins))
	}
	g.Close(t0 + int64(k)*15000)
	if len(g.wins) != 1 {
		t.Fatalf("%d windows open after Close, want 1", len(g.wins))
	}
}

// labelsOf returns name/value pairs as labels sorted by name.
func labelsOf(kv ...string) []proto.Label {
	var out []proto.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, proto.Label{Name: kv[i], Value: kv[i+1]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TestSampleOfAWindowJudgedEarly: an instance's error counter arrives after
// its request counter of the next window (another remote-write shard,
// lagging), so its window was judged early; the increase counts in the
// next window instead of being lost.
func TestSampleOfAWindowJudgedEarly(t *testing.T) {
	g, err := NewGroup(Config{Rule: "zones", Resource: "arn:x", Step: 15 * time.Second, MinInstances: 2, MinRequests: 50}, "zone", "instance")
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1_700_000_010_000)
	obs := func(k, z, i int, name string, inc float64) {
		p := detectors.Point{Labels: labelsOf("__name__", name, "instance", fmt.Sprintf("i%d-%d", z, i), "zone", fmt.Sprintf("z%d", z)),
			Ts: t0 + int64(k)*15000 + 2000, Increase: inc}
		g.Observe(&p)
	}
	scrape := func(k int, late bool) {
		for z := range 3 {
			for i := range 2 {
				obs(k, z, i, "http_requests_total", 1000)
				if !late || z != 0 || i != 0 {
					obs(k, z, i, "http_errors_total", 1)
				}
			}
		}
	}
	scrape(0, true) // zone 0's first instance: its errors come late
	scrape(1, false)
	if g.det.lastEnd != t0+15000 {
		t.Fatalf("window 0 not judged on the next scrape (last judged window ends %d)", g.det.lastEnd)
	}
	obs(0, 0, 0, "http_errors_total", 500)
	scrape(2, false)
	if g.det.lastEnd != t0+30000 {
		t.Fatalf("window 1 not judged (last judged window ends %d)", g.det.lastEnd)
	}
	if got := g.det.w.errs[0]; got != 502 {
		t.Errorf("zone z0's errors in window 1: %v, want 502 (its two and the 500 of window 0 that came late)", got)
	}
}
