package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// TestDiscardsCountedOnceAcrossRetries: a request with an invalid series
// that Kafka fails answers 503, and the sender resends it whole. The
// invalid series is discarded once, not once per attempt.
func TestDiscardsCountedOnceAcrossRetries(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProduceTimeout = time.Second })
	if e.fake == nil {
		t.Skip("needs kfake to inject produce failures")
	}
	var failing atomic.Bool
	failing.Store(true)
	e.fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.fake.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		return nil, errors.New("injected: broker unavailable"), true
	})
	ts := e.now.UnixMilli()
	req := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: lbl("__name__", "good", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}}},
		{Labels: lbl("job", "no-name"), Samples: []prompb.Sample{{Value: 1, Timestamp: ts}, {Value: 2, Timestamp: ts + 1}}},
	}})
	if resp := e.post(t, post{body: req}); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d while Kafka fails, want 503: %s", resp.StatusCode, body(t, resp))
	}
	failing.Store(false)
	e.retryUntil(t, req, http.StatusBadRequest)
	if got := testutil.ToFloat64(e.recv.m.discarded[reasonMissingMetricName]); got != 2 {
		t.Errorf("discarded{reason=missing_metric_name} = %v after a 503 and its retry, want 2 (the series' two samples, once)", got)
	}
}

// TestV2WrittenHeadersOnPartialFailure: when Kafka acknowledges the records
// of some partitions and fails another's, the 2.0 answer (503) still says
// how many samples were written: those of the acknowledged records.
func TestV2WrittenHeadersOnPartialFailure(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ProduceTimeout = 2 * time.Second })
	if e.fake == nil {
		t.Skip("needs kfake to inject a partition's failure")
	}
	const failed = int32(0)
	e.fake.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: e.topic, Partitions: []int32{failed},
		Err: kerr.InvalidRecord, Count: -1,
	})
	ts := e.now.UnixMilli()
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	want := 0
	for i := range 40 {
		ls := labels.FromStrings("__name__", "up", "instance", fmt.Sprintf("host-%d", i))
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: ts}, {Value: 2, Timestamp: ts + 1}},
		})
		var pl []proto.Label
		ls.Range(func(l labels.Label) { pl = append(pl, proto.Label{Name: l.Name, Value: l.Value}) })
		key, _ := rules.Empty().RoutingKey(nil, "", pl)
		if rules.Partition(key, testPartitions) != failed {
			want += 2
		}
	}
	req.Symbols = st.Symbols()
	if want == 0 || want == 80 {
		t.Fatalf("test request: %d of 80 samples outside partition %d, want some on both sides", want, failed)
	}
	resp := e.post(t, post{body: encodeV2(t, req), ctype: "application/x-protobuf;proto=io.prometheus.write.v2.Request"})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d with partition %d failing, want 503: %s", resp.StatusCode, failed, body(t, resp))
	}
	if got := resp.Header.Get("X-Prometheus-Remote-Write-Samples-Written"); got != strconv.Itoa(want) {
		t.Errorf("samples written header %q on a partial write, want %d (the samples of the acknowledged partitions)", got, want)
	}
	if v := testutil.ToFloat64(e.recv.m.samples.WithLabelValues("2")); v != 0 {
		t.Errorf("samples metric %v after a 503, want 0 (the retry counts them)", v)
	}
}

// TestLargeRequestStateIsNotPooled: the state of a request (decoded body,
// decoded slices, record values) grows to the largest request it served;
// returned to the pool it stayed that large for as long as traffic kept it
// in use, outside the in-flight byte limit.
func TestLargeRequestStateIsNotPooled(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: the pool hands back what was put
	e := newEnv(t, nil)
	big := encodeV1(t, manySeries(60_000, e.now.UnixMilli()))
	n, err := snappy.DecodedLen(big)
	if err != nil {
		t.Fatal(err)
	}
	hr := httptest.NewRequest(http.MethodPost, "/api/v1/write", bytes.NewReader(big))
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	w := httptest.NewRecorder()
	e.recv.ServeHTTP(w, hr)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	req := e.recv.pool.Get().(*request)
	defer e.recv.pool.Put(req)
	if cap(req.decoded) >= n || cap(req.rw.Samples) >= 60_000 {
		t.Fatalf("pooled request keeps a %d-byte decoded body and %d samples after a %d-byte request", cap(req.decoded), cap(req.rw.Samples), n)
	}
}
