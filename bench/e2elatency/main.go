// Command e2elatency measures augur's end-to-end latency at a fixed load:
// an embedded Kafka-protocol broker (kfake), the remote-write receiver and
// one stream member in one process, fed by bench/loadgen at a fixed rate.
//
//	go run ./bench/e2elatency -rate 100000 -duration 30s
//
// For every remote-write request answered 2xx it records
//
//   - processed: from the 2xx to the stream having applied the last of the
//     request's records (Config.OnProcessed);
//   - readable: from the 2xx to the commit of the transaction that carries
//     the decisions made from those records, i.e. when a read-committed
//     consumer of augur.decisions can read them (Config.OnCommitted).
//
// Records are tied to their request by a produce hook on the receiver's
// Kafka client (the record's context carries the request) and by partition
// and offset on the consumer side. A record can be processed before its
// request's 2xx (the 2xx waits for every partition's acknowledgement);
// such latencies count as zero.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/loadgen"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/stream"
)

// rulesYAML watches part of the generated fleet: an anomaly band on every
// container memory series and a scaling rule on one namespace's requests.
const rulesYAML = `
rules:
- name: team-1-rps
  scaling:
    selector: 'http_requests_total{namespace="team-1"}'
    capacity_per_pod: 50
    window: 15s
    horizon: 5m
    min_replicas: 2
    max_replicas: 200
    target: {namespace: team-1, name: api}
- name: memory
  anomaly:
    selector: 'container_memory_working_set_bytes'
`

func main() {
	rate := flag.Float64("rate", 100_000, "samples per second sent")
	duration := flag.Duration("duration", 30*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 5*time.Second, "load sent before the measurement")
	parts := flag.Int("partitions", 4, "partitions of augur.samples")
	perReq := flag.Int("series-per-request", 2000, "series (one sample each) per remote-write request")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(*rate, *duration, *warmup, int32(*parts), *perReq, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "e2elatency:", err)
		os.Exit(1)
	}
}

// request is one remote-write request in flight or answered.
type request struct {
	mu         sync.Mutex
	records    int       // records produced for it
	acked      time.Time // 2xx answered; zero until then
	done       int       // records processed
	lastDone   time.Time
	commits    int // records committed
	lastCommit time.Time
}

type reqKey struct{}

type recKey struct {
	part int32
	off  int64
}

// tracker ties records to requests and collects the latencies.
type tracker struct {
	mu       sync.Mutex
	byRecord map[recKey]*request
	pending  []recKey // processed since the last commit
	// early holds records processed (and maybe committed) before the
	// produce hook tied them to their request.
	early     map[recKey]*request
	measuring bool
	processed []time.Duration
	readable  []time.Duration
	decisions int
}

