package main

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func init() {
	commands["demo"] = command{
		summary: "run augur on a built-in workload (scaling, an anomaly, a sick zone, a sick GPU): decisions on the console at once",
		run:     runDemo,
	}
}

// demoRules are the rules of `augur demo`, one of each kind.
const demoRules = `rules:
  - name: shop-scaling
    scaling:
      selector: 'demo_requests_total{job="shop"}'
      capacity_per_pod: 20
      window: 10s
      horizon: 1m
      min_replicas: 2
      max_replicas: 40
      target: {namespace: demo, name: shop}
  - name: shop-zones
    gray_failure:
      selector: '{__name__=~"http_requests_total|http_request_duration_seconds_.*", job="web"}'
      zone_label: zone
      resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/demo
      window: 15s
  - name: training-gpus
    gpu:
      selector: '{__name__=~"DCGM_FI_.*|training_step_seconds", cluster="demo"}'
      node_label: Hostname
      group_by: [job]
      step_time_metric: training_step_seconds
      worker_label: pod
      window: 15s
  - name: queue-anomalies
    anomaly:
      selector: 'demo_queue_depth{job="shop"}'
`

// runDemo starts `augur run` (embedded broker, dry-run actuators) with
// demoRules and sends it a workload over remote write: first -history of
// past samples (with one episode of each fault) so that the console has a
// past, then live samples with an episode of each fault every 20 minutes.
func runDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := newFlagSet("demo", stdout)
	listen := fs.String("listen", "127.0.0.1:9201", "HTTP address of augur (console at /)")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9093", "address of the embedded broker (loopback)")
	dataDir := fs.String("data-dir", "", "data directory (default: a temporary one, removed at exit)")
	history := fs.Duration("history", time.Hour, "past samples sent at start")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "augur-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer func() {
			if err := os.RemoveAll(tmp); err != nil {
				log.Warn("demo: remove the data directory", "dir", tmp, "err", err)
			}
		}()
		dir = tmp
	}
	rulesFile, cfgFile := filepath.Join(dir, "rules.yaml"), filepath.Join(dir, "augur.yaml")
	if err := os.WriteFile(rulesFile, []byte(demoRules), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	cfg := fmt.Sprintf("listen: %s\ndata_dir: %s\nrules_file: %s\nkafka:\n  embedded_addr: %s\n", *listen, filepath.Join(dir, "data"), rulesFile, *kafkaAddr)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- runRun(ctx, []string{"-config", cfgFile}, io.Discard, log) }()
	base := "http://" + *listen
	if err := demoWaitReady(ctx, base+"/readyz", runErr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "augur demo: console %s/  (decisions API %s/api/v1/decisions; rules %s)\n", base, base, rulesFile)

	w, err := newDemoWorkload(time.Now())
	if err != nil {
		return err
	}
	send := func(at time.Time) error {
		req := &prompb.WriteRequest{Timeseries: w.scrape(at)}
		return demoPush(ctx, base+"/api/v1/write", req)
	}
	// The past, fast, then the present every second.
	for at := w.start.Add(-*history); at.Before(w.start); at = at.Add(time.Second) {
		if err := send(at); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "augur demo: sent %v of history; live samples every second (Ctrl-C stops)\n", *history)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			return <-runErr
		case err := <-runErr:
			return err
		case now := <-tick.C:
			if err := send(now); err != nil && ctx.Err() == nil {
				log.Warn("demo: remote write", "err", err)
			}
		}
	}
}

