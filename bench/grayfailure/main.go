// Command grayfailure measures the zonal gray-failure detector on simulated
// three-zone traffic: added latency and packet loss in one zone (to detect
// and shift), a drained node and a region-wide slowdown (never to shift for),
// and healthy days (to count false shifts). It prints a markdown table.
//
//	go run ./bench/grayfailure [-runs 30] [-days 7] [-seed 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/augur-ops/augur/bench/grayfailure/scenario"
)

func main() {
	runs := flag.Int("runs", 30, "runs per fault kind")
	days := flag.Int("days", 7, "healthy days to simulate")
	seed := flag.Uint64("seed", 1, "random seed")
	samples := flag.Int("samples", 4000, "latency samples per zone and window")
	flag.Parse()
	sc := scenario.SuiteConfig{Runs: *runs, FaultRunLength: 4 * time.Hour, FaultLength: 30 * time.Minute,
		Healthy: time.Duration(*days) * 24 * time.Hour, Samples: *samples, Seed: *seed}
	dcfg := scenario.BenchDetectorConfig()
	sums, err := scenario.Suite(sc, dcfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grayfailure:", err)
		os.Exit(1)
	}
	fmt.Printf("detector: defaults (warn 1.2x, shift 1.3x, 3 of 5 one-minute windows, >=2 instances, hold-down 15m) + mean latency limit %v\n\n", time.Duration(dcfg.MeanLatencyLimit*float64(time.Second)))
	if err := scenario.WriteMarkdown(os.Stdout, sums); err != nil {
		fmt.Fprintln(os.Stderr, "grayfailure:", err)
		os.Exit(1)
	}
}
