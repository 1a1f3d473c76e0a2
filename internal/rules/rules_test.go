package rules

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestLoadExample(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 6 {
		t.Fatalf("got %d rules, want 6", s.Len())
	}
	wantKinds := []Kind{KindScaling, KindScaling, KindScaling, KindGrayFailure, KindGPU, KindAnomaly}
	for i, k := range wantKinds {
		if s.Kind(i) != k {
			t.Errorf("rule %d kind %v, want %v", i, s.Kind(i), k)
		}
	}
	r := s.Rule(1).Scaling
	if r.Target.Kind != "HorizontalPodAutoscaler" || r.Window.Seconds() != 30 || r.Horizon.Minutes() != 5 || r.Aggregation != AggregationSumRate {
		t.Errorf("defaults not filled: %+v", r)
	}
	if a := s.Rule(5).Anomaly; a.AlertOn != "score" || a.Score != 0.5 || a.M != 0 || a.N != 0 {
		t.Errorf("anomaly: %+v", a)
	}
	g := s.Rule(3).GrayFailure
	if g.ShiftExpiry != DefaultShiftExpiry && g.ShiftExpiry != 30*time.Minute {
		t.Errorf("shift expiry %s", g.ShiftExpiry)
	}
	if g.Thresholds.MeanLatencySeconds != 0.05 || g.Thresholds.P99LatencySeconds != 0.5 || g.Thresholds.MaxLatencySeconds != 2 || g.MinInstances != 2 {
		t.Errorf("gray failure thresholds: %+v", g)
	}
	if gp := s.Rule(4).GPU; gp.StepTimeMetric != "training_step_seconds" || gp.WorkerLabel != "pod" {
		t.Errorf("gpu step time: %+v", gp)
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse(strings.NewReader(`
rules:
- name: z
  gray_failure: {selector: 'x', zone_label: zone, resource_arn: 'arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/b'}
- name: g
  gpu: {selector: 'DCGM_FI_DEV_XID_ERRORS', node_label: Hostname}
- name: a
  anomaly: {selector: 'y'}
- name: s
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, target: {namespace: n, name: d}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if sc := s.Rule(3).Scaling; sc.IntervalCap != DefaultIntervalCap || sc.ScaleDownDelay != 5*time.Minute || sc.Horizon != 5*time.Minute {
		t.Errorf("scaling defaults: %+v", sc)
	}
	g := s.Rule(0).GrayFailure
	if g.ShiftExpiry != DefaultShiftExpiry || g.InstanceLabel != "instance" || g.MinInstances != 2 || g.MinRequests != 50 || g.Window != 15*time.Second || g.FalseAlarmDays != 90 {
		t.Errorf("gray failure defaults: %+v", g)
	}
	if gp := s.Rule(1).GPU; gp.WorkerLabel != "pod" || gp.StepTimeMetric != "" || gp.TaintKey != "augur.io/gpu-unhealthy" {
		t.Errorf("gpu defaults: %+v", gp)
	}
	if a := s.Rule(2).Anomaly; a.AlertOn != "score" || a.Score != 0.5 || a.Sensitivity != 2 || a.M != 0 || a.N != 0 || a.Warmup != 256 || a.Severity != "warning" {
		t.Errorf("anomaly defaults: %+v", a)
	}
}

// TestAnomalyValidatesTwice: a validated anomaly rule (whatif and the
// stream validate a rule again) is still valid, with either alert.
func TestAnomalyValidatesTwice(t *testing.T) {
	for _, a := range []Anomaly{{Selector: "x"}, {Selector: "x", AlertOn: "band"}, {Selector: "x", AlertOn: "band", M: 3, N: 5}, {Selector: "x", Score: 0.7}} {
		if errs := a.validate("a"); len(errs) > 0 {
			t.Fatalf("%+v: %v", a, errs)
		}
		b := a
		if errs := b.validate("a"); len(errs) > 0 || b != a {
			t.Errorf("validated again: %+v, %v; want %+v and no error", b, errs, a)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"capacity", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 0, min_replicas: 1, max_replicas: 2, target: {namespace: n, name: d}}`,
			"rules[0].scaling.capacity_per_pod: must be > 0"},
		{"selector", `
rules:
- name: a
  anomaly: {selector: 'x{'}`, "rules[0].anomaly.selector:"},
		{"two kinds", `
rules:
- name: a
  anomaly: {selector: 'x'}
  gpu: {selector: 'y', node_label: Hostname}`, "rules[0]: must have exactly one"},
		{"duplicate name", `
rules:
- name: a
  anomaly: {selector: 'x'}
- name: a
  anomaly: {selector: 'y'}`, `rules[1].name: "a" already used by rules[0]`},
		{"max<min", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 3, max_replicas: 2, target: {namespace: n, name: d}}`,
			"rules[0].scaling.max_replicas: must be >= min_replicas (3)"},
		{"interval cap", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, interval_cap: -1, target: {namespace: n, name: d}}`,
			"rules[0].scaling.interval_cap: must be a finite number > 0, got -1"},
		{"interval cap inf", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, interval_cap: .inf, target: {namespace: n, name: d}}`,
			"rules[0].scaling.interval_cap: must be a finite number > 0, got +Inf"},
		{"stabilization beyond its memory", `
rules:
- name: a
  scaling: {selector: 'x', window: 1s, scale_down_delay: 2h, capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, target: {namespace: n, name: d}}`,
			"rules[0].scaling.scale_down_delay: must be under 4096 windows (1h8m16s at a window of 1s), got 2h0m0s"},
		{"mode", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, mode: grow, target: {namespace: n, name: d}}`,
			"rules[0].scaling.mode: must be one of"},
		{"hpa kind", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, mode: hpa_min, target: {kind: Deployment, namespace: n, name: d}}`,
			"rules[0].scaling.target.kind: must be HorizontalPodAutoscaler"},
		{"arn", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: zone, resource_arn: lb}`, "rules[0].gray_failure.resource_arn: must be an ARN"},
		{"zone label", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: "1zone", resource_arn: "arn:aws:elasticloadbalancing:us-east-1:1:lb"}`, "rules[0].gray_failure.zone_label"},
		{"peer ratio", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: zone, thresholds: {peer_ratio: 0.5}, resource_arn: "arn:aws:elasticloadbalancing:us-east-1:1:lb"}`,
			"rules[0].gray_failure.thresholds.peer_ratio: must be > 1"},
		{"p99 latency", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: zone, thresholds: {p99_latency_seconds: -1}, resource_arn: "arn:aws:elasticloadbalancing:us-east-1:1:lb"}`,
			"rules[0].gray_failure.thresholds.p99_latency_seconds: must be >= 0"},
		{"old latency field", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: zone, thresholds: {latency_seconds: 1}, resource_arn: "arn:aws:elasticloadbalancing:us-east-1:1:lb"}`,
			"field latency_seconds not found"},
		{"min instances", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: zone, min_instances: -1, resource_arn: "arn:aws:elasticloadbalancing:us-east-1:1:lb"}`,
			"rules[0].gray_failure.min_instances: must be >= 1"},
		{"shift expiry", `
