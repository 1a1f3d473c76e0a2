package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// generator scrapes a made-up fleet every interval, in wall-clock time, and
// sends it to the ingest processes as remote-write 1.0, retrying on the
// other one when one fails. It records every sample a 2xx answer
// acknowledged, and every answer that was not a 2xx.
//
// The fleet: workloads whose request rate moves in waves (the scaling
// rules' load), three zones of a web service one of which is slow and
// failing for a while (the gray-failure rule), queues with spikes (the
// anomaly rule), and node counters nobody has a rule for (volume).
type generator struct {
	urls      []string
	interval  time.Duration
	workloads int
	filler    atomic.Int64 // node series nobody has a rule for; changed by a ramp
	fill      []series     // their labels, made once (scrape's goroutine only)
	grayFrom  time.Time    // the slow zone's episode
	grayTo    time.Time
	client    *http.Client

	mu       sync.Mutex
	acked    map[string]map[int64]float64 // series key -> timestamp -> value
	ackedN   int64
	offered  atomic.Int64 // samples made by scrapes
	failures []failure    // answers other than 2xx, and send errors
	lastOK   time.Time
	counters map[string]float64
	rng      *rand.Rand
	next     atomic.Uint64 // round robin over urls
}

type failure struct {
	at     time.Time
	url    string
	status int // 0: no answer
	msg    string
}

// fixedSeries is how many series the generator sends besides the filler:
// the size of a scrape without filler, counted on a throwaway generator.
func fixedSeries(workloads int) int {
	g := generator{interval: time.Second, workloads: workloads, counters: map[string]float64{}, rng: rand.New(rand.NewPCG(1, 2))}
	return len(g.scrape(time.Unix(0, 0)).tss)
}

// fillerFor is the number of filler series that makes rate samples per
// second at the scrape interval.
func fillerFor(rate float64, interval time.Duration, workloads int) int {
	return max(0, int(math.Round(rate*interval.Seconds()))-fixedSeries(workloads))
}

// request is one remote-write request's series and their keys.
type request struct {
	tss  []prompb.TimeSeries
	keys []string
}

// series is one series' labels, sorted by name, and its key.
type series struct {
	labels []prompb.Label
	key    string
}

func newSeries(kv ...string) series {
	var s series
	for i := 0; i < len(kv); i += 2 {
		s.labels = append(s.labels, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	sort.Slice(s.labels, func(i, j int) bool { return s.labels[i].Name < s.labels[j].Name })
	names, values := make([]string, len(s.labels)), make([]string, len(s.labels))
	for i, l := range s.labels {
		names[i], values[i] = l.Name, l.Value
	}
	s.key = seriesKey(names, values)
	return s
}

// seriesKey is how the harness names a series: name=value pairs sorted by
// name, joined by commas (the checker builds it from the Arrow block).
func seriesKey(names, values []string) string {
	var b strings.Builder
	for i := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(names[i])
		b.WriteByte('=')
		b.WriteString(values[i])
	}
	return b.String()
}

var zones = []string{"use1-az1", "use1-az2", "use1-az4"}

// slowZone is the zone that degrades between grayFrom and grayTo.
const slowZone = "use1-az2"

// scrape returns the fleet's samples at t.
func (g *generator) scrape(t time.Time) request {
	ts := t.UnixMilli()
	dt := g.interval.Seconds()
	var out request
	add := func(s series, v float64) {
		out.tss = append(out.tss, prompb.TimeSeries{Labels: s.labels, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}})
		out.keys = append(out.keys, s.key)
	}
	counter := func(s series, inc float64) {
		g.counters[s.key] += inc
		add(s, g.counters[s.key])
	}
	sec := float64(t.Unix())
	// Workloads: 10 to 110 requests/s in waves of 8 minutes, four pods.
	for w := range g.workloads {
		rate := 60 + 50*math.Sin(2*math.Pi*sec/480+float64(w)*2)
		for p := range 4 {
			counter(newSeries("__name__", "app_requests_total", "namespace", "chaos", "app", fmt.Sprintf("web-%d", w),
				"pod", fmt.Sprintf("web-%d-%d", w, p)), rate*dt/4*(0.9+0.2*g.rng.Float64()))
		}
	}
	// The web service: three instances per zone, 50 requests/s each, 50 ms;
	// the slow zone at 400 ms and 5% errors during its episode.
	slow := !t.Before(g.grayFrom) && t.Before(g.grayTo)
	for _, z := range zones {
		lat, errShare := 0.05, 0.001
		if slow && z == slowZone {
			lat, errShare = 0.4, 0.05
		}
		for i := range 3 {
			inst := fmt.Sprintf("%s-web-%d", z, i)
			n := 50 * dt * (0.95 + 0.1*g.rng.Float64())
			l := lat * (0.9 + 0.2*g.rng.Float64())
			counter(newSeries("__name__", "http_requests_total", "job", "web", "zone", z, "instance", inst, "code", "200"), n*(1-errShare))
			counter(newSeries("__name__", "http_requests_total", "job", "web", "zone", z, "instance", inst, "code", "500"), n*errShare)
			counter(newSeries("__name__", "http_request_duration_seconds_sum", "job", "web", "zone", z, "instance", inst), n*l)
			counter(newSeries("__name__", "http_request_duration_seconds_count", "job", "web", "zone", z, "instance", inst), n)
		}
	}
	// Queues: about 100 deep, five times that for a minute every 7 minutes.
	for q := range 3 {
		v := 100 + 10*g.rng.NormFloat64()
		if int(sec/60)%7 == q+3 {
			v *= 5
		}
		add(newSeries("__name__", "queue_depth", "queue", fmt.Sprintf("q%d", q)), v)
	}
	for i := range int(g.filler.Load()) {
		if i == len(g.fill) {
			g.fill = append(g.fill, newSeries("__name__", "node_cpu_seconds_total", "instance", fmt.Sprintf("node-%d", i/8),
				"cpu", fmt.Sprint(i%8), "mode", "user"))
		}
		counter(g.fill[i], dt*g.rng.Float64())
	}
	return out
}

