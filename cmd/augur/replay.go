package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/augur-ops/augur/detectors/anomaly"
)

func init() {
	commands["replay"] = command{
		summary: "replay a timestamp,value CSV through a detector (NAB results layout)",
		run:     runReplay,
	}
}

func runReplay(_ context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := newFlagSet("replay", stdout)
	det := fs.String("detector", "anomaly", "detector to run; only anomaly")
	in := fs.String("input", "", "input CSV with a timestamp,value header (NAB format; may be gzip)")
	out := fs.String("output", "-", "output CSV (timestamp,value,anomaly_score); - for stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *det != "anomaly" || *in == "" {
		fmt.Fprintln(fs.Output(), "need -detector anomaly and -input FILE")
		return errUsage
	}
	d, err := anomaly.New(anomaly.DefaultConfig())
	if err != nil {
		return err
	}
	src, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer src.Close()
	dst := stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		dst = f
	}
	rows, err := anomaly.Replay(dst, src, d)
	if f != nil {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close output: %w", cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("replay %s: %w", *in, err)
	}
	log.Info("replay done", "input", *in, "output", *out, "rows", rows)
	return nil
}