rules:
- name: a
  gray_failure: {selector: 'x', zone_label: zone, shift_expiry: 80h, resource_arn: "arn:aws:elasticloadbalancing:us-east-1:1:lb"}`,
			"rules[0].gray_failure.shift_expiry: must be between 1m and 72h"},
		{"horizon", `
rules:
- name: a
  scaling: {selector: 'x', capacity_per_pod: 1, min_replicas: 1, max_replicas: 2, horizon: 1h, target: {namespace: n, name: d}}`,
			"rules[0].scaling.horizon: must be between window (30s) and 30m0s"},
		{"step time metric", `
rules:
- name: a
  gpu: {selector: 'x', node_label: Hostname, step_time_metric: "a-b"}`, "rules[0].gpu.step_time_metric"},
		{"n above 16", `
rules:
- name: a
  anomaly: {selector: 'x', alert_on: band, m: 2, n: 20}`, "rules[0].anomaly.n: must be in [1,16]"},
		{"m without the band", `
rules:
- name: a
  anomaly: {selector: 'x', m: 2, n: 3}`, "rules[0].anomaly.m: m and n set the band alarm: only with alert_on: band"},
		{"score with the band", `
rules:
- name: a
  anomaly: {selector: 'x', alert_on: band, score: 0.6}`, "rules[0].anomaly.score: sets the score that alerts: only with alert_on: score"},
		{"score above 1", `
