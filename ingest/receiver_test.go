package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

const testPartitions = 4

// testEnv is a receiver in front of a kfake cluster, or of the real brokers
// named by AUGUR_KAFKA_BROKERS.
type testEnv struct {
	fake   *kfake.Cluster
	seeds  []string
	topic  string
	client *kgo.Client
	recv   *Receiver
	srv    *httptest.Server
	reg    *prometheus.Registry
	now    time.Time
}

var topicSeq atomic.Int64

// testHTTP bounds every test request, so a hang fails the test instead of
// stalling the run.
var testHTTP = &http.Client{Timeout: 20 * time.Second}

func newEnv(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	if b := os.Getenv("AUGUR_KAFKA_BROKERS"); b != "" {
		e.seeds = strings.Split(b, ",")
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		e.fake = c
		e.seeds = c.ListenAddrs()
	}
	e.topic = fmt.Sprintf("augur.samples.test.%d.%d", time.Now().UnixNano(), topicSeq.Add(1))
	cfg := Config{Topic: e.topic, Partitions: testPartitions, ProduceTimeout: 3 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	client, err := kgo.NewClient(append(ClientOptions(cfg), kgo.SeedBrokers(e.seeds...), kgo.MetadataMinAge(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e.client = client
	adm := kadm.NewClient(client)
	if _, err := EnsureTopic(t.Context(), adm, e.topic, testPartitions, 1, 4<<20); err != nil {
		t.Fatal(err)
	}
	e.reg = prometheus.NewRegistry()
	e.recv, err = New(cfg, client, rules.Empty(), e.reg, slog.New(slog.DiscardHandler), func() time.Time { return e.now })
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.recv)
	t.Cleanup(e.srv.Close)
	return e
}

func encodeV1(t testing.TB, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func encodeV2(t testing.TB, req *writev2.Request) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

type post struct {
	body    []byte
	ctype   string
	enc     string
	headers map[string]string
}

// retryUntil posts body again, as a sender retrying it, until the
// receiver answers status (at most 20 tries, 100 ms apart), and fails the
// test when it never does.
func (e *testEnv) retryUntil(t *testing.T, body []byte, status int) {
	t.Helper()
	for range 20 {
		resp := e.post(t, post{body: body})
		resp.Body.Close()
		if resp.StatusCode == status {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the retries never answered %d", status)
}

func (e *testEnv) post(t *testing.T, p post) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/api/v1/write", bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	if p.ctype == "" {
		p.ctype = "application/x-protobuf"
	}
	if p.enc == "" {
		p.enc = "snappy"
	}
	req.Header.Set("Content-Type", p.ctype)
	req.Header.Set("Content-Encoding", p.enc)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range p.headers {
		req.Header.Set(k, v)
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gotSeries is one series read back from Kafka.
type gotSeries struct {
	partition int32
	tenant    string
	labels    []proto.Label
	ts        []int64
	vs        []float64
	md        proto.Metadata
	hists     int
	exemplars int
	ref       uint32 // number in the partition's series dictionary, 0 none
	reference bool   // the row referred to its series by number
}

// readAll consumes the test topic from the start until it has read want
// records or the deadline passes.
func (e *testEnv) readAll(t *testing.T, wantRecords int) []gotSeries {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(e.seeds...), kgo.ConsumeTopics(e.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out []gotSeries
	var r proto.BlockReader
	var names proto.SeriesNames
	records := 0
	for records < wantRecords {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records before the deadline", records, wantRecords)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			records++
			if err := r.Reset(rec.Value); err != nil {
				t.Fatalf("record %d/%d: %v", rec.Partition, rec.Offset, err)
			}
			for i := range r.Len() {
				ts, vs := r.Samples(i)
				lbls, ok := names.AppendLabels(nil, rec.Partition, &r, i)
				if !ok {
					t.Fatalf("record %d/%d: series %d refers to number %d, not defined before", rec.Partition, rec.Offset, i, r.Ref(i))
				}
				out = append(out, gotSeries{
					partition: rec.Partition, tenant: r.Tenant(),
					labels: cloneLabels(lbls),
					ts:     slices.Clone(ts), vs: slices.Clone(vs), md: cloneMD(r.Metadata(i)),
					hists: r.NumHistograms(i), exemplars: r.NumExemplars(i),
					ref: r.Ref(i), reference: r.IsReference(i),
				})
			}
		})
	}
	return out
}

func cloneLabels(ls []proto.Label) []proto.Label {
	out := make([]proto.Label, len(ls))
	for i, l := range ls {
		out[i] = proto.Label{Name: strings.Clone(l.Name), Value: strings.Clone(l.Value)}
	}
	return out
}

func cloneMD(m proto.Metadata) proto.Metadata {
	return proto.Metadata{Type: strings.Clone(m.Type), Help: strings.Clone(m.Help), Unit: strings.Clone(m.Unit)}
}

func lbl(ss ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(ss); i += 2 {
		out = append(out, prompb.Label{Name: ss[i], Value: ss[i+1]})
	}
	return out
}

func toProto(ls []prompb.Label) []proto.Label {
	var out []proto.Label
	for _, l := range ls {
		out = append(out, proto.Label{Name: l.Name, Value: l.Value})
	}
	return out
}

func manySeries(n int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  lbl("__name__", "http_requests_total", "instance", fmt.Sprintf("10.0.%d.%d:9100", i/250, i%250), "job", "api"),
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
		})
	}
	return req
}

func TestWriteV1RoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.now.UnixMilli()
	req := manySeries(200, ts)
	req.Timeseries[0].Samples = append(req.Timeseries[0].Samples, prompb.Sample{Value: math.Float64frombits(0x7ff0000000000002), Timestamp: ts + 15000})
	resp := e.post(t, post{body: encodeV1(t, req), headers: map[string]string{"X-Scope-OrgID": "team-a"}})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", resp.StatusCode, body(t, resp))
	}
	got := e.readAll(t, testPartitions)
	if len(got) != len(req.Timeseries) {
		t.Fatalf("read %d series, want %d", len(got), len(req.Timeseries))
	}
	byInstance := map[string]gotSeries{}
	for _, g := range got {
		if g.tenant != "team-a" {
			t.Fatalf("tenant %q", g.tenant)
		}
		key, _ := rules.Empty().RoutingKey(nil, "team-a", g.labels)
		if p := rules.Partition(key, testPartitions); p != g.partition {
			t.Errorf("series %v on partition %d, routing says %d", g.labels, g.partition, p)
		}
		byInstance[g.labels[1].Value] = g
	}
	for _, s := range req.Timeseries {
		g, ok := byInstance[s.Labels[1].Value]
		if !ok {
			t.Fatalf("series %v missing", s.Labels)
		}
		if !slices.Equal(g.labels, toProto(s.Labels)) || len(g.ts) != len(s.Samples) {
			t.Fatalf("series %v read back as %v with %d samples", s.Labels, g.labels, len(g.ts))
		}
		for i, smp := range s.Samples {
			if g.ts[i] != smp.Timestamp || math.Float64bits(g.vs[i]) != math.Float64bits(smp.Value) {
				t.Fatalf("series %v sample %d: (%d, %x), want (%d, %x)", s.Labels, i, g.ts[i], math.Float64bits(g.vs[i]), smp.Timestamp, math.Float64bits(smp.Value))
			}
		}
	}
	if v := testutil.ToFloat64(e.recv.m.samples.WithLabelValues("1")); v != 201 {
		t.Errorf("samples metric %v, want 201", v)
	}
}

