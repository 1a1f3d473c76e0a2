package ingest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"

	"github.com/augur-ops/augur/ingest/remotewrite"
	"github.com/augur-ops/augur/internal/labels"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// Remote-write content types (spec 1.0 and 2.0-rc.4).
const (
	protoV1 = "prometheus.WriteRequest"
	protoV2 = "io.prometheus.write.v2.Request"
)

// Receiver is the remote-write HTTP handler. Create it with New; it is safe
// for concurrent use. Stop intake with Drain before shutting the server down.
type Receiver struct {
	cfg    Config
	client *kgo.Client
	rules  *rules.Set
	log    *slog.Logger
	m      *metrics
	now    func() time.Time

	bearer, basicUser, basicPass string

	inflightReqs  *semaphore.Weighted
	inflightBytes *semaphore.Weighted
	// mu is held shared by every request being served and exclusively by
	// Drain, which then sets draining: after Drain no request is in flight.
	mu       sync.RWMutex
	draining bool

	pool sync.Pool // *request

	// refs is the series dictionary of each partition; nil when
	// Config.SeriesRefs is off.
	refs []*seriesRefs
	// known maps series the dictionaries numbered to their place by wire
	// identity; nil when Config.SeriesRefs is off.
	known *knownSeries
}

// New returns a Receiver writing to client, which must be created with
// ClientOptions. rules decides routing keys (rules.Empty() routes every
// series by its own labels). Metrics register on reg. now is the clock
// (time.Now when nil).
func New(cfg Config, client *kgo.Client, rs *rules.Set, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if rs == nil {
		rs = rules.Empty()
	}
	r := &Receiver{
		cfg: cfg, client: client, rules: rs, log: log, now: now,
		m:             newMetrics(reg),
		inflightReqs:  semaphore.NewWeighted(int64(cfg.MaxInflightRequests)),
		inflightBytes: semaphore.NewWeighted(cfg.MaxInflightBytes),
	}
	var err error
	if cfg.Auth.BearerTokenFile != "" {
		if r.bearer, err = readSecret("bearer_token_file", cfg.Auth.BearerTokenFile); err != nil {
			return nil, err
		}
	}
	if cfg.Auth.BasicUsername != "" {
		r.basicUser = cfg.Auth.BasicUsername
		if r.basicPass, err = readSecret("basic_password_file", cfg.Auth.BasicPasswordFile); err != nil {
			return nil, err
		}
	}
	if cfg.SeriesRefs > 0 {
		r.refs = make([]*seriesRefs, cfg.Partitions)
		for p := range r.refs {
			r.refs[p] = newSeriesRefs(cfg.SeriesRefs)
		}
		r.known = newKnownSeries(cfg.SeriesRefs * int(cfg.Partitions))
	}
	r.pool.New = func() any {
		return &request{builders: make([]proto.BlockBuilder, cfg.Partitions), inUse: make([]bool, cfg.Partitions),
			partStats: make([]stats, cfg.Partitions)}
	}
	return r, nil
}

// ClientOptions returns the franz-go options the Receiver's client needs:
// acks from all in-sync replicas, the idempotent producer (franz-go's
// default), manual partitioning (routing is ours), records up to
// maxRecordBytes, and a delivery timeout for records never sent. A dead
// cluster does not surface through it: the idempotent producer retries a
// sent record with no answer until a broker answers (DESIGN.md), so the
// receiver bounds its own wait (ProduceTimeout).
func ClientOptions(cfg Config) []kgo.Opt {
	c := cfg
	c.defaults()
	codec, _ := c.codec() // Validate rejects an unknown one
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(c.MaxRecordBytes + 1<<20)),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(c.ProduceTimeout),
		kgo.ProducerBatchCompression(codec),
		kgo.DefaultProduceTopic(c.Topic),
		// After NOT_LEADER (a leader moved, a topic just created) the client
		// refreshes metadata no sooner than this; franz-go's 5s default
		// would outlast short produce timeouts and answer 503 needlessly.
		kgo.MetadataMinAge(time.Second),
		// Bounds what requests that timed out can leave behind in the
		// client while a broker is away; past it requests answer 503.
		kgo.MaxBufferedBytes(1 << 30),
	}
}

