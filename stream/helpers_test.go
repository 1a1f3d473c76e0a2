package stream

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

const testRulesYAML = `
rules:
- name: payment-rps
  scaling:
    selector: 'http_requests_total{namespace="payment",service="payment"}'
    capacity_per_pod: 10
    window: 10s
    horizon: 30s
    min_replicas: 1
    max_replicas: 50
    scale_down_delay: 30s
    target: {namespace: payment, name: payment-service}
- name: checkout-floor
  tenant: acme
  scaling:
    selector: 'http_requests_total{namespace="checkout"}'
    capacity_per_pod: 20
    window: 10s
    horizon: 1m
    min_replicas: 2
    max_replicas: 30
    mode: hpa_min
    target: {namespace: checkout, name: checkout}
- name: checkout-zones
  gray_failure:
    selector: 'probe_duration_seconds{service="checkout"}'
    zone_label: zone_id
    thresholds: {mean_latency_seconds: 0.5}
    min_requests: 10
    resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/checkout/1
    window: 10s
- name: latency
  anomaly:
    selector: '{__name__=~"request_latency_seconds|queue_depth"}'
    alert_on: band
    warmup: 20
    m: 2
    n: 3
`

func testRules(t testing.TB) *rules.Set {
	t.Helper()
	s, err := rules.Parse(strings.NewReader(testRulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testConfig(t testing.TB) Config {
	t.Helper()
	c := Config{Brokers: []string{"unused:9092"}, Rules: testRules(t), SigningKey: testKey,
		AllowedLateness: 5 * time.Second, IdleTimeout: time.Minute}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// series is one synthetic input series.
type series struct {
	tenant string
	lbls   []proto.Label
	value  func(step int) float64
}

func lbl(kv ...string) []proto.Label {
	var out []proto.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, proto.Label{Name: kv[i], Value: kv[i+1]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// testSeries returns the synthetic workload: payment pods whose request rate
// ramps up and down (scaling decisions), a checkout tenant workload, latency
// gauges with injected spikes (alerts), and unrouted node series.
func testSeries() []series {
	var ss []series
	for pod := range 4 {
		// rate per pod: 20/s, ramping to 80/s between steps 100 and 160,
		// back to 20/s after 220. Pod 2 restarts (counter reset) at step 150.
		ss = append(ss, series{lbls: lbl("__name__", "http_requests_total", "namespace", "payment",
			"service", "payment", "pod", fmt.Sprintf("payment-%d", pod)),
			value: func(step int) float64 {
				total := 0.0
				for s := 0; s <= step; s++ {
					r := 20.0
					switch {
					case s >= 100 && s < 160:
						r = 20 + float64(s-100)
					case s >= 160 && s < 220:
						r = 80
					}
					if pod == 2 && s == 150 {
						total = 0
					}
					total += r
				}
				return total
			}})
	}
	for pod := range 3 {
		ss = append(ss, series{tenant: "acme", lbls: lbl("__name__", "http_requests_total", "namespace", "checkout",
			"pod", fmt.Sprintf("checkout-%d", pod)),
			value: func(step int) float64 { return float64(step*step) / 2 }})
	}
	for i := range 6 {
		ss = append(ss, series{lbls: lbl("__name__", "request_latency_seconds", "instance", fmt.Sprintf("api-%d", i)),
			value: func(step int) float64 {
				v := 0.1 + 0.01*math.Sin(float64(step+i)/3)
				if step >= 120+10*i && step < 124+10*i {
					v = 2 // spike
				}
				return v
			}})
	}
	for z := range 3 {
		for pod := range 2 {
			ss = append(ss, series{lbls: lbl("__name__", "probe_duration_seconds", "service", "checkout",
				"zone_id", fmt.Sprintf("use1-az%d", z+1), "pod", fmt.Sprintf("checkout-%d-%d", z, pod)),
				value: func(step int) float64 {
					if z == 1 && step >= 150 && step < 200 {
						return 0.9 // az2 degraded
					}
					return 0.05 + 0.001*float64(pod)
				}})
		}
	}
	for i := range 12 {
		ss = append(ss, series{lbls: lbl("__name__", "node_cpu_seconds_total", "cpu", fmt.Sprint(i%4), "instance", fmt.Sprintf("node-%d", i/4)),
			value: func(step int) float64 { return float64(step) * 0.5 }})
	}
	return ss
}

// genInput builds the samples records of steps scrapes (1s apart), one block
// per partition per scrape as ingest writes them, with a remote-write retry
// (a resent block) every 37 steps, a stale marker that ends one series for
// a while, and a late sample. Like a receiver, it numbers the series of each
// partition (proto/block.go, "Series references"): a row defines its
// series' number the first time and every 50 steps, and refers to it by
// number otherwise. It returns the record values per partition.
func genInput(t testing.TB, set *rules.Set, parts int32, steps int) map[int32][][]byte {
	t.Helper()
	ss := testSeries()
	const t0 = int64(1_700_000_000_000)
	out := map[int32][][]byte{}
	var key []byte
	refs := map[int32]map[string]uint32{} // per partition: tenant and series → number
	for step := range steps {
		ts := t0 + int64(step)*1000
		blocks := map[int32]map[string]*proto.BlockBuilder{}
		for si, s := range ss {
			key, _ = set.RoutingKey(key[:0], s.tenant, s.lbls)
			p := rules.Partition(key, parts)
			if blocks[p] == nil {
				blocks[p] = map[string]*proto.BlockBuilder{}
			}
			b := blocks[p][s.tenant]
			if b == nil {
				b = &proto.BlockBuilder{}
				b.Reset(s.tenant)
				blocks[p][s.tenant] = b
			}
			v := s.value(step)
			switch {
			case si == len(ss)-1 && step == 200:
				v = math.Float64frombits(StaleNaN)
			case si == len(ss)-1 && step > 200 && step < 230:
				continue // ended, comes back later
			}
			if si == 5 && step == 90 {
				// a late sample, older than the watermark
				b.AddSeries(s.lbls, []int64{ts - 20_000, ts}, []float64{v, v})
			} else {
				b.AddSeries(s.lbls, []int64{ts}, []float64{v})
			}
			if refs[p] == nil {
				refs[p] = map[string]uint32{}
			}
			k := s.tenant + string(b.LastSeries())
			ref, ok := refs[p][k]
			if !ok {
				ref = uint32(len(refs[p]) + 1)
				refs[p][k] = ref
			}
			b.Refer(uint64(p)+100, ref, !ok || step%50 == 0)
		}
		for p := range parts {
			tenants := make([]string, 0, len(blocks[p]))
			for tn := range blocks[p] {
				tenants = append(tenants, tn)
			}
			sort.Strings(tenants)
			for _, tn := range tenants {
				v, err := blocks[p][tn].AppendIPC(nil)
				if err != nil {
					t.Fatal(err)
				}
				out[p] = append(out[p], v)
				if step%37 == 5 {
					out[p] = append(out[p], v) // retry of the whole request
				}
			}
		}
	}
	return out
}

// golden processes the input of each partition in order through a fresh
// shard: the uninterrupted run the Kafka tests compare with.
type goldenRun struct {
	decisions []string // JSON, sorted
	snapshots map[int32][]stateRecord
	stats     shardStats
}

func runGolden(t testing.TB, cfg *Config, in map[int32][][]byte) goldenRun {
	t.Helper()
	e := mustEnv(t, cfg)
	g := goldenRun{snapshots: map[int32][]stateRecord{}}
	var rd proto.BlockReader
	for p, recs := range in {
		sh := newShard(p, e)
		for _, v := range recs {
			if err := rd.Reset(v); err != nil {
				t.Fatal(err)
			}
			sh.processBlock(&rd)
		}
		for _, d := range sh.out {
			b, err := proto.MarshalJSON(d)
			if err != nil {
				t.Fatal(err)
			}
			g.decisions = append(g.decisions, string(b))
		}
		snap, err := sh.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		g.snapshots[p] = snap
		g.stats.samples += sh.stats.samples
		g.stats.duplicates += sh.stats.duplicates
		g.stats.late += sh.stats.late
	}
	sort.Strings(g.decisions)
	return g
}

func equalSnapshots(t *testing.T, part int32, got, want []stateRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("partition %d: %d state records, want %d", part, len(got), len(want))
		return
	}
	for i := range got {
		if !bytes.Equal(got[i].key, want[i].key) || !bytes.Equal(got[i].value, want[i].value) {
			if testing.Verbose() {
				for j := range got {
					t.Logf("%d got %q=%x want %q=%x", j, got[j].key, got[j].value, want[j].key, want[j].value)
				}
			}
			t.Errorf("partition %d: state record %d: key %q value %x, want key %q value %x",
				part, i, got[i].key, got[i].value, want[i].key, want[i].value)
			return
		}
	}
}

// mustEnv returns the env of a validated config.
func mustEnv(t testing.TB, cfg *Config) *env {
	t.Helper()
	e, err := newEnv(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
