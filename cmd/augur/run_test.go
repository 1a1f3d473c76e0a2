package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
	"github.com/augur-ops/augur/stream"
)

// handedOut are the ports freePort returned in this process: the kernel
// may hand a port just closed out again, and two listeners of one test
// (a broker's two listeners) must not get the same.
var handedOut sync.Map

// freePort returns a loopback host:port free a moment ago and not returned
// before in this process.
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
	t.Fatal("no loopback port not handed out before in 100 tries")
	return ""
}

// TestRunEndToEnd runs `augur run` as a user does, with an anomaly watch,
// pushes remote-write requests with a level shift, and reads the signed alert
// from augur.decisions and its audit record from augur.actions.
func TestRunEndToEnd(t *testing.T) {
	dir := t.TempDir()
	broker, listen := freePort(t), freePort(t)
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(`rules:
  - name: latency-watch
    anomaly:
      selector: 'checkout_latency_seconds{job="checkout"}'
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "augur.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(`listen: %s
data_dir: %s
kafka:
  embedded_addr: %s
  partitions: 2
rules_file: %s
`, listen, filepath.Join(dir, "data"), broker, rulesFile)), 0o600); err != nil {
		t.Fatal(err)
	}

	_, logs := startRun(t, cfgFile, listen)

	pushLatencyJump(t, listen)

	key, err := stream.LoadKey(filepath.Join(dir, "data", "decision.key"))
	if err != nil {
		t.Fatal(err)
	}
	var alert *proto.Decision
	readTopic(t, broker, "augur.decisions", func(r *kgo.Record) bool {
		d, err := proto.UnmarshalDecision(r.Value)
		if err != nil {
			t.Fatalf("decision record: %v", err)
		}
		if d.GetKind() == proto.KindAlert && d.GetRule() == "latency-watch" {
			if err := proto.Verify(d, key); err != nil {
				t.Fatalf("decision %s: %v", d.GetId(), err)
			}
			if string(r.Key) != d.GetTarget() {
				t.Fatalf("decision keyed %q, target %q", r.Key, d.GetTarget())
			}
			alert = d
			return true
		}
		return false
	})
	// The first alert is the jump's: the quiet samples before it, past the
	// warm-up, raised none.
	if ev := alert.GetEvidence(); ev.GetObserved() != 3 || ev.GetModel() != "anomaly_score" {
		t.Errorf("first alert %q, want the jump to 3 detected by the anomaly score", alert.GetSummary())
	}
	readTopic(t, broker, "augur.actions", func(r *kgo.Record) bool {
		a, err := proto.UnmarshalAction(r.Value)
		if err != nil {
			t.Fatalf("action record: %v", err)
		}
		return a.GetDecisionId() == alert.GetId() && a.GetOutcome() != ""
	})
	// The decisions API serves the alert joined with its audit record.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := scrape(t, "http://"+listen+"/api/v1/decisions?kind=alert&rule=latency-watch")
		if strings.Contains(body, alert.GetId()) && strings.Contains(body, `"outcome"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/v1/decisions did not serve the alert with its outcome: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"remote_write_url=http://" + listen + "/api/v1/write", "kcat -b " + broker} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up logs lack %q", want)
		}
	}
}

// startRun runs `augur run -config cfgFile` until the test ends and waits
// for its /readyz on listen. It returns the run's context (done when the
// test ends) and its logs. The test fails when the run exits non-zero or
// does not stop within 30s of its signal; its logs' tail is printed then.
func startRun(t *testing.T, cfgFile, listen string) (context.Context, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	logs := &syncBuffer{}
	go func() {
		done <- runMain(ctx, []string{"run", "-config", cfgFile}, io.Discard, io.Discard, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("augur run exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("augur run did not stop within 30s of its signal")
		}
		if t.Failed() {
			t.Logf("augur logs (tail):\n%s", tailString(logs.String(), 6000))
		}
	})
	waitReady(t, "http://"+listen+"/readyz")
	return ctx, logs
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 30s", url)
}

func pushV1(t *testing.T, url string, req *prompb.WriteRequest) {
	t.Helper()
	pushV1With(t, &http.Client{Timeout: 20 * time.Second}, url, req)
}

func pushV1With(t *testing.T, client *http.Client, url string, req *prompb.WriteRequest) {
	t.Helper()
	if err := pushRemoteWrite(t.Context(), client, url, req); err != nil {
		t.Fatal(err)
	}
}

// readTopic reads topic from the start (committed records only) until match
// returns true, failing after 60 seconds.
func readTopic(t *testing.T, broker, topic string, match func(*kgo.Record) bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no matching record on %s within 60s", topic)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			if !found && match(r) {
				found = true
			}
		})
		if found {
			return
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent loggers of a run.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunIngestTopic: `augur run` with ingest.topic set writes the samples
// there, and its stream must consume that topic, not augur.samples.
func TestRunIngestTopic(t *testing.T) {
	dir := t.TempDir()
	broker, listen := freePort(t), freePort(t)
	rulesFile := filepath.Join(dir, "rules.yaml")
	writeFile(t, rulesFile, `rules:
  - name: latency-watch
    anomaly:
      selector: 'checkout_latency_seconds{job="checkout"}'
`)
	cfgFile := filepath.Join(dir, "augur.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`listen: %s
data_dir: %s
kafka:
  embedded_addr: %s
  partitions: 2
ingest:
  topic: team.samples
rules_file: %s
`, listen, filepath.Join(dir, "data"), broker, rulesFile))
	startRun(t, cfgFile, listen)
	pushLatencyJump(t, listen)
	readTopic(t, broker, "augur.decisions", func(r *kgo.Record) bool {
		d, err := proto.UnmarshalDecision(r.Value)
		return err == nil && d.GetKind() == proto.KindAlert && d.GetRule() == "latency-watch"
	})
}

// pushLatencyJump sends `augur run` at listen, over remote write 1.0, 300
// quiet samples of checkout_latency_seconds{job="checkout"} at 15 s (an
// anomaly rule's default warm-up is 256), ending 5 minutes ago, then a
// sustained jump.
func pushLatencyJump(t *testing.T, listen string) {
	t.Helper()
	start := time.Now().Add(-80 * time.Minute).Truncate(time.Second).UnixMilli()
	var samples []prompb.Sample
	for i := range 300 {
		samples = append(samples, prompb.Sample{Timestamp: start + int64(i)*15000, Value: 0.1 + 0.002*math.Sin(float64(i))})
	}
	for i := 300; i < 320; i++ {
		samples = append(samples, prompb.Sample{Timestamp: start + int64(i)*15000, Value: 3})
	}
	for i := 0; i < len(samples); i += 20 {
		pushV1(t, "http://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_latency_seconds"}, {Name: "instance", Value: "a:9100"}, {Name: "job", Value: "checkout"}},
			Samples: samples[i:min(i+20, len(samples))],
		}}})
	}
}
