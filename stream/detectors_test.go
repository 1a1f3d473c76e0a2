package stream

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// point is one sample of a synthetic series at one scrape.
type point struct {
	lbls []proto.Label
	v    float64
}

// scrapeInput builds the samples records of steps one-second scrapes of
// the series scrape returns, one block per partition per scrape as ingest
// writes them, routed by set.
func scrapeInput(t *testing.T, set *rules.Set, steps int, scrape func(step int) []point) map[int32][][]byte {
	t.Helper()
	const t0 = int64(1_700_000_000_000)
	out := map[int32][][]byte{}
	var key []byte
	for step := range steps {
		ts := t0 + int64(step)*1000
		blocks := map[int32]*proto.BlockBuilder{}
		for _, p := range scrape(step) {
			key, _ = set.RoutingKey(key[:0], "", p.lbls)
			part := rules.Partition(key, testParts)
			b := blocks[part]
			if b == nil {
				b = &proto.BlockBuilder{}
				b.Reset("")
				blocks[part] = b
			}
			b.AddSeries(p.lbls, []int64{ts}, []float64{p.v})
		}
		for part, b := range blocks {
			v, err := b.AppendIPC(nil)
			if err != nil {
				t.Fatal(err)
			}
			out[part] = append(out[part], v)
		}
	}
	return out
}

// committedDecisions reads every committed decision of the decisions topic,
// checking each signature and key.
func (k *kafkaEnv) committedDecisions(t *testing.T) []*proto.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var ends kadm.ListedOffsets
	for {
		var err error
		ends, err = k.adm.ListEndOffsets(ctx, k.cfg.DecisionsTopic)
		if err == nil && ends.Error() == nil {
			break
		}
		// A fresh topic can be missing from cached metadata for a moment.
		select {
		case <-ctx.Done():
			t.Fatalf("list decision offsets: %v %v", err, ends.Error())
		case <-time.After(50 * time.Millisecond):
		}
	}
	pending := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.ConsumeTopics(k.cfg.DecisionsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*proto.Decision
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading decisions: %v (pending %v)", ctx.Err(), pending)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= pending[r.Partition]-1 {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			d, err := proto.UnmarshalDecision(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if err := proto.Verify(d, testKey); err != nil {
				t.Errorf("decision %s: %v", d.Id, err)
			}
			if string(r.Key) != d.Target {
				t.Errorf("decision %s keyed %q, want its target %q", d.Id, r.Key, d.Target)
			}
			out = append(out, d)
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.AsTime().Before(out[j].CreatedAt.AsTime()) })
	return out
}

const lbArn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1"

// TestDetectorsEndToEnd drives each wired detector through a stream member
// on Kafka: samples records in, signed decisions out.
// trainRule is a gpu rule on the step times of stepTimes' job.
const trainRule = `
rules:
- name: train
  gpu:
    selector: 'training_step_seconds'
    node_label: node
    group_by: [job]
    window: 5s
    step_time_metric: training_step_seconds`

// stepTimes scrapes the step times of a 10-worker job "llm", worker w on
// node gpu-node-w: 0.5 s ±5% times slower(w, step).
func stepTimes(slower func(w, step int) float64) func(step int) []point {
	return func(step int) []point {
		ps := make([]point, 0, 10)
		for w := range 10 {
			v := 0.5 * (1 + 0.05*math.Sin(float64(step*(w+3)))) * slower(w, step)
			ps = append(ps, point{lbl("__name__", "training_step_seconds", "job", "llm", "pod", fmt.Sprint("worker-", w),
				"node", fmt.Sprint("gpu-node-", w)), v})
		}
		return ps
	}
}