func TestWriteV2CarriesEverything(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.now.UnixMilli()
	st := writev2.NewSymbolTable()
	h := writev2.Histogram{
		Count: &writev2.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 0,
		PositiveSpans: []writev2.BucketSpan{{Offset: 0, Length: 2}}, PositiveDeltas: []int64{1, 1},
		Timestamp: ts,
	}
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "http_requests_total", "job", "api"), nil),
			Samples:    []writev2.Sample{{Value: 10, Timestamp: ts, StartTimestamp: ts - 60000}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("trace_id", "abc"), nil), Value: 1, Timestamp: ts}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests."), UnitRef: st.Symbolize("requests")},
		},
		{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "rpc_seconds", "job", "api"), nil),
			Histograms: []writev2.Histogram{h},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
		},
	}}
	req.Symbols = st.Symbols()
	resp := e.post(t, post{body: encodeV2(t, req), ctype: "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", resp.StatusCode, body(t, resp))
	}
	for h, want := range map[string]string{"Samples": "1", "Histograms": "1", "Exemplars": "1"} {
		if got := resp.Header.Get("X-Prometheus-Remote-Write-" + h + "-Written"); got != want {
			t.Errorf("%s written header %q, want %q", h, got, want)
		}
	}
	got := e.readAllSeries(t, 2)
	slices.SortFunc(got, func(a, b gotSeries) int { return strings.Compare(a.labels[0].Value, b.labels[0].Value) })
	if got[0].md != (proto.Metadata{Type: "counter", Help: "Requests.", Unit: "requests"}) || got[0].exemplars != 1 || len(got[0].ts) != 1 {
		t.Errorf("counter series read back as %+v", got[0])
	}
	if got[1].md.Type != "histogram" || got[1].hists != 1 {
		t.Errorf("histogram series read back as %+v", got[1])
	}
}