rules:
- name: a
  anomaly: {selector: 'x', score: 1.5}`, "rules[0].anomaly.score: must be in (0, 1]"},
		{"alert on", `
rules:
- name: a
  anomaly: {selector: 'x', alert_on: alarm}`, `rules[0].anomaly.alert_on: must be score or band, got "alarm"`},
		{"group by", `
rules:
- name: a
  gpu: {selector: 'x', node_label: Hostname, group_by: ["a-b"]}`, "rules[0].gpu.group_by[0]"},
		{"m of n", `
rules:
- name: a
  anomaly: {selector: 'x', alert_on: band, m: 6, n: 5}`, "rules[0].anomaly.m: must be in [1,n]"},
		{"unknown field", `
rules:
- name: a
  anomaly: {selector: 'x', sensitivty: 2}`, "field sensitivty not found"}, //nolint:misspell // the typo is the test
		{"bad name", `
rules:
- name: "a b"
  anomaly: {selector: 'x'}`, "rules[0].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestFieldErrorIsTyped(t *testing.T) {
	_, err := Parse(strings.NewReader("rules:\n- name: a\n  anomaly: {selector: 'x', sensitivity: -1}\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "rules[0].anomaly.sensitivity" {
		t.Fatalf("got %v, want a FieldError on rules[0].anomaly.sensitivity", err)
	}
}

func lbls(kv ...string) []Label {
	var out []Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestRoutingKey(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pod1 := lbls("__name__", "http_requests_total", "namespace", "payment", "pod", "p-1", "service", "payment")
	pod2 := lbls("__name__", "http_requests_total", "namespace", "payment", "pod", "p-2", "service", "payment")
	other := lbls("__name__", "http_requests_total", "namespace", "payment", "pod", "p-2", "service", "cart")
	gpuA := lbls("Hostname", "n1", "__name__", "DCGM_FI_DEV_GPU_UTIL", "cluster", "train", "job", "j1")
	gpuB := lbls("Hostname", "n2", "__name__", "DCGM_FI_DEV_XID_ERRORS", "cluster", "train", "job", "j1")
	gpuC := lbls("Hostname", "n2", "__name__", "DCGM_FI_DEV_XID_ERRORS", "cluster", "train", "job", "j2")
	tests := []struct {
		name     string
		tenant   string
		a, b     []Label
		sameKey  bool
		wantRule int
	}{
		{"pods of one workload meet", "t1", pod1, pod2, true, 0},
		{"tenant is part of the key", "t2", pod1, pod1, true, 0},
		{"unrouted series by own labels", "t1", other, pod2, false, -1},
		{"gpu same job meet", "t1", gpuA, gpuB, true, 4},
		{"gpu other job apart", "t1", gpuB, gpuC, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, ra := s.RoutingKey(nil, tt.tenant, tt.a)
			kb, _ := s.RoutingKey(nil, tt.tenant, tt.b)
			if ra != tt.wantRule {
				t.Errorf("rule %d, want %d", ra, tt.wantRule)
			}
			if bytes.Equal(ka, kb) != tt.sameKey {
				t.Errorf("keys %q and %q: equal=%v, want %v", ka, kb, !tt.sameKey, tt.sameKey)
			}
		})
	}
	k1, _ := s.RoutingKey(nil, "t1", pod1)
	k2, _ := s.RoutingKey(nil, "t2", pod1)
	if bytes.Equal(k1, k2) {
		t.Errorf("different tenants share key %q", k1)
	}
	tenant, rule, vals, ok := ParseGroupKey(k1, nil)
	if !ok || tenant != "t1" || rule != "payment-rps" || len(vals) != 0 {
		t.Errorf("ParseGroupKey(%q) = %q %q %q %v", k1, tenant, rule, vals, ok)
	}
	kg, _ := s.RoutingKey(nil, "", gpuC)
	if _, rule, vals, ok := ParseGroupKey(kg, nil); !ok || rule != "training-gpus" || len(vals) != 1 || vals[0] != "j2" {
		t.Errorf("ParseGroupKey(%q) = %q %q %v", kg, rule, vals, ok)
	}
	if w := s.MatchWatch("t1", lbls("__name__", "http_request_duration_seconds_sum", "namespace", "checkout")); w != 5 {
		t.Errorf("MatchWatch = %d, want 5", w)
	}
	if w := s.MatchWatch("t1", lbls("__name__", "http_request_duration_seconds_sum", "namespace", "cart")); w != -1 {
		t.Errorf("MatchWatch = %d, want -1", w)
	}
}

func TestRuleOrderAndTenant(t *testing.T) {
	s, err := Parse(strings.NewReader(`