func demoWaitReady(ctx context.Context, url string, runErr <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-runErr:
			if err == nil {
				err = errors.New("augur run stopped")
			}
			return fmt.Errorf("demo: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(url) //nolint:noctx // bounded by the deadline, loopback
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("demo: augur not ready within 60s")
}

func demoPush(ctx context.Context, url string, req *prompb.WriteRequest) error {
	if len(req.Timeseries) == 0 {
		return nil
	}
	return pushRemoteWrite(ctx, &http.Client{Timeout: 10 * time.Second}, url, req)
}

// demoWorkload is the demo's fleet: a shop whose request rate replays a
// production CPU trace (crane's input0: two days, 12 times faster, so a
// day passes in two hours; scaled by shop-scaling), its queue depth with a burst
// (watched by queue-anomalies), a web service in three zones (3x3
// instances, shop-zones) and four GPU nodes running a 10-worker training
// job that replays Alibaba PAI's job_1 (training-gpus: worker 6 turns into a
// straggler). Episodes, in
// every 20 minutes counted from the start: a queue burst at 1m, zone
// use1-az2 +200 ms from 2m to 8m, XID 79 on gpu-node-2 from 3m to 6m. The
// history gets one of each, ending 5 minutes before the start.
type demoWorkload struct {
	trace    []float64   // one value per trace minute
	job      [][]float64 // per iteration, each worker's step time (s)
	start    time.Time
	rng      *rand.Rand
	fleet    *grayFleet
	requests [3]float64
	last     time.Time
}

//go:embed demodata/crane-input0-2d.csv.gz
var demoTrace []byte

//go:embed demodata/pai-job_1_norm.csv.gz
var demoJob []byte

// readDemoJob reads the PAI job's mini-batch times: per iteration (in
// order), the time of each of the 10 workers, in seconds.
func readDemoJob(b []byte) ([][]float64, error) {
	rows, err := readGzipCSV(b)
	if err != nil {
		return nil, fmt.Errorf("demo job: %w", err)
	}
	byIter := map[int][]float64{}
	var iters []int
	for _, r := range rows[1:] {
		if len(r) < 5 {
			return nil, fmt.Errorf("demo job: row %q", r)
		}
		w, err1 := strconv.Atoi(r[1])
		it, err2 := strconv.Atoi(r[3])
		v, err3 := strconv.ParseFloat(r[4], 64)
		if err := errors.Join(err1, err2, err3); err != nil || w < 0 || w > 63 {
			return nil, fmt.Errorf("demo job: row %q: %w", r, err)
		}
		if byIter[it] == nil {
			iters = append(iters, it)
			byIter[it] = make([]float64, 10)
		}
		if w < 10 {
			byIter[it][w] = v / 1000
		}
	}
	slices.Sort(iters)
	out := make([][]float64, 0, len(iters))
	for _, it := range iters {
		out = append(out, byIter[it])
	}
	return out, nil
}

func newDemoWorkload(start time.Time) (*demoWorkload, error) {
	trace, err := readDemoTrace(demoTrace)
	if err != nil {
		return nil, err
	}
	job, err := readDemoJob(demoJob)
	if err != nil {
		return nil, err
	}
	return &demoWorkload{trace: trace, job: job, start: start.Truncate(time.Second), rng: rand.New(rand.NewPCG(1, 2)), fleet: newGrayFleet(3)}, nil
}

// readGzipCSV reads a gzipped CSV, header row included.
func readGzipCSV(b []byte) ([][]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return csv.NewReader(zr).ReadAll()
}

// readDemoTrace reads a gzipped ts,value CSV.
func readDemoTrace(b []byte) ([]float64, error) {
	rows, err := readGzipCSV(b)
	if err != nil {
		return nil, fmt.Errorf("demo trace: %w", err)
	}
	var out []float64
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			return nil, fmt.Errorf("demo trace: %q: %w", r, err)
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		return nil, errors.New("demo trace: no rows")
	}
	return out, nil
}

// demoTraceAtStart is the trace minute replayed at the demo's start: 02:00
// of the trace's first day, the end of its nightly rise, so that the
// history always holds a trough and a rise to scale for.
const demoTraceAtStart = 26 * 60

// rate is the shop's request rate at t: the trace at 12x (a trace minute
// every 5 s, minute demoTraceAtStart at the start), interpolated, times 3.
func (w *demoWorkload) rate(t time.Time) float64 {
	pos := float64(t.Sub(w.start).Milliseconds())/5000 + demoTraceAtStart
	i := int(math.Floor(pos))
	f := pos - float64(i)
	n := len(w.trace)
	a, b := w.trace[((i%n)+n)%n], w.trace[(((i+1)%n)+n)%n]
	return 3 * (a + (b-a)*f)
}

