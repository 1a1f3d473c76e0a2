package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// bothJobs selects every series Prometheus scraped: its own and the
// exporter's.
const bothJobs = `{job=~"e2e|prometheus"}`

// scrapeSeries are the series Prometheus itself writes for every target on
// every scrape.
var scrapeSeries = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added"}

// setup starts the receiver, the exporter and Prometheus scraping both
// itself and the exporter with remote_write to the receiver.
type setup struct {
	env      *env
	exp      *exporter
	instance string // the exporter's instance label
	prom     *prom
	topic    *topicReader
}

func start(t *testing.T, bin string, e *env) *setup {
	t.Helper()
	s := &setup{env: e, exp: &exporter{}}
	srv := httptest.NewServer(s.exp)
	t.Cleanup(srv.Close)
	s.instance = strings.TrimPrefix(srv.URL, "http://")
	s.prom = startPrometheus(t, promConfig{bin: bin, e2eTarget: s.instance, writeURL: e.writeURL()})
	s.topic = newTopicReader(t, e.seeds, e.topic)
	return s
}

// key returns the series key of an exporter or scrape series.
func (s *setup) key(name, job string) string {
	inst := s.instance
	if job == "prometheus" {
		inst = s.prom.addr
	}
	return mapKey(map[string]string{"__name__": name, "job": job, "instance": inst})
}

// scrapesInKafka returns the exporter counter's samples in Kafka: one per
// scrape that arrived, the value being the scrape number.
func (s *setup) scrapesInKafka() []sample {
	return s.topic.samplesOf(s.key("e2e_scrapes_total", "e2e"))
}

// lastScrape returns the highest scrape number in Kafka and its timestamp.
func (s *setup) lastScrape() (k int64, ts int64) {
	for _, x := range s.scrapesInKafka() {
		if v := int64(math.Float64frombits(x.bits)); v > k {
			k, ts = v, x.ts
		}
	}
	return k, ts
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not happen within %s", what, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// comparison is the outcome of compareWithTSDB.
type comparison struct {
	series, samples int // compared, from the TSDB
}

// compareWithTSDB checks that Kafka holds exactly the raw samples that
// Prometheus' TSDB holds for every series of both jobs with a timestamp up
// to at: same label sets, timestamps and value bits. Samples in the TSDB
// can still be committed for a short while after at (a scrape that started
// before at and was slow), so the TSDB is read again after Kafka caught up,
// until both reads agree. Kafka is read after the TSDB, so every sample in
// Kafka must already be in the TSDB read that follows.
func compareWithTSDB(t *testing.T, s *setup, at int64) comparison {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var tsdb map[string][]sample
	for {
		before, err := s.prom.rawSamples(ctx, bothJobs, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.topic.catchUp(ctx); err != nil {
			t.Fatal(err)
		}
		missing := missingFromKafka(before, s.topic)
		if len(missing) == 0 {
			after, err := s.prom.rawSamples(ctx, bothJobs, at)
			if err != nil {
				t.Fatal(err)
			}
			if sameSamples(before, after) {
				tsdb = after
				break
			}
		}
		select {
		case <-ctx.Done():
			n := len(missing)
			if n > 10 {
				missing = missing[:10]
			}
			t.Fatalf("Kafka still lacks %d samples Prometheus scraped up to %d, for example:\n%s", n, at, strings.Join(missing, "\n"))
		case <-time.After(250 * time.Millisecond):
		}
	}
	var c comparison
	for _, ss := range tsdb {
		c.series++
		c.samples += len(ss)
	}
	// The reverse: nothing in Kafka (up to at) that Prometheus did not
	// store. Stale markers are not shown by the query API.
	extra := 0
	for key, ks := range s.topic.series {
		want := map[int64]uint64{}
		for _, x := range tsdb[key] {
			want[x.ts] = x.bits
		}
		for ts, b := range ks.bits {
			if ts > at || b == staleNaN {
				continue
			}
			if wb, ok := want[ts]; !ok || sentAs(wb) != b {
				if extra < 10 {
					t.Errorf("Kafka has %s @%d = %#x; Prometheus stored %#x (present: %v)", key, ts, b, wb, ok)
				}
				extra++
			}
		}
	}
	if extra > 0 {
		t.Errorf("%d samples in Kafka differ from Prometheus' TSDB", extra)
	}
	for _, c := range s.topic.conflict {
		t.Errorf("Kafka holds two values for one sample: %s", c)
	}
	return c
}

// missingFromKafka lists the TSDB samples Kafka lacks.
func missingFromKafka(tsdb map[string][]sample, k *topicReader) []string {
	var out []string
	for key, ss := range tsdb {
		ks := k.series[key]
		for _, x := range ss {
			if ks == nil || !ks.has(x) {
				got := "absent"
				if ks != nil {
					if b, ok := ks.bits[x.ts]; ok {
						got = fmt.Sprintf("%#x", b)
					}
				}
				out = append(out, fmt.Sprintf("%s @%d: want %#x, Kafka: %s", key, x.ts, x.bits, got))
			}
		}
	}
	return out
}

func sameSamples(a, b map[string][]sample) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
	}
	return true
}