func TestDetectorsEndToEnd(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		steps int
		// scrape returns the series values at a one-second scrape.
		scrape func(step int) []point
		// check finds the expected decision and checks its evidence.
		check func(t *testing.T, ds []*proto.Decision)
	}{{
		name: "scaling rule over a rising request rate",
		rules: `
rules:
- name: web-rps
  scaling:
    selector: 'http_requests_total{service="web"}'
    capacity_per_pod: 10
    window: 1s
    horizon: 5s
    min_replicas: 2
    max_replicas: 100
    target: {namespace: web, name: web}`,
		steps: 90,
		scrape: func(step int) []point {
			var ps []point
			for pod := range 4 {
				// Each pod's rate rises by 0.5/s every second after step 40:
				// the counter is the integral of the rate.
				total := 5.0 * float64(step)
				if s := float64(step - 40); s > 0 {
					total += 0.25 * s * s
				}
				ps = append(ps, point{lbl("__name__", "http_requests_total", "service", "web", "pod", fmt.Sprint("web-", pod)), total})
			}
			return ps
		},
		check: func(t *testing.T, ds []*proto.Decision) {
			var ups []*proto.Decision
			for _, d := range ds {
				if d.Kind == proto.KindScale && d.Target == "k8s/deployment/web/web" {
					ups = append(ups, d)
				}
			}
			if len(ups) < 2 {
				t.Fatalf("%d scale decisions, want the workload scaled up as the rate rises: %v", len(ups), summaries(ds))
			}
			first, last := ups[0], ups[len(ups)-1]
			if last.Desired.Replicas <= first.Desired.Replicas {
				t.Errorf("replicas %d then %d, want more as the load rises", first.Desired.Replicas, last.Desired.Replicas)
			}
			ev := last.Evidence
			if ev.Model == "" || ev.HorizonSeconds != 5 || !(ev.Upper >= ev.Forecast) || !(ev.Forecast >= ev.Lower) || ev.Accuracy <= 0 {
				t.Errorf("evidence lacks the forecast, interval, model or accuracy: %v", ev)
			}
			if need := int32(math.Ceil(max(ev.Upper, ev.Observed) / 10)); last.Desired.Replicas > need {
				t.Errorf("%d replicas, more than the forecast's upper bound needs (%d)", last.Desired.Replicas, need)
			}
		},
	}, {
		name: "anomaly band watch on a level shift",
		rules: `
rules:
- name: queue
  anomaly:
    selector: 'queue_depth'
    alert_on: band
    warmup: 30`,
		steps:  120,
		scrape: queueShift(90),
		check: func(t *testing.T, ds []*proto.Decision) {
			d := find(ds, proto.KindAlert, `alert/queue/queue_depth{instance="q-1"}`)
			if d == nil {
				t.Fatalf("no alert for the level shift: %v", summaries(ds))
			}
			ev := d.Evidence
			if ev.Observed < 400 || !(ev.BandUpper < ev.Observed) || ev.Model != "anomaly_band" {
				t.Errorf("alert evidence %v, want the shifted value above the band", ev)
			}
			if at := d.CreatedAt.AsTime().UnixMilli() - 1_700_000_000_000; at < 90_000 {
				t.Errorf("alert at %dms, before the shift at 90s", at)
			}
		},
	}, {
		name: "anomaly score watch on a level shift",
		rules: `
rules:
- name: queue
  anomaly:
    selector: 'queue_depth'
    warmup: 60`,
		steps:  200,
		scrape: queueShift(150),
		check: func(t *testing.T, ds []*proto.Decision) {
			var alerts []*proto.Decision
			for _, d := range ds {
				if d.Kind == proto.KindAlert {
					alerts = append(alerts, d)
				}
			}
			if len(alerts) != 1 {
				t.Fatalf("%d alerts, want one for the level shift: %v", len(alerts), summaries(ds))
			}
			d := alerts[0]
			ev := d.Evidence
			if d.Target != `alert/queue/queue_depth{instance="q-1"}` || ev.Observed < 400 || ev.Model != "anomaly_score" ||
				ev.Score < 0.5 || d.Desired.GetAlert().GetReason() != "anomaly_score" {
				t.Errorf("alert %s, evidence %v, want the shifted value's detection", d.Target, ev)
			}
			if at := d.CreatedAt.AsTime().UnixMilli() - 1_700_000_000_000; at < 150_000 {
				t.Errorf("alert at %dms, before the shift at 150s", at)
			}
		},
	}, {
		name: "gray-failure group with one slow zone",
		rules: `
rules:
- name: web-zones
  gray_failure:
    selector: '{__name__=~"http_requests_total|http_request_duration_seconds_(sum|count)",service="web"}'
    zone_label: zone_id
    thresholds: {mean_latency_seconds: 0.1}
    resource_arn: ` + lbArn + `
    window: 5s`,
		steps: 110,
		scrape: func(step int) []point {
			var ps []point
			for z := range 3 {
				zone := fmt.Sprintf("use1-az%d", z+1)
				for inst := range 2 {
					l := func(name string) []proto.Label {
						return lbl("__name__", name, "service", "web", "zone_id", zone, "instance", fmt.Sprintf("web-%d-%d", z, inst))
					}
					// 20 requests/s per instance at 40 ms, az2 at 400 ms
					// from step 50.
					reqs := 20 * float64(step)
					lat := 0.04 * reqs
					if z == 1 && step > 50 {
						lat += 0.36 * 20 * float64(step-50)
					}
					ps = append(ps, point{l("http_requests_total"), reqs}, point{l("http_request_duration_seconds_count"), reqs},
						point{l("http_request_duration_seconds_sum"), lat})
				}
			}
			return ps
		},
		check: func(t *testing.T, ds []*proto.Decision) {
			d := find(ds, proto.KindZonalShift, "aws/zonalshift/"+lbArn)
			if d == nil {
				t.Fatalf("no zonal shift: %v", summaries(ds))
			}
			zs := d.Desired.ZonalShift
			if zs.AwayFrom != "use1-az2" || zs.ResourceIdentifier != lbArn || zs.ExpiresInSeconds != int64(rules.DefaultShiftExpiry.Seconds()) {
				t.Errorf("shift %v, want away from use1-az2 for the rule's 30m expiry", zs)
			}
			if at := d.CreatedAt.AsTime().UnixMilli() - 1_700_000_000_000; at < 50_000 || at > 80_000 {
				t.Errorf("shift at %dms, want within 30s of the fault at 50s", at)
			}
			if find(ds, proto.KindAlert, "") != nil && len(ds) > 1 {
				t.Logf("other decisions: %v", summaries(ds))
			}
		},
	}, {
		name: "GPU XID 79",
		rules: `
rules:
- name: gpus
  gpu:
    selector: '{__name__=~"DCGM_FI_.*"}'
    node_label: Hostname`,
		steps:  30,
		scrape: xidOnNode1(func(n int) []string { return []string{"Hostname", fmt.Sprint("gpu-node-", n)} }),
		check: func(t *testing.T, ds []*proto.Decision) {
			taint := oneTaintOf(t, ds, "gpu-node-1")
			if tk := taint.Desired.Taint; tk == nil || tk.Key != "augur.io/gpu-unhealthy" || tk.Effect != "NoSchedule" {
				t.Errorf("taint %v, want augur.io/gpu-unhealthy NoSchedule", tk)
			}
		},
	}, {
		// DCGM exporter run as a DaemonSet reports its own pod name as
		// Hostname; the node is in the label the rule names.
		name: "GPU XID 79 on the rule's node_label",
		rules: `
rules:
- name: gpus
  gpu:
    selector: '{__name__=~"DCGM_FI_.*"}'
    node_label: k8s_node`,
		steps: 30,
		scrape: xidOnNode1(func(n int) []string {
			return []string{"Hostname", fmt.Sprint("dcgm-exporter-", n), "k8s_node", fmt.Sprint("gpu-node-", n)}
		}),
		check: func(t *testing.T, ds []*proto.Decision) { oneTaintOf(t, ds, "gpu-node-1") },
	}, {
		// Half the workers slow down by 1.25x at step 150: the median
		// moves between the groups and no worker is 1.2x off it; the
		// workers' moves off their own history split in two.
		name:  "GPU training job in two groups from mid-job",
		rules: trainRule,
		steps: 400,
		scrape: stepTimes(func(w, step int) float64 {
			if w < 5 && step >= 150 {
				return 1.25
			}
			return 1
		}),
		check: func(t *testing.T, ds []*proto.Decision) {
			if len(ds) != 1 || ds[0].Kind != proto.KindAlert || ds[0].Target != "job/llm" ||
				!strings.Contains(ds[0].Summary, "two groups during the job: 5 of 10 members") {
				t.Fatalf("decisions %v, want one job-level alert on two groups", summaries(ds))
			}
			if at := ds[0].CreatedAt.AsTime().UnixMilli() - 1_700_000_000_000; at < 150_000 {
				t.Errorf("alert at %dms, before the slow-down at 150s", at)
			}
		},
	}, {
		// Two kinds of hardware from the start, and a worker of the fast
		// half falling behind it at 200 s: between the groups, never 1.2x
		// off the median, but 1.5x off its own level.
		name:  "GPU training job in two groups, then a straggler in the fast one",
		rules: trainRule,
		steps: 400,
		scrape: stepTimes(func(w, step int) float64 {
			switch {
			case w < 5:
				return 2
			case w == 7 && step >= 200:
				return 1.5
			}
			return 1
		}),
		check: func(t *testing.T, ds []*proto.Decision) {
			if len(ds) != 2 || ds[0].Target != "job/llm" || !strings.Contains(ds[0].Summary, "two groups since the start: 5 of 10 members") ||
				ds[1].Kind != proto.KindAlert || ds[1].Target != "k8s/node/gpu-node-7" || ds[1].GetDesired().GetAlert().GetReason() != "straggler" ||
				!strings.Contains(ds[1].Summary, "its own level in its group") {
				t.Fatalf("decisions %v, want the job-level alert on two groups, then a straggler alert on gpu-node-7", summaries(ds))
			}
			if at := ds[1].CreatedAt.AsTime().UnixMilli() - 1_700_000_000_000; at < 200_000 || at > 260_000 {
				t.Errorf("straggler alert at %dms, want within a minute of the slow-down at 200s", at)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := rules.Parse(strings.NewReader(tt.rules))
			if err != nil {
				t.Fatal(err)
			}
			k := newKafkaEnv(t)
			k.cfg.Rules = set
			in := scrapeInput(t, set, tt.steps, tt.scrape)
			k.start(t, "a", nil)
			k.produce(t, in, 1, nil)
			k.waitDone(t)
			ds := k.committedDecisions(t)
			tt.check(t, ds)
			if testing.Verbose() {
				for _, s := range summaries(ds) {
					t.Log(s)
				}
			}
			// The uninterrupted in-memory run decides the same.
			cfg := k.cfg
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			want := runGolden(t, &cfg, in)
			if len(want.decisions) != len(ds) {
				t.Errorf("%d decisions on Kafka, %d in memory", len(ds), len(want.decisions))
			}
		})
	}
}

