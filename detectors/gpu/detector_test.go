package gpu

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/wire/wiretest"
	"github.com/augur-ops/augur/proto"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ms(min int) int64 { return t0.Add(time.Duration(min) * time.Minute).UnixMilli() }

func newDet(t testing.TB, cfg Config) *Detector {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func labels(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func summary(ds []*proto.Decision) []string {
	var out []string
	for _, d := range ds {
		s := d.GetKind() + " " + d.GetTarget()
		if a := d.GetDesired().GetAlert(); a != nil {
			s += " " + a.GetSeverity() + ":" + a.GetReason()
		}
		if tn := d.GetDesired().GetTaint(); tn != nil {
			s += " " + tn.GetKey() + "=" + tn.GetValue() + ":" + tn.GetEffect()
		}
		out = append(out, s)
	}
	return out
}

func TestNewSample(t *testing.T) {
	tests := []struct {
		name   string
		metric string
		lbls   map[string]string
		v      float64
		ok     bool
		want   Sample
	}{
		{"Hostname", "DCGM_FI_DEV_XID_ERRORS", map[string]string{"Hostname": "n1", "gpu": "0"}, 79, true,
			Sample{Metric: MetricXID, Node: "n1", GPU: "0", Value: 79}},
		{"hostname", "DCGM_FI_DEV_GPU_UTIL", map[string]string{"hostname": "n2", "UUID": "GPU-abc", "pod": "p", "namespace": "ns"}, 40, true,
			Sample{Metric: MetricUtil, Node: "n2", GPU: "GPU-abc", Pod: "ns/p", Value: 40}},
		{"ratio scaled to percent", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", map[string]string{"Hostname": "n1", "gpu": "1"}, 0.25, true,
			Sample{Metric: MetricUtil, Node: "n1", GPU: "1", Value: 25}},
		{"new throttle name", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS", map[string]string{"Hostname": "n1", "gpu": "1"}, 0x40, true,
			Sample{Metric: MetricThrottleReasons, Node: "n1", GPU: "1", Value: 0x40}},
		{"int64 blank", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", map[string]string{"Hostname": "n1", "gpu": "0"}, float64(0x7ffffffffffffff0), false, Sample{}},
		{"float blank", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", map[string]string{"Hostname": "n1", "gpu": "0"}, math.Pow(2, 47), false, Sample{}},
		{"large int is not a float blank", "DCGM_FI_PROF_PCIE_RX_BYTES", map[string]string{"Hostname": "n1", "gpu": "0"}, math.Pow(2, 48), true,
			Sample{Metric: MetricPCIeRx, Node: "n1", GPU: "0", Value: math.Pow(2, 48)}},
		{"NaN", "DCGM_FI_DEV_GPU_UTIL", map[string]string{"Hostname": "n1", "gpu": "0"}, math.NaN(), false, Sample{}},
		{"no host", "DCGM_FI_DEV_GPU_UTIL", map[string]string{"gpu": "0"}, 1, false, Sample{}},
		{"unknown metric", "DCGM_FI_DEV_FB_FREE", map[string]string{"Hostname": "n1"}, 1, false, Sample{}},
		{"network", "container_network_receive_bytes_total", map[string]string{"pod": "p", "namespace": "ns"}, 2e8, true,
			Sample{Metric: MetricNetRx, Pod: "ns/p", Value: 2e8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := NewSample(tc.metric, labels(tc.lbls), "", 0, tc.v)
			if ok != tc.ok || s != tc.want {
				t.Errorf("NewSample = %+v, %v; want %+v, %v", s, ok, tc.want, tc.ok)
			}
		})
	}
}

func xid(node string, code float64, min int) Sample {
	return Sample{Metric: MetricXID, Node: node, GPU: "0", Ts: ms(min), Value: code}
}

func TestXIDActions(t *testing.T) {
	for code, want := range map[int][]string{
		13:  {"alert k8s/node/n1 warning:xid_13"},
		31:  {"alert k8s/node/n1 warning:xid_31"},
		43:  {"alert k8s/node/n1 warning:xid_43"},
		45:  {"alert k8s/node/n1 warning:xid_45"},
		48:  {"alert k8s/node/n1 critical:xid_48", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_48:NoSchedule"},
		64:  {"alert k8s/node/n1 critical:xid_64", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_64:NoSchedule"},
		74:  {"alert k8s/node/n1 critical:xid_74", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_74:NoSchedule"},
		79:  {"alert k8s/node/n1 critical:xid_79", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_79:NoSchedule"},
		92:  {"alert k8s/node/n1 critical:xid_92", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_92:NoSchedule"},
		95:  {"alert k8s/node/n1 critical:xid_95", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_95:NoSchedule"},
		119: {"alert k8s/node/n1 critical:xid_119", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_119:NoSchedule"},
		120: {"alert k8s/node/n1 critical:xid_120", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_120:NoSchedule"},
		63:  nil,
		999: {"alert k8s/node/n1 warning:xid_999"},
	} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			d := newDet(t, Config{})
			d.Observe(xid("n1", 0, 0))
			got := summary(d.Observe(xid("n1", float64(code), 1)))
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			// The gauge keeps its last value: no repeat decisions.
			if again := d.Observe(xid("n1", float64(code), 2)); len(again) != 0 {
				t.Errorf("repeated sample decided %v", summary(again))
			}
		})
	}
}

func TestHardwareCountersAndUntaint(t *testing.T) {
	d := newDet(t, Config{HoldDown: 10 * time.Minute})
	dbe := func(v float64, min int) Sample {
		return Sample{Metric: MetricECCDBE, Node: "n1", GPU: "1", Ts: ms(min), Value: v}
	}
	remap := func(v float64, min int) Sample {
		return Sample{Metric: MetricRowRemapFailure, Node: "n2", GPU: "0", Ts: ms(min), Value: v}
	}
	var got []string
	got = append(got, summary(d.Observe(dbe(0, 0)))...)
	got = append(got, summary(d.Observe(dbe(0.5, 1)))...)
	got = append(got, summary(d.Observe(dbe(0.1, 2)))...) // node already tainted: alert only
	got = append(got, summary(d.Observe(remap(1, 2)))...)
	got = append(got, summary(d.Observe(remap(1, 3)))...)
	want := []string{
		"alert k8s/node/n1 critical:ecc_dbe", "taint_node k8s/node/n1 augur.io/gpu-unhealthy=ecc_dbe:NoSchedule",
		"alert k8s/node/n1 critical:ecc_dbe",
		"alert k8s/node/n2 critical:row_remap_failure", "taint_node k8s/node/n2 augur.io/gpu-unhealthy=row_remap_failure:NoSchedule",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// n1 healthy from minute 3; n2 keeps reporting the remap failure.
	var untaint []string
	var at []int
	for m := 3; m <= 20; m++ {
		d.Observe(dbe(0, m))
		d.Observe(remap(1, m))
		for _, s := range summary(d.Tick(t0.Add(time.Duration(m) * time.Minute))) {
			untaint = append(untaint, s)
			at = append(at, m)
		}
	}
	if !slices.Equal(untaint, []string{"untaint_node k8s/node/n1 augur.io/gpu-unhealthy=ecc_dbe:NoSchedule"}) || at[0] != 12 {
		t.Fatalf("untaint %v at %v, want n1 at minute 12", untaint, at)
	}
	if !d.Tainted("n2") || d.Tainted("n1") {
		t.Errorf("tainted n1=%v n2=%v", d.Tainted("n1"), d.Tainted("n2"))
	}
}

func TestXIDClearsAfterReset(t *testing.T) {
	d := newDet(t, Config{HoldDown: 5 * time.Minute})
	d.Observe(xid("n1", 79, 0))
	var got []string
	for m := 1; m <= 12; m++ {
		v := 79.0
		if m >= 4 {
			v = 0 // the GPU was reset: the exporter's gauge starts over
		}
		d.Observe(xid("n1", v, m))
		got = append(got, summary(d.Tick(t0.Add(time.Duration(m)*time.Minute)))...)
	}
	if !slices.Equal(got, []string{"untaint_node k8s/node/n1 augur.io/gpu-unhealthy=xid_79:NoSchedule"}) {
		t.Errorf("got %v", got)
	}
}

func TestThrottleAndBottleneck(t *testing.T) {
	tests := []struct {
		name    string
		samples func(min int) []Sample
		want    []string
	}{
		{"thermal reasons", func(int) []Sample {
			return []Sample{{Metric: MetricThrottleReasons, Value: ThrottleHWThermal}}
		}, []string{"alert k8s/node/n1 warning:thermal_throttling"}},
		{"power violation counter", func(int) []Sample {
			return []Sample{{Metric: MetricPowerViolation, Value: 5e5}} // throttled half the time
		}, []string{"alert k8s/node/n1 warning:power_throttling"}},
		{"sw power cap is routine", func(int) []Sample {
			return []Sample{{Metric: MetricThrottleReasons, Value: ThrottleSWPowerCap | ThrottleGPUIdle}}
		}, nil},
		{"idle GPU, saturated network", func(int) []Sample {
			return []Sample{{Metric: MetricUtil, Value: 30}, {Metric: MetricNetRx, Pod: "ns/train-0", Value: 300e6}}
		}, []string{"alert k8s/node/n1 warning:network_bottleneck"}},
		{"busy GPU, saturated network", func(int) []Sample {
			return []Sample{{Metric: MetricUtil, Value: 90}, {Metric: MetricNetRx, Pod: "ns/train-0", Value: 300e6}}
		}, nil},
		{"idle GPU, quiet network", func(int) []Sample {
			return []Sample{{Metric: MetricUtil, Value: 10}, {Metric: MetricNetRx, Pod: "ns/train-0", Value: 1e6}}
		}, nil},
		{"idle GPU, busy PCIe, no network series", func(int) []Sample {
			return []Sample{{Metric: MetricUtil, Value: 20}, {Metric: MetricPCIeRx, Value: 2e9}}
		}, []string{"alert k8s/node/n1 warning:pcie_bottleneck"}},
		{"two throttled windows only", func(m int) []Sample {
			if m%3 == 0 {
				return nil
			}
			return []Sample{{Metric: MetricThrottleReasons, Value: ThrottleHWSlowdown}}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDet(t, Config{})
			var got []string
			for m := 1; m <= 10; m++ {
				for _, s := range tc.samples(m) {
					if s.Metric != MetricNetRx {
						s.Node, s.GPU, s.Pod = "n1", "0", "ns/train-0"
					}
					s.Ts = ms(m) - 1000
					got = append(got, summary(d.Observe(s))...)
				}
				got = append(got, summary(d.Tick(t0.Add(time.Duration(m)*time.Minute)))...)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestActivityStraggler(t *testing.T) {
	d := newDet(t, Config{StragglerCordon: true})
	var got []string
	for m := 1; m <= 20; m++ {
		for g := range 8 {
			v := 80.0 + float64(g%3)
			if g == 5 && m >= 8 {
				v = 50 // a GPU far less busy than its peers: smoothed 1.22, 1.30, 1.37 from minute 9
			}
			d.Observe(Sample{Metric: MetricUtil, Node: "n" + strconv.Itoa(g/4), GPU: strconv.Itoa(g % 4), Job: "ns/llm", Ts: ms(m) - 1000, Value: v})
		}
		for _, s := range summary(d.Tick(t0.Add(time.Duration(m) * time.Minute))) {
			got = append(got, strconv.Itoa(m)+" "+s)
		}
	}
	want := []string{
		"11 alert k8s/node/n1 warning:straggler",
		"11 taint_node k8s/node/n1 augur.io/gpu-unhealthy=straggler:PreferNoSchedule",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestStepStragglerEvidence: a worker that settles with its peers and
// then runs at twice their step time is a straggler, flagged at its third
// window at or above the ratio (smoothed 1.2, 1.36, 1.49).
func TestStepStragglerEvidence(t *testing.T) {
	d := newDet(t, Config{})
	var decs []*proto.Decision
	for m := 1; m <= 20; m++ {
		for w := range 5 {
			v := 1.0
			if w == 2 && m >= 8 {
				v = 2
			}
			d.ObserveStep("job", "w"+strconv.Itoa(w), "node-"+strconv.Itoa(w), ms(m), v)
		}
		decs = append(decs, d.Tick(t0.Add(time.Duration(m)*time.Minute))...)
	}
	if len(decs) != 1 {
		t.Fatalf("decisions %v", summary(decs))
	}
	dec := decs[0]
	if r := dec.GetEvidence().GetValues()["ratio"]; dec.GetTarget() != "k8s/node/node-2" || dec.GetEvidence().GetSignal() != "step_time" ||
		math.Abs(r-1.488) > 1e-9 || len(dec.GetEvidence().GetPeers()) != 5 {
		t.Errorf("decision %v", dec)
	}
	if want := proto.DecisionID(dec.GetRule(), dec.GetKind(), dec.GetTarget(), dec.GetDesired(), ms(10)); dec.GetId() != want {
		t.Errorf("id %s, want %s (window 10)", dec.GetId(), want)
	}
	if _, err := proto.MarshalJSON(dec); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"ratio 1":        {StragglerRatio: 1},
		"job share 2":    {JobShare: 2},
		"smoothing 2":    {StragglerSmoothing: 2},
		"two members":    {StragglerMinMembers: 2},
		"util 150":       {BottleneckUtil: 150},
		"throttle share": {ThrottleShare: 1.5},
		"negative hold":  {HoldDown: -time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c := Config{}
	if err := c.Validate(); err != nil || c.StragglerRatio != 1.2 || c.BottleneckRxBytes != 100e6 || c.TaintKey != "augur.io/gpu-unhealthy" {
		t.Errorf("defaults %+v %v", c, err)
	}
}

// feed runs a mixed workload through d for minutes [from, to).
func feed(d *Detector, from, to int) []*proto.Decision {
	var out []*proto.Decision
	for m := from; m < to; m++ {
		for g := range 6 {
			node := "n" + strconv.Itoa(g/2)
			v := 70.0
			if g == 3 && m > 5 {
				v = 30
			}
			out = append(out, d.Observe(Sample{Metric: MetricUtil, Node: node, GPU: strconv.Itoa(g % 2), Job: "j", Pod: "ns/p" + strconv.Itoa(g), Ts: ms(m), Value: v})...)
			out = append(out, d.Observe(Sample{Metric: MetricXID, Node: node, GPU: strconv.Itoa(g % 2), Ts: ms(m), Value: map[bool]float64{true: 79}[g == 0 && m >= 4 && m < 8]})...)
		}
		out = append(out, d.Observe(Sample{Metric: MetricNetRx, Pod: "ns/p3", Ts: ms(m), Value: 5e8})...)
		d.ObserveStep("j", "w1", "", ms(m), 1)
		out = append(out, d.Tick(t0.Add(time.Duration(m)*time.Minute))...)
	}
	return out
}

func TestCheckpointRoundTrip(t *testing.T) {
	// Members settle in 3 windows, before feed's GPU n1/1 slows down at
	// minute 6: a straggler.
	cfg := Config{HoldDown: 10 * time.Minute, StragglerSettle: 3}
	ref := newDet(t, cfg)
	want := feed(ref, 1, 40)

	a := newDet(t, cfg)
	got := feed(a, 1, 9)
	st, err := a.AppendBinary([]byte{0xff})
	if err != nil {
		t.Fatal(err)
	}
	b := newDet(t, cfg)
	if err := b.UnmarshalBinary(st[1:]); err != nil {
		t.Fatal(err)
	}
	again, _ := b.MarshalBinary()
	if !bytes.Equal(again, st[1:]) {
		t.Fatal("state differs after a round trip")
	}
	got = append(got, feed(b, 9, 40)...)
	if !slices.Equal(summary(got), summary(want)) {
		t.Fatalf("restored:\n%v\nwant:\n%v", summary(got), summary(want))
	}
	for i := range got {
		if got[i].GetId() != want[i].GetId() {
			t.Errorf("decision %d id differs", i)
		}
	}
	kinds := map[string]bool{}
	for _, dcs := range want {
		kinds[dcs.GetKind()+":"+dcs.GetDesired().GetAlert().GetReason()] = true
	}
	for _, k := range []string{"taint_node:", "untaint_node:", "alert:xid_79", "alert:straggler", "alert:network_bottleneck"} {
		if !kinds[k] {
			t.Errorf("scenario lacks %s: %v", k, summary(want))
		}
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	d := newDet(t, Config{})
	feed(d, 1, 6)
	good, _ := d.MarshalBinary()
	for name, b := range map[string][]byte{
		"empty":     {},
		"version":   append([]byte{stateVersion + 1}, good[1:]...),
		"version 0": append([]byte{0}, good[1:]...),
		"truncated": good[:len(good)-3],
		"trailing":  append(slices.Clone(good), 1),
	} {
		if err := d.UnmarshalBinary(b); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: error %v, want ErrBadState", name, err)
		}
	}
	after, _ := d.MarshalBinary()
	if !bytes.Equal(after, good) {
		t.Error("failed UnmarshalBinary changed the state")
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	d, _ := New(Config{})
	f.Add([]byte{})
	feed(d, 1, 8)
	st, _ := d.MarshalBinary()
	f.Add(st)
	for _, g := range wiretest.Goldens(f, wiretest.Dir) {
		f.Add(g.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := New(Config{MaxMembers: 1000})
		if err := d.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := d.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		// An earlier version re-encodes in the current one (checked below).
		if b[0] == stateVersion && !bytes.Equal(out, b) {
			t.Fatal("accepted state does not round-trip")
		}
		if b[0] != stateVersion {
			again := newDet(t, Config{MaxMembers: 1000})
			if err := again.UnmarshalBinary(out); err != nil {
				t.Fatalf("re-encoded version %d state: %v", b[0], err)
			}
			if out2, _ := again.AppendBinary(nil); !bytes.Equal(out2, out) {
				t.Fatalf("re-encoded version %d state does not round-trip", b[0])
			}
		}
		feed(d, 1, 3) // must not panic
	})
}

func BenchmarkObserve(b *testing.B) {
	d, _ := New(Config{})
	samples := make([]Sample, 0, 64)
	for g := range 64 {
		samples = append(samples, Sample{Metric: MetricUtil, Node: "node-" + strconv.Itoa(g/8), GPU: strconv.Itoa(g % 8), Job: "j", Value: 70})
	}
	for _, s := range samples {
		d.Observe(s)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		s := &samples[i%len(samples)]
		s.Ts++
		d.Observe(*s)
		i++
	}
}

func BenchmarkTick(b *testing.B) {
	d, _ := New(Config{})
	const gpus = 1024
	samples := make([]Sample, 0, gpus)
	for g := range gpus {
		samples = append(samples, Sample{Metric: MetricUtil, Node: "node-" + strconv.Itoa(g/8), GPU: strconv.Itoa(g % 8),
			Job: "job-" + strconv.Itoa(g/64), Value: 70 + float64(g%5)})
	}
	m := 0
	b.ReportAllocs()
	for b.Loop() {
		m++
		for _, s := range samples {
			s.Ts = ms(m)
			d.Observe(s)
		}
		d.Tick(t0.Add(time.Duration(m) * time.Minute))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/gpus, "ns/gpu")
}

// BenchmarkTickWorkers: a window of 1024 training workers' step times in
// 16 jobs (the straggler, group and drift checks), per worker.
func BenchmarkTickWorkers(b *testing.B) {
	d, _ := New(Config{})
	const workers = 1024
	m := 0
	b.ReportAllocs()
	for b.Loop() {
		m++
		for w := range workers {
			d.ObserveStep("job-"+strconv.Itoa(w/64), "w"+strconv.Itoa(w), "node-"+strconv.Itoa(w/8), ms(m), 1+float64(w%5)/50)
		}
		d.Tick(t0.Add(time.Duration(m) * time.Minute))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/workers, "ns/worker")
}

// TestBimodalJobIsOneJobAlert: when half of a job's workers run twice as
// slow as the other half from the first iteration (two kinds of placement
// or hardware), that is one job-level alert naming both groups, and no
// node is tainted or cordoned even with StragglerCordon; the same for GPU
// activity. A single straggler in the same job shape is still flagged on
// its own (TestStepStragglerEvidence, TestActivityStraggler).
func TestBimodalJobIsOneJobAlert(t *testing.T) {
	// At 1.25x the median falls between the groups and neither is
	// StragglerRatio off it: the groups are seen when the workers settle.
	for _, f := range []float64{2.05, 1.25} {
		t.Run(fmt.Sprintf("step time %.2fx", f), func(t *testing.T) { stepTimeGroups(t, f) })
	}
	t.Run("gpu activity", func(t *testing.T) {
		d := newDet(t, Config{StragglerCordon: true})
		var decs []*proto.Decision
		for m := 1; m <= 20; m++ {
			for g := range 8 {
				v := 90.0
				if g >= 4 {
					v = 45 // the second node's GPUs, half as busy from the start
				}
				d.Observe(Sample{Metric: MetricUtil, Node: "n" + strconv.Itoa(g/4), GPU: strconv.Itoa(g % 4), Job: "ns/llm", Ts: ms(m) - 1000, Value: v})
			}
			decs = append(decs, d.Tick(t0.Add(time.Duration(m)*time.Minute))...)
		}
		for _, dec := range decs {
			if dec.GetKind() != proto.KindAlert || dec.GetTarget() != "job/ns/llm" {
				t.Fatalf("decisions %v: want only the job-level alert", summary(decs))
			}
		}
		if len(decs) != 1 {
			t.Fatalf("decisions %v, want one", summary(decs))
		}
	})
}

// stepTimeGroups: ten workers, the odd ones slower by f from the start.
func stepTimeGroups(t *testing.T, f float64) {
	d := newDet(t, Config{StragglerCordon: true})
	var decs []*proto.Decision
	for m := 1; m <= 30; m++ {
		for w := range 10 {
			v := 1.0
			if w%2 == 1 {
				v = f
			}
			d.ObserveStep("train", "w"+strconv.Itoa(w), "node-"+strconv.Itoa(w), ms(m), v)
		}
		decs = append(decs, d.Tick(t0.Add(time.Duration(m)*time.Minute))...)
	}
	if got := summary(decs); !slices.Equal(got, []string{"alert job/train warning:slow_group"}) {
		t.Fatalf("decisions %v, want one job-level alert", got)
	}
	s := decs[0].GetSummary()
	for _, want := range []string{"5 of 10", "w1, w3, w5, w7, w9", "w0, w2, w4, w6, w8", "nothing is cordoned"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
}

// TestJobShapes: ten workers with step-time noise (uniform ±10% or ±20%,
// a fixed seed), some of them slower by a factor from the first minute or
// from minute 20 (after the members settled). A share of 30% or more slow,
// at any onset, or a minority slow from the start, is one job-level alert
// and no node action; a minority that falls behind after settling is a
// straggler on its node, also when three other workers were slow from the
// start.
func TestJobShapes(t *testing.T) {
	const job = "alert job/train warning:slow_group"
	straggler := func(n int) []string {
		return []string{"alert k8s/node/node-" + strconv.Itoa(n) + " warning:straggler",
			"taint_node k8s/node/node-" + strconv.Itoa(n) + " augur.io/gpu-unhealthy=straggler:PreferNoSchedule"}
	}
	type shape struct {
		slow          []int // workers slower by factor from onset
		factor        float64
		onset         int
		lateStraggler int // a worker 2x slower than its shape from minute 30 (-1: none)
	}
	cases := map[string]struct {
		s    shape
		want []string
	}{
		"3 of 10 from the start":    {shape{[]int{0, 1, 2}, 1.5, 1, -1}, []string{job}},
		"3 of 10 from minute 20":    {shape{[]int{0, 1, 2}, 1.5, 20, -1}, []string{job}},
		"4 of 10 2x from the start": {shape{[]int{0, 1, 2, 3}, 2, 1, -1}, []string{job}},
		"4 of 10 2x from minute 20": {shape{[]int{0, 1, 2, 3}, 2, 20, -1}, []string{job}},
		"half 1.5x from the start":  {shape{[]int{0, 1, 2, 3, 4}, 1.5, 1, -1}, []string{job}},
		"half 2x from minute 20":    {shape{[]int{0, 1, 2, 3, 4}, 2, 20, -1}, []string{job}},
		"half 2x from the start":    {shape{[]int{0, 1, 2, 3, 4}, 2, 1, -1}, []string{job}},
		// A worker of the slow group falls behind it: behind its peers
		// and its own history, a straggler in a job of two groups.
		"half 2x from the start, then a straggler": {shape{[]int{0, 1, 2, 3, 4}, 2, 1, 0}, append([]string{job}, straggler(0)...)},
		// A worker of the fast group falls behind it, to the slow
		// group's level: never off the median (which moves to the slow
		// group), but off its own level in its group.
		"half 2x from the start, then a fast one 2x": {shape{[]int{0, 1, 2, 3, 4}, 2, 1, 8}, append([]string{job}, straggler(8)...)},
		"7 of 10 2x from the start":                  {shape{[]int{0, 1, 2, 3, 4, 5, 6}, 2, 1, -1}, []string{job}},
		"1 of 10 from the start":                     {shape{[]int{0}, 2, 1, -1}, []string{job}},
		"1 of 10 from minute 20":                     {shape{[]int{0}, 1.5, 20, -1}, straggler(0)},
		"2 of 10 from minute 20":                     {shape{[]int{0, 1}, 2, 20, -1}, append(straggler(0), straggler(1)...)},
		"3 from the start, then a straggler":         {shape{[]int{0, 1, 2}, 2, 1, 8}, append([]string{job}, straggler(8)...)},
		// The median is the slow group's: the others read fast, a group
		// of their own; none is ever a straggler.
		"7 of 10 1.25x from the start": {shape{[]int{0, 1, 2, 3, 4, 5, 6}, 1.25, 1, -1}, []string{job}},
		// The median falls between the groups, neither is 1.2x off it:
		// two groups since the start all the same (judgeGroups).
		"half 1.25x from the start": {shape{[]int{0, 1, 2, 3, 4}, 1.25, 1, -1}, []string{job}},
		// Groups forming later, this close: every worker moves off its
		// own history, the slow ones by 1.12x, the others by 0.89x
		// (judgeDrift).
		"half 1.25x from minute 20":    {shape{[]int{0, 1, 2, 3, 4}, 1.25, 20, -1}, []string{job}},
		"4 of 10 1.35x from minute 20": {shape{[]int{0, 1, 2, 3}, 1.35, 20, -1}, []string{job}},
		// The whole job slower: no worker moves against the others.
		"all 1.5x from minute 20": {shape{[]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1.5, 20, -1}, nil},
	}
	for name, c := range cases {
		for _, noise := range []float64{0, 0.1, 0.2} {
			t.Run(fmt.Sprintf("%s noise %.1f", name, noise), func(t *testing.T) {
				d := newDet(t, Config{StragglerCordon: true})
				got := playJob(d, rand.New(rand.NewPCG(1, 2)), 1, 60, noise, func(w, m int) float64 {
					v := slower(c.s.slow, c.s.factor, c.s.onset)(w, m)
					if w == c.s.lateStraggler && m >= 30 {
						v *= 2
					}
					return v
				})
				if !slices.Equal(got, c.want) {
					t.Errorf("decisions %v, want %v", got, c.want)
				}
			})
		}
	}
}

// TestStragglersOnOneNode: three of a node's four GPUs fall behind the job
// together after it settled (a quarter of the job's twelve GPUs, under
// JobShare): one finding about the node, one alert naming the three and
// one taint, not three of each.
func TestStragglersOnOneNode(t *testing.T) {
	d := newDet(t, Config{StragglerCordon: true})
	rng := rand.New(rand.NewPCG(1, 2))
	var decs []*proto.Decision
	for m := 1; m <= 40; m++ {
		for g := range 12 {
			v := 90.0
			if g < 3 && m >= 20 {
				v = 45
			}
			v *= 1 + 0.05*(2*rng.Float64()-1)
			d.Observe(Sample{Metric: MetricUtil, Node: "n" + strconv.Itoa(g/4), GPU: strconv.Itoa(g % 4), Job: "ns/llm", Ts: ms(m) - 1000, Value: v})
		}
		decs = append(decs, d.Tick(t0.Add(time.Duration(m)*time.Minute))...)
	}
	want := []string{"alert k8s/node/n0 warning:straggler", "taint_node k8s/node/n0 augur.io/gpu-unhealthy=straggler:PreferNoSchedule"}
	if got := summary(decs); !slices.Equal(got, want) {
		t.Fatalf("decisions %v, want %v", got, want)
	}
	if s := decs[0].GetSummary(); !strings.Contains(s, "n0/gpu0, n0/gpu1, n0/gpu2 in job ns/llm are stragglers on node n0") {
		t.Errorf("summary %q", s)
	}
	if n := decs[0].GetEvidence().GetValues()["stragglers"]; n != 3 {
		t.Errorf("evidence stragglers %v, want 3", n)
	}
}

// playJob plays a 10-worker job from minute from to minute to (inclusive):
// worker w's step time at minute m is step(w, m) with uniform noise of
// ±noise from rng. It returns the decisions' summaries.
func playJob(d *Detector, rng *rand.Rand, from, to int, noise float64, step func(w, m int) float64) []string {
	var got []string
	for m := from; m <= to; m++ {
		for w := range 10 {
			v := step(w, m) * (1 + noise*(2*rng.Float64()-1))
			d.ObserveStep("train", "w"+strconv.Itoa(w), "node-"+strconv.Itoa(w), ms(m), v)
		}
		got = append(got, summary(d.Tick(t0.Add(time.Duration(m)*time.Minute)))...)
	}
	return got
}

// slower is the step time of a job whose workers in slow are slower by
// factor from minute onset.
func slower(slow []int, factor float64, onset int) func(w, m int) float64 {
	return func(w, m int) float64 {
		if slices.Contains(slow, w) && m >= onset {
			return factor
		}
		return 1
	}
}

// TestLateGroupsSurviveRestore: a job whose half slows down by 1.25x at
// minute 20 gets its one job-level alert; restored from a checkpoint after
// it, the workers are still named (grouped) and nothing more is said.
func TestLateGroupsSurviveRestore(t *testing.T) {
	step := slower([]int{0, 1, 2, 3, 4}, 1.25, 20)
	ref := newDet(t, Config{StragglerCordon: true})
	want := playJob(ref, rand.New(rand.NewPCG(3, 4)), 1, 90, 0.1, step)
	if !slices.Equal(want, []string{"alert job/train warning:slow_group"}) {
		t.Fatalf("decisions %v, want one job-level alert", want)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	a := newDet(t, Config{StragglerCordon: true})
	got := playJob(a, rng, 1, 45, 0.1, step)
	st, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b := newDet(t, Config{StragglerCordon: true})
	if err := b.UnmarshalBinary(st); err != nil {
		t.Fatal(err)
	}
	for i := range a.workers {
		if !a.workers[i].st.grouped || b.workers[i].st != a.workers[i].st {
			t.Fatalf("worker %s: restored %+v, was %+v", a.workers[i].name, b.workers[i].st, a.workers[i].st)
		}
	}
	got = append(got, playJob(b, rng, 46, 90, 0.1, step)...)
	if !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
}

// TestSteadyJobIsQuiet: jobs with no slow worker, step times ±10% from
// window to window (the shared PAI job's workers are ±6% one standard
// deviation), 10 hours each, 4 and 10 workers: nothing is said. One window
// three times slower (a checkpoint written) is not a straggler either.
func TestSteadyJobIsQuiet(t *testing.T) {
	for seed := range uint64(10) {
		for _, n := range []int{4, 10} {
			d := newDet(t, Config{StragglerCordon: true})
			rng := rand.New(rand.NewPCG(seed, 7))
			for m := 1; m <= 600; m++ {
				for w := range n {
					v := 1 + 0.1*(2*rng.Float64()-1)
					if w == 1 && m%100 == 50 {
						v *= 3
					}
					d.ObserveStep("train", "w"+strconv.Itoa(w), "node-"+strconv.Itoa(w), ms(m), v)
				}
				if got := summary(d.Tick(t0.Add(time.Duration(m) * time.Minute))); got != nil {
					t.Fatalf("seed %d, %d workers, minute %d: %v", seed, n, m, got)
				}
			}
		}
	}
}
