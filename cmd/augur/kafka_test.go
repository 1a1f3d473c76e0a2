package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/augur-ops/augur/internal/kafkaconn"
	"github.com/augur-ops/augur/internal/testca"
	"github.com/augur-ops/augur/proto"
	"github.com/augur-ops/augur/stream"
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
			for _, role := range []string{"run", "ingest"} {
				listen := freePort(t)
				start := time.Now()
				code, stderr, ready := failsAtStartup(t, []string{role, "-config", config(listen, tc.kafka)}, listen)
				if code == 0 || !strings.Contains(stderr, tc.want) {
					t.Errorf("augur %s, %s: exit %d, stderr %q: want a failure naming %s", role, name, code, stderr, tc.want)
				}
				if ready {
					t.Errorf("augur %s, %s: /readyz answered 200", role, name)
				}
				if d := time.Since(start); d > 20*time.Second {
					t.Errorf("augur %s, %s: took %v to fail", role, name, d)
				}
			}
		}
	})

	listen := freePort(t)
	cfgFile := config(listen, good)
	ctx, _ := startRun(t, cfgFile, listen)
	// 300 quiet samples (the rule's default warm-up is 256), then a jump.
	start := time.Now().Add(-80 * time.Minute).Truncate(time.Second).UnixMilli()
	var samples []prompb.Sample
	for i := range 320 {
		v := 0.1 + 0.002*float64(i%7)
		if i >= 300 {
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
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			cl.PollRecords(pctx, 100).EachRecord(func(r *kgo.Record) { found = found || match(r) })
			cancel()
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
	// stops at start-up naming kafka.sasl. augur ingest acknowledges a
	// request.
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
	ingestListen := freePort(t)
	ictx, stopIngest := context.WithCancel(ctx)
	ingestDone := make(chan int, 1)
	go func() {
		ingestDone <- runMain(ictx, []string{"ingest", "-config", cfgFile, "-listen", ingestListen}, io.Discard, io.Discard, slog.New(slog.DiscardHandler))
	}()
	waitReady(t, "http://"+ingestListen+"/readyz")
	pushV1(t, "http://"+ingestListen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "solo"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}})
	stopIngest()
	if code := <-ingestDone; code != 0 {
		t.Errorf("augur ingest over SASL_SSL exited %d", code)
	}

	// The same settings as flags and environment variables, no config file.
	t.Setenv("AUGUR_KAFKA_SASL_MECHANISM", "scram-sha-512")
	t.Setenv("AUGUR_KAFKA_SASL_USERNAME", "augur")
	t.Setenv("AUGUR_KAFKA_SASL_PASSWORD_FILE", filepath.Join(dir, "password"))
	rctx, stop := context.WithTimeout(ctx, 5*time.Second)
	var stderr strings.Builder
	code := runMain(rctx, []string{"stream", "-brokers", broker, "-kafka-tls", "-kafka-tls-ca-file", ca.File, "-kafka-client-id", "augur-flags",
		"-decision-key-file", key, "-metrics-addr", "", "-group", "augur-stream-flags", "-transactional-id", "augur-stream-flags"}, io.Discard, &stderr, slog.New(slog.DiscardHandler))
	stop()
	if code != 0 {
		t.Errorf("augur stream with -kafka-* flags and AUGUR_KAFKA_* variables exited %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := runMain(ctx, []string{"stream", "-brokers", broker, "-kafka-tls", "-kafka-tls-ca-file", ca.File, "-kafka-sasl-password-file", filepath.Join(dir, "wrong"),
		"-decision-key-file", key, "-metrics-addr", "", "-group", "augur-stream-flags"}, io.Discard, &stderr, slog.New(slog.DiscardHandler)); code == 0 || !strings.Contains(stderr.String(), "kafka.sasl") {
		t.Errorf("augur stream with -kafka-sasl-password-file of a wrong password: exit %d, %q", code, stderr.String())
	}
	for _, v := range []string{"AUGUR_KAFKA_SASL_MECHANISM", "AUGUR_KAFKA_SASL_USERNAME", "AUGUR_KAFKA_SASL_PASSWORD_FILE"} {
		t.Setenv(v, "")
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

	// So does augur stream, and both serve the console.
	metrics = freePort(t)
	stCtx, stopStream := context.WithCancel(ctx)
	stDone := make(chan int, 1)
	go func() {
		stDone <- runMain(stCtx, []string{"stream", "-config", cfgFile, "-decision-key-file", key, "-metrics-addr", metrics,
			"-group", "augur-stream-api", "-transactional-id", "augur-stream-api", "-api-tail-size", "50"}, io.Discard, io.Discard, slog.New(slog.DiscardHandler))
	}()
	body = ""
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(body, alert) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		body = scrape(t, "http://"+metrics+"/api/v1/decisions?kind=alert&limit=50")
	}
	page := scrape(t, "http://"+metrics+"/")
	rules := scrape(t, "http://"+metrics+"/api/v1/rules")
	stopStream()
	if code := <-stDone; code != 0 {
		t.Errorf("augur stream exited %d", code)
	}
	if !strings.Contains(body, alert) {
		t.Errorf("augur stream's /api/v1/decisions did not serve the alert: %q", body)
	}
	if !strings.Contains(page, "<title>augur console</title>") || !strings.Contains(rules, `"tail_size":50`) {
		t.Errorf("augur stream's console %q / rules %q", tailString(page, 200), rules)
	}
}

