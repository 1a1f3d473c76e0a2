// Package loadgen is a Prometheus remote-write load generator for
// benchmarking receivers (augur's ingest, VictoriaMetrics, anything that
// speaks remote-write 1.0 or 2.0).
//
// It sends Prometheus-shaped requests: SeriesPerRequest series per request
// with one sample each, about twelve labels per series with the
// cardinalities of a Kubernetes fleet (50 metric names, 10 jobs, 500
// instances, 20 namespaces, 2,000 pods, 200 nodes, 3 zones, le / code /
// method where they fit), snappy-compressed, as 1.0 (prompb.WriteRequest)
// or 2.0 (io.prometheus.write.v2.Request with a symbol table and metadata).
// Requests are encoded before the run into a pool that is sent round robin,
// so the generator costs little CPU beside the receiver it measures; series
// timestamps increase along the pool and start again when it wraps (a
// stateless receiver does not care; a storage sees duplicates).
//
// At a fixed rate, requests are started on a schedule (open loop) and their
// latency is measured from the time they were due, so a slow receiver shows
// as latency instead of a lower send rate (no coordinated omission). With
// Rate 0, Concurrency workers send back to back.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config configures a load run. Zero values mean the defaults; Validate
// fills them in.
type Config struct {
	// URL is the remote-write endpoint. Required.
	URL string
	// Protocol is "v1" (remote-write 1.0) or "v2" (2.0). Default "v1".
	Protocol string
	// SeriesPerRequest is the number of series, each with one sample, in a
	// request. Default 2000 (Prometheus' max_samples_per_send).
	SeriesPerRequest int
	// Series is the size of the simulated fleet the requests walk.
	// Default 100000 (2,000 pods x 50 metrics).
	Series int
	// Pool is the number of distinct requests encoded before the run.
	// Default 100 (two scrape rounds of the default fleet).
	Pool int
	// ScrapeInterval is the timestamp step between two rounds over the
	// fleet. Default 15s.
	ScrapeInterval time.Duration
	// Rate is the target in samples per second; requests are started on a
	// timer at Rate/SeriesPerRequest per second. 0 sends flat out.
	Rate float64
	// Duration of the run. Default 30s.
	Duration time.Duration
	// Warmup is sent before the measured Duration and not counted, so that
	// connections, pools and caches of the receiver are warm. Default 0.
	Warmup time.Duration
	// Concurrency is the number of requests in flight at most. Default 8.
	// At a fixed rate, a request due while all are busy waits for one
	// (its latency counts from when it was due).
	Concurrency int
	// Timeout bounds one request. Default 30s.
	Timeout time.Duration
	// Tenant, when set, is sent as X-Scope-OrgID.
	Tenant string
	// Seed makes the values reproducible. Default 1.
	Seed int64
	// CPUPids are processes whose CPU time (user + system, from
	// /proc/<pid>/stat) is measured over the run. Linux only.
	CPUPids []int
}

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	if c.Protocol == "" {
		c.Protocol = "v1"
	}
	if c.SeriesPerRequest == 0 {
		c.SeriesPerRequest = 2000
	}
	if c.Series == 0 {
		c.Series = 100000
	}
	if c.Pool == 0 {
		c.Pool = 100
	}
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = 15 * time.Second
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Validate fills in defaults and reports bad fields.
func (c *Config) Validate() error {
	c.defaults()
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url: required"))
	}
	if c.Protocol != "v1" && c.Protocol != "v2" {
		errs = append(errs, fmt.Errorf("protocol: want v1 or v2, got %q", c.Protocol))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"series_per_request", int64(c.SeriesPerRequest)}, {"series", int64(c.Series)},
		{"pool", int64(c.Pool)}, {"scrape_interval", int64(c.ScrapeInterval)},
		{"duration", int64(c.Duration)}, {"concurrency", int64(c.Concurrency)},
		{"timeout", int64(c.Timeout)},
	} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0, got %d", f.name, f.v))
		}
	}
	if c.Rate < 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("rate and warmup must not be negative"))
	}
	if c.SeriesPerRequest > c.Series {
		errs = append(errs, fmt.Errorf("series_per_request %d exceeds series %d", c.SeriesPerRequest, c.Series))
	}
	return errors.Join(errs...)
}

