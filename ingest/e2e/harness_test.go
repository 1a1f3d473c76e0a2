package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

const partitions = 4

// staleNaN is Prometheus' stale marker; the query API hides it, so it is
// counted apart when Kafka is compared with the TSDB.
const staleNaN = 0x7ff0000000000002

// negZero is the bit pattern of -0.
const negZero = 0x8000000000000000

// sentAs returns the value bits Prometheus puts on the wire for a stored
// value. Its remote-write encoder (gogo-protobuf generated code in prompb)
// omits a double field when `value != 0`, which is false for -0, so -0 is
// sent as an absent field and every receiver decodes it as +0. Every other
// bit pattern, NaNs included, is sent unchanged.
func sentAs(bits uint64) uint64 {
	if bits == negZero {
		return 0
	}
	return bits
}

// env is a receiver behind an observing handler on a loopback HTTP server,
// in front of kfake or the brokers named by AUGUR_KAFKA_BROKERS.
type env struct {
	fake   *kfake.Cluster // nil with real brokers
	seeds  []string
	topic  string
	client *kgo.Client
	recv   *ingest.Receiver
	reg    *prometheus.Registry
	obs    *observer
	srv    *httptest.Server
}

var topicSeq atomic.Int64

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{}
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
	e.topic = fmt.Sprintf("augur.samples.e2e.%d.%d", time.Now().UnixNano(), topicSeq.Add(1))
	// A short produce timeout turns a refusing broker into 503s quickly;
	// Prometheus' remote_timeout (20s) is well above it.
	cfg := ingest.Config{Topic: e.topic, Partitions: partitions, ProduceTimeout: 2 * time.Second}
	client, err := kgo.NewClient(append(ingest.ClientOptions(cfg), kgo.SeedBrokers(e.seeds...))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e.client = client
	if _, err := ingest.EnsureTopic(t.Context(), kadm.NewClient(client), e.topic, partitions, 1, 4<<20); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("receiver log:\n%s", tail(logs.Bytes(), 8000))
		}
	})
	e.reg = prometheus.NewRegistry()
	e.recv, err = ingest.New(cfg, client, rules.Empty(), e.reg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.obs = newObserver(e.recv)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/write", e.obs)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// writeURL is where Prometheus remote-writes.
func (e *env) writeURL() string { return e.srv.URL + "/api/v1/write" }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.b.Bytes())
}

// observer wraps the receiver: it counts answers by status code and keeps
// every sample of every request answered 2xx, so a test can check that
// nothing was acknowledged that is not in Kafka.
type observer struct {
	next http.Handler

	mu        sync.Mutex
	statuses  map[int]int
	bodies4xx []string            // answers of 4xx, at most a few
	acked     map[string][]sample // samples of 2xx requests, by series
	failed    map[string][]sample // samples of 5xx requests, by series
	ackedN    int
	metaReqs  int // 2xx requests carrying metadata
	decodeErr error
}

func newObserver(next http.Handler) *observer {
	return &observer{next: next, statuses: map[int]int{}, acked: map[string][]sample{}, failed: map[string][]sample{}}
}

type statusWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.body.Len() < 4096 {
		w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (o *observer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	o.next.ServeHTTP(sw, r)
	if sw.code == 0 {
		sw.code = http.StatusOK
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses[sw.code]++
	if sw.code/100 == 4 && len(o.bodies4xx) < 5 {
		o.bodies4xx = append(o.bodies4xx, fmt.Sprintf("%d: %s", sw.code, sw.body.String()))
	}
	into := o.acked
	switch sw.code / 100 {
	case 2:
	case 5:
		into = o.failed
	default:
		return
	}
	// Prometheus 2.x speaks remote-write 1.0 only.
	raw, err := snappy.Decode(nil, body)
	var req prompb.WriteRequest
	if err == nil {
		err = req.Unmarshal(raw)
	}
	if err != nil {
		if o.decodeErr == nil {
			o.decodeErr = fmt.Errorf("decode an acknowledged request: %w", err)
		}
		return
	}
	if len(req.Metadata) > 0 && sw.code/100 == 2 {
		o.metaReqs++
	}
	for _, ts := range req.Timeseries {
		m := make(map[string]string, len(ts.Labels))
		for _, l := range ts.Labels {
			m[l.Name] = l.Value
		}
		k := mapKey(m)
		for _, s := range ts.Samples {
			into[k] = append(into[k], sample{ts: s.Timestamp, bits: floatBits(s.Value)})
			if sw.code/100 == 2 {
				o.ackedN++
			}
		}
	}
}

// explainDuplicates splits the duplicate samples in Kafka into those that
// were in a request answered 5xx (written, but the sender was told to resend)
// and the rest.
func (o *observer) explainDuplicates(k *topicReader) (in5xx, other int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	failed := map[string]map[int64]bool{}
	for key, ss := range o.failed {
		m := map[int64]bool{}
		for _, s := range ss {
			m[s.ts] = true
		}
		failed[key] = m
	}
	for key, s := range k.series {
		for ts, c := range s.copies {
			if c < 2 {
				continue
			}
			if failed[key][ts] {
				in5xx += c - 1
			} else {
				other += c - 1
			}
		}
	}
	return in5xx, other
}

func (o *observer) status(code int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.statuses[code]
}

func (o *observer) summary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	codes := slices.Sorted(maps.Keys(o.statuses))
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", o.statuses[c], c))
	}
	return strings.Join(parts, " ")
}