// readAllSeries reads until n series arrived (records per partition vary).
func (e *testEnv) readAllSeries(t *testing.T, n int) []gotSeries {
	t.Helper()
	for recs := 1; recs <= testPartitions; recs++ {
		got := e.readAll(t, recs)
		if len(got) >= n {
			return got
		}
	}
	t.Fatalf("fewer than %d series in the topic", n)
	return nil
}

// TestSeriesReferences: the first request defines each series' number, the
// next ones refer to it by number only, and a reader resolves them to the
// same labels (proto/block.go, "Series references").
func TestSeriesReferences(t *testing.T) {
	e := newEnv(t, nil)
	const n = 100
	for k := range 3 {
		resp := e.post(t, post{body: encodeV1(t, manySeries(n, e.now.UnixMilli()+int64(k)*15000))})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("request %d: status %d: %s", k, resp.StatusCode, body(t, resp))
		}
	}
	got := e.readAll(t, 3*testPartitions)
	if len(got) != 3*n {
		t.Fatalf("%d rows, want %d", len(got), 3*n)
	}
	numbers := map[string]uint32{}
	for _, g := range got {
		key := fmt.Sprint(g.labels)
		if g.ref == 0 {
			t.Fatalf("%s: no series number", key)
		}
		first := g.ts[0] == e.now.UnixMilli()
		if g.reference == first {
			t.Fatalf("%s at %d: reference %v, want a definition first and references after", key, g.ts[0], g.reference)
		}
		if want, ok := numbers[key]; ok && want != g.ref {
			t.Fatalf("%s: number %d, then %d", key, want, g.ref)
		}
		numbers[key] = g.ref
		if len(g.labels) != 3 || g.labels[0].Value != "http_requests_total" {
			t.Fatalf("labels %v, want those of manySeries", g.labels)
		}
	}
	if len(numbers) != n {
		t.Fatalf("%d series, want %d", len(numbers), n)
	}
}

// TestSeriesRefsPerTenant: the same labels under two tenants are two
// series, with two numbers, each resolved to its own tenant's rows.
func TestSeriesRefsPerTenant(t *testing.T) {
	e := newEnv(t, nil)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels: lbl("__name__", "up", "job", "api"), Samples: []prompb.Sample{{Value: 1, Timestamp: e.now.UnixMilli()}},
	}}}
	// More tenants than partitions: some share a partition and its
	// dictionary. The first tenant writes again last.
	var tenants []string
	for i := range testPartitions + 1 {
		tenants = append(tenants, fmt.Sprintf("team-%d", i))
	}
	tenants = append(tenants, tenants[0])
	for _, tenant := range tenants {
		resp := e.post(t, post{body: encodeV1(t, req), headers: map[string]string{"X-Scope-OrgID": tenant}})
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("tenant %q: status %d: %s", tenant, resp.StatusCode, body(t, resp))
		}
	}
	got := e.readAll(t, len(tenants))
	// A number is one partition's: two tenants' series are apart when
	// their partitions or their numbers differ.
	numbers := map[string]string{}
	owner := map[string]string{}
	for _, g := range got {
		n := fmt.Sprint(g.partition, "/", g.ref)
		if was, ok := numbers[g.tenant]; ok && was != n {
			t.Fatalf("tenant %q: numbers %s and %s", g.tenant, was, n)
		}
		if o, ok := owner[n]; ok && o != g.tenant {
			t.Fatalf("number %s names tenant %q's series and tenant %q's", n, o, g.tenant)
		}
		numbers[g.tenant], owner[n] = n, g.tenant
	}
	if len(numbers) != len(tenants)-1 {
		t.Fatalf("numbers by tenant %v: want %d", numbers, len(tenants)-1)
	}
	var first []bool // tenants[0]'s rows, in their partition's order: reference or not
	for _, g := range got {
		if g.tenant == tenants[0] {
			first = append(first, g.reference)
		}
	}
	if fmt.Sprint(first) != "[false true]" {
		t.Fatalf("%s's rows are references %v, want a definition then a reference", tenants[0], first)
	}
}

