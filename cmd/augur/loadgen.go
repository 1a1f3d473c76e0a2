package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/augur-ops/augur/internal/loadgen"
)

func init() {
	commands["loadgen"] = command{
		summary: "send Prometheus-shaped remote-write load (v1 or v2, fixed rate or flat out) and report latency and rate",
		run:     runLoadgen,
	}
}

func runLoadgen(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	var cfg loadgen.Config
	fs := newFlagSet("loadgen", stdout)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:9201/api/v1/write", "remote-write endpoint")
	fs.StringVar(&cfg.Protocol, "protocol", "v1", "remote-write protocol: v1 (1.0) or v2 (2.0)")
	fs.IntVar(&cfg.SeriesPerRequest, "series-per-request", 2000, "series per request, one sample each")
	fs.IntVar(&cfg.Series, "series", 100000, "series in the simulated fleet")
	fs.IntVar(&cfg.Pool, "pool", 100, "distinct requests encoded before the run and sent round robin")
	fs.Float64Var(&cfg.Rate, "rate", 0, "samples per second, requests started on a timer (open loop); 0 sends flat out")
	fs.DurationVar(&cfg.Duration, "duration", 0, "measured run time (default 30s)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "load sent before the measured run, not counted")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "requests in flight at most")
	fs.StringVar(&cfg.Tenant, "tenant", "", "X-Scope-OrgID to send")
	pids := fs.String("cpu-pids", "", "comma-separated pids whose CPU time (/proc/<pid>/stat) is measured over the run")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, p := range strings.Split(*pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(stdout, "augur loadgen: -cpu-pids: %q is not a pid\n", p)
			return errUsage
		}
		cfg.CPUPids = append(cfg.CPUPids, n)
	}
	res, err := loadgen.Run(ctx, cfg, log)
	if err != nil {
		return err
	}
	if *asJSON {
		return res.WriteJSON(stdout)
	}
	return res.WriteText(stdout)
}
