package stream

import (
	"testing"

	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/proto"
)

// grayRules is a gray_failure rule over probe durations with the window w.
func grayRules(w string) string {
	return `
rules:
- name: checkout-zones
  gray_failure:
    selector: 'probe_duration_seconds{service="checkout"}'
    zone_label: zone_id
    min_requests: 1
    resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/checkout/1
    window: ` + w + `
`
}

// feedProbes feeds scrapes every 15 s from ts0 (inclusive) to ts1
// (exclusive): three zones of two instances, az1 ten times slower when slow.
// It returns the decisions.
func feedProbes(t *testing.T, sh *shard, ts0, ts1 int64, slow bool) []*proto.Decision {
	var out []*proto.Decision
	for ts := ts0; ts < ts1; ts += 15_000 {
		var fs []func(*proto.BlockBuilder)
		for _, z := range []string{"az1", "az2", "az3"} {
			for _, inst := range []string{"i1", "i2"} {
				v := 0.1
				if slow && z == "az1" {
					v = 1.0
				}
				l := lbl("__name__", "probe_duration_seconds", "service", "checkout", "zone_id", z, "instance", z+inst)
				fs = append(fs, add(l, []int64{ts}, []float64{v}))
			}
		}
		sh.processBlock(block(t, "", fs...))
		out = append(out, sh.out...)
		sh.out = nil
		// The detector's last judged window, read from its checkpoint.
		b, err := sh.groups[0].det.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		r := wire.NewReader(b[1:])
		if end := wire.NewReader(r.Blob()[1:]).Int64(); end > sh.maxTs+60_000 {
			t.Fatalf("after the sample at %d the detector judged a window ending at %d, ahead of its data", ts, end)
		}
	}
	return out
}

// TestGrayWindowChangedAcrossRestore: a gray_failure rule's window changed
// from 15s to 1m between two runs. The restored group closed windows on
// the old grid and the detector judged windows ever further ahead of its
// data, stamping decisions minutes after the newest sample.
func TestGrayWindowChangedAcrossRestore(t *testing.T) {
	sh := newShard(0, rulesEnv(t, grayRules("15s")))
	feedProbes(t, sh, 15_000, 330_000, false)
	log, err := sh.appendCheckpoint(nil)
	if err != nil {
		t.Fatal(err)
	}
	re := newShard(0, rulesEnv(t, grayRules("1m")))
	for _, r := range log {
		if err := re.apply(r.key, r.value); err != nil {
			t.Fatal(err)
		}
	}
	re.finishRestore()
	if g := re.groups[0]; g.nextClose%60_000 != 0 {
		t.Errorf("restored next close %d is off the 1-m grid", g.nextClose)
	}
	ds := feedProbes(t, re, 330_000, 915_000, true)
	shifted := false
	for _, d := range ds {
		if at := d.CreatedAt.AsTime().UnixMilli(); at > 900_000 {
			t.Errorf("decision created at %d, after the newest sample (900000): %s", at, d.Summary)
		}
		shifted = shifted || d.Kind == proto.KindZonalShift
	}
	if !shifted {
		t.Errorf("no zonal_shift for az1 ten times slower for 10 min; %d decisions", len(ds))
	}
}