func TestSeriesRefsRefreshAndBound(t *testing.T) {
	d := newSeriesRefs(2)
	id, a, define := d.number([]byte("a"), xxhash.Sum64String("a"), 1000)
	if !define || a == 0 {
		t.Fatalf("a new series: number %d, define %v", a, define)
	}
	if _, _, define := d.number([]byte("a"), xxhash.Sum64String("a"), 1000); !define {
		t.Fatal("a number whose definition is not acknowledged is referred to")
	}
	d.defined(id, a, 1000)
	if _, ref, define := d.number([]byte("a"), xxhash.Sum64String("a"), 1000+refreshAge.Milliseconds()-1); define || ref != a {
		t.Fatalf("within refreshAge: number %d define %v, want %d and a reference", ref, define, a)
	}
	if _, _, define := d.number([]byte("a"), xxhash.Sum64String("a"), 1000+refreshAge.Milliseconds()); !define {
		t.Fatal("a definition older than refreshAge is referred to")
	}
	d.number([]byte("b"), xxhash.Sum64String("b"), 1000)
	id2, _, define := d.number([]byte("c"), xxhash.Sum64String("c"), 1000)
	if id2 == id || !define || len(d.index) != 1 {
		t.Fatalf("past max series: dictionary %x (was %x), %d numbered; want a new one holding c", id2, id, len(d.index))
	}
	d.defined(id, a, 5000) // of the old dictionary: ignored
	if _, _, define := d.number([]byte("a"), xxhash.Sum64String("a"), 5000); !define {
		t.Fatal("a definition of the old dictionary counted in the new one")
	}
}

