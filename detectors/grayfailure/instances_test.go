package grayfailure

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gproto "google.golang.org/protobuf/proto"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/proto"
)

// instanceLabels returns the labels of instance i's request counter in
// zone z, one label set per instance, made once.
func instanceLabels(zones, n int) [][]proto.Label {
	out := make([][]proto.Label, 0, zones*n)
	for z := range zones {
		for i := range n {
			out = append(out, labelsOf("__name__", "http_requests_total", "code", "200",
				"instance", fmt.Sprintf("10.%d.%d.%d:8080", z, i/256, i%256), "zone", fmt.Sprintf("use1-az%d", z+1)))
		}
	}
	return out
}

// benchObserve feeds one zone's n instances, each scraped once per 15-s
// window, one sample per op: ns/op is the cost of one sample.
func benchObserve(b *testing.B, n int) {
	g, err := NewGroup(Config{Rule: "zones", Resource: "arn:x", Step: 15 * time.Second, MinInstances: 2, MinRequests: 50}, "zone", "instance")
	if err != nil {
		b.Fatal(err)
	}
	lbls := instanceLabels(1, n)
	const t0 = int64(1_700_000_010_000)
	p := detectors.Point{Increase: 100}
	k := 0
	b.ReportAllocs()
	for b.Loop() {
		p.Labels = lbls[k%n]
		p.Ts = t0 + int64(k/n)*15000 + 2000
		g.Observe(&p)
		k++
	}
}

func BenchmarkObserveInstances(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchObserve(b, n) })
	}
}

// TestObserveCostDoesNotGrowWithInstances: a sample costs about the same
// whether its zone has 50 instances or 2000. Each sample looked its
// instance up in a list of the zone's instances, and each new instance of
// a window checked every instance of the window before against lists
// again: a window of n instances cost O(n²) to O(n³), and a zone of
// thousands of instances held the partition for seconds per window.
func TestObserveCostDoesNotGrowWithInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmarks")
	}
	perSample := func(n int) float64 {
		best := 0.0
		for range 3 { // the best of three: the machine is shared
			r := testing.Benchmark(func(b *testing.B) { benchObserve(b, n) })
			if ns := float64(r.T.Nanoseconds()) / float64(r.N); best == 0 || ns < best {
				best = ns
			}
		}
		return best
	}
	small, large := perSample(50), perSample(2000)
	t.Logf("ns per sample: %.0f at 50 instances, %.0f at 2000", small, large)
	if large > 5*small {
		t.Errorf("a sample costs %.0f ns in a zone of 2000 instances, %.0f ns in one of 50: %.1f times as much, want about the same",
			large, small, large/small)
	}
}

// completeByLists is whether every instance of window wi reported in the
// same zone of a later window, read from the instance lists.
func completeByLists(g *Group, wi int) bool {
	for _, z := range g.wins[wi].zones {
		for _, inst := range z.instances {
			seen := false
			for j := wi + 1; j < len(g.wins) && !seen; j++ {
				for _, o := range g.wins[j].zones {
					if o.zone == z.zone && slices.Contains(o.instances, inst) {
						seen = true
					}
				}
			}
			if !seen {
				return false
			}
		}
	}
	return true
}

// TestObserveIsUnchanged replays a seeded mix of what a Group meets
// (instances joining and leaving, one reporting late into an earlier
// window, counters of several kinds, more zones than MaxZones, the
// watermark's Close, a checkpoint restored midway) and checks a digest of
// every decision, every window's statistics and every checkpoint against
// the one the list-based instance lookup gave: the index behind the lookup
// changes no decision and no byte of state.
func TestObserveIsUnchanged(t *testing.T) {
	cfg := Config{Rule: "zones", Resource: "arn:x", Step: 15 * time.Second, MinInstances: 2, MinRequests: 50, FalseAlarmDays: 90, ShiftExpiry: 30 * time.Minute}
	g, err := NewGroup(cfg, "zone", "instance")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	h := sha256.New()
	ndec := 0
	record := func(ds []*proto.Decision) {
		ndec += len(ds)
		for _, d := range ds {
			// Binary, not JSON: protojson varies its spacing from
			// build to build.
			b, err := gproto.MarshalOptions{Deterministic: true}.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
		}
	}
	const t0 = int64(1_700_000_010_000)
	const zones, per = MaxZones + 2, 40 // two zones past MaxZones are ignored
	names := []string{"http_requests_total", "http_errors_total", "probe_success", "node_netstat_Tcp_OutSegs"}
	for k := range 240 {
		for z := range zones {
			for i := range per {
				switch {
				case i >= 30 && (k/20)%2 == 1: // a third of the instances leave and come back
					continue
				case rng.IntN(50) == 0: // a scrape missed
					continue
				}
				inst := fmt.Sprintf("10.0.%d.%d:8080", z, i)
				if i == 39 && z == 2 {
					inst = "" // no instance label: counted by pod
				}
				ts := t0 + int64(k)*15000 + int64(rng.IntN(15000))
				if rng.IntN(40) == 0 && k > 0 {
					ts -= 15000 // late, into the window before
				}
				for _, name := range names {
					inc := 1000 + rng.Float64()*100
					if name == "http_errors_total" {
						inc = 2 + rng.Float64()
						if z == 1 && k >= 150 && k < 170 {
							inc = 200
						}
					}
					lbls := []string{"__name__", name, "zone", fmt.Sprintf("use1-az%d", z+1), "pod", fmt.Sprintf("p%d-%d", z, i)}
					if inst != "" {
						lbls = append(lbls, "instance", inst)
					}
					p := detectors.Point{Labels: labelsOf(lbls...), Ts: ts, Value: float64(rng.IntN(2)), Increase: inc}
					record(g.Observe(&p))
				}
			}
		}
		if k%7 == 3 {
			record(g.Close(t0 + int64(k)*15000))
		}
		for i := range g.wins {
			if got, want := g.complete(&g.wins[i]), completeByLists(g, i); got != want {
				t.Fatalf("scrape %d: window %d of %d complete %v, by the instance lists %v", k, i, len(g.wins), got, want)
			}
		}
		for _, s := range g.stats {
			fmt.Fprintf(h, "%s %d %g %g|", s.Zone, s.Instances, s.Requests, s.Errors)
		}
		if k%25 == 24 {
			b, err := g.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
			back, err := NewGroup(cfg, "zone", "instance")
			if err != nil {
				t.Fatal(err)
			}
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			g = back
		}
	}
	if ndec == 0 {
		t.Error("no decision: the digest covers state only")
	}
	const want = "ce7cba8b49cd6eb7c0e4f594e0a05fcfa605dd5073a6baf941fc31ca6f46460a" // digest of the list-based lookup's run
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("digest %s, want %s", got, want)
	}
}