// run scrapes every interval until ctx ends and sends each scrape in
// requests of at most batch series, senders at a time.
func (g *generator) run(ctx context.Context, batch, senders int) {
	reqs := make(chan request, 1024)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range reqs {
				g.send(r)
			}
		}()
	}
	tick := time.NewTicker(g.interval)
	defer func() {
		tick.Stop()
		close(reqs)
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			all := g.scrape(now.Truncate(time.Millisecond))
			g.offered.Add(int64(len(all.tss)))
			for len(all.tss) > 0 {
				n := min(batch, len(all.tss))
				select {
				case reqs <- request{all.tss[:n], all.keys[:n]}:
				default:
					g.fail(failure{at: time.Now(), msg: "generator queue full: scrape dropped (never acknowledged)"})
				}
				all.tss, all.keys = all.tss[n:], all.keys[n:]
			}
		}
	}
}

// send posts one request until a 2xx answer or three minutes, switching
// ingest process after each failure.
func (g *generator) send(r request) {
	body, err := (&prompb.WriteRequest{Timeseries: r.tss}).Marshal()
	if err != nil {
		panic(err)
	}
	body = snappy.Encode(nil, body)
	deadline := time.Now().Add(3 * time.Minute)
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		url := g.urls[int(g.next.Add(1))%len(g.urls)]
		status, msg := g.post(url, body)
		if status/100 == 2 {
			g.ack(r)
			return
		}
		g.fail(failure{at: time.Now(), url: url, status: status, msg: msg})
		if status/100 == 4 && status != http.StatusTooManyRequests {
			return // the request is wrong: retrying does not help
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (g *generator) post(url string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

func (g *generator) ack(r request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, s := range r.tss {
		k := r.keys[i]
		m := g.acked[k]
		if m == nil {
			m = map[int64]float64{}
			g.acked[k] = m
		}
		for _, smp := range s.Samples {
			m[smp.Timestamp] = smp.Value
			g.ackedN++
		}
	}
	g.lastOK = time.Now()
}

func (g *generator) fail(f failure) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures = append(g.failures, f)
}

// failuresSince returns the failures at or after t.
func (g *generator) failuresSince(t time.Time) []failure {
	g.mu.Lock()
	defer g.mu.Unlock()
	i, _ := slices.BinarySearchFunc(g.failures, t, func(f failure, t time.Time) int { return f.at.Compare(t) })
	return slices.Clone(g.failures[i:])
}

func (g *generator) stats() (acked int64, lastOK time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ackedN, g.lastOK
}
