package stream

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/internal/wire"
	"github.com/augur-ops/augur/internal/wire/wiretest"
	"github.com/augur-ops/augur/proto"
)

// The golden checkpoints of the state records (testdata/checkpoint/v<N>.bin,
// see package wiretest) are a partition's snapshot: every record as
// wire.AppendBlob of its key, then of its value.

// goldenRulesYAML is testRulesYAML when the goldens were written: the
// records of rules that no longer exist are not restored, so the goldens
// keep their rules.
const goldenRulesYAML = `
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

// goldenEnv returns the env of the golden checkpoints' rules.
func goldenEnv(t *testing.T) *env {
	t.Helper()
	return rulesEnv(t, goldenRulesYAML)
}

// rulesEnv returns the env of rulesYAML with a lateness of 5 s and an idle
// timeout of a minute.
func rulesEnv(t *testing.T, rulesYAML string) *env {
	t.Helper()
	set, err := rules.Parse(strings.NewReader(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Brokers: []string{"unused:9092"}, Rules: set, SigningKey: testKey,
		AllowedLateness: 5 * time.Second, IdleTimeout: time.Minute}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return mustEnv(t, &cfg)
}

// goldenShard returns the fixed test state of the golden checkpoints: the
// synthetic workload's first 170 scrapes, all in one partition (zone
// use1-az2 degraded since scrape 150).
func goldenShard(t *testing.T) *shard {
	t.Helper()
	e := goldenEnv(t)
	in := genInput(t, e.rules, 1, 170)
	sh := newShard(0, e)
	var rd proto.BlockReader
	for _, v := range in[0] {
		if err := rd.Reset(v); err != nil {
			t.Fatal(err)
		}
		sh.processBlock(&rd)
	}
	return sh
}

func appendRecords(b []byte, recs []stateRecord) []byte {
	for _, r := range recs {
		b = wire.AppendBlob(b, r.key)
		b = wire.AppendBlob(b, r.value)
	}
	return b
}

func parseRecords(t testing.TB, b []byte) []stateRecord {
	t.Helper()
	var recs []stateRecord
	for r := wire.NewReader(b); len(r.Rest()) > 0; {
		k, v := r.Blob(), r.Blob()
		if r.Err() != nil {
			t.Fatalf("record %d: %v", len(recs), r.Err())
		}
		recs = append(recs, stateRecord{key: k, value: v})
	}
	return recs
}

func snapshotFile(t *testing.T, sh *shard) []byte {
	t.Helper()
	recs, err := sh.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return appendRecords(nil, recs)
}

// TestCheckpointGoldens restores the state records of every version in
// testdata/checkpoint (-update writes the golden of a new version) and
// checks they hold goldenShard. The records embed the detectors' and the
// forecaster bank's checkpoints, whose goldens are in their packages: here
// they must restore (the stream starts a detector over, silently, when its
// state does not decode).
func TestCheckpointGoldens(t *testing.T) {
	wiretest.Check(t, wiretest.Format{
		Version: stateVersion,
		Fresh:   func(t *testing.T) []byte { return snapshotFile(t, goldenShard(t)) },
		Restore: func(t *testing.T, data []byte) []byte {
			recs := parseRecords(t, data)
			for _, r := range recs {
				if len(r.value) == 0 || r.value[0] != byte(stateVersion) {
					t.Fatalf("record %q of version %d, want %d", r.key, r.value[0], stateVersion)
				}
			}
			sh := newShard(0, goldenEnv(t))
			for _, r := range recs {
				if err := sh.apply(r.key, r.value); err != nil {
					t.Fatalf("record %q: %v", r.key, err)
				}
			}
			sh.finishRestore()
			checkGoldenShard(t, sh)
			snap, err := sh.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			// The records that embed no other checkpoint (the meta record,
			// series without a detector) re-encode to their own bytes.
			again := map[string][]byte{}
			for _, r := range snap {
				again[string(r.key)] = r.value
			}
			// A series no rule reads restores as a row but is no longer
			// checkpointed (shard.durable).
			plain, unread := 0, 0
			for _, r := range recs {
				row, ok := sh.index[string(r.key[1:])]
				if r.key[0] == keySeries && !ok {
					t.Errorf("record %q did not restore its series", r.key)
					continue
				}
				if r.key[0] == keySeries && !sh.durable(row) {
					unread++
					if again[string(r.key)] != nil {
						t.Errorf("record %q of a series no rule reads is written again", r.key)
					}
					continue
				}
				if r.key[0] == keyMeta || r.key[0] == keySeries && sh.det[row] == nil {
					plain++
					if !bytes.Equal(again[string(r.key)], r.value) {
						t.Errorf("record %q re-encodes to %x, want %x", r.key, again[string(r.key)], r.value)
					}
				}
			}
			if plain != 14 || unread != 12 {
				t.Errorf("%d records without an embedded checkpoint, want 14 (13 series and the meta record); %d of series no rule reads, want 12", plain, unread)
			}
			return appendRecords(nil, snap)
		},
	}, *update)
}

// checkGoldenShard checks sh holds what goldenShard fed it.
func checkGoldenShard(t *testing.T, sh *shard) {
	t.Helper()
	const last = 1_700_000_169_000
	if len(sh.keys) != 31 || len(sh.groups) != 3 || !sh.hasMax || sh.maxTs != last || sh.nextSweep != last+6000 {
		t.Fatalf("%d series, %d groups, max time %d (%v), next sweep %d; want 31, 3, %d, %d",
			len(sh.keys), len(sh.groups), sh.maxTs, sh.hasMax, sh.nextSweep, last, last+6000)
	}
	watched := 0
	for row, k := range sh.keys {
		want := fHasPrev
		if strings.Contains(k, "_total") {
			want |= fCounter
		}
		if sh.lastTs[row] != last || sh.flags[row] != want {
			t.Errorf("series %q: last sample at %d, flags %b; want %d, %b", k, sh.lastTs[row], sh.flags[row], last, want)
		}
		if d := sh.det[row]; d != nil {
			watched++
			if bytes.Equal(d.AppendBinary(nil), sh.env.newDetector(sh.watch[row]).AppendBinary(nil)) {
				t.Errorf("series %q: anomaly state not restored", k)
			}
		}
	}
	if watched != 6 {
		t.Errorf("%d series watched, want the 6 latency series", watched)
	}
	for _, tt := range []struct {
		lbls []proto.Label
		v    float64
	}{
		{lbl("__name__", "http_requests_total", "namespace", "payment", "pod", "payment-2", "service", "payment"), 1545},
		{lbl("__name__", "request_latency_seconds", "instance", "api-0"), 0.09786325852167234},
		{lbl("__name__", "probe_duration_seconds", "service", "checkout", "zone_id", "use1-az2", "pod", "checkout-1-0"), 0.9},
	} {
		row, ok := sh.index[string(proto.AppendSeriesKey(nil, "", tt.lbls))]
		if !ok || sh.lastV[row] != tt.v {
			t.Errorf("series %v: restored %v with last value %v, want %v", tt.lbls, ok, sh.lastV[row], tt.v)
		}
	}
	for _, g := range sh.groups {
		name := sh.env.rules.Rule(g.rule).Name
		switch name {
		case "payment-rps", "checkout-floor":
			want := map[string][3]int{"payment-rps": {38, 4, 15}, "checkout-floor": {30, 15, 15}}[name]
			if g.fc == nil || int(g.last) != want[0] || len(g.sc.Window()) != want[1] || g.fc.Steps() != int64(want[2]) ||
				len(g.windows) != 1 || !g.opened {
				t.Errorf("group %s: last %d replicas, %d recommendations, %d windows, opened %v; want %v, 1 window, opened",
					name, g.last, len(g.sc.Window()), len(g.windows), g.opened, want)
			}
		case "checkout-zones":
			_, _, vals, _ := rules.ParseGroupKey([]byte(g.key), nil)
			fresh, err := sh.env.newGroup(sh.env.rules.Rule(g.rule), g.tenant, vals).AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := g.det.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if g.nextClose != last+1000 || bytes.Equal(got, fresh) {
				t.Errorf("group %s: next close %d, detector restored %v; want %d, true", name, g.nextClose, !bytes.Equal(got, fresh), last+1000)
			}
		default:
			t.Errorf("group %q of rule %s", g.key, name)
		}
	}
}

// TestGroupRecordEndingWithFlags: group records written before the last
// scale down was added end with the flags byte (the same stateVersion).
// The byte was read again as the last decision, and the record failed as
// truncated: the whole partition was not restored.
func TestGroupRecordEndingWithFlags(t *testing.T) {
	cfg := testConfig(t)
	e := mustEnv(t, &cfg)
	sh := newShard(0, e)
	key := string(cfg.Rules.GroupKey(nil, 0, "", nil))
	gi := sh.newGroup(key, 0, "")
	sh.groups[gi].opened = true
	sh.groups[gi].dirty = true
	recs, err := sh.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if len(r.key) == 0 || r.key[0] != keyGroup {
			continue
		}
		// After the flags (opened): lastDown, last, lastAt, an empty
		// lastID, lastExp and closed, each a zero byte.
		if !bytes.HasSuffix(r.value, []byte{groupOpened, 0, 0, 0, 0, 0, 0}) {
			t.Fatalf("group record ends % x, want the flags and six zero fields", r.value[max(len(r.value)-8, 0):])
		}
		back := newShard(0, e)
		if err := back.apply(r.key, r.value[:len(r.value)-6]); err != nil {
			t.Fatalf("a group record ending with the flags byte: %v", err)
		}
		if g := back.groups[len(back.groups)-1]; !g.opened || g.last != 0 || g.closed != 0 {
			t.Errorf("restored opened %v, last %d, closed %d; want opened, 0, 0", g.opened, g.last, g.closed)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no group record in the snapshot")
	}
}
