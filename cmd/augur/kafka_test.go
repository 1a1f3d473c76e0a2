package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
	runOverSASLTLS(t, c.ListenAddrs()[0], ca)
}

// TestRunOverSASLTLSRealKafka is TestRunOverSASLTLS against Apache Kafka
// (the jars of .ci/kafka, KRaft) with a SASL_SSL listener: a PEM keystore
// signed by a test CA, and the SCRAM-SHA-512 user created when the storage
// is formatted.
func TestRunOverSASLTLSRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an Apache Kafka broker")
	}
	if _, err := exec.LookPath("java"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("java missing under CI: .ci/kafka/start.sh installs it")
		}
		t.Skip("java missing: the real-broker SASL_SSL test needs Java 17 and Maven (.ci/kafka/start.sh)")
	}
	ca := testca.New(t, "ca")
	dir := t.TempDir()
	keystore := filepath.Join(dir, "broker.pem")
	key, _ := os.ReadFile(ca.ServerKeyFile)
	cert, _ := os.ReadFile(ca.ServerCertFile)
	writeFile(t, keystore, string(key)+string(cert))
	port, sslPort := 19192, freePortNumber(t)
	props := filepath.Join(dir, "sasl_ssl.properties")
	writeFile(t, props, fmt.Sprintf(`listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d,SASL_SSL://127.0.0.1:%[3]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,SASL_SSL://127.0.0.1:%[3]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=%[4]s
`, port, port+1, sslPort, keystore))
	_, file, _, _ := runtime.Caller(0)
	ci := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "kafka")
	env := append(os.Environ(), fmt.Sprintf("KAFKA_PORT=%d", port), "KAFKA_RUN_DIR="+filepath.Join(dir, "kafka"),
		"KAFKA_EXTRA_PROPERTIES="+props, "KAFKA_SCRAM_USER=augur", "KAFKA_SCRAM_PASSWORD=s3cret")
	start := exec.Command("bash", filepath.Join(ci, "start.sh"))
	start.Env = env
	var stderr strings.Builder
	start.Stderr = &stderr
	if out, err := start.Output(); err != nil {
		t.Fatalf("start kafka: %v\n%s%s", err, out, stderr.String())
	}
	t.Cleanup(func() {
		stop := exec.Command("bash", filepath.Join(ci, "stop.sh"))
		stop.Env = env
		_ = stop.Run()
	})
	runOverSASLTLS(t, fmt.Sprintf("127.0.0.1:%d", sslPort), ca)
}

// runOverSASLTLS runs the checks of TestRunOverSASLTLS against broker, a
// TLS listener with a certificate ca signed and SCRAM-SHA-512 user augur
// with password s3cret.
func runOverSASLTLS(t *testing.T, broker string, ca testca.CA) {
	t.Helper()
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

	// The roles that run alone connect with the same block (-config): each
	// joins its group and runs until stopped; with the wrong password each
	// stops at start-up naming kafka.sasl.
	key := filepath.Join(dir, "data", "decision.key")
	wrong := config(freePort(t), fmt.Sprintf("  tls: {enabled: true, ca_file: %s}\n  sasl: {mechanism: scram-sha-512, username: augur, password_file: %s}", ca.File, filepath.Join(dir, "wrong")))
	for role, args := range map[string][]string{
		"stream": {"stream", "-decision-key-file", key, "-metrics-addr", "", "-group", "augur-stream-solo", "-transactional-id", "augur-stream-solo"},
		"act":    {"act", "-decision-key-file", key, "-kubeconfig", "none", "-metrics-addr", "", "-group", "augur-act-solo", "-actor", "solo"},
	} {
		rctx, stop := context.WithTimeout(ctx, 5*time.Second)
		var stderr strings.Builder
		code := runMain(rctx, append(args, "-config", cfgFile), io.Discard, &stderr, slog.New(slog.DiscardHandler))
		stop()
		if code != 0 {
			t.Errorf("augur %s over SASL_SSL exited %d: %s", role, code, stderr.String())
		}
		stderr.Reset()
		if code := runMain(ctx, append(args, "-config", wrong), io.Discard, &stderr, slog.New(slog.DiscardHandler)); code == 0 || !strings.Contains(stderr.String(), "kafka.sasl") {
			t.Errorf("augur %s with a wrong password: exit %d, %q", role, code, stderr.String())
		}
	}

	// augur act serves the decisions API on its metrics address too.
	metrics := freePort(t)
	actCtx, stopAct := context.WithCancel(ctx)
	actDone := make(chan int, 1)
	go func() {
		actDone <- runMain(actCtx, []string{"act", "-config", cfgFile, "-decision-key-file", key, "-kubeconfig", "none",
			"-metrics-addr", metrics, "-group", "augur-act-api", "-actor", "api"}, io.Discard, io.Discard, slog.New(slog.DiscardHandler))
	}()
	deadline := time.Now().Add(30 * time.Second)
	body := ""
	for !strings.Contains(body, alert) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		body = scrape(t, "http://"+metrics+"/api/v1/decisions?kind=alert")
	}
	stopAct()
	if code := <-actDone; code != 0 {
		t.Errorf("augur act exited %d", code)
	}
	if !strings.Contains(body, alert) {
		t.Errorf("augur act's /api/v1/decisions did not serve the alert: %q", body)
	}
}

// freePortNumber returns a loopback port free a moment ago.
func freePortNumber(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