// Result is what a run measured. Only requests started within the measured
// window count.
type Result struct {
	Protocol       string
	Elapsed        time.Duration // measured window, until the last counted answer
	Requests       int
	SamplesSent    int
	SamplesAcked   int            // samples of requests answered 2xx
	Status         map[string]int // HTTP status code (or "error") -> requests
	Late           int            // fixed rate: requests started after waiting for a free worker
	P50, P90, P99  time.Duration
	Max            time.Duration
	AckedPerSecond float64
	TargetRate     float64
	BodyBytesMean  int
	// SamplesRepeated counts samples sent again, warm-up included: once
	// the pool's Pool requests are all sent, the same requests (same
	// timestamps) go again. A receiver that drops duplicates (augur run's
	// stream does) does less for them; raise Pool to avoid them.
	SamplesRepeated  int
	CPU              []ProcCPU // per Config.CPUPids, over the measured window
	GeneratorCPUSecs float64   // this process, over the measured window
}

// ProcCPU is the CPU time a process used during the measured window.
type ProcCPU struct {
	Pid     int     `json:"pid"`
	Seconds float64 `json:"cpu_seconds"`
	// SamplesPerCPUSecond is SamplesAcked / Seconds.
	SamplesPerCPUSecond float64 `json:"samples_per_cpu_second"`
}

// Run sends load as configured and returns what it measured. It stops at
// the end of the run or when ctx ends (then the result covers the part run).
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen config: %w", err)
	}
	rounds := int64(cfg.Pool*cfg.SeriesPerRequest/cfg.Series + 1)
	startMs := time.Now().Add(-time.Duration(rounds+1) * cfg.ScrapeInterval).UnixMilli()
	pool, err := buildPool(&cfg, startMs)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, b := range pool {
		total += len(b.data)
	}
	log.Info("request pool ready", "requests", len(pool), "bytes_mean", total/len(pool), "protocol", cfg.Protocol)

	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency * 2,
		MaxIdleConnsPerHost: cfg.Concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	s := &sender{cfg: &cfg, pool: pool, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
	if cfg.Protocol == "v2" {
		s.ctype = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
		s.version = "2.0.0"
	} else {
		s.ctype = "application/x-protobuf"
		s.version = "0.1.0"
	}

	if cfg.Warmup > 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.Warmup)
		s.run(wctx, false)
		cancel()
		log.Info("warm-up done", "requests", s.warm)
	}
	cpu0, err := readCPU(cfg.CPUPids)
	if err != nil {
		return nil, err
	}
	self0, _ := selfCPU()
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	stats := s.run(rctx, true)
	cancel()
	elapsed := time.Since(start)
	cpu1, err := readCPU(cfg.CPUPids)
	if err != nil {
		return nil, err
	}
	self1, _ := selfCPU()

	res := &Result{
		Protocol: cfg.Protocol, Elapsed: elapsed, Status: map[string]int{},
		TargetRate: cfg.Rate, BodyBytesMean: total / len(pool),
		GeneratorCPUSecs: self1 - self0,
	}
	var lat []time.Duration
	for _, w := range stats {
		res.Requests += w.requests
		res.SamplesSent += w.sent
		res.SamplesAcked += w.acked
		res.Late += w.late
		for k, v := range w.status {
			res.Status[k] += v
		}
		lat = append(lat, w.latency...)
	}
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = quantile(lat, 0.50), quantile(lat, 0.90), quantile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	res.AckedPerSecond = float64(res.SamplesAcked) / elapsed.Seconds()
	s.mu.Lock()
	res.SamplesRepeated = max(0, s.taken-len(pool)) * cfg.SeriesPerRequest
	s.mu.Unlock()
	if res.SamplesRepeated > 0 {
		log.Warn("the request pool repeated: samples were sent again with timestamps already sent (raise -pool)",
			"samples_repeated", res.SamplesRepeated, "pool_samples", len(pool)*cfg.SeriesPerRequest)
	}
	for i, pid := range cfg.CPUPids {
		c := ProcCPU{Pid: pid, Seconds: cpu1[i] - cpu0[i]}
		if c.Seconds > 0 {
			c.SamplesPerCPUSecond = float64(res.SamplesAcked) / c.Seconds
		}
		res.CPU = append(res.CPU, c)
	}
	return res, nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// sender sends requests from the pool.