// episode returns where t is in its 20-minute cycle: cycles run from the
// start, and one more from 25 minutes before it.
func (w *demoWorkload) episode(t time.Time) time.Duration {
	d := t.Sub(w.start)
	if d < 0 {
		d += 25 * time.Minute
		if d < 0 || d >= 20*time.Minute {
			return -1
		}
		return d
	}
	return d % (20 * time.Minute)
}

// scrape returns the series due at t (second resolution): the shop every
// 5 s, the web fleet and the GPUs every 15 s.
func (w *demoWorkload) scrape(t time.Time) []prompb.TimeSeries {
	t = t.Truncate(time.Second)
	var out []prompb.TimeSeries
	ms := t.UnixMilli()
	ep := w.episode(t)
	in := func(from, to time.Duration) bool { return ep >= from && ep < to }
	if t.Unix()%5 == 0 {
		dt := 5.0
		if !w.last.IsZero() {
			dt = t.Sub(w.last).Seconds()
		}
		w.last = t
		rate := w.rate(t)
		for i := range w.requests {
			w.requests[i] += math.Max(0, rate/3*(1+0.05*w.rng.NormFloat64())) * dt
			out = append(out, prompb.TimeSeries{Labels: demoLabels("demo_requests_total", "instance", fmt.Sprintf("shop-%d", i), "job", "shop"),
				Samples: []prompb.Sample{{Timestamp: ms, Value: math.Round(w.requests[i])}}})
		}
		q := 10 + w.rng.NormFloat64()
		if in(time.Minute, time.Minute+30*time.Second) {
			q = 60 + 5*w.rng.NormFloat64()
		}
		out = append(out, prompb.TimeSeries{Labels: demoLabels("demo_queue_depth", "job", "shop"), Samples: []prompb.Sample{{Timestamp: ms, Value: q}}})
	}
	if t.Unix()%15 == 0 {
		var faults []fleetFault
		if in(2*time.Minute, 8*time.Minute) {
			faults = []fleetFault{{zone: 1, from: t.Add(-fleetScrape), to: t.Add(time.Second), extra: 0.2}}
		}
		out = append(out, w.fleet.scrape(t, faults)...)
		// The training job: iteration 181 (its straggler's onset) 15
		// minutes before the start, one iteration per 15 s, restarting
		// every len(job) iterations.
		k := int(t.Sub(w.start.Truncate(15*time.Second)).Round(15*time.Second)/(15*time.Second)) + 181 + 60
		n := len(w.job)
		it := w.job[((k%n)+n)%n]
		for wk, v := range it {
			out = append(out, prompb.TimeSeries{Labels: demoLabels("training_step_seconds", "Hostname", fmt.Sprintf("gpu-node-%d", wk%4+1),
				"cluster", "demo", "job", "train", "pod", fmt.Sprintf("worker-%d", wk)), Samples: []prompb.Sample{{Timestamp: ms, Value: v}}})
		}
		for n := 1; n <= 4; n++ {
			xid := 0.0
			if n == 2 && in(3*time.Minute, 6*time.Minute) {
				xid = 79
			}
			host := fmt.Sprintf("gpu-node-%d", n)
			out = append(out,
				prompb.TimeSeries{Labels: demoLabels("DCGM_FI_DEV_XID_ERRORS", "Hostname", host, "cluster", "demo", "gpu", "0"), Samples: []prompb.Sample{{Timestamp: ms, Value: xid}}},
				prompb.TimeSeries{Labels: demoLabels("DCGM_FI_DEV_GPU_UTIL", "Hostname", host, "cluster", "demo", "gpu", "0"), Samples: []prompb.Sample{{Timestamp: ms, Value: 90 + 5*w.rng.NormFloat64()}}})
		}
	}
	return out
}

// demoLabels makes a sorted label set from a name and label pairs.
func demoLabels(name string, kv ...string) []prompb.Label {
	out := []prompb.Label{{Name: "__name__", Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// pushRemoteWrite sends req as a remote-write 1.0 request.
func pushRemoteWrite(ctx context.Context, client *http.Client, url string, req *prompb.WriteRequest) error {
	b, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("remote write: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, b)))
	if err != nil {
		return fmt.Errorf("remote write: %w", err)
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := client.Do(hr)
	if err != nil {
		return fmt.Errorf("remote write: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("remote write: %s: %s", resp.Status, body)
	}
	return nil
}
