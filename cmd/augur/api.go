package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/console"
	"github.com/augur-ops/augur/internal/recent"
)

// apiFlags size the decisions API's tail in the roles that run alone
// (augur act, augur stream); `augur run` reads the api: block.
type apiFlags struct {
	size     int
	lookback time.Duration
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.size, "api-tail-size", 1000, "decisions, audit records and forecast points per rule the decisions API keeps")
	fs.DurationVar(&f.lookback, "api-lookback", time.Hour, "how far back the decisions API reads the topics at start")
}

// mountAPI serves on mux the decisions API of tail under /api/v1/ (a more
// specific pattern, such as augur run's /api/v1/write, wins), its charts
// and the console at /.
func mountAPI(mux *http.ServeMux, tail *recent.Tail) {
	mux.Handle("/api/v1/", tail)
	mux.Handle("/api/v1/chart.svg", console.ChartHandler(tail))
	mux.Handle("/", console.Handler())
}

// serveRoleHTTP serves, on addr, /metrics of reg, the decisions API (a
// tail of the decisions, actions and forecasts topics read with conn) and
// the console, until the returned stop is called.
func serveRoleHTTP(ctx context.Context, addr string, conn []kgo.Opt, tc recent.Config, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	// Bound before anything starts: an address in use is an error at
	// start-up, not a log line under a role that runs on without metrics.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	tail := recent.New(tc, log)
	tailClient, err := kgo.NewClient(append(conn, tail.Options()...)...)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	tctx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan struct{})
	go func() { defer close(tailDone); _ = tail.Run(tctx, tailClient) }()
	srv := newHTTPServer(roleMux(reg, tail), 5*time.Second)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics and API server", "err", err)
		}
	}()
	return func() {
		_ = srv.Close()
		stopTail()
		<-tailDone
		tailClient.Close()
	}, nil
}

// httpIdleTimeout closes a keep-alive connection idle this long. Without
// it (http.Server has none by default, and ReadHeaderTimeout starts only
// with a request's first bytes) a client held a connection, its goroutine
// and buffers for as long as it liked after one request, so connections
// piled up until the process ran out of file descriptors. Remote-write
// senders post every few seconds, well within it. A variable for tests.
var httpIdleTimeout = 2 * time.Minute

// newHTTPServer is the http.Server of every listener: headers must arrive
// within readHeader and an idle connection is closed after
// httpIdleTimeout. Bodies are bounded where they are read (ingest's
// body_timeout); no WriteTimeout, which would cut long API answers.
func newHTTPServer(h http.Handler, readHeader time.Duration) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeader, IdleTimeout: httpIdleTimeout}
}

// roleMux serves what every role's HTTP server serves: /metrics of reg
// and, when tail is not nil, the decisions API and the console.
func roleMux(reg *prometheus.Registry, tail *recent.Tail) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if tail != nil {
		mountAPI(mux, tail)
	}
	return mux
}

// processRegistry is the registry of a process's metrics, one per role:
// the Go runtime's and the process' own, then whatever the role registers.
func processRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