// OnProduceRecordUnbuffered implements kgo.HookProduceRecordUnbuffered: an
// acknowledged record of a request is remembered by partition and offset.
func (tr *tracker) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil || r.Context == nil {
		return
	}
	req, _ := r.Context.Value(reqKey{}).(*request)
	if req == nil {
		return
	}
	req.mu.Lock()
	req.records++
	req.mu.Unlock()
	k := recKey{r.Partition, r.Offset}
	tr.mu.Lock()
	e := tr.early[k]
	delete(tr.early, k)
	if e == nil || e.commits == 0 {
		tr.byRecord[k] = req // its commit is still to come
	}
	tr.mu.Unlock()
	if e != nil {
		// Copy what happened to the record before the hook ran.
		e.mu.Lock()
		done, lastDone, commits, lastCommit := e.done, e.lastDone, e.commits, e.lastCommit
		e.mu.Unlock()
		req.mu.Lock()
		req.done += done
		req.lastDone = later(req.lastDone, lastDone)
		req.commits += commits
		req.lastCommit = later(req.lastCommit, lastCommit)
		req.mu.Unlock()
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (tr *tracker) onProcessed(rec *kgo.Record, _ int) {
	now := time.Now()
	k := recKey{rec.Partition, rec.Offset}
	tr.mu.Lock()
	req := tr.byRecord[k]
	if req == nil {
		// Not tied to its request yet: remember it under its offset.
		req = &request{}
		tr.early[k] = req
	}
	tr.pending = append(tr.pending, k)
	tr.mu.Unlock()
	req.mu.Lock()
	req.done++
	req.lastDone = now
	req.mu.Unlock()
}

func (tr *tracker) onCommitted(_ int, decisions int) {
	now := time.Now()
	tr.mu.Lock()
	pending := tr.pending
	tr.pending = nil
	if tr.measuring {
		tr.decisions += decisions
	}
	tr.mu.Unlock()
	for _, k := range pending {
		tr.mu.Lock()
		req := tr.byRecord[k]
		delete(tr.byRecord, k)
		if req == nil {
			req = tr.early[k]
		}
		tr.mu.Unlock()
		if req == nil {
			continue
		}
		req.mu.Lock()
		req.commits++
		req.lastCommit = now
		req.mu.Unlock()
	}
}

// finish records a request's latencies once it is answered, processed and
// committed.
func (tr *tracker) finish(reqs []*request) (open int) {
	for _, req := range reqs {
		req.mu.Lock()
		complete := !req.acked.IsZero() && req.records > 0 && req.commits == req.records
		p, c := req.lastDone.Sub(req.acked), req.lastCommit.Sub(req.acked)
		req.mu.Unlock()
		if !complete {
			open++
			continue
		}
		tr.processed = append(tr.processed, max(p, 0))
		tr.readable = append(tr.readable, max(c, 0))
	}
	return open
}

func run(rate float64, duration, warmup time.Duration, parts int32, perReq int, out io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(64 << 20)}))
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer cluster.Close()
	seeds := cluster.ListenAddrs()
	rs, err := rules.Parse(strings.NewReader(rulesYAML))
	if err != nil {
		return err
	}

	icfg := ingest.Config{Partitions: parts}
	if err := icfg.Validate(); err != nil {
		return err
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := ingest.EnsureTopic(ctx, adm, icfg.Topic, parts, 1, icfg.MaxRecordBytes); err != nil {
		return err
	}
	scfg := stream.Config{
		Brokers: seeds, Rules: rs, SigningKey: []byte("e2e-latency-benchmark-key-000000"),
		Registerer: prometheus.NewRegistry(), Logger: log,
	}
	if err := scfg.Validate(); err != nil {
		return err
	}
	if err := stream.EnsureTopics(ctx, adm, &scfg, 1, int32(parts)); err != nil {
		return err
	}

	tr := &tracker{byRecord: map[recKey]*request{}, early: map[recKey]*request{}}
	scfg.OnProcessed = tr.onProcessed
	scfg.OnCommitted = tr.onCommitted
	st, err := stream.New(scfg)
	if err != nil {
		return err
	}
	pcl, err := kgo.NewClient(append(ingest.ClientOptions(icfg), kgo.SeedBrokers(seeds...), kgo.WithHooks(tr))...)
	if err != nil {
		return err
	}
	defer pcl.Close()
	recv, err := ingest.New(icfg, pcl, rs, prometheus.NewRegistry(), log, nil)
	if err != nil {
		return err
	}

	var reqMu sync.Mutex
	var reqs []*request
	measureFrom := time.Now().Add(warmup)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		recv.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqKey{}, req)))
		if sw.code/100 != 2 {
			return
		}
		now := time.Now()
		req.mu.Lock()
		req.acked = now
		req.mu.Unlock()
		if now.After(measureFrom) {
			reqMu.Lock()
			reqs = append(reqs, req)
			reqMu.Unlock()
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	g, gctx := errgroup.WithContext(ctx)
	stCtx, stopStream := context.WithCancel(gctx)
	g.Go(func() error { return st.Run(stCtx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	var res *loadgen.Result
	g.Go(func() error {
		defer stopStream()
		defer srv.Close()
		time.AfterFunc(warmup, func() {
			tr.mu.Lock()
			tr.measuring = true
			tr.mu.Unlock()
		})
		// One pool entry per request of the run: event time only moves
		// forward, so the stream does real work (no duplicates).
		pool := int((duration+warmup).Seconds()*rate)/perReq + 1
		var err error
		res, err = loadgen.Run(gctx, loadgen.Config{URL: "http://" + ln.Addr().String() + "/api/v1/write",
			Rate: rate, Duration: duration, Warmup: warmup, SeriesPerRequest: perReq, Pool: pool}, log)
		if err != nil {
			return err
		}
		// Let the stream catch up with what was acknowledged.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			reqMu.Lock()
			open := 0
			for _, r := range reqs {
				r.mu.Lock()
				if r.records == 0 || r.commits < r.records {
					open++
				}
				r.mu.Unlock()
			}
			reqMu.Unlock()
			if open == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	open := tr.finish(reqs)
	fmt.Fprintf(out, "load: %.0f samples/s target, %.0f acked/s, %d requests (%d series each), status %v, send p50 %s p99 %s\n",
		res.TargetRate, res.AckedPerSecond, res.Requests, perReq, res.Status, res.P50, res.P99)
	fmt.Fprintf(out, "measured requests: %d (%d not complete at the end), decisions committed: %d\n", len(tr.processed), open, tr.decisions)
	report(out, "2xx -> processed", tr.processed)
	report(out, "2xx -> decisions readable", tr.readable)
	return nil
}

func report(out io.Writer, what string, ds []time.Duration) {
	if len(ds) == 0 {
		fmt.Fprintf(out, "%s: no samples\n", what)
		return
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	fmt.Fprintf(out, "%s: p50 %s  p90 %s  p99 %s  max %s\n", what,
		q(0.5).Round(10*time.Microsecond), q(0.9).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
}

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
