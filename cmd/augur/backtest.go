package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/augur-ops/augur/models/backtest"
)

func init() {
	commands["backtest"] = command{
		summary: "replay a CSV series through the forecaster bank and score it",
		run:     runBacktest,
	}
}

func runBacktest(_ context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := newFlagSet("backtest", stdout)
	input := fs.String("input", "", "CSV series (header timestamp,value or ts,value, or none; unix seconds or ISO 8601; empty or NaN values are gaps; gzip allowed)")
	horizon := fs.Duration("horizon", 30*time.Minute, "forecast horizon scored")
	output := fs.String("output", "", "write per-row forecasts here (timestamp,actual,forecast,lower,upper)")
	step := fs.Duration("step", 0, "model step (default: the median spacing of the input)")
	warmup := fs.Duration("warmup", 24*time.Hour, "leading span fed but not scored")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *input == "" {
		fmt.Fprintln(stdout, "--input is required")
		return errUsage
	}
	pts, iso, err := backtest.ReadFileFormat(*input)
	if err != nil {
		return err
	}
	res, err := backtest.Run(pts, backtest.Options{Horizon: *horizon, Step: *step, Warmup: *warmup})
	if err != nil {
		return err
	}
	log.Info("backtest done", "rows", len(pts), "scored", len(res.Rows), "step", res.Step, "periods", fmt.Sprint(res.Periods), "refits", res.Refits)
	fmt.Fprintf(stdout, "%s: %d rows, %d scored, step %v, horizon %v, seasonality %v\n",
		*input, len(pts), len(res.Rows), res.Step, res.Horizon, res.Periods)
	fmt.Fprintf(stdout, "%-16s %8s %9s %10s %9s\n", "model", "MASE", "sMAPE%", "MAPE%", "cover80")
	for _, m := range res.Metrics {
		fmt.Fprintf(stdout, "%-16s %8.3f %9.2f %10.2f %8.1f%%\n", m.Name, m.MASE, m.SMAPE, m.MAPE, 100*m.Coverage)
	}
	fmt.Fprintln(stdout, "MASE: mean absolute error over that of the naive forecast (the value one horizon earlier) on the same rows")
	if *output == "" {
		return nil
	}
	return writeBacktestCSV(*output, res, iso)
}

func writeBacktestCSV(path string, res *backtest.Result, iso bool) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("timestamp,actual,forecast,lower,upper\n")
	var line []byte
	for _, r := range res.Rows {
		b := r.Forecasts[backtest.ColBank]
		line = append(line[:0], backtest.FormatTime(r.Ts, iso)...)
		for _, v := range [...]float64{r.Actual, b.Point, b.Lower, b.Upper} {
			line = append(line, ',')
			line = strconv.AppendFloat(line, v, 'g', -1, 64)
		}
		line = append(line, '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write output: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	return nil
}