// checkAcked fails the test for every sample of a 2xx request that is not
// in Kafka, for 4xx answers (Prometheus drops such data) and for requests
// the observer could not decode.
func (o *observer) checkAcked(t *testing.T, k *topicReader) {
	t.Helper()
	// Prometheus keeps pushing while the test checks: take the acknowledged
	// samples first, then read Kafka up to its end offsets of now. Every
	// sample acknowledged before the snapshot was in Kafka before it.
	o.mu.Lock()
	acked := make(map[string][]sample, len(o.acked))
	for key, ss := range o.acked {
		acked[key] = slices.Clone(ss)
	}
	ackedN, decodeErr := o.ackedN, o.decodeErr
	for code, n := range o.statuses {
		if code/100 == 4 {
			t.Errorf("%d requests answered %d; first answers: %q", n, code, o.bodies4xx)
		}
	}
	o.mu.Unlock()
	if decodeErr != nil {
		t.Error(decodeErr)
	}
	if err := k.catchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for key, ss := range acked {
		have := k.series[key]
		for _, s := range ss {
			if b, ok := have.bitsAt(s.ts); !ok || b != s.bits {
				if missing < 5 {
					t.Errorf("acknowledged sample %s @%d (%#x) is not in Kafka", key, s.ts, s.bits)
				}
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged samples are not in Kafka", missing, ackedN)
	}
	if ackedN == 0 {
		t.Error("no request was acknowledged")
	}
}

// topicReader reads the samples topic from the start and keeps what it
// decoded, by series.
type topicReader struct {
	seeds  []string
	topic  string
	client *kgo.Client
	adm    *kadm.Client
	br     proto.BlockReader
	names  proto.SeriesNames
	lbls   []proto.Label

	next     map[int32]int64 // per partition: offset after the last record read
	records  int
	series   map[string]*kseries
	metadata map[string]proto.Metadata // by metric family name, from rows without samples
	stale    int                       // stale markers read
	conflict []string                  // same series and timestamp, other value bits
}

// kseries is one series as read from Kafka: value bits by timestamp and how
// many copies of each sample arrived.
type kseries struct {
	bits   map[int64]uint64
	copies map[int64]int
}

// has reports whether the series holds x as Prometheus stored it; see
// sentAs for the one value the sender's encoding changes.
func (s *kseries) has(x sample) bool {
	b, ok := s.bits[x.ts]
	return ok && b == sentAs(x.bits)
}

// bitsAt returns the value bits of the sample at ts; a nil series has none.
func (s *kseries) bitsAt(ts int64) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	b, ok := s.bits[ts]
	return b, ok
}

func newTopicReader(t *testing.T, seeds []string, topic string) *topicReader {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &topicReader{seeds: seeds, topic: topic, client: c, adm: kadm.NewClient(c),
		next: map[int32]int64{}, series: map[string]*kseries{}, metadata: map[string]proto.Metadata{}}
}

// catchUp reads until it has consumed everything the topic held when it was
// called (its end offsets then).
func (r *topicReader) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ends, err := r.adm.ListEndOffsets(ctx, r.topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	done := func() bool {
		for p, end := range want {
			if r.next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := r.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read the topic up to offsets %v: at %v: %w", want, r.next, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			return fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var derr error
		fs.EachRecord(func(rec *kgo.Record) {
			r.next[rec.Partition] = rec.Offset + 1
			if err := r.add(rec); err != nil && derr == nil {
				derr = err
			}
		})
		if derr != nil {
			return derr
		}
	}
	return nil
}

func (r *topicReader) add(rec *kgo.Record) error {
	r.records++
	if err := r.br.Reset(rec.Value); err != nil {
		return fmt.Errorf("record %d/%d: %w", rec.Partition, rec.Offset, err)
	}
	for i := range r.br.Len() {
		var ok bool
		if r.lbls, ok = r.names.AppendLabels(r.lbls[:0], rec.Partition, &r.br, i); !ok {
			return fmt.Errorf("record %d/%d: series %d refers to number %d, not defined before", rec.Partition, rec.Offset, i, r.br.Ref(i))
		}
		ts, vs := r.br.Samples(i)
		if len(ts) == 0 {
			if md := r.br.Metadata(i); md != (proto.Metadata{}) && len(r.lbls) == 1 {
				r.metadata[strings.Clone(r.lbls[0].Value)] = proto.Metadata{
					Type: strings.Clone(md.Type), Help: strings.Clone(md.Help), Unit: strings.Clone(md.Unit)}
			}
			continue
		}
		key := labelsKey(r.lbls)
		s := r.series[key]
		if s == nil {
			s = &kseries{bits: map[int64]uint64{}, copies: map[int64]int{}}
			r.series[key] = s
		}
		for j, t := range ts {
			b := floatBits(vs[j])
			if b == staleNaN {
				r.stale++
			}
			if old, ok := s.bits[t]; ok && old != b {
				r.conflict = append(r.conflict, fmt.Sprintf("%s @%d: %#x then %#x", key, t, old, b))
				continue
			}
			s.bits[t] = b
			s.copies[t]++
		}
	}
	return nil
}

// duplicates returns the number of sample copies beyond the first.
func (r *topicReader) duplicates() int {
	n := 0
	for _, s := range r.series {
		for _, c := range s.copies {
			n += c - 1
		}
	}
	return n
}

// samplesOf returns the samples of the series key, sorted by timestamp.
func (r *topicReader) samplesOf(key string) []sample {
	s := r.series[key]
	if s == nil {
		return nil
	}
	out := make([]sample, 0, len(s.bits))
	for ts, b := range s.bits {
		out = append(out, sample{ts: ts, bits: b})
	}
	slices.SortFunc(out, func(a, b sample) int { return int(a.ts - b.ts) })
	return out
}

// labelsKey is the canonical text of a label set: labels sorted by name,
// values quoted.
func labelsKey(ls []proto.Label) string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return mapKey(m)
}

func mapKey(m map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[n]))
	}
	b.WriteByte('}')
	return b.String()
}

func floatBits(f float64) uint64 { return math.Float64bits(f) }