// checkExporterValues recomputes, from the scrape number, every value the
// exporter served and checks it against Kafka bit for bit, for every
// exporter series and every scrape up to at. It returns the scrape numbers
// found.
func checkExporterValues(t *testing.T, s *setup, at int64) []int64 {
	t.Helper()
	scrapeAt := map[int64]int64{} // timestamp -> scrape number
	var ks []int64
	for _, x := range s.scrapesInKafka() {
		if x.ts > at {
			continue
		}
		k := int64(math.Float64frombits(x.bits))
		scrapeAt[x.ts] = k
		ks = append(ks, k)
	}
	for key, value := range expectedSeries("e2e", s.instance) {
		got := s.topic.samplesOf(key)
		n := 0
		for _, x := range got {
			if x.ts > at {
				continue
			}
			n++
			k, ok := scrapeAt[x.ts]
			if !ok {
				t.Errorf("%s @%d: no e2e_scrapes_total sample with that timestamp", key, x.ts)
				continue
			}
			if want := sentAs(floatBits(value(k))); x.bits != want {
				t.Errorf("%s scrape %d: value bits %#x, exporter served %#x", key, k, x.bits, want)
			}
		}
		if n != len(scrapeAt) {
			t.Errorf("%s: %d samples up to %d, want one per scrape (%d)", key, n, at, len(scrapeAt))
		}
	}
	return ks
}

// checkScrapeSeries checks that the series Prometheus adds per target (up,
// scrape_*) of both jobs arrived, up being 0 or 1 and 1 at least once (a
// scrape may time out on a loaded machine; the values themselves are
// compared with the TSDB bit for bit), and that Prometheus' own metrics
// arrived.
func checkScrapeSeries(t *testing.T, s *setup, minSamples int) {
	t.Helper()
	for _, job := range []string{"prometheus", "e2e"} {
		for _, name := range scrapeSeries {
			got := s.topic.samplesOf(s.key(name, job))
			if len(got) < minSamples {
				t.Errorf("%s{job=%q}: %d samples in Kafka, want at least %d", name, job, len(got), minSamples)
			}
			if name != "up" {
				continue
			}
			ones := 0
			for _, x := range got {
				switch x.bits {
				case floatBits(1):
					ones++
				case floatBits(0):
				default:
					t.Errorf("up{job=%q} @%d = %v, want 0 or 1", job, x.ts, math.Float64frombits(x.bits))
				}
			}
			if ones == 0 {
				t.Errorf("up{job=%q} never 1", job)
			}
		}
	}
	own := 0
	for key := range s.topic.series {
		if strings.Contains(key, `job="prometheus"`) && strings.Contains(key, `__name__="prometheus_`) {
			own++
		}
	}
	if own < 50 {
		t.Errorf("%d of Prometheus' own prometheus_* series in Kafka, want at least 50", own)
	}
}

// metricSum sums the values of the receiver's metric name over its labels.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestPrometheusRemoteWrite: a real Prometheus scrapes itself and the
// exporter every second and remote-writes to the receiver; every raw sample
// in its TSDB is in Kafka with the same labels, timestamp and value bits,
// nothing else is, the exporter's values are what it served, and metadata
// arrives.
func TestPrometheusRemoteWrite(t *testing.T) {
	bin := prometheusBinary(t)
	s := start(t, bin, newEnv(t))

	const scrapes = 5
	waitFor(t, 60*time.Second, fmt.Sprintf("%d exporter scrapes and metadata in Kafka", scrapes), func() (bool, error) {
		if err := s.topic.catchUp(t.Context()); err != nil {
			return false, err
		}
		return len(s.scrapesInKafka()) >= scrapes && s.topic.metadata["e2e_scrapes_total"].Type != "", nil
	})
	_, at := s.lastScrape()
	c := compareWithTSDB(t, s, at)
	ks := checkExporterValues(t, s, at)
	checkScrapeSeries(t, s, scrapes-1)
	if md := s.topic.metadata["e2e_scrapes_total"]; md.Type != "counter" || md.Help != "Scrapes served by the e2e exporter." {
		t.Errorf("metadata of e2e_scrapes_total %+v, want counter with the exporter's help", md)
	}
	if md := s.topic.metadata["e2e_request_duration_seconds"]; md.Type != "histogram" {
		t.Errorf("metadata of e2e_request_duration_seconds %+v, want histogram", md)
	}
	s.env.obs.checkAcked(t, s.topic)
	if got := metricSum(t, s.env.reg, "augur_ingest_samples_total"); got == 0 {
		t.Error("augur_ingest_samples_total is 0")
	}
	if _, other := s.env.obs.explainDuplicates(s.topic); other > 0 {
		t.Errorf("%d duplicate samples in Kafka were never in a request answered 5xx", other)
	}
	t.Logf("compared %d series, %d raw samples up to %d; exporter scrapes %v in Kafka; %d records, %d duplicate samples, %d stale markers; answers: %s; metadata for %d families",
		c.series, c.samples, at, ks, s.topic.records, s.topic.duplicates(), s.topic.stale, s.env.obs.summary(), len(s.topic.metadata))
}