// request is the reusable state of one request.
type request struct {
	body     []byte
	decoded  []byte
	rw       remotewrite.Request
	hc       remotewrite.HistogramChecker
	builders []proto.BlockBuilder // per partition
	used     []int32              // partitions with series, in first-use order
	inUse    []bool               // per partition: in used
	lastPart int32                // partition of the series being built
	err      error                // from encoding a block cut early
	// need bounds from below the bytes of the series being built
	// (seriesBytes): a block it would take past a record is cut first.
	need int
	// abandoned is set when the wait for Kafka timed out: the client may
	// still read the record values, so the state is not reused.
	abandoned bool
	records   []*kgo.Record
	values    [][]byte
	// recStats is, per record, what it carries (the 2.0 headers count
	// the records Kafka acknowledged); partStats is what the block being
	// built of each partition carries.
	recStats  []stats
	partStats []stats
	// discards are the samples build discarded, by reason: counted once
	// the request is written, so that a 503 and its retry count them once.
	discards []discard
	key      []byte
	sortBuf  []proto.Label
	defs     []seriesDef // series numbers the request's records define
	refKey   []byte
	// Per series of rw, its wire identity and known place (placeKnown).
	idBuf      []byte
	ids        []seriesHash
	places     []knownSlot
	order      []int32
	partStarts []int32
}

// discard is a count of samples discarded for one reason.
type discard struct {
	reason string
	n      int
}

// seriesDef is a series number a row of a request defines.
type seriesDef struct {
	part int32
	dict uint64
	ref  uint32
}

// ServeHTTP implements http.Handler for POST /api/v1/write.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	// A ResponseWriter without deadlines (a test recorder) reads as before.
	_ = http.NewResponseController(w).SetReadDeadline(start.Add(r.cfg.BodyTimeout))
	version, st, err := r.serve(hr)
	r.respond(w, version, st, err)
	r.m.requests.WithLabelValues(strconv.Itoa(version), statusReason(err)).Inc()
	r.m.duration.WithLabelValues(strconv.Itoa(version)).Observe(time.Since(start).Seconds())
}

// stats counts what a request wrote, for the 2.0 response headers.
type stats struct {
	samples, histograms, exemplars int
}

func (s *stats) add(o stats) {
	s.samples += o.samples
	s.histograms += o.histograms
	s.exemplars += o.exemplars
}