type sender struct {
	cfg            *Config
	pool           []body
	client         *http.Client
	ctype, version string
	taken          int // requests taken from the pool, warm-up included; under mu
	mu             sync.Mutex
	warm           int
}

// workerStats is one worker's tally.
type workerStats struct {
	requests, sent, acked, late int
	status                      map[string]int
	latency                     []time.Duration
}

// job is one request to send, due at due.
type job struct {
	due  time.Time
	late bool
}

func (s *sender) take() *body {
	s.mu.Lock()
	b := &s.pool[s.taken%len(s.pool)]
	s.taken++
	s.mu.Unlock()
	return b
}

// run sends until ctx ends and returns the tallies of the workers.
// Requests still in flight when ctx ends are answered (not cancelled) so
// that acknowledged samples are counted; their latency counts.
func (s *sender) run(ctx context.Context, count bool) []*workerStats {
	n := s.cfg.Concurrency
	stats := make([]*workerStats, n)
	var wg sync.WaitGroup
	var jobs chan job
	if s.cfg.Rate > 0 {
		jobs = make(chan job)
		wg.Go(func() { s.schedule(ctx, jobs) })
	}
	var workers sync.WaitGroup
	for i := range n {
		st := &workerStats{status: map[string]int{}}
		stats[i] = st
		workers.Go(func() {
			if jobs == nil {
				for ctx.Err() == nil {
					s.send(st, time.Now(), count)
				}
				return
			}
			for j := range jobs {
				if j.late {
					st.late++
				}
				s.send(st, j.due, count)
			}
		})
	}
	wg.Wait()
	workers.Wait()
	return stats
}

// schedule emits one job per interval (open loop) until ctx ends, then
// closes jobs. A job nobody takes by its due time is still handed over
// when a worker frees up, marked late; its latency counts from due.
func (s *sender) schedule(ctx context.Context, jobs chan<- job) {
	defer close(jobs)
	perSec := s.cfg.Rate / float64(s.cfg.SeriesPerRequest)
	interval := time.Duration(float64(time.Second) / perSec)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case jobs <- job{due: due}:
			continue
		default:
		}
		select {
		case jobs <- job{due: due, late: true}:
		case <-ctx.Done():
			return
		}
	}
}

// send posts one request of the pool and records its outcome.
func (s *sender) send(st *workerStats, due time.Time, count bool) {
	b := s.take()
	// A request is never cancelled by the end of the run: its answer
	// decides whether its samples count as acknowledged.
	req, err := http.NewRequest(http.MethodPost, s.cfg.URL, bytes.NewReader(b.data))
	if err != nil {
		st.status["error"]++
		return
	}
	h := req.Header
	h.Set("Content-Type", s.ctype)
	h.Set("Content-Encoding", "snappy")
	h.Set("User-Agent", "augur-loadgen")
	h.Set("X-Prometheus-Remote-Write-Version", s.version)
	if s.cfg.Tenant != "" {
		h.Set("X-Scope-OrgID", s.cfg.Tenant)
	}
	resp, err := s.client.Do(req)
	if !count {
		s.mu.Lock()
		s.warm++
		s.mu.Unlock()
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		} else {
			time.Sleep(10 * time.Millisecond) // do not spin on a dead endpoint
		}
		return
	}
	st.requests++
	st.sent += b.samples
	if err != nil {
		st.status["error"]++
		st.latency = append(st.latency, time.Since(due))
		time.Sleep(10 * time.Millisecond)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	st.latency = append(st.latency, time.Since(due))
	st.status[strconv.Itoa(resp.StatusCode)]++
	if resp.StatusCode/100 == 2 {
		acked := b.samples
		if v := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				acked = n
			}
		}
		st.acked += acked
	}
}
