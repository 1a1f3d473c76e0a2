package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/augur-ops/augur/internal/testca"
	"github.com/augur-ops/augur/proto"
)

// TestRunOverSASLTLS runs `augur run` against a cluster that requires TLS
// and SCRAM-SHA-512 (kfake with a TLS listener and a test CA): every role
// connects with the kafka: block, a remote-write request is acknowledged,
// a decision and its audit record are written in transactions. A wrong
// password, an unknown CA and plaintext each stop it at start-up, fast,
// with an error naming the setting.
func TestRunOverSASLTLS(t *testing.T) {
	ca := testca.New(t, "ca")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "augur", "s3cret"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.Server}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "password"), "s3cret\n")
	writeFile(t, filepath.Join(dir, "wrong"), "guess\n")
	writeFile(t, filepath.Join(dir, "rules.yaml"), `rules:
  - name: latency-watch
    anomaly:
      selector: 'checkout_latency_seconds{job="checkout"}'
`)
	config := func(listen, kafka string) string {
		f := filepath.Join(dir, fmt.Sprintf("augur-%d.yaml", time.Now().UnixNano()))
		writeFile(t, f, fmt.Sprintf(`listen: %s
data_dir: %s
rules_file: %s
kafka:
  brokers: [%s]
  replication: 1
%s
`, listen, filepath.Join(dir, "data"), filepath.Join(dir, "rules.yaml"), broker, kafka))
		return f
	}
	good := fmt.Sprintf(`  tls: {enabled: true, ca_file: %s}
  sasl: {mechanism: scram-sha-512, username: augur, password_file: %s}`, ca.File, filepath.Join(dir, "password"))

	t.Run("bad settings stop it at start-up", func(t *testing.T) {
		other := testca.New(t, "other")
		for name, tc := range map[string]struct{ kafka, want string }{
			"wrong password": {fmt.Sprintf("  tls: {enabled: true, ca_file: %s}\n  sasl: {mechanism: scram-sha-512, username: augur, password_file: %s}", ca.File, filepath.Join(dir, "wrong")), "kafka.sasl"},
			"unknown CA":     {fmt.Sprintf("  tls: {enabled: true, ca_file: %s}\n  sasl: {mechanism: scram-sha-512, username: augur, password_file: %s}", other.File, filepath.Join(dir, "password")), "kafka.tls.ca_file"},
			"plaintext":      {fmt.Sprintf("  sasl: {mechanism: scram-sha-512, username: augur, password_file: %s}", filepath.Join(dir, "password")), "kafka.tls.enabled"},
		} {
			var stderr strings.Builder
			start := time.Now()
			code := runMain(t.Context(), []string{"run", "-config", config(freePort(t), tc.kafka)}, io.Discard, &stderr, slog.New(slog.DiscardHandler))
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%s: exit %d, stderr %q: want a failure naming %s", name, code, stderr.String(), tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("%s: took %v to fail", name, d)
			}
		}
	})

	listen := freePort(t)
	cfgFile := config(listen, good)
	ctx, _ := startRun(t, cfgFile, listen)
	start := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	var samples []prompb.Sample
	for i := range 260 {
		v := 0.1 + 0.002*float64(i%7)
		if i >= 240 {
			v = 3
		}
		samples = append(samples, prompb.Sample{Timestamp: start + int64(i)*15000, Value: v})
	}
	for i := 0; i < len(samples); i += 20 {
		pushV1(t, "http://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "checkout_latency_seconds"}, {Name: "instance", Value: "a:9100"}, {Name: "job", Value: "checkout"}},
			Samples: samples[i:min(i+20, len(samples))],
		}}})
	}
	// Read back over the same secured connection.
	read := func(topic string, match func(*kgo.Record) bool) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true}), //nolint:gosec // G402: the test's own broker
			kgo.SASL(scram.Auth{User: "augur", Pass: "s3cret"}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			found := false
			cl.PollRecords(ctx, 100).EachRecord(func(r *kgo.Record) { found = found || match(r) })
			if found {
				return
			}
		}
		t.Fatalf("no matching record on %s within 60s", topic)
	}
	var alert string
	read("augur.decisions", func(r *kgo.Record) bool {
		d, err := proto.UnmarshalDecision(r.Value)
		if err == nil && d.GetKind() == proto.KindAlert {
			alert = d.GetId()
		}
		return alert != ""
	})
	read("augur.actions", func(r *kgo.Record) bool {
		a, err := proto.UnmarshalAction(r.Value)
		return err == nil && a.GetDecisionId() == alert
	})
}
