package main

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/augur-ops/augur/internal/recent"
)

// TestMetricsAddrInUseIsAnError: a role's -metrics-addr that cannot be
// bound stops it at start-up; it was logged while the role ran on without
// /metrics, the API or the console.
func TestMetricsAddrInUseIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop, err := serveRoleHTTP(t.Context(), ln.Addr().String(), nil, recent.Config{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err == nil {
		stop()
		t.Fatalf("serving on %s, already in use, was not an error", ln.Addr())
	}
	if !strings.Contains(err.Error(), "-metrics-addr") {
		t.Errorf("error %q does not name -metrics-addr", err)
	}
}
