package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/ingest/remotewrite"
	"github.com/augur-ops/augur/internal/loadgen"
	"github.com/augur-ops/augur/internal/rules"
)

// benchSeries is the series (one sample each) of one benchmark request, as
// Prometheus sends them by default (max_samples_per_send).
const benchSeries = 2000

// benchBodies returns n snappy-compressed requests of the load generator.
func benchBodies(tb testing.TB, protocol string, n int) [][]byte {
	tb.Helper()
	bodies, err := loadgen.Bodies(loadgen.Config{Protocol: protocol, Pool: n, SeriesPerRequest: benchSeries},
		time.Now().Add(-time.Hour).UnixMilli())
	if err != nil {
		tb.Fatal(err)
	}
	return bodies
}

func decodedBody(tb testing.TB, protocol string) []byte {
	tb.Helper()
	raw, err := snappy.Decode(nil, benchBodies(tb, protocol, 1)[0])
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func decoder(protocol string) func(*remotewrite.Request, []byte) error {
	if protocol == "v2" {
		return remotewrite.DecodeV2
	}
	return remotewrite.DecodeV1
}

// TestDecodeAllocatesNothingWhenWarm checks the decode-path claim the
// benchmarks report: once a Request has grown, decoding a generator
// request of 2,000 series allocates nothing.
func TestDecodeAllocatesNothingWhenWarm(t *testing.T) {
	for _, protocol := range []string{"v1", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			body := decodedBody(t, protocol)
			decode := decoder(protocol)
			var rw remotewrite.Request
			if err := decode(&rw, body); err != nil {
				t.Fatal(err)
			}
			if len(rw.Series) != benchSeries || len(rw.Samples) != benchSeries {
				t.Fatalf("decoded %d series, %d samples; want %d each", len(rw.Series), len(rw.Samples), benchSeries)
			}
			allocs := testing.AllocsPerRun(5, func() {
				if err := decode(&rw, body); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("warm decode of %d series: %.0f allocations, want 0", benchSeries, allocs)
			}
		})
	}
}

// BenchmarkDecodeV1 decodes a 2,000-series remote-write 1.0 request of the
// load generator (already decompressed) into a warm Request.
func BenchmarkDecodeV1(b *testing.B) { benchDecode(b, "v1") }

// BenchmarkDecodeV2 is BenchmarkDecodeV1 for remote-write 2.0 (symbol
// table and metadata).
func BenchmarkDecodeV2(b *testing.B) { benchDecode(b, "v2") }

func benchDecode(b *testing.B, protocol string) {
	body := decodedBody(b, protocol)
	decode := decoder(protocol)
	var rw remotewrite.Request
	if err := decode(&rw, body); err != nil { // warm: grow the slices
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(&rw, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSeries), "ns/sample")
}

// BenchmarkReceiver runs the whole handler path (admission, snappy,
// decode, validate, route, encode one Arrow block per partition, produce
// and wait for the acknowledgement) against an in-process kfake broker that
// acknowledges without storing (kfake.BlackholeProduce). Each operation is
// `inflight` requests of 2,000 series served concurrently, as a receiver
// behind several Prometheus shards sees them. samples/s and ns/sample are
// wall-clock; cpu-ns/sample is the CPU time of the whole test process (the
// receiver and the in-process broker) per sample.
func BenchmarkReceiver(b *testing.B) {
	for _, protocol := range []string{"v1", "v2"} {
		for _, inflight := range []int{1, 8} {
			b.Run(protocol+"/inflight="+strconv.Itoa(inflight), func(b *testing.B) {
				benchReceiver(b, protocol, inflight)
			})
		}
	}
}

// BenchmarkReceiverCompression is BenchmarkReceiver (v1, one request at a
// time) for each `ingest.compression`, with series references (the
// default) and without (`ingest.series_refs: -1`): the receiver's CPU per
// sample for each option (the broker, blackholing, decompresses nothing).
func BenchmarkReceiverCompression(b *testing.B) {
	for _, codec := range []string{"none", "lz4", "zstd"} {
		for _, refs := range []int{0, -1} {
			name := "refs=on"
			if refs < 0 {
				name = "refs=off"
			}
			b.Run("compression="+codec+"/"+name, func(b *testing.B) {
				benchReceiverCodec(b, "v1", 1, codec, refs)
			})
		}
	}
}

// discardWriter is a reusable http.ResponseWriter that keeps the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// benchBody is a reusable request body.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

func benchReceiver(b *testing.B, protocol string, inflight int) {
	benchReceiverCodec(b, protocol, inflight, "", 0)
}

func benchReceiverCodec(b *testing.B, protocol string, inflight int, codec string, seriesRefs int) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	cfg := Config{Topic: "augur.samples.bench", Partitions: 8, Compression: codec, SeriesRefs: seriesRefs}
	client, err := kgo.NewClient(append(ClientOptions(cfg), kgo.SeedBrokers(cluster.ListenAddrs()...))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.Close)
	if _, err := EnsureTopic(b.Context(), kadm.NewClient(client), cfg.Topic, cfg.Partitions, 1, 4<<20); err != nil {
		b.Fatal(err)
	}
	recv, err := New(cfg, client, rules.Empty(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	bodies := benchBodies(b, protocol, 16)
	ctype := "application/x-protobuf"
	if protocol == "v2" {
		ctype += ";proto=io.prometheus.write.v2.Request"
	}

	// One reusable request, body and writer per concurrent slot.
	type slot struct {
		req  *http.Request
		body benchBody
		w    discardWriter
	}
	slots := make([]*slot, inflight)
	for i := range slots {
		s := &slot{w: discardWriter{h: http.Header{}}}
		s.req, err = http.NewRequestWithContext(context.Background(), http.MethodPost, "/api/v1/write", nil)
		if err != nil {
			b.Fatal(err)
		}
		s.req.Header.Set("Content-Type", ctype)
		s.req.Header.Set("Content-Encoding", "snappy")
		slots[i] = s
	}
	next := 0
	serve := func(s *slot) {
		body := bodies[next%len(bodies)]
		next++
		s.body.Reset(body)
		s.req.Body = &s.body
		s.req.ContentLength = int64(len(body))
		clear(s.w.h)
		s.w.status = 0
	}
	check := func(s *slot) {
		if s.w.status != http.StatusNoContent {
			b.Fatalf("status %d, want 204", s.w.status)
		}
	}
	// Warm up the pools, the client's connections and the builders.
	for range 2 * len(bodies) {
		serve(slots[0])
		recv.ServeHTTP(&slots[0].w, slots[0].req)
		check(slots[0])
	}

	var wg sync.WaitGroup
	cpu0 := processCPU()
	b.ReportAllocs()
	for b.Loop() {
		if inflight == 1 {
			serve(slots[0])
			recv.ServeHTTP(&slots[0].w, slots[0].req)
			check(slots[0])
			continue
		}
		for _, s := range slots {
			serve(s)
			wg.Go(func() { recv.ServeHTTP(&s.w, s.req) })
		}
		wg.Wait()
		for _, s := range slots {
			check(s)
		}
	}
	cpu := processCPU() - cpu0
	samples := float64(b.N * inflight * benchSeries)
	b.ReportMetric(samples/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/samples, "ns/sample")
	b.ReportMetric(float64(cpu.Nanoseconds())/samples, "cpu-ns/sample")
}

// processCPU returns the user plus system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