func TestPartlyInvalidRequestWritesTheValidSeries(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.now.UnixMilli()
	future := e.now.Add(time.Hour).UnixMilli()
	long := strings.Repeat("x", 3000)
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbl("__name__", "good_one", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("job", "no-name"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "dup", "job", "a", "job", "b"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "unsorted", "z", "1", "a", "2"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "emptyname", "", "x"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "longvalue", "job", long), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "future", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}, {Value: 2, Timestamp: future}}},
		{Labels: lbl("__name__", "badhist", "job", "a"), Histograms: []prompb.Histogram{{Schema: 42}}},
		{Labels: lbl("__name__", "good_two", "job", "a"), Samples: []prompb.Sample{{Value: 2, Timestamp: ts}}},
	}}
	resp := e.post(t, post{body: encodeV1(t, req)})
	msg := body(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", resp.StatusCode, msg)
	}
	for _, want := range []string{
		`{job="no-name"}: no __name__ label (missing_metric_name)`,
		`{job="a"}: empty metric name (missing_metric_name)`,
		`dup{job="a", job="b"}: label "job" appears twice (duplicate_label_name)`,
		`unsorted{z="1", a="2"}: label "a" after "z" (labels_not_sorted)`,
		`emptyname{="x"}: empty label name (invalid_label_name)`,
		`(label_value_too_long)`,
		`future{job="a"}: sample at 2026-11-28T13:00:00Z (too_far_in_future)`,
		`badhist{job="a"}: malformed native histogram: schema 42`,
		`3 samples written`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("answer lacks %q:\n%s", want, msg)
		}
	}
	got := e.readAllSeries(t, 3)
	var names []string
	for _, g := range got {
		names = append(names, g.labels[0].Value)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"future", "good_one", "good_two"}) {
		t.Errorf("written series %v, want future (its valid sample), good_one, good_two", names)
	}
	for reason, want := range map[string]float64{
		reasonMissingMetricName: 2, reasonDuplicateLabelName: 1, reasonLabelsNotSorted: 1,
		reasonInvalidLabelName: 1, reasonLabelValueTooLong: 1, reasonTooFarInFuture: 1, reasonMalformedHistogram: 1,
	} {
		if got := testutil.ToFloat64(e.recv.m.discarded[reason]); got != want {
			t.Errorf("discarded{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

func TestV2SymbolOutOfRange(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.now.UnixMilli()
	req := &writev2.Request{Symbols: []string{"", "__name__", "up", "job"}, Timeseries: []writev2.TimeSeries{
		{LabelsRefs: []uint32{1, 2}, Samples: []writev2.Sample{{Value: 1, Timestamp: ts}}},
		{LabelsRefs: []uint32{1, 2, 3, 99}, Samples: []writev2.Sample{{Value: 1, Timestamp: ts}}},
	}}
	resp := e.post(t, post{body: encodeV2(t, req), ctype: "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
	msg := body(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "symbol reference 99 out of range (symbol_out_of_range)") {
		t.Fatalf("status %d: %s", resp.StatusCode, msg)
	}
	if got := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); got != "1" {
		t.Errorf("samples written header %q, want 1", got)
	}
	if got := e.readAllSeries(t, 1); len(got) != 1 {
		t.Errorf("read %d series, want 1", len(got))
	}
}

func TestRejectsBeforeDecoding(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.MaxCompressedBytes = 1 << 20
		c.MaxDecodedBytes = 2 << 20
		c.Auth.BearerTokenFile = tokenFile
	})
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	good := encodeV1(t, manySeries(3, e.now.UnixMilli()))
	big := snappy.Encode(nil, make([]byte, 3<<20)) // compresses well, decodes too large
	for _, c := range []struct {
		name string
		p    post
		want int
	}{
		{"ok", post{body: good, headers: auth}, 204},
		{"no token", post{body: good}, 401},
		{"wrong token", post{body: good, headers: map[string]string{"Authorization": "Bearer nope"}}, 401},
		{"json", post{body: good, ctype: "application/json", headers: auth}, 415},
		{"unknown proto", post{body: good, ctype: "application/x-protobuf;proto=foo.Bar", headers: auth}, 415},
		{"gzip", post{body: good, enc: "gzip", headers: auth}, 415},
		{"too large", post{body: make([]byte, 1<<20+1), headers: auth}, 413},
		{"decoded too large", post{body: big, headers: auth}, 400},
		{"not snappy", post{body: []byte("plain text, not snappy"), headers: auth}, 400},
		{"not protobuf", post{body: snappy.Encode(nil, []byte{0x0a, 0x09, 0x01}), headers: auth}, 400},
		{"bad tenant", post{body: good, headers: map[string]string{"Authorization": "Bearer s3cret", "X-Scope-OrgID": "a/b"}}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := e.post(t, c.p)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body(t, resp))
			}
		})
	}
}

func TestKafkaFailureIs503AndRetrySucceeds(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProduceTimeout = time.Second })
	if e.fake == nil {
		t.Skip("needs kfake to inject produce failures")
	}
	var failing atomic.Bool
	failing.Store(true)
	e.fake.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.fake.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		// Cut the connection, as a broker that went away does.
		return nil, errors.New("injected: broker unavailable"), true
	})
	req := encodeV1(t, manySeries(100, e.now.UnixMilli()))
	resp := e.post(t, post{body: req})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("status %d Retry-After %q, want 503 and 1: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body(t, resp))
	}
	failing.Store(false)
	// The sender retries the same request; now every sample lands.
	e.retryUntil(t, req, http.StatusNoContent)
	got := e.readAllSeries(t, 100)
	seen := map[string]bool{}
	for _, g := range got {
		seen[g.labels[1].Value] = true
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct series after the retry, want 100", len(seen))
	}
}

func TestOverloadIs503(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxInflightRequests = 1
		c.InflightWait = 10 * time.Millisecond
	})
	// Hold the only slot.
	if err := e.recv.inflightReqs.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	resp := e.post(t, post{body: encodeV1(t, manySeries(1, e.now.UnixMilli()))})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, want 503 with Retry-After", resp.StatusCode)
	}
	e.recv.inflightReqs.Release(1)
	resp = e.post(t, post{body: encodeV1(t, manySeries(1, e.now.UnixMilli()))})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d after the slot freed, want 204", resp.StatusCode)
	}
}

