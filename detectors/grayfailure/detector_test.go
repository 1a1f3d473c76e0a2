package grayfailure

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/wire/wiretest"
	"github.com/augur-ops/augur/proto"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var zoneNames = []string{"use1-az1", "use1-az2", "use1-az4"}

// healthy returns a healthy zone window: 10k requests, 0.1% errors, 40 ms
// mean, 150 ms p99, 0.1% packet loss, 6 instances.
func healthy(zone string) ZoneStats {
	return ZoneStats{Zone: zone, Instances: 6, Requests: 10000, Errors: 10, LatencySum: 400, LatencyCount: 10000,
		LatencyP99: 0.150, LatencyMax: 0.4, PacketLoss: 0.001}
}

// zones3 returns three healthy zones with mod applied to each.
func zones3(mod func(i int, s *ZoneStats)) []ZoneStats {
	out := make([]ZoneStats, len(zoneNames))
	for i, z := range zoneNames {
		out[i] = healthy(z)
		if mod != nil {
			mod(i, &out[i])
		}
	}
	return out
}

func testConfig() Config {
	return Config{Resource: "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/1", MeanLatencyLimit: 0.1, Step: time.Minute}
}

func newDetector(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// step is one scripted window: its zones' modification from healthy.
type step struct {
	from, to int // window numbers [from, to)
	mod      func(i int, s *ZoneStats)
}

// run feeds windows 1..n (window k ends at t0 + k minutes) and returns the
// decisions with the window number each came at.
func run(t testing.TB, d *Detector, n int, steps []step) (out []*proto.Decision, at []int) {
	t.Helper()
	for k := 1; k <= n; k++ {
		var mod func(int, *ZoneStats)
		for _, s := range steps {
			if k >= s.from && k < s.to {
				mod = s.mod
			}
		}
		for _, dec := range d.Update(t0.Add(time.Duration(k)*time.Minute), zones3(mod)) {
			out = append(out, dec)
			at = append(at, k)
		}
	}
	return out, at
}

func slowZone(zone int, extra float64) func(int, *ZoneStats) {
	return func(i int, s *ZoneStats) {
		if i == zone {
			s.LatencySum += extra * s.LatencyCount
			s.LatencyP99 += extra
		}
	}
}

func kinds(ds []*proto.Decision) []string {
	var out []string
	for _, d := range ds {
		k := d.GetKind()
		if a := d.GetDesired().GetAlert(); a != nil {
			k += ":" + a.GetReason()
		}
		if z := d.GetDesired().GetZonalShift(); z != nil {
			k += ":" + z.GetAwayFrom()
		}
		out = append(out, k)
	}
	return out
}

func TestDecisions(t *testing.T) {
	errorZone := func(zone int, share float64) func(int, *ZoneStats) {
		return func(i int, s *ZoneStats) {
			if i == zone {
				s.Errors = share * s.Requests
			}
		}
	}
	tests := []struct {
		name   string
		cfg    func(*Config)
		n      int
		steps  []step
		want   []string
		wantAt []int
	}{
		{name: "healthy", n: 60, want: nil},
		{
			name:  "one zone +200ms: shift on the second slow window, cancel after the hold-down",
			n:     60,
			steps: []step{{from: 10, to: 20, mod: slowZone(1, 0.2)}},
			want:  []string{"zonal_shift:use1-az2", "cancel_zonal_shift:use1-az2"},
			// Slow from window 10: a window adds at most half the
			// threshold, so the second slow window (11) shifts. Healthy
			// from 20; 15 healthy windows end at 34.
			wantAt: []int{11, 34},
		},
		{
			name:   "one zone 25% slower: warning only",
			cfg:    func(c *Config) { c.MeanLatencyLimit = 0 },
			n:      30,
			steps:  []step{{from: 10, to: 20, mod: slowZone(0, 0.010)}},
			want:   []string{"alert:zone_outlier"},
			wantAt: []int{12},
		},
		{
			name: "two of three zones slow: regional alert, never a shift",
			n:    40,
			steps: []step{{from: 10, to: 30, mod: func(i int, s *ZoneStats) {
				if i != 2 {
					slowZone(i, 0.2)(i, s)
				}
			}}},
			want:   []string{"alert:regional_degradation"},
			wantAt: []int{12},
		},
		{
			name:   "all zones slow together: regional alert from the absolute limit",
			n:      40,
			steps:  []step{{from: 10, to: 30, mod: func(i int, s *ZoneStats) { slowZone(i, 0.15)(i, s) }}},
			want:   []string{"alert:regional_degradation"},
			wantAt: []int{12},
		},
		{
			name:   "errors 2% in one zone: chi-squared fires",
			n:      20,
			steps:  []step{{from: 5, to: 20, mod: errorZone(2, 0.02)}},
			want:   []string{"zonal_shift:use1-az4"},
			wantAt: []int{6},
		},
		{
			name:  "errors 0.13% in one zone: 30% worse but not significant or material",
			n:     20,
			steps: []step{{from: 5, to: 20, mod: errorZone(2, 0.0013)}},
			want:  nil,
		},
		{
			name: "packet loss 5% in one zone",
			n:    20,
			steps: []step{{from: 5, to: 20, mod: func(i int, s *ZoneStats) {
				if i == 0 {
					s.PacketLoss = 0.051
				}
			}}},
			want:   []string{"zonal_shift:use1-az1"},
			wantAt: []int{6},
		},
		{
			name: "one instance reporting: the zone does not count",
			n:    20,
			steps: []step{{from: 5, to: 20, mod: func(i int, s *ZoneStats) {
				if i == 0 {
					s.Instances = 1
					slowZone(0, 0.5)(i, s)
				}
			}}},
			want: nil,
		},
		{
			name: "two slow windows apart: the evidence of the first is gone by the second",
			n:    20,
			steps: []step{
				{from: 5, to: 6, mod: slowZone(0, 0.3)},
				{from: 8, to: 9, mod: slowZone(0, 0.3)},
			},
			want: nil,
		},
		{
			name: "only two zones reporting: alert instead of a shift",
			n:    19,
			steps: []step{{from: 5, to: 20, mod: func(i int, s *ZoneStats) {
				if i == 2 {
					s.Instances = 0
				}
				slowZone(0, 0.2)(i, s)
			}}},
			want:   []string{"alert:zonal_impairment_no_shift"},
			wantAt: []int{6},
		},
		{
			name:   "still impaired after half the shift expiry: extend",
			cfg:    func(c *Config) { c.ShiftExpiry = 10 * time.Minute },
			n:      20,
			steps:  []step{{from: 5, to: 20, mod: slowZone(1, 0.2)}},
			want:   []string{"zonal_shift:use1-az2", "zonal_shift:use1-az2", "zonal_shift:use1-az2"},
			wantAt: []int{6, 12, 18},
		},
		{
			name: "slow but below the operator's limit: no shift",
			cfg:  func(c *Config) { c.MeanLatencyLimit = 0.1 },
			n:    20,
			steps: []step{{from: 5, to: 20, mod: func(i int, s *ZoneStats) {
				if i == 0 {
					s.LatencySum = 0.09 * s.LatencyCount // 90 ms against 40 ms
				}
			}}},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			d := newDetector(t, cfg)
			got, at := run(t, d, tc.n, tc.steps)
			if !slices.Equal(kinds(got), tc.want) {
				t.Fatalf("decisions %v, want %v (at windows %v)", kinds(got), tc.want, at)
			}
			if tc.wantAt != nil && !slices.Equal(at, tc.wantAt) {
				t.Errorf("decided at windows %v, want %v", at, tc.wantAt)
			}
		})
	}
}