func find(ds []*proto.Decision, kind, target string) *proto.Decision {
	for _, d := range ds {
		if d.Kind == kind && (target == "" || d.Target == target) {
			return d
		}
	}
	return nil
}

func summaries(ds []*proto.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind+": "+d.Summary)
	}
	return out
}

// queueShift is a queue depth around 100 that jumps by 400 at step at.
func queueShift(at int) func(step int) []point {
	return func(step int) []point {
		v := 100 + 5*math.Sin(float64(step)/4) + float64(step%3)
		if step >= at {
			v += 400
		}
		return []point{{lbl("__name__", "queue_depth", "instance", "q-1"), v}}
	}
}

// xidOnNode1 scrapes three GPUs, one per node, whose series carry the
// labels node(n) names: utilisation 90%, and an XID 79 (fallen off the
// bus) on node 1 from step 20.
func xidOnNode1(node func(n int) []string) func(step int) []point {
	return func(step int) []point {
		var ps []point
		for n := range 3 {
			xid := 0.0
			if n == 1 && step >= 20 {
				xid = 79
			}
			at := append([]string{"gpu", "0"}, node(n)...)
			ps = append(ps, point{lbl(append([]string{"__name__", "DCGM_FI_DEV_XID_ERRORS"}, at...)...), xid},
				point{lbl(append([]string{"__name__", "DCGM_FI_DEV_GPU_UTIL"}, at...)...), 90})
		}
		return ps
	}
}

// oneTaintOf fails t unless ds taints exactly one node, node, and returns
// that decision.
func oneTaintOf(t *testing.T, ds []*proto.Decision, node string) *proto.Decision {
	t.Helper()
	var taints []*proto.Decision
	for _, d := range ds {
		if d.Kind == proto.KindTaintNode {
			taints = append(taints, d)
		}
	}
	if len(taints) != 1 || taints[0].Desired.Node != node {
		t.Fatalf("taints %v, want one taint of %s", summaries(taints), node)
	}
	return taints[0]
}