// freePortRun returns the first of n consecutive loopback ports, each free
// a moment ago and not handed out before, below Linux's ephemeral range
// (32768 up), where no outgoing connection takes one in the meantime.
func freePortRun(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		first := 20000 + rand.IntN(12000-n)
		free := true
		for p := first; p < first+n && free; p++ {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
			l, err := net.Listen("tcp", addr)
			if err == nil {
				l.Close()
				_, dup := handedOut.LoadOrStore(addr, true)
				free = !dup
			} else {
				free = false
			}
		}
		if free {
			return first
		}
	}
	t.Fatalf("no %d consecutive free loopback ports in 200 tries", n)
	return 0
}

// failsAtStartup runs augur with args until it exits (60s at most) while
// polling /readyz on listen: the exit code, stderr, and whether /readyz
// ever answered 200.
func failsAtStartup(t *testing.T, args []string, listen string) (code int, stderr string, ready bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var buf syncBuffer
	done := make(chan int, 1)
	go func() { done <- runMain(ctx, args, io.Discard, &buf, slog.New(slog.DiscardHandler)) }()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case code = <-done:
			return code, buf.String(), ready
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := client.Get("http://" + listen + "/readyz"); err == nil {
			resp.Body.Close()
			ready = ready || resp.StatusCode == http.StatusOK
		}
	}
}

