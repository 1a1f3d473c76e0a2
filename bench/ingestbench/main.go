// Command ingestbench runs augur's remote-write receiver (package ingest)
// alone against a Kafka broker, wired as `augur ingest` wires it, with
// optional CPU and allocation profiles of the whole run. bench/ingest.sh
// measures `augur ingest`; this command is for looking inside it.
//
//	go run ./bench/ingestbench -brokers 127.0.0.1:19092 -listen 127.0.0.1:19202 -cpuprofile cpu.out
//
// It runs until SIGINT or SIGTERM, then writes the profiles.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/rules"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:19092", "comma-separated Kafka seed brokers")
	listen := flag.String("listen", "127.0.0.1:19202", "HTTP listen address of /api/v1/write")
	partitions := flag.Int("partitions", 8, "partitions of the samples topic when creating it")
	topic := flag.String("topic", "augur.samples", "samples topic")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the run to this file")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *listen, *topic, int32(*partitions), *cpuProfile, *memProfile, log); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, seeds []string, listen, topic string, partitions int32, cpuProfile, memProfile string, log *slog.Logger) error {
	cfg := ingest.Config{Topic: topic, Partitions: partitions}
	if err := cfg.Validate(); err != nil {
		return err
	}
	client, err := kgo.NewClient(append(ingest.ClientOptions(cfg), kgo.SeedBrokers(seeds...))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer client.Close()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cfg.Partitions, err = ingest.EnsureTopic(tctx, kadm.NewClient(client), topic, partitions, -1, cfg.MaxRecordBytes)
	cancel()
	if err != nil {
		return err
	}
	recv, err := ingest.New(cfg, client, rules.Empty(), prometheus.NewRegistry(), log, nil)
	if err != nil {
		return err
	}
	if memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/write", recv)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("receiver listening", "url", "http://"+ln.Addr().String()+"/api/v1/write", "partitions", cfg.Partitions)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// The run is over; shutdown gets its own short deadline on purpose.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = recv.Drain(sctx)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return fmt.Errorf("mem profile: %w", err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return fmt.Errorf("mem profile: %w", err)
		}
	}
	return nil
}
