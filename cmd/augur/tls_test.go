package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/augur-ops/augur/internal/testca"
)

// selfSigned returns a server certificate and key for 127.0.0.1 and a pool
// trusting the CA that signed them.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca := testca.New(t, "augur-test")
	return ca.ServerCertFile, ca.ServerKeyFile, ca.Pool
}

// TestIngestServesTLS runs `augur ingest` with TLS against a broker started
// by `augur run` in the same test, and writes over HTTPS.
func TestIngestServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t)
	broker, runListen, listen := freePort(t), freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	runCfg := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(runCfg, fmt.Appendf(nil, "listen: %s\ndata_dir: %s\nkafka:\n  embedded_addr: %s\n", runListen, filepath.Join(dir, "data"), broker), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestCfg := filepath.Join(dir, "ingest.yaml")
	if err := os.WriteFile(ingestCfg, fmt.Appendf(nil, "listen: %s\ntls:\n  cert_file: %s\n  key_file: %s\nkafka:\n  brokers: [%s]\n", listen, certFile, keyFile, broker), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 2)
	go func() { done <- runMain(ctx, []string{"run", "-config", runCfg}, io.Discard, io.Discard, log) }()
	waitReady(t, "http://"+runListen+"/readyz")
	go func() { done <- runMain(ctx, []string{"ingest", "-config", ingestCfg}, io.Discard, io.Discard, log) }()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("https://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("augur ingest not ready over TLS within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pushV1With(t, client, "https://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "tls"}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}}})
	if resp, err := http.Get("http://" + listen + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
	cancel()
	for range 2 {
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit code %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("augur did not stop within 30s")
		}
	}
}