// TestMSKIAMDefaultChain: with aws-msk-iam the credentials come from the
// AWS SDK's default chain, here a profile's credential_process (as
// aws-vault, IAM Roles Anywhere or an SSO helper provide) that hands out
// short-lived keys. Every authentication of the AWS_MSK_IAM mechanism is
// signed with the keys the chain resolves, and expired keys are resolved
// again: the second authentication is signed with new ones.
func TestMSKIAMDefaultChain(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "creds.sh")
	writeFile(t, script, fmt.Sprintf(`#!/bin/sh
n=$(( $(cat %[1]s/n 2>/dev/null || echo 0) + 1 ))
echo $n > %[1]s/n
# Already expired: the SDK must ask again at the next use.
printf '{"Version":1,"AccessKeyId":"AKIDPROC%%d","SecretAccessKey":"secret","SessionToken":"token%%d","Expiration":"2020-01-01T00:00:00Z"}' $n $n
`, dir))
	if err := os.Chmod(script, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config"), "[default]\nregion = us-east-1\ncredential_process = "+script+"\n")
	writeFile(t, filepath.Join(dir, "credentials"), "")
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE": "", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}

	c := kafkaconn.Config{TLS: kafkaconn.TLS{Enabled: true}, SASL: kafkaconn.SASL{Mechanism: kafkaconn.MechanismAWSMSKIAM}}
	const broker = "b-1.augur.abc123.c2.kafka.us-east-1.amazonaws.com:9098"
	if _, err := connOptions(t.Context(), c, []string{broker}, false); err != nil {
		t.Fatal(err)
	}
	creds, err := awsCredentials(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Mechanism(creds)
	if err != nil || m == nil || m.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %v, %v: want AWS_MSK_IAM", m, err)
	}
	for i := 1; i <= 2; i++ {
		_, first, err := m.Authenticate(t.Context(), broker)
		if err != nil {
			t.Fatal(err)
		}
		var msg map[string]string
		if err := json.Unmarshal(first, &msg); err != nil {
			t.Fatalf("first message %q: %v", first, err)
		}
		if !strings.HasPrefix(msg["x-amz-credential"], fmt.Sprintf("AKIDPROC%d/", i)) || msg["x-amz-security-token"] != fmt.Sprintf("token%d", i) {
			t.Errorf("authentication %d signed with credential %q, token %q: want the chain's AKIDPROC%d", i, msg["x-amz-credential"], msg["x-amz-security-token"], i)
		}
		if !strings.Contains(msg["x-amz-credential"], "/us-east-1/kafka-cluster/") {
			t.Errorf("credential scope %q: want the broker's region and kafka-cluster", msg["x-amz-credential"])
		}
	}

	// No credentials anywhere in the chain: the first authentication fails
	// naming the setting.
	writeFile(t, filepath.Join(dir, "config"), "[default]\nregion = us-east-1\n")
	creds, err = awsCredentials(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	m, err = c.Mechanism(creds)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, _, err := m.Authenticate(ctx, broker); err == nil || !strings.Contains(err.Error(), "kafka.sasl: aws-msk-iam credentials") {
		t.Errorf("no credentials: %v, want an error naming kafka.sasl", err)
	}
}

// testHexKey is a decision key as augur generates them: 64 hex digits.
const testHexKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestRolesRefuseATruncatedKey: augur stream and augur act read the
// decision key alike, and a key file cut short (here to 40 of its 64 hex
// digits, still well over 16 bytes) is refused at start-up naming the file
// and what is wrong. It was taken as another key: the stream signed every
// decision with it, or the actuator refused every decision as
// "signature does not verify".
func TestRolesRefuseATruncatedKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "decision.key")
	writeFile(t, key, testHexKey[:40]+"\n")
	for role, args := range map[string][]string{
		"stream": {"stream", "-brokers", "127.0.0.1:1", "-decision-key-file", key, "-metrics-addr", "", "-create-topics=false"},
		"act":    {"act", "-brokers", "127.0.0.1:1", "-decision-key-file", key, "-kubeconfig", "none", "-metrics-addr", ""},
	} {
		var stderr strings.Builder
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		code := runMain(ctx, args, io.Discard, &stderr, slog.New(slog.DiscardHandler))
		cancel()
		if want := "decision key " + key + ": 40 characters, want 64 hex digits"; code == 0 || !strings.Contains(stderr.String(), want) {
			t.Errorf("augur %s with a key cut short: exit %d, %q; want an error saying %q", role, code, stderr.String(), want)
		}
	}
}

// TestRolesLogTheKeyFingerprint: augur stream (which signs) and augur act
// (which verifies) log the fingerprint of the decision key they loaded at
// start, the same for the same key, so that an operator can compare them
// without reading the key.
func TestRolesLogTheKeyFingerprint(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "augur.samples", "augur.decisions"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := testKey(t, t.TempDir())
	want := proto.KeyFingerprint([]byte(testHexKey))
	for role, args := range map[string][]string{
		"stream": {"stream", "-brokers", c.ListenAddrs()[0], "-decision-key-file", key, "-metrics-addr", "", "-group", "augur-stream-fp", "-transactional-id", "augur-stream-fp"},
		"act":    {"act", "-brokers", c.ListenAddrs()[0], "-decision-key-file", key, "-kubeconfig", "none", "-metrics-addr", "", "-group", "augur-act-fp"},
	} {
		var logs strings.Builder
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		code := runMain(ctx, args, io.Discard, io.Discard, slog.New(slog.NewJSONHandler(&logs, nil)))
		cancel()
		found := false
		for line := range strings.Lines(logs.String()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "decision key loaded" {
				found = true
				if rec["fingerprint"] != want || rec["file"] != key {
					t.Errorf("augur %s logged %v, want fingerprint %s and file %s", role, rec, want, key)
				}
			}
		}
		if !found {
			t.Errorf("augur %s (exit %d) logged no fingerprint of its decision key: %s", role, code, tailString(logs.String(), 2000))
		}
	}
}