func TestShiftDecisionContent(t *testing.T) {
	cfg := testConfig()
	d := newDetector(t, cfg)
	got, at := run(t, d, 12, []step{{from: 10, to: 20, mod: slowZone(1, 0.2)}})
	if len(got) != 1 {
		t.Fatalf("got %d decisions, want 1", len(got))
	}
	dec := got[0]
	end := t0.Add(time.Duration(at[0]) * time.Minute)
	zs := dec.GetDesired().GetZonalShift()
	if zs.GetResourceIdentifier() != cfg.Resource || zs.GetAwayFrom() != "use1-az2" || zs.GetExpiresInSeconds() != 3600 {
		t.Errorf("zonal shift %v", zs)
	}
	if dec.GetTarget() != "aws/zonalshift/"+cfg.Resource || dec.GetRule() != "zonal_gray_failure" {
		t.Errorf("target %q rule %q", dec.GetTarget(), dec.GetRule())
	}
	if want := proto.DecisionID(dec.GetRule(), dec.GetKind(), dec.GetTarget(), dec.GetDesired(), end.UnixMilli()); dec.GetId() != want {
		t.Errorf("id %s, want %s", dec.GetId(), want)
	}
	if !dec.GetCreatedAt().AsTime().Equal(end) || !dec.GetExpiresAt().AsTime().Equal(end.Add(5*time.Minute)) {
		t.Errorf("created %v expires %v", dec.GetCreatedAt().AsTime(), dec.GetExpiresAt().AsTime())
	}
	if dec.GetSignature() != "" {
		t.Error("decision is signed; the stream signs")
	}
	ev := dec.GetEvidence()
	if ev.GetSignal() != "latency_mean" || math.Abs(ev.GetObserved()-0.24) > 1e-9 {
		t.Errorf("signal %q observed %v", ev.GetSignal(), ev.GetObserved())
	}
	if r := ev.GetValues()["latency_mean_ratio"]; math.Abs(r-6) > 1e-9 {
		t.Errorf("latency_mean_ratio %v, want 6", r)
	}
	for _, z := range zoneNames {
		if _, ok := ev.GetPeers()[z+"/latency_mean_seconds"]; !ok {
			t.Errorf("peers lack %s: %v", z, ev.GetPeers())
		}
	}
	if _, err := proto.MarshalJSON(dec); err != nil {
		t.Errorf("decision does not encode: %v", err)
	}
	if !strings.Contains(dec.GetSummary(), "use1-az2") {
		t.Errorf("summary %q", dec.GetSummary())
	}
}