// TestPrometheusRetriesThroughBrokerOutage: while Prometheus is pushing, the
// broker refuses every produce (the connection is cut, as when a broker goes
// away) for about ten scrapes. The receiver answers 503, acknowledges
// nothing that is not in Kafka, and once the broker is back Prometheus'
// retries deliver every sample it scraped, before, during and after the
// outage. Duplicates (requests written but answered 503) are allowed and
// counted.
func TestPrometheusRetriesThroughBrokerOutage(t *testing.T) {
	bin := prometheusBinary(t)
	e := newEnv(t)
	if e.fake == nil {
		t.Skip("needs kfake to make the broker refuse produces (AUGUR_KAFKA_BROKERS is set)")
	}
	var failing atomic.Bool
	var refused atomic.Int64
	e.fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.fake.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("injected: broker unavailable"), true
	})
	s := start(t, bin, e)

	waitFor(t, 60*time.Second, "3 exporter scrapes in Kafka", func() (bool, error) {
		if err := s.topic.catchUp(t.Context()); err != nil {
			return false, err
		}
		return len(s.scrapesInKafka()) >= 3, nil
	})

	// Outage: at least ten scrapes long and until the receiver answered
	// 503 twice, so Prometheus had to retry.
	failing.Store(true)
	outageFrom := s.exp.scrapes.Load()
	waitFor(t, 40*time.Second, "ten scrapes and two 503 answers during the outage", func() (bool, error) {
		return s.exp.scrapes.Load() >= outageFrom+10 && e.obs.status(503) >= 2, nil
	})
	failing.Store(false)
	outageTo := s.exp.scrapes.Load()

	// Recovery: Kafka reaches scrapes served after the outage.
	waitFor(t, 45*time.Second, "scrapes after the outage in Kafka", func() (bool, error) {
		if err := s.topic.catchUp(t.Context()); err != nil {
			return false, err
		}
		k, _ := s.lastScrape()
		return k >= outageTo+3, nil
	})
	_, at := s.lastScrape()
	c := compareWithTSDB(t, s, at)
	ks := checkExporterValues(t, s, at)
	during := 0
	for _, k := range ks {
		if k > outageFrom && k <= outageTo {
			during++
		}
	}
	// Scrapes during the outage are in the TSDB (Prometheus kept scraping);
	// the comparison above found every one of them in Kafka.
	if during < 5 {
		t.Errorf("%d exporter scrapes from the outage (scrapes %d..%d) in Kafka, want most of them", during, outageFrom+1, outageTo)
	}
	checkScrapeSeries(t, s, 5)
	e.obs.checkAcked(t, s.topic)
	if refused.Load() == 0 {
		t.Error("the broker refused no produce: the outage did not hit the receiver")
	}
	if got := metricSum(t, e.reg, "augur_ingest_kafka_produce_errors_total"); got < 2 {
		t.Errorf("augur_ingest_kafka_produce_errors_total = %v, want at least 2", got)
	}
	in5xx, other := e.obs.explainDuplicates(s.topic)
	if other > 0 {
		// Only a resend makes a duplicate; Prometheus resends only what
		// got a 5xx.
		t.Errorf("%d duplicate samples in Kafka were never in a request answered 5xx", other)
	}
	t.Logf("outage over scrapes %d..%d (%d in Kafka); broker refused %d produce requests; answers: %s; compared %d series, %d raw samples up to %d, none missing; %d records, %d duplicate samples (all from requests answered 503: %d), %d stale markers",
		outageFrom+1, outageTo, during, refused.Load(), e.obs.summary(), c.series, c.samples, at, s.topic.records, s.topic.duplicates(), in5xx, s.topic.stale)
}