rules:
- name: any-name
  tenant: t1
  anomaly: {selector: '{job="a"}'}
- name: first
  tenant: t1
  gpu: {selector: '{job="a"}', node_label: node}
- name: second
  gpu: {selector: 'up{job="a"}', node_label: node}
`))
	if err != nil {
		t.Fatal(err)
	}
	l := lbls("__name__", "up", "job", "a")
	if r := s.Match("t1", l); r != 1 {
		t.Errorf("t1: rule %d, want 1 (first in file order)", r)
	}
	if r := s.Match("t2", l); r != 2 {
		t.Errorf("t2: rule %d, want 2 (rule 1 is for t1 only)", r)
	}
	if r := s.MatchWatch("t2", l); r != -1 {
		t.Errorf("watch for t2: %d, want -1", r)
	}
}

func TestPartitionIsXXHash(t *testing.T) {
	key := []byte("s\xff__name__\xfeup")
	if got, want := Partition(key, 12), int32(xxhash.Sum64(key)%12); got != want {
		t.Fatalf("Partition = %d, want %d", got, want)
	}
}

func TestRoutingKeyAllocs(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routed := lbls("__name__", "http_requests_total", "namespace", "payment", "pod", "p-1", "service", "payment")
	unrouted := lbls("__name__", "node_cpu_seconds_total", "cpu", "0", "instance", "n1:9100", "mode", "idle")
	gpu := lbls("Hostname", "n2", "__name__", "DCGM_FI_DEV_XID_ERRORS", "cluster", "train", "job", "j1")
	buf := make([]byte, 0, 256)
	for _, l := range [][]Label{routed, unrouted, gpu} {
		if a := testing.AllocsPerRun(100, func() { buf, _ = s.RoutingKey(buf[:0], "tenant", l) }); a != 0 {
			t.Errorf("RoutingKey(%v) allocates %v times", l, a)
		}
	}
}

func BenchmarkRoutingKey(b *testing.B) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cases := map[string][]Label{
		"routed":   lbls("__name__", "http_requests_total", "code", "200", "instance", "10.0.0.1:8080", "method", "GET", "namespace", "payment", "pod", "payment-7d9f-x2", "service", "payment"),
		"unrouted": lbls("__name__", "node_cpu_seconds_total", "cpu", "0", "instance", "10.0.0.1:9100", "job", "node", "mode", "idle"),
		"regex":    lbls("Hostname", "gpu-node-7", "__name__", "DCGM_FI_DEV_SM_CLOCK", "cluster", "train", "gpu", "3", "job", "llm-42"),
	}
	for name, l := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for b.Loop() {
				var k []byte
				k, _ = s.RoutingKey(buf[:0], "tenant-a", l)
				_ = Partition(k, 64)
			}
		})
	}
}