// TestInflightCountsDecodedBytes: a request is held to its decoded size,
// not only the Content-Length it was admitted on (snappy expands up to 20
// times): with the in-flight budget all but a request's compressed size
// taken, it answers 503 (retry later), and 204 once the budget frees.
func TestInflightCountsDecodedBytes(t *testing.T) {
	const budget = 8 << 20
	e := newEnv(t, func(c *Config) {
		c.MaxInflightBytes, c.MaxDecodedBytes, c.MaxCompressedBytes = budget, budget, budget
		c.InflightWait = 10 * time.Millisecond
	})
	req := encodeV1(t, manySeries(2000, e.now.UnixMilli()))
	decoded, err := snappy.DecodedLen(req)
	if err != nil {
		t.Fatal(err)
	}
	if decoded < 4*len(req) {
		t.Fatalf("test request: %d bytes decoded from %d, want a body that expands", decoded, len(req))
	}
	held := int64(budget - 2*len(req))
	if err := e.recv.inflightBytes.Acquire(t.Context(), held); err != nil {
		t.Fatal(err)
	}
	resp := e.post(t, post{body: req})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d with %d of %d bytes in flight and a %d-byte request decoding to %d, want 503 with Retry-After",
			resp.StatusCode, held, budget, len(req), decoded)
	}
	e.recv.inflightBytes.Release(held)
	if resp := e.post(t, post{body: req}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d once the budget freed, want 204", resp.StatusCode)
	}
}

// TestStalledBodyFreesItsSlot: a client that declares a body and sends
// none holds an in-flight slot only until body_timeout; then the next
// request is served.
func TestStalledBodyFreesItsSlot(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxInflightRequests = 1
		c.InflightWait = 10 * time.Millisecond
		c.BodyTimeout = 300 * time.Millisecond
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"+
		"Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: 1000000\r\n\r\n")
	for i := 0; testutil.ToFloat64(e.recv.m.inflight) != 1; i++ {
		if i == 100 {
			t.Fatal("the stalled request never took the slot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	req := encodeV1(t, manySeries(1, e.now.UnixMilli()))
	if resp := e.post(t, post{body: req}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d while the stalled upload holds the only slot, want 503", resp.StatusCode)
	}
	for range 100 {
		if resp := e.post(t, post{body: req}); resp.StatusCode == http.StatusNoContent {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the stalled upload held the only slot for 5 s (body_timeout 300ms)")
}

func TestDrainRefusesNewRequests(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.recv.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp := e.post(t, post{body: encodeV1(t, manySeries(1, e.now.UnixMilli()))})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d after drain, want 503", resp.StatusCode)
	}
}

func TestLargeRequestIsCutIntoRecords(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRecordBytes = 64 << 10 })
	resp := e.post(t, post{body: encodeV1(t, manySeries(3000, e.now.UnixMilli()))})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d: %s", resp.StatusCode, body(t, resp))
	}
	if recs := testutil.ToFloat64(e.recv.m.records); recs <= testPartitions {
		t.Fatalf("%v records for a request far above max_record_bytes per partition", recs)
	}
	if got := e.readAll(t, int(testutil.ToFloat64(e.recv.m.records))); len(got) != 3000 {
		t.Fatalf("read %d series, want 3000", len(got))
	}
}

// TestLargeSeriesFitRecords: a block is cut before a series that would take
// it past a record (a block near max_record_bytes and a large series
// failed at Kafka, 503 on every retry), and a series larger than a record
// on its own is refused (400, series_too_large) while the request's other
// series are written.
func TestLargeSeriesFitRecords(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRecordBytes, c.Partitions = 2<<20, 1 })
	ts := e.now.UnixMilli() - 3_600_000
	series := func(name string, n int) prompb.TimeSeries {
		s := prompb.TimeSeries{Labels: lbl("__name__", name, "job", "api")}
		for i := range n {
			s.Samples = append(s.Samples, prompb.Sample{Value: float64(i), Timestamp: ts + int64(i)})
		}
		return s
	}
	// 1.5 MB, then 1.9 MB: each under a record, together past the
	// producer's batch (max_record_bytes + 1 MiB).
	fits := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("a", 62_500), series("b", 80_000)}}
	if resp := e.post(t, post{body: encodeV1(t, fits)}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("two series of 1.5 and 1.9 MB under 2 MiB records: status %d: %s", resp.StatusCode, body(t, resp))
	}
	// 2.4 MB alone.
	tooLarge := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series("c", 100_000), series("d", 10)}}
	resp := e.post(t, post{body: encodeV1(t, tooLarge)})
	if msg := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "series_too_large") {
		t.Fatalf("a 2.4 MB series under 2 MiB records: status %d: %s", resp.StatusCode, msg)
	}
	got := map[string]int{}
	for _, g := range e.readAllSeries(t, 3) {
		got[g.labels[0].Value] += len(g.ts)
	}
	if got["a"] != 62_500 || got["b"] != 80_000 || got["c"] != 0 || got["d"] != 10 {
		t.Errorf("samples written per series: %v, want a 62500, b 80000, c none, d 10", got)
	}
}

