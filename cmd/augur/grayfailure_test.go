package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestZonalShiftWithinAMinute runs `augur run` with a gray_failure rule and
// sends the fleet's scrapes over remote write in event time: three healthy
// hours (no decision), then faults on one zone at a time at different
// offsets in the scrape interval: +200 ms, 5% errors and +80 ms. Each must
// be shifted away from, measured from the fault's start to the scrape
// after whose arrival the zonal_shift is on /api/v1/decisions: +200 ms and
// 5% errors in 60 s median and 90 s at worst, +80 ms in 120 s; and each
// shift cancelled after the zone recovers.
func TestZonalShiftWithinAMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 5 hours of scrapes")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "rules.yaml"), `rules:
  - name: web-zones
    gray_failure:
      selector: '{__name__=~"http_requests_total|http_request_duration_seconds_.*", job="web"}'
      zone_label: zone
      resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1
      window: 15s
`)
	listen := freePort(t)
	cfgFile := filepath.Join(dir, "augur.yaml")
	writeFile(t, cfgFile, fmt.Sprintf("listen: %s\ndata_dir: %s\nrules_file: %s\nkafka:\n  embedded_addr: %s\n", listen, filepath.Join(dir, "data"), filepath.Join(dir, "rules.yaml"), freePort(t)))
	startRun(t, cfgFile, listen)

	fleet := newGrayFleet(7)
	t0 := time.Now().Add(-8 * time.Hour).Truncate(fleetScrape)
	at := t0
	var faults []fleetFault
	push := func() {
		at = at.Add(fleetScrape)
		pushV1(t, "http://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: fleet.scrape(at, faults)})
	}
	type shift struct {
		id, kind, away string
		created        time.Time
	}
	shifts := func() []shift {
		body := scrape(t, "http://"+listen+"/api/v1/decisions?rule=web-zones&limit=1000")
		var resp struct {
			Decisions []struct {
				Decision struct {
					ID        string    `json:"id"`
					Kind      string    `json:"kind"`
					CreatedAt time.Time `json:"createdAt"`
					Desired   struct {
						ZonalShift struct {
							AwayFrom string `json:"awayFrom"`
						} `json:"zonalShift"`
					} `json:"desired"`
				} `json:"decision"`
			} `json:"decisions"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatalf("decisions API: %v: %q", err, body)
		}
		var out []shift // oldest first; the API is newest first
		for _, d := range slices.Backward(resp.Decisions) {
			if d.Decision.Kind == "zonal_shift" || d.Decision.Kind == "cancel_zonal_shift" {
				out = append(out, shift{d.Decision.ID, d.Decision.Kind, d.Decision.Desired.ZonalShift.AwayFrom, d.Decision.CreatedAt})
			}
		}
		return out
	}
	// known holds the ids of the decisions seen so far. waitNew polls
	// briefly for a decision of kind not known yet: the stream consumes and
	// commits asynchronously. (A decision that shows up later than this
	// wait is counted at a later scrape: the delay can only be overstated.)
	known := map[string]bool{}
	waitNew := func(kind string) *shift {
		deadline := time.Now().Add(2 * time.Second)
		for {
			ss := shifts()
			var found *shift
			for i := range ss {
				if !known[ss[i].id] && ss[i].kind == kind && found == nil {
					found = &ss[i]
				}
			}
			if found != nil {
				for _, x := range ss {
					known[x.id] = true
				}
				return found
			}
			if time.Now().After(deadline) {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Three healthy hours.
	for range 3 * 3600 / 15 {
		push()
	}
	time.Sleep(2 * time.Second)
	if ss := shifts(); len(ss) != 0 {
		t.Fatalf("healthy fleet: %v", ss)
	}

	episodes := []struct {
		name   string
		fault  fleetFault
		offset time.Duration // fault start after a scrape
		median time.Duration
	}{
		{"+200ms", fleetFault{zone: 1, extra: 0.2}, 3 * time.Second, 60 * time.Second},
		{"+200ms", fleetFault{zone: 2, extra: 0.2}, 11 * time.Second, 60 * time.Second},
		{"+200ms", fleetFault{zone: 0, extra: 0.2}, 7 * time.Second, 60 * time.Second},
		{"5% errors", fleetFault{zone: 2, error: 0.05}, 1 * time.Second, 60 * time.Second},
		{"5% errors", fleetFault{zone: 0, error: 0.05}, 9 * time.Second, 60 * time.Second},
		{"5% errors", fleetFault{zone: 1, error: 0.05}, 14 * time.Second, 60 * time.Second},
		{"+80ms", fleetFault{zone: 0, extra: 0.08}, 5 * time.Second, 120 * time.Second},
	}
	delays := map[string][]time.Duration{}
	for _, ep := range episodes {
		f := ep.fault
		f.from = at.Add(ep.offset)
		f.to = f.from.Add(10 * time.Minute)
		faults = []fleetFault{f}
		var got *shift
		for at.Before(f.to) && got == nil {
			push()
			got = waitNew("zonal_shift")
		}
		if got == nil {
			t.Fatalf("%s on use1-az%d from %v: no zonal shift", ep.name, f.zone+1, f.from)
		}
		d := at.Sub(f.from)
		t.Logf("%s on use1-az%d (start %v after a scrape): shifted away from %s after %v of event time (window ending %v after the start)",
			ep.name, f.zone+1, ep.offset, got.away, d, got.created.Sub(f.from))
		if got.away != fmt.Sprintf("use1-az%d", f.zone+1) {
			t.Errorf("%s: shifted away from %s, want use1-az%d", ep.name, got.away, f.zone+1)
		}
		delays[ep.name] = append(delays[ep.name], d)
		// Run out the fault, then recover until the shift is cancelled.
		for at.Before(f.to) {
			push()
		}
		faults = nil
		for range 20 * 60 / 15 {
			push()
		}
		cancel := waitNew("cancel_zonal_shift")
		if cancel == nil {
			t.Fatalf("%s: shift not cancelled within 20 minutes of recovery", ep.name)
		}
		t.Logf("%s: cancelled %v after the zone recovered", ep.name, cancel.created.Sub(f.to))
	}
	for _, name := range []string{"+200ms", "5% errors", "+80ms"} {
		ds := slices.Clone(delays[name])
		slices.Sort(ds)
		med, worst := ds[len(ds)/2], ds[len(ds)-1]
		t.Logf("%s: median %v, worst %v over %d faults", name, med, worst, len(ds))
		limit, worstLimit := 60*time.Second, 90*time.Second
		if name == "+80ms" {
			limit, worstLimit = 120*time.Second, 120*time.Second
		}
		if med > limit || worst > worstLimit {
			t.Errorf("%s: median %v (target %v), worst %v (target %v)", name, med, limit, worst, worstLimit)
		}
	}
}