func TestOutOfOrderAndGaps(t *testing.T) {
	d := newDetector(t, testConfig())
	slow := zones3(slowZone(0, 0.2))
	var got []*proto.Decision
	got = append(got, d.Update(t0.Add(1*time.Minute), zones3(nil))...)
	got = append(got, d.Update(t0.Add(2*time.Minute), slow)...)
	got = append(got, d.Update(t0.Add(2*time.Minute), slow)...) // duplicate window
	got = append(got, d.Update(t0.Add(1*time.Minute), slow)...) // late window
	if len(got) != 0 {
		t.Fatalf("duplicates counted: %v", kinds(got))
	}
	// A gap of Windows windows without data makes the evidence stale.
	got = d.Update(t0.Add(8*time.Minute), slow)
	if len(got) != 0 {
		t.Fatalf("evidence kept across a 6-minute gap: %v", kinds(got))
	}
	got = d.Update(t0.Add(9*time.Minute), slow)
	if !slices.Equal(kinds(got), []string{"zonal_shift:use1-az1"}) {
		t.Fatalf("got %v", kinds(got))
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	steps := []step{{from: 5, to: 15, mod: slowZone(2, 0.2)}}
	ref := newDetector(t, testConfig())
	want, _ := run(t, ref, 40, steps)

	a := newDetector(t, testConfig())
	first, _ := run(t, a, 8, steps) // mid-episode: shifted, histories non-empty
	st, err := a.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	b := newDetector(t, testConfig())
	if err := b.UnmarshalBinary(st[len("prefix"):]); err != nil {
		t.Fatal(err)
	}
	again, err := b.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, st[len("prefix"):]) {
		t.Fatal("state differs after a round trip")
	}
	var rest []*proto.Decision
	for k := 9; k <= 40; k++ {
		var mod func(int, *ZoneStats)
		if k < 15 {
			mod = steps[0].mod
		}
		rest = append(rest, b.Update(t0.Add(time.Duration(k)*time.Minute), zones3(mod))...)
	}
	got := append(first, rest...)
	if len(got) != len(want) {
		t.Fatalf("restored detector decided %v, want %v", kinds(got), kinds(want))
	}
	for i := range got {
		if got[i].GetId() != want[i].GetId() {
			t.Errorf("decision %d id %s, want %s", i, got[i].GetId(), want[i].GetId())
		}
	}
	if b.Shifted() != "" || len(want) != 2 {
		t.Errorf("episode did not complete: %v", kinds(want))
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	d := newDetector(t, testConfig())
	run(t, d, 3, nil)
	good, _ := d.MarshalBinary()
	tests := map[string][]byte{
		"empty":     nil,
		"version":   append([]byte{9}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"too many zones": func() []byte {
			b := slices.Clone(good)
			b[10] = MaxZones + 1
			return b
		}(),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if err := d.UnmarshalBinary(b); !errors.Is(err, ErrBadState) {
				t.Errorf("error %v, want ErrBadState", err)
			}
		})
	}
	after, _ := d.MarshalBinary()
	if !bytes.Equal(after, good) {
		t.Error("a failed UnmarshalBinary changed the state")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no resource", func(c *Config) { c.Resource = "" }, false},
		{"shift below warn", func(c *Config) { c.WarnRatio, c.ShiftRatio = 1.3, 1.2 }, false},
		{"required above windows", func(c *Config) { c.Required = 6 }, false},
		{"windows above 16", func(c *Config) { c.Windows, c.Required = 17, 3 }, false},
		{"expiry above 3 days", func(c *Config) { c.ShiftExpiry = 73 * time.Hour }, false},
		{"negative limit", func(c *Config) { c.MaxLatencyLimit = -1 }, false},
		{"significance 1", func(c *Config) { c.Significance = 1 }, false},
		{"hold-down below step", func(c *Config) { c.HoldDown = time.Second }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	c := testConfig()
	if err := c.Validate(); err != nil || c.ShiftRatio != 1.3 || c.WarnRatio != 1.2 || c.Windows != 5 || c.Required != 3 || c.MinInstances != 2 {
		t.Errorf("defaults %+v, %v", c, err)
	}
}

// TestThreeZoneZScore documents why the detector does not use z-scores: the
// largest z-score among three values is at most 2/sqrt(3) (population sd).
func TestThreeZoneZScore(t *testing.T) {
	vals := []float64{0.04, 0.04, 10} // one zone 250 times slower
	var mean, ss float64
	for _, v := range vals {
		mean += v / 3
	}
	for _, v := range vals {
		ss += (v - mean) * (v - mean) / 3
	}
	z := (vals[2] - mean) / math.Sqrt(ss)
	if z > 1.42 {
		t.Fatalf("z = %v", z)
	}
	d := newDetector(t, testConfig())
	got, _ := run(t, d, 3, []step{{from: 1, to: 4, mod: slowZone(2, 9.96)}})
	if !slices.Equal(kinds(got), []string{"zonal_shift:use1-az4"}) {
		t.Errorf("ratio test did not fire where z = %.2f: %v", z, kinds(got))
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	d, _ := New(testConfig())
	f.Add([]byte{})
	st, _ := d.MarshalBinary()
	f.Add(st)
	run(f, d, 8, []step{{from: 1, to: 9, mod: slowZone(0, 0.2)}})
	st, _ = d.MarshalBinary()
	f.Add(st)
	for _, g := range wiretest.Goldens(f, wiretest.Dir) {
		f.Add(g.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := New(testConfig())
		if err := d.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := d.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		// An earlier version has the same layout in another byte order.
		if b[0] == stateVersion && !bytes.Equal(out, b) || len(out) != len(b) {
			t.Fatalf("accepted state does not round-trip")
		}
		if b[0] != stateVersion {
			again := newDetector(t, testConfig())
			if err := again.UnmarshalBinary(out); err != nil {
				t.Fatalf("re-encoded version %d state: %v", b[0], err)
			}
			if out2, _ := again.AppendBinary(nil); !bytes.Equal(out2, out) {
				t.Fatalf("re-encoded version %d state does not round-trip", b[0])
			}
		}
		d.Update(t0.Add(time.Hour), zones3(nil)) // must not panic
	})
}

func BenchmarkUpdate(b *testing.B) {
	d, _ := New(testConfig())
	// Quiet windows, the common case: zones a few percent apart.
	ws := [][]ZoneStats{zones3(nil), zones3(slowZone(1, 0.002))}
	k := 0
	b.ReportAllocs()
	for b.Loop() {
		k++
		if len(d.Update(t0.Add(time.Duration(k)*time.Minute), ws[k%2])) != 0 {
			b.Fatal("quiet window decided")
		}
	}
}

func BenchmarkUpdateShiftEpisode(b *testing.B) {
	d, _ := New(testConfig())
	slow, ok := zones3(slowZone(1, 0.2)), zones3(nil)
	k := 0
	b.ReportAllocs()
	for b.Loop() {
		k++
		w := ok
		if k%40 < 10 {
			w = slow // a shift and its cancel every 40 windows
		}
		d.Update(t0.Add(time.Duration(k)*time.Minute), w)
	}
}

// TestZeroLossIsNotPoison: a zone reporting no packet loss at all while its
// peers report some weighs as much better than them, not as -Inf: its
// healthy estimate stays finite, its checkpoint decodes, and 10% loss on it
// later shifts it as on a fresh detector.
func TestZeroLossIsNotPoison(t *testing.T) {
	shiftAt := func(zeroFirst bool) int {
		d := newDetector(t, testConfig())
		for k := 1; k <= 40; k++ {
			st := zones3(func(i int, s *ZoneStats) {
				switch {
				case i == 0 && k <= 5 && zeroFirst:
					s.PacketLoss = 0
				case i == 0 && k > 5:
					s.PacketLoss = 0.10
				}
			})
			for _, dec := range d.Update(t0.Add(time.Duration(k)*time.Minute), st) {
				if dec.GetKind() == proto.KindZonalShift {
					return k
				}
			}
			if k == 5 {
				b, err := d.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if err := newDetector(t, testConfig()).UnmarshalBinary(b); err != nil {
					t.Fatalf("after %d windows (zero loss first: %v), the checkpoint does not decode: %v", k, zeroFirst, err)
				}
			}
		}
		return 0
	}
	fresh, afterZero := shiftAt(false), shiftAt(true)
	if fresh == 0 || afterZero == 0 || afterZero > fresh+1 {
		t.Errorf("10%% loss shifted at window %d on a fresh detector, at %d after windows of zero loss (0: never)", fresh, afterZero)
	}
}