func TestBasicAuth(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) {
		c.Auth.BasicUsername = "prometheus"
		c.Auth.BasicPasswordFile = pwFile
	})
	body := encodeV1(t, manySeries(2, e.now.UnixMilli()))
	basic := func(u, p string) map[string]string {
		r, _ := http.NewRequest(http.MethodPost, "http://x", nil)
		r.SetBasicAuth(u, p)
		return map[string]string{"Authorization": r.Header.Get("Authorization")}
	}
	for _, c := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"right", basic("prometheus", "hunter2"), http.StatusNoContent},
		{"wrong password", basic("prometheus", "hunter3"), http.StatusUnauthorized},
		{"wrong user", basic("grafana", "hunter2"), http.StatusUnauthorized},
		{"none", nil, http.StatusUnauthorized},
		{"bearer instead", map[string]string{"Authorization": "Bearer hunter2"}, http.StatusUnauthorized},
	} {
		resp := e.post(t, post{body: body, headers: c.headers})
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
}

func TestInvalidUTF8IsRejected(t *testing.T) {
	e := newEnv(t, nil)
	ts := e.now.UnixMilli()
	v1 := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbl("__name__", "ok", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("__name__", "bad", "job", "a\xff"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
	}}
	resp := e.post(t, post{body: encodeV1(t, v1)})
	if msg := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "(invalid_label_value)") {
		t.Errorf("1.0: status %d: %s", resp.StatusCode, msg)
	}
	v2 := &writev2.Request{Symbols: []string{"", "__name__", "bad", "job", "a\xff"}, Timeseries: []writev2.TimeSeries{
		{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 1, Timestamp: ts}}},
	}}
	resp = e.post(t, post{body: encodeV2(t, v2), ctype: "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
	if msg := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "(invalid_label_value)") {
		t.Errorf("2.0: status %d: %s", resp.StatusCode, msg)
	}
}

// TestCancelledRequestDoesNotFailItsNeighbours: a sender that gives up on
// its request while its records wait behind a produce in flight must not
// fail the records of other requests batched with them. franz-go fails a
// whole batch when its first record's context is cancelled; the receiver
// produces under a context the request's cancellation does not reach.
func TestCancelledRequestDoesNotFailItsNeighbours(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProduceTimeout = 10 * time.Second })
	if e.fake == nil {
		t.Skip("needs kfake to hold a produce request")
	}
	release := make(chan struct{})
	var held atomic.Bool
	e.fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if held.CompareAndSwap(false, true) {
			e.fake.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	// Three requests of the same series, so one partition: the first one's
	// produce is held, the next two wait in one batch behind it.
	one := func(ts int64) []byte {
		return encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  lbl("__name__", "http_requests_total", "instance", "10.0.0.1:9100", "job", "api"),
			Samples: []prompb.Sample{{Value: 1, Timestamp: ts}},
		}}})
	}
	send := func(ctx context.Context, body []byte) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/api/v1/write", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		resp, err := testHTTP.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	ts := e.now.UnixMilli()
	first := make(chan int, 1)
	go func() { c, _ := send(t.Context(), one(ts)); first <- c }()
	waitUntil(t, "the first produce is held", held.Load)
	cctx, cancel := context.WithCancel(t.Context())
	gone := make(chan struct{})
	go func() { _, _ = send(cctx, one(ts+1000)); close(gone) }()
	waitUntil(t, "the second request is buffered", func() bool { return e.client.BufferedProduceRecords() >= 2 })
	neighbour := make(chan int, 1)
	go func() { c, _ := send(t.Context(), one(ts+2000)); neighbour <- c }()
	waitUntil(t, "the third request is buffered", func() bool { return e.client.BufferedProduceRecords() >= 3 })
	cancel() // the second sender gives up
	<-gone
	close(release)
	if c := <-first; c != http.StatusNoContent {
		t.Fatalf("first request: %d", c)
	}
	if c := <-neighbour; c != http.StatusNoContent {
		t.Fatalf("a request batched behind a cancelled one answered %d, want 204", c)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within 5s", what)
}
