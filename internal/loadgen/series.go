package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Cardinalities of the generated label set. Every series has 12 labels
// (13 beyond the first pods x metrics walk, with "shard"); the values are
// spread like those of a Kubernetes cluster scraped by Prometheus: a few
// jobs, hundreds of targets and nodes, thousands of pods, three zones.
const (
	numMetrics    = 50
	numJobs       = 10
	numInstances  = 500
	numNamespaces = 20
	numPods       = 2000
	numContainers = 30
	numNodes      = 200
	numZones      = 3
)

// metric is one metric name of the generated fleet and the shape of its
// series.
type metric struct {
	name string
	typ  writev2.Metadata_MetricType
	help string
	// kind selects the two extra labels: "le" for histogram buckets (le,
	// method), "code" for request counters (code, method), "" for others
	// (cpu, mode).
	kind string
}

var bucketBounds = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
var codes = []string{"200", "201", "204", "400", "404", "500", "503"}
var methods = []string{"GET", "POST", "PUT", "DELETE"}
var modes = []string{"idle", "user", "system", "iowait"}
var zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// metrics returns the 50 metric names, deterministically.
func metrics() []metric {
	base := []metric{
		{"http_requests_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Total HTTP requests.", "code"},
		{"http_request_duration_seconds_bucket", writev2.Metadata_METRIC_TYPE_HISTOGRAM, "HTTP request latency.", "le"},
		{"grpc_server_handled_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Total RPCs completed on the server.", "code"},
		{"grpc_server_handling_seconds_bucket", writev2.Metadata_METRIC_TYPE_HISTOGRAM, "RPC handling latency.", "le"},
		{"container_cpu_usage_seconds_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Cumulative cpu time consumed.", ""},
		{"container_memory_working_set_bytes", writev2.Metadata_METRIC_TYPE_GAUGE, "Current working set.", ""},
		{"container_network_receive_bytes_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Cumulative count of bytes received.", ""},
		{"container_network_transmit_bytes_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Cumulative count of bytes transmitted.", ""},
		{"container_fs_reads_bytes_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Cumulative count of bytes read.", ""},
		{"container_fs_writes_bytes_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Cumulative count of bytes written.", ""},
		{"kube_pod_container_status_restarts_total", writev2.Metadata_METRIC_TYPE_COUNTER, "The number of container restarts.", ""},
		{"kube_pod_status_ready", writev2.Metadata_METRIC_TYPE_GAUGE, "Describes whether the pod is ready.", ""},
		{"process_resident_memory_bytes", writev2.Metadata_METRIC_TYPE_GAUGE, "Resident memory size in bytes.", ""},
		{"process_cpu_seconds_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Total user and system CPU time spent in seconds.", ""},
		{"go_goroutines", writev2.Metadata_METRIC_TYPE_GAUGE, "Number of goroutines that currently exist.", ""},
		{"go_memstats_heap_inuse_bytes", writev2.Metadata_METRIC_TYPE_GAUGE, "Number of heap bytes that are in use.", ""},
		{"node_cpu_seconds_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Seconds the CPUs spent in each mode.", ""},
		{"node_network_receive_drop_total", writev2.Metadata_METRIC_TYPE_COUNTER, "Network device statistic receive_drop.", ""},
		{"DCGM_FI_DEV_GPU_UTIL", writev2.Metadata_METRIC_TYPE_GAUGE, "GPU utilization (in %).", ""},
		{"DCGM_FI_DEV_XID_ERRORS", writev2.Metadata_METRIC_TYPE_GAUGE, "Value of the last XID error encountered.", ""},
	}
	out := slices.Clone(base)
	for i := len(base); i < numMetrics; i++ {
		b := base[i%len(base)]
		out = append(out, metric{
			name: fmt.Sprintf("app_%s_%d", b.name, i),
			typ:  b.typ, help: b.help, kind: b.kind,
		})
	}
	return out
}