// TestActCreatesTheActionsTopic: `augur act` alone on a cluster without
// augur.actions creates it, so that its audit transactions can commit.
func TestActCreatesTheActionsTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "augur.decisions"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := testKey(t, t.TempDir())
	ctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
	defer stop()
	var stderr strings.Builder
	if code := runMain(ctx, []string{"act", "-brokers", c.ListenAddrs()[0], "-decision-key-file", key, "-kubeconfig", "none", "-metrics-addr", ""},
		io.Discard, &stderr, slog.New(slog.DiscardHandler)); code != 0 {
		t.Fatalf("augur act exited %d: %s", code, stderr.String())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(t.Context(), "augur.actions")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := td["augur.actions"]; !ok || d.Err != nil || len(d.Partitions) != int(stream.DecisionPartitions) {
		t.Fatalf("augur.actions after augur act: %+v", td)
	}
}

// TestActReadsItsConfigBlock: `augur act -config` takes the act: block
// (mode, guardrails, topics), which it ignored; a flag given on the
// command line overrides the file.
func TestActReadsItsConfigBlock(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "augur.decisions"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	key := testKey(t, dir)
	cfgFile := filepath.Join(dir, "augur.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`kafka:
  brokers: [%s]
act:
  mode: enforce
  max_step: 0.25
  actions_topic: audit.from-file
`, c.ListenAddrs()[0]))
	run := func(extra ...string) string {
		t.Helper()
		var logs strings.Builder
		ctx, stop := context.WithTimeout(t.Context(), 3*time.Second)
		defer stop()
		args := append([]string{"act", "-config", cfgFile, "-decision-key-file", key, "-kubeconfig", "none", "-metrics-addr", ""}, extra...)
		if code := runMain(ctx, args, io.Discard, io.Discard, slog.New(slog.NewTextHandler(&logs, nil))); code != 0 {
			t.Fatalf("augur act %v exited %d: %s", extra, code, logs.String())
		}
		return logs.String()
	}
	if logs := run(); !strings.Contains(logs, "mode=enforce") {
		t.Errorf("augur act -config with act.mode enforce started as: %s", firstLine(logs, "actuator started"))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if td, err := kadm.NewClient(cl).ListTopics(t.Context(), "audit.from-file"); err != nil || td["audit.from-file"].Err != nil {
		t.Errorf("act.actions_topic from the file not created: %v %+v", err, td)
	}
	if logs := run("-mode", "off"); !strings.Contains(logs, "mode=off") {
		t.Errorf("-mode off over act.mode enforce started as: %s", firstLine(logs, "actuator started"))
	}
}

// firstLine returns the first line of s containing sub.
func firstLine(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestStreamWithoutCreateTopicsChecksTheConnection: a bad SASL setting
// stops augur stream at start-up naming it, with -create-topics=false too
// (the least-privilege setup, whose principal may not create topics).
func TestStreamWithoutCreateTopicsChecksTheConnection(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "augur", "s3cret"),
		kfake.SeedTopics(1, "augur.samples", "augur.state", "augur.decisions", "augur.actions", "augur.forecasts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	key := testKey(t, dir)
	writeFile(t, filepath.Join(dir, "wrong"), "guess\n")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stderr strings.Builder
	code := runMain(ctx, []string{"stream", "-brokers", c.ListenAddrs()[0], "-create-topics=false", "-decision-key-file", key, "-metrics-addr", "",
		"-kafka-sasl-mechanism", "scram-sha-512", "-kafka-sasl-username", "augur", "-kafka-sasl-password-file", filepath.Join(dir, "wrong")},
		io.Discard, &stderr, slog.New(slog.DiscardHandler))
	if code == 0 || !strings.Contains(stderr.String(), "kafka.sasl") || ctx.Err() != nil {
		t.Errorf("augur stream -create-topics=false with a wrong password: exit %d after the deadline: %v, %q; want a start-up failure naming kafka.sasl", code, ctx.Err() != nil, stderr.String())
	}
}
