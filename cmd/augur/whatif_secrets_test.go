package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePrometheus answers buildinfo and an empty series list: enough for
// augur whatif to write a report whose one rule matches nothing.
func fakePrometheus(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/status/buildinfo":
			fmt.Fprint(w, `{"status":"success","data":{"version":"3.0.0"}}`)
		case "/api/v1/series":
			fmt.Fprint(w, `{"status":"success","data":[]}`)
		default:
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func whatifRulesFile(t *testing.T, dir string) string {
	t.Helper()
	f := filepath.Join(dir, "rules.yaml")
	writeFile(t, f, `rules:
- name: shop
  scaling:
    selector: requests_total{namespace="shop"}
    capacity_per_pod: 10
    min_replicas: 2
    max_replicas: 50
    target: {namespace: shop, name: web}
`)
	return f
}

// TestWhatifReportHidesURLPassword: a password in -prometheus's userinfo
// (which Go's client sends as basic auth) must not be written into
// report.html and report.json, which are made to be shared, nor printed.
func TestWhatifReportHidesURLPassword(t *testing.T) {
	dir := t.TempDir()
	prom := fakePrometheus(t)
	u := strings.Replace(prom.URL, "http://", "http://augur:hunter2-secret@", 1)
	out := filepath.Join(dir, "out")
	var stdout, stderr strings.Builder
	runMain(t.Context(), []string{"whatif", "-prometheus", u, "-rules", whatifRulesFile(t, dir), "-out", out},
		&stdout, &stderr, slog.New(slog.DiscardHandler))
	for _, f := range []string{"report.html", "report.json"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatalf("%s not written: %v; output: %s%s", f, err, stdout.String(), stderr.String())
		}
		if strings.Contains(string(b), "hunter2-secret") {
			t.Errorf("%s contains the password of -prometheus", f)
		}
	}
	if strings.Contains(stdout.String()+stderr.String(), "hunter2-secret") {
		t.Errorf("output contains the password of -prometheus")
	}
	// An error naming the server must not print it either.
	stdout.Reset()
	stderr.Reset()
	runMain(t.Context(), []string{"whatif", "-prometheus", "http://augur:hunter2-secret@" + freePort(t), "-rules", whatifRulesFile(t, dir), "-out", out},
		&stdout, &stderr, slog.New(slog.DiscardHandler))
	if msg := stdout.String() + stderr.String(); strings.Contains(msg, "hunter2-secret") || !strings.Contains(msg, "unreachable") {
		t.Errorf("unreachable Prometheus: %q", msg)
	}
}