// seriesLabels returns the sorted labels of series k of the fleet.
// Consecutive k walk the pods first, so a request of 2,000 consecutive
// series holds one metric of every pod, as a Prometheus shard's queue does
// after a scrape round.
func seriesLabels(ms []metric, k int) []prompb.Label {
	pod := k % numPods
	m := ms[(k/numPods)%len(ms)]
	variant := k / (numPods * len(ms)) // distinguishes series beyond pods x metrics
	ns := pod % numNamespaces
	inst := pod % numInstances // a target exposes the metrics of 4 pods
	deploy := pod / 4          // 500 deployments of 4 pods
	node := (pod*7 + 3) % numNodes
	job := deploy % numJobs
	lbls := []prompb.Label{
		{Name: "__name__", Value: m.name},
		{Name: "cluster", Value: "prod-eu-1"},
		{Name: "container", Value: "app-" + strconv.Itoa(deploy%numContainers)},
		{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:8080", 16+inst%20, inst/250, inst%250)},
		{Name: "job", Value: "kubernetes-pods-" + strconv.Itoa(job)},
		{Name: "namespace", Value: "team-" + strconv.Itoa(ns)},
		{Name: "node", Value: fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", node/100, node%100)},
		{Name: "pod", Value: fmt.Sprintf("svc-%d-7d9f8b%03x-%05x", deploy, pod%4096, (pod*2654435761)&0xfffff)},
		{Name: "service", Value: "svc-" + strconv.Itoa(deploy)},
		{Name: "zone", Value: zones[node%numZones]},
	}
	switch m.kind {
	case "le":
		lbls = append(lbls,
			prompb.Label{Name: "le", Value: bucketBounds[(k+variant)%len(bucketBounds)]},
			prompb.Label{Name: "method", Value: methods[(pod+variant)%len(methods)]})
	case "code":
		lbls = append(lbls,
			prompb.Label{Name: "code", Value: codes[(k+variant)%len(codes)]},
			prompb.Label{Name: "method", Value: methods[(pod+variant)%len(methods)]})
	default:
		lbls = append(lbls,
			prompb.Label{Name: "cpu", Value: strconv.Itoa((k + variant) % 16)},
			prompb.Label{Name: "mode", Value: modes[(pod+variant)%len(modes)]})
	}
	if variant > 0 {
		lbls = append(lbls, prompb.Label{Name: "shard", Value: strconv.Itoa(variant)})
	}
	slices.SortFunc(lbls, func(a, b prompb.Label) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return lbls
}

// body is one pre-encoded request.
type body struct {
	data    []byte // snappy-compressed protobuf
	samples int
}

// buildPool encodes cfg.Pool requests. Request i holds series
// [i*n, (i+1)*n) mod cfg.Series, each with one sample whose timestamp
// advances by cfg.ScrapeInterval every time the walk wraps around the
// fleet, so every series' timestamps increase along the pool.
func buildPool(cfg *Config, startMs int64) ([]body, error) {
	ms := metrics()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 1))
	n := cfg.SeriesPerRequest
	lbls := make([][]prompb.Label, cfg.Series)
	for k := range min(cfg.Series, cfg.Pool*n) { // the series the pool uses
		lbls[k] = seriesLabels(ms, k)
	}
	interval := cfg.ScrapeInterval.Milliseconds()
	pool := make([]body, cfg.Pool)
	for i := range pool {
		first := i * n
		var raw []byte
		var err error
		switch cfg.Protocol {
		case "v1":
			raw, err = encodeV1(lbls, first, n, startMs, interval, rng)
		case "v2":
			raw, err = encodeV2(ms, lbls, first, n, startMs, interval, rng)
		default:
			err = fmt.Errorf("protocol %q", cfg.Protocol)
		}
		if err != nil {
			return nil, fmt.Errorf("encode request %d: %w", i, err)
		}
		pool[i] = body{data: snappy.Encode(nil, raw), samples: n}
	}
	return pool, nil
}

// sampleAt returns the timestamp and a plausible value of the j-th series
// of the walk (j counts from the start of the pool).
func sampleAt(j, series int, startMs, interval int64, rng *rand.Rand) (int64, float64) {
	round := int64(j / series)
	ts := startMs + round*interval + int64(j%series)%interval
	var v float64
	switch j % 3 {
	case 0: // counter-like
		v = math.Floor(float64(round)*37 + float64(j%series)*3)
	case 1: // gauge-like
		v = rng.Float64() * 1e6
	default: // small integers
		v = float64(rng.IntN(100))
	}
	return ts, v
}

func encodeV1(lbls [][]prompb.Label, first, n int, startMs, interval int64, rng *rand.Rand) ([]byte, error) {
	req := prompb.WriteRequest{Timeseries: make([]prompb.TimeSeries, n)}
	for i := range n {
		j := first + i
		ts, v := sampleAt(j, len(lbls), startMs, interval, rng)
		req.Timeseries[i] = prompb.TimeSeries{
			Labels:  lbls[j%len(lbls)],
			Samples: []prompb.Sample{{Timestamp: ts, Value: v}},
		}
	}
	return req.Marshal()
}

func encodeV2(ms []metric, lbls [][]prompb.Label, first, n int, startMs, interval int64, rng *rand.Rand) ([]byte, error) {
	st := writev2.NewSymbolTable()
	req := writev2.Request{Timeseries: make([]writev2.TimeSeries, n)}
	byName := make(map[string]*metric, len(ms))
	for i := range ms {
		byName[ms[i].name] = &ms[i]
	}
	for i := range n {
		j := first + i
		ts, v := sampleAt(j, len(lbls), startMs, interval, rng)
		l := lbls[j%len(lbls)]
		refs := make([]uint32, 0, 2*len(l))
		for _, x := range l {
			refs = append(refs, st.Symbolize(x.Name), st.Symbolize(x.Value))
		}
		m := byName[l[0].Value]
		req.Timeseries[i] = writev2.TimeSeries{
			LabelsRefs: refs,
			Samples:    []writev2.Sample{{Value: v, Timestamp: ts}},
			Metadata:   writev2.Metadata{Type: m.typ, HelpRef: st.Symbolize(m.help)},
		}
	}
	req.Symbols = st.Symbols()
	return req.Marshal()
}

// Bodies returns the cfg.Pool request bodies a run with cfg sends, snappy
// compressed as on the wire, with the first round of timestamps at
// startMs. Benchmarks of receivers use it to decode exactly what the
// generator sends.
func Bodies(cfg Config, startMs int64) ([][]byte, error) {
	if cfg.URL == "" {
		cfg.URL = "http://unused"
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadgen config: %w", err)
	}
	pool, err := buildPool(&cfg, startMs)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(pool))
	for i, b := range pool {
		out[i] = b.data
	}
	return out, nil
}

// Fleet returns the labels (sorted by name) of the first n series the
// generator sends, and Sample the timestamp and value of the j-th sample
// of its walk over them: benchmarks of what comes after the receiver build
// blocks from the same series.
func Fleet(n int) [][]prompb.Label {
	ms := metrics()
	out := make([][]prompb.Label, n)
	for k := range out {
		out[k] = seriesLabels(ms, k)
	}
	return out
}

// Sample is the j-th sample of the walk over a fleet of `series` series
// that starts at startMs and scrapes every interval ms.
func Sample(j, series int, startMs, interval int64, rng *rand.Rand) (int64, float64) {
	return sampleAt(j, series, startMs, interval, rng)
}
