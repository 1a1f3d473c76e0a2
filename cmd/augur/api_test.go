package main

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

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

// TestIdleConnectionsAreClosed: a keep-alive connection left idle after a
// request is closed by the server (httpIdleTimeout); it stayed open for
// as long as the client liked, so idle connections could pile up.
func TestIdleConnectionsAreClosed(t *testing.T) {
	defer func(d time.Duration) { httpIdleTimeout = d }(httpIdleTimeout)
	httpIdleTimeout = 300 * time.Millisecond
	addr := freePort(t)
	stop, err := serveRoleHTTP(t.Context(), addr, nil, recent.Config{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: augur\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("an idle keep-alive connection is still open after 5s")
	}
}