func (r *Receiver) respond(w http.ResponseWriter, version int, st stats, err error) {
	if version == 2 {
		h := w.Header()
		h.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(st.samples))
		h.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.Itoa(st.histograms))
		h.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.Itoa(st.exemplars))
	}
	code, retry := httpStatus(err)
	if err == nil {
		w.WriteHeader(code)
		return
	}
	if retry {
		w.Header().Set("Retry-After", strconv.Itoa(int(r.cfg.RetryAfter/time.Second)))
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="augur", Basic realm="augur"`)
	}
	if code >= 500 && !errors.Is(err, errOverloaded) && !errors.Is(err, errShuttingDown) {
		r.log.Warn("remote write failed", "status", code, "err", err)
	}
	http.Error(w, err.Error(), code)
}

// negotiate checks method, content type and encoding before anything is
// read or decompressed, and returns the protocol version.
func negotiate(hr *http.Request) (int, error) {
	if hr.Method != http.MethodPost {
		return 0, errMethod
	}
	ct := hr.Header.Get("Content-Type")
	version := 1
	if ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-protobuf" {
			return 0, fmt.Errorf("%w %q: want application/x-protobuf", errContentType, ct)
		}
		switch params["proto"] {
		case "", protoV1:
		case protoV2:
			version = 2
		default:
			return 0, fmt.Errorf("%w %q: proto must be %s or %s", errContentType, ct, protoV1, protoV2)
		}
	}
	if enc := hr.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return version, fmt.Errorf("%w (got %q)", errContentEncoding, enc)
	}
	return version, nil
}

func (r *Receiver) authenticate(hr *http.Request) error {
	switch {
	case r.bearer != "":
		tok, ok := strings.CutPrefix(hr.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(r.bearer)) != 1 {
			return errUnauthorized
		}
	case r.basicUser != "":
		u, p, ok := hr.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(r.basicUser)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(r.basicPass)) != 1 {
			return errUnauthorized
		}
	}
	return nil
}

func (r *Receiver) serve(hr *http.Request) (version int, st stats, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.draining {
		return 0, st, errShuttingDown
	}
	if err := r.authenticate(hr); err != nil {
		return 0, st, err
	}
	version, err = negotiate(hr)
	if err != nil {
		return version, st, err
	}
	tenant := hr.Header.Get("X-Scope-OrgID")
	if tenant != "" && !validTenant(tenant) {
		return version, st, fmt.Errorf("%w %q: 1 to 150 letters, digits or !-_.*'()", errBadTenant, tenant)
	}
	if tenant == "" && r.cfg.RequireTenant {
		return version, st, fmt.Errorf("%w: header required", errBadTenant)
	}
	if hr.ContentLength > r.cfg.MaxCompressedBytes {
		return version, st, fmt.Errorf("%w: %d bytes, limit %d", errBodyTooLarge, hr.ContentLength, r.cfg.MaxCompressedBytes)
	}

	// Admission: bounded requests and bytes in flight, with a short wait.
	weight := hr.ContentLength
	if weight <= 0 {
		weight = r.cfg.MaxCompressedBytes
	}
	ctx, cancel := context.WithTimeout(hr.Context(), r.cfg.InflightWait)
	errReq := r.inflightReqs.Acquire(ctx, 1)
	var errBytes error
	if errReq == nil {
		errBytes = r.inflightBytes.Acquire(ctx, weight)
		if errBytes != nil {
			r.inflightReqs.Release(1)
		}
	}
	cancel()
	if errReq != nil || errBytes != nil {
		r.m.overloaded.Inc()
		return version, st, errOverloaded
	}
	r.m.inflight.Inc()
	defer func() {
		r.inflightBytes.Release(weight)
		r.inflightReqs.Release(1)
		r.m.inflight.Dec()
	}()

	req := r.pool.Get().(*request)
	st, err = r.handle(hr, req, version, tenant, weight)
	// The state of a request grows with the largest one it served (the
	// decoded body, the decoded slices, the records): pooled, it stayed
	// that large outside the in-flight byte limit for as long as traffic
	// kept it in use. Only requests of a typical size are reused.
	if !req.abandoned && int64(max(cap(req.decoded), cap(req.body))) <= r.poolMaxBytes() {
		r.pool.Put(req)
	}
	return version, st, err
}

// poolMaxBytes is the largest decoded body whose request state is reused:
// the in-flight byte limit's share of one request in flight, at least
// 1 MiB, so that the pooled state of all requests stays near that limit.
func (r *Receiver) poolMaxBytes() int64 {
	return max(1<<20, r.cfg.MaxInflightBytes/int64(r.cfg.MaxInflightRequests))
}

// handle reads, decodes and writes one admitted request; admitted is the
// in-flight weight it was admitted with.
func (r *Receiver) handle(hr *http.Request, req *request, version int, tenant string, admitted int64) (stats, error) {
	var st stats
	var err error
	req.body, err = readBody(req.body[:0], hr.Body, r.cfg.MaxCompressedBytes)
	if err != nil {
		return st, err
	}
	n, err := snappy.DecodedLen(req.body)
	if err != nil {
		return st, fmt.Errorf("%w: %w", errSnappy, err)
	}
	if int64(n) > r.cfg.MaxDecodedBytes {
		return st, fmt.Errorf("%w: %d bytes, limit %d", errDecodedTooLarge, n, r.cfg.MaxDecodedBytes)
	}
	// Admitted on its compressed size, the request is held to its
	// decoded size too: snappy expands up to about 20 times, and requests
	// admitted by their Content-Length alone decoded to many times the
	// in-flight limit together.
	if extra := int64(n) - admitted; extra > 0 {
		if !r.inflightBytes.TryAcquire(extra) { // the usual case needs no timer
			ctx, cancel := context.WithTimeout(hr.Context(), r.cfg.InflightWait)
			err := r.inflightBytes.Acquire(ctx, extra)
			cancel()
			if err != nil {
				r.m.overloaded.Inc()
				return st, errOverloaded
			}
		}
		defer r.inflightBytes.Release(extra)
	}
	if cap(req.decoded) < n {
		req.decoded = make([]byte, n)
	}
	req.decoded, err = snappy.Decode(req.decoded[:cap(req.decoded)], req.body)
	if err != nil {
		return st, fmt.Errorf("%w: %w", errSnappy, err)
	}
	if version == 2 {
		err = remotewrite.DecodeV2(&req.rw, req.decoded)
	} else {
		err = remotewrite.DecodeV1(&req.rw, req.decoded)
	}
	if err != nil {
		return st, fmt.Errorf("decode remote-write %d.0 request: %w", version, err)
	}
	inv := r.build(req, tenant, &st)
	if written, err := r.produce(hr.Context(), req, tenant); err != nil {
		// The 2.0 headers say what Kafka acknowledged; the metrics count
		// nothing of the request, which the sender resends whole.
		return written, err
	}
	for _, d := range req.discards {
		r.m.discarded[d.reason].Add(float64(d.n))
	}
	r.m.samples.WithLabelValues(strconv.Itoa(version)).Add(float64(st.samples))
	r.m.histograms.Add(float64(st.histograms))
	r.m.exemplars.Add(float64(st.exemplars))
	if inv != nil {
		inv.written = st.samples
		return st, inv
	}
	return st, nil
}

// readBody reads at most limit bytes of body into dst.
func readBody(dst []byte, body io.Reader, limit int64) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return dst, fmt.Errorf("%w: %w", errReadBody, err)
	}
	if n > limit {
		return dst, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// build validates every series of req.rw and adds the valid ones to the
// block of their partition. It returns the invalid series, nil when none.
func (r *Receiver) build(req *request, tenant string, st *stats) *invalidSeriesError {
	for _, p := range req.used {
		req.inUse[p] = false
	}
	req.used = req.used[:0]
	req.records = req.records[:0]
	req.recStats = req.recStats[:0]
	req.discards = req.discards[:0]
	req.defs = req.defs[:0]
	req.err = nil
	req.need = 0
	var inv *invalidSeriesError
	reject := func(lbls []proto.Label, discarded int, reason, detail string) {
		if inv == nil {
			inv = &invalidSeriesError{}
		}
		inv.add(labels.Format(lbls, 64), reason, detail)
		req.discards = append(req.discards, discard{reason, discarded})
	}
	rw := &req.rw
	maxTs := r.now().Add(r.cfg.Limits.MaxFutureSkew).UnixMilli()
	refNow := time.Now().UnixMilli() // series numbers' clock, as in produce
	if r.known != nil {
		r.placeKnown(req, tenant, refNow)
	}
	for i := range rw.Series {
		s := &rw.Series[i]
		samples := rw.SeriesSamples(s)
		hists := rw.Histograms[s.HistogramsStart:s.HistogramsEnd]
		discarded := len(samples) + len(hists)
		if s.HasBadSymbol {
			reject(rw.SeriesLabels(s), discarded, reasonSymbolOutOfRange, fmt.Sprintf("symbol reference %d out of range", s.BadSymbol))
			continue
		}
		// A series seen before as the same bytes, whose number is current,
		// is valid and routed already: its row refers to the number.
		var place knownSlot
		if r.known != nil {
			place = req.places[i]
		}
		known := place.ref != 0
		if !known {
			lbls := seriesLabels(rw, s)
			if reason, detail := checkLabels(&r.cfg.Limits, lbls, true, s.LabelsUTF8); reason != "" {
				reject(lbls, discarded, reason, detail)
				continue
			}
		}
		badHist := false
		for _, h := range hists {
			if err := req.hc.Check(h.Raw); err != nil {
				reject(rw.SeriesLabels(s), discarded, reasonMalformedHistogram, err.Error())
				badHist = true
				break
			}
		}
		if badHist {
			continue
		}
		// A block is cut into records between series only: one series
		// larger than a record would fail at Kafka (MESSAGE_TOO_LARGE)
		// on every retry of the request, which a 503 asks for, and hold
		// back the sender's queue for good.
		req.need = seriesBytes(rw, s, samples, hists)
		if req.need > r.cfg.MaxRecordBytes {
			reject(rw.SeriesLabels(s), discarded, reasonSeriesTooLarge,
				fmt.Sprintf("about %d bytes encoded, more than a Kafka record of max_record_bytes %d; send it in smaller requests", req.need, r.cfg.MaxRecordBytes))
			continue
		}
		var b *proto.BlockBuilder
		if known {
			b = req.builder(place.part, tenant, r.cfg.MaxRecordBytes)
			known = b.StartReference(place.dict, place.ref)
		}
		if !known {
			var id seriesHash
			if r.known != nil {
				id = req.ids[i]
			}
			b = r.startRow(req, tenant, s, seriesLabels(rw, s), refNow, id)
		}
		var row stats
		for _, smp := range samples {
			if smp.Timestamp > maxTs {
				reject(rw.SeriesLabels(s), 1, reasonTooFarInFuture, fmt.Sprintf("sample at %s", time.UnixMilli(smp.Timestamp).UTC().Format(time.RFC3339)))
				continue
			}
			b.AppendSampleStart(smp.Timestamp, smp.Start, smp.Value)
			row.samples++
		}
		for _, h := range hists {
			if h.Timestamp > maxTs {
				reject(rw.SeriesLabels(s), 1, reasonTooFarInFuture, fmt.Sprintf("histogram at %s", time.UnixMilli(h.Timestamp).UTC().Format(time.RFC3339)))
				continue
			}
			b.AppendHistogram(h.Raw)
			row.histograms++
		}
		for _, e := range rw.Exemplars[s.ExemplarsStart:s.ExemplarsEnd] {
			b.AppendExemplar(rw.ExemplarLabels[e.LabelsStart:e.LabelsEnd], e.Value, e.Timestamp)
			row.exemplars++
		}
		st.add(row)
		req.partStats[req.lastPart].add(row)
		r.maybeCut(req, tenant)
	}
	// 1.0 metadata travels as rows with the family name and no samples.
	for _, m := range rw.Metadata {
		lbls := append(req.sortBuf[:0], proto.Label{Name: "__name__", Value: m.Family})
		req.sortBuf = lbls
		if reason, detail := checkLabels(&r.cfg.Limits, lbls, true, false); reason != "" {
			reject(lbls, 0, reason, detail)
			continue
		}
		b, _, _ := r.builderFor(req, tenant, lbls)
		b.StartSeries(lbls, m.Metadata)
	}
	return inv
}

// seriesLabels returns the labels of series s of rw, sorted: 2.0 senders
// should sort them; they are sorted rather than rejected.
func seriesLabels(rw *remotewrite.Request, s *remotewrite.Series) []proto.Label {
	lbls := rw.SeriesLabels(s)
	if rw.Version == 2 && !sortedLabels(lbls) {
		slices.SortFunc(lbls, func(a, b proto.Label) int { return strings.Compare(a.Name, b.Name) })
	}
	return lbls
}

// startRow starts the row of series s, with labels lbls, in the block of
// its partition and returns that block: the full path, which routes the
// series by its labels and numbers it in the partition's dictionary (by
// its tenant and series column). id is its wire identity, under which
// r.known then remembers the number.
func (r *Receiver) startRow(req *request, tenant string, s *remotewrite.Series, lbls []proto.Label, refNow int64, id seriesHash) *proto.BlockBuilder {
	b, key, xxh := r.builderFor(req, tenant, lbls)
	if key != nil {
		b.StartSeriesColumn(key[len(tenant):], s.Metadata)
	} else {
		b.StartSeries(lbls, s.Metadata)
	}
	if r.refs == nil {
		return b
	}
	p := req.lastPart
	// Numbered by tenant and labels: a number names one series.
	// The series column starts with 0xff, which no tenant has.
	if key == nil {
		req.refKey = append(append(req.refKey[:0], tenant...), b.LastSeries()...)
		key, xxh = req.refKey, xxhash.Sum64(req.refKey)
	}
	dict, ref, define := r.refs[p].number(key, xxh, refNow)
	if b.Refer(dict, ref, define) {
		if define {
			req.defs = append(req.defs, seriesDef{p, dict, ref})
		}
		r.known.put(id, p, dict, ref)
	}
	return b
}

// placeKnown sets req.ids to the wire identity of each series of req and
// req.places to where each was put before when a row may refer to it
// (r.known, seriesRefs.keepCurrent), else to zero.
func (r *Receiver) placeKnown(req *request, tenant string, refNow int64) {
	rw := &req.rw
	n := len(rw.Series)
	req.ids = slices.Grow(req.ids[:0], n)[:n]
	req.places = slices.Grow(req.places[:0], n)[:n]
	tid := tenantID(tenant, rw.Version)
	for i := range rw.Series {
		s := &rw.Series[i]
		req.ids[i] = req.wireID(tid, rw, s)
	}
	req.order = r.known.getAll(req.ids, req.places, req.order)
	// Grouped by partition, the unknown series last (key len(r.refs)).
	starts := slices.Grow(req.partStarts[:0], len(r.refs)+2)[:len(r.refs)+2]
	req.order = groupBy(req.order, starts, n, func(i int) int {
		if req.places[i].ref == 0 {
			return len(r.refs)
		}
		return int(req.places[i].part)
	})
	for p, d := range r.refs {
		if idx := req.order[starts[p]:starts[p+1]]; len(idx) > 0 {
			d.keepCurrent(req.places, idx, refNow)
		}
	}
	req.partStarts = starts
}

// wireID returns the wire identity of series s of a request of tenant tid
// (tenantID): its 1.0 label bytes as they arrived, else its labels, each
// name and value after its length (not yet validated, so they may hold
// any byte: the lengths keep two label sets from encoding alike).
func (req *request) wireID(tid seriesHash, rw *remotewrite.Request, s *remotewrite.Series) seriesHash {
	if s.LabelsWire != nil {
		return wireID(tid, s.LabelsWire)
	}
	buf := req.idBuf[:0]
	for _, l := range rw.SeriesLabels(s) {
		buf = binary.AppendUvarint(buf, uint64(len(l.Name)))
		buf = append(buf, l.Name...)
		buf = binary.AppendUvarint(buf, uint64(len(l.Value)))
		buf = append(buf, l.Value...)
	}
	req.idBuf = buf
	return wireID(tid, buf)
}

// seriesBytes bounds from below the bytes series s adds to a block: 24
// bytes a sample (time, start time, value), its histograms' encodings and
// its exemplars. Its labels are left out: the label limits bound them far
// below a record (30 labels of at most 3 kB).
func seriesBytes(rw *remotewrite.Request, s *remotewrite.Series, samples []remotewrite.Sample, hists []remotewrite.Histogram) int {
	n := 24 * len(samples)
	for _, h := range hists {
		n += len(h.Raw)
	}
	for _, e := range rw.Exemplars[s.ExemplarsStart:s.ExemplarsEnd] {
		n += 16
		for _, l := range rw.ExemplarLabels[e.LabelsStart:e.LabelsEnd] {
			n += len(l.Name) + len(l.Value) + 2
		}
	}
	return n
}

// builderFor returns the block builder of the partition lbls route to and,
// when the series is routed by its own labels, its tenant and series column
// (rules.RoutingKey's key after its prefix byte; valid until the next call)
// and the routing key's xxhash64, else nil.
func (r *Receiver) builderFor(req *request, tenant string, lbls []proto.Label) (*proto.BlockBuilder, []byte, uint64) {
	var rule int
	req.key, rule = r.rules.RoutingKey(req.key[:0], tenant, lbls)
	h := xxhash.Sum64(req.key)
	b := req.builder(rules.PartitionOfHash(h, r.cfg.Partitions), tenant, r.cfg.MaxRecordBytes)
	if rule >= 0 {
		return b, nil, 0
	}
	return b, req.key[1:], h
}

// builder returns the block builder of partition p, which becomes the
// partition of the series being built; a block the series (req.need) would
// take past maxRecord bytes is cut into a record first.
func (req *request) builder(p int32, tenant string, maxRecord int) *proto.BlockBuilder {
	req.lastPart = p
	b := &req.builders[p]
	switch {
	case !req.inUse[p]:
		req.inUse[p] = true
		req.used = append(req.used, p)
		b.Reset(tenant)
		req.partStats[p] = stats{}
	case b.Len() > 0 && b.Size()+req.need > maxRecord:
		// The series would take the block past a record: cut first (a
		// block of 4 MiB and a series of 2 failed at Kafka).
		req.cut(p, tenant)
	}
	return b
}

// maybeCut turns the last partition's block into a record once it is large.
func (r *Receiver) maybeCut(req *request, tenant string) {
	if p := req.lastPart; req.builders[p].Size() >= r.cfg.MaxRecordBytes {
		req.cut(p, tenant)
	}
}

// cut turns partition p's block into a record and starts a new block.
func (req *request) cut(p int32, tenant string) {
	if err := req.appendRecord(p, tenant); err != nil && req.err == nil {
		req.err = err
	}
	req.builders[p].Reset(tenant)
	req.partStats[p] = stats{}
}

// appendRecord encodes partition p's block as a record of req.
func (req *request) appendRecord(p int32, tenant string) error {
	i := len(req.records)
	if i == len(req.values) {
		req.values = append(req.values, nil)
	}
	v, err := req.builders[p].AppendIPC(req.values[i][:0])
	if err != nil {
		return err
	}
	req.values[i] = v
	rec := &kgo.Record{Partition: p, Value: v}
	if tenant != "" {
		rec.Headers = []kgo.RecordHeader{{Key: "tenant", Value: []byte(tenant)}}
	}
	req.records = append(req.records, rec)
	req.recStats = append(req.recStats, req.partStats[p])
	return nil
}

// produce writes the blocks of req to Kafka and waits until every record is
// acknowledged. Any failure fails the whole request with errKafka: the
// sender retries it, and consumers drop the samples they already saw. It
// returns what the records Kafka acknowledged carry (when it fails, those
// acknowledged by then).
func (r *Receiver) produce(ctx context.Context, req *request, tenant string) (stats, error) {
	if req.err != nil {
		return stats{}, fmt.Errorf("%w: %w", errKafka, req.err)
	}
	for _, p := range req.used {
		if req.builders[p].Series() == 0 {
			continue // cut by maybeCut and nothing added since
		}
		if err := req.appendRecord(p, tenant); err != nil {
			return stats{}, fmt.Errorf("%w: %w", errKafka, err)
		}
	}
	if len(req.records) == 0 {
		return stats{}, nil
	}
	// franz-go's idempotent producer never fails a record whose fate is
	// unknown (sent, no answer): it retries until the broker answers. The
	// sender must not wait for that, so the wait is bounded here; a request
	// that times out answers 503 and abandons its buffers to the client,
	// which may still deliver them (a duplicate the stream drops).
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProduceTimeout)
	defer cancel()
	// The series numbers the records define count from start: franz-go
	// stamps each record when it takes it, after this (seriesRefs).
	start := time.Now()
	var (
		mu        sync.Mutex
		firstErr  error
		written   stats
		remaining = len(req.records)
		done      = make(chan struct{})
	)
	// An abandoned request is not reused, so late promises may read it.
	promise := func(rec *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err == nil {
			written.add(req.recStats[slices.Index(req.records, rec)])
		}
		if remaining--; remaining == 0 {
			close(done)
		}
	}
	// Records are produced under a context the request's cancellation does
	// not reach: franz-go fails a whole batch when its first record's
	// context is done, so a sender that gave up would fail the records of
	// other requests batched behind its own. This request stops waiting in
	// the select below instead.
	pctx := context.WithoutCancel(ctx)
	for _, rec := range req.records {
		r.client.TryProduce(pctx, rec, promise)
	}
	r.m.records.Add(float64(len(req.records)))
	select {
	case <-done:
	case <-ctx.Done():
		req.abandoned = true
		r.m.produceErrors.Inc()
		mu.Lock()
		acked := written
		mu.Unlock()
		return acked, fmt.Errorf("%w: no acknowledgement within %s: %w", errKafka, r.cfg.ProduceTimeout, ctx.Err())
	}
	r.m.produceDuration.Observe(time.Since(start).Seconds())
	if firstErr != nil {
		r.m.produceErrors.Inc()
		return written, fmt.Errorf("%w: %w", errKafka, firstErr)
	}
	for _, d := range req.defs {
		r.refs[d.part].defined(d.dict, d.ref, start.UnixMilli())
	}
	return written, nil
}

// Drain stops intake (new requests answer 503) and waits until the requests
// in flight are answered or ctx ends.
func (r *Receiver) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		r.mu.Lock()
		r.draining = true
		r.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain remote-write receiver: %w", ctx.Err())
	}
}
