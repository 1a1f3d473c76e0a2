package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/augur-ops/augur/detectors/anomaly"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/internal/whatif"
)

func init() {
	commands["whatif"] = command{
		summary: "replay your Prometheus history through augur and report what it would have done",
		run:     runWhatif,
	}
}

func runWhatif(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := newFlagSet("whatif", stdout)
	promURL := fs.String("prometheus", "", "Prometheus base URL (http:// or https://), e.g. http://prometheus:9090")
	rulesPath := fs.String("rules", "", "rules file (the one augur run or augur stream would use)")
	fromFlag := fs.String("from", "72h", "start: a duration before -to (72h), an RFC 3339 time or unix seconds")
	toFlag := fs.String("to", "", "end: an RFC 3339 time or unix seconds (default now)")
	out := fs.String("out", "", "directory for report.html and report.json")
	httpConfig := fs.String("http-config", "", "Prometheus HTTP client settings (YAML, as in Prometheus' remote_read: basic_auth, authorization, oauth2, tls_config, proxy_url, http_headers)")
	podStart := fs.Duration("pod-start", 90*time.Second, "how long a new pod takes to be ready (created to ready)")
	step := fs.Duration("step", 0, "scrape interval of the series read, when Prometheus cannot estimate it (default: each rule's, estimated; a longer -step gives way to the estimate)")
	warmup := fs.Duration("warmup", 0, "leading span replayed but not scored (default 0: a new deployment's first minutes count)")
	maxSeries := fs.Int("max-series", 2000, "most series one rule may select")
	timeout := fs.Duration("timeout", 2*time.Minute, "timeout of each request to Prometheus")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *promURL == "" || *rulesPath == "" || *out == "" {
		fmt.Fprintln(fs.Output(), "need -prometheus URL, -rules FILE and -out DIR")
		return errUsage
	}
	// Checked here, naming the flag: past this point a negative -step
	// became a range selector Prometheus refused as a parse error, a
	// -timeout of 0 read as "unreachable", and a negative -pod-start or
	// -warmup, a -pod-start or -max-series of 0 (taken as the default)
	// changed the report without a word.
	switch {
	case *step < 0:
		return fmt.Errorf("-step %v: must not be negative (0 estimates each rule's scrape interval)", *step)
	case *podStart <= 0:
		return fmt.Errorf("-pod-start %v: must be above 0", *podStart)
	case *warmup < 0:
		return fmt.Errorf("-warmup %v: must not be negative", *warmup)
	case *timeout <= 0:
		return fmt.Errorf("-timeout %v: must be above 0", *timeout)
	case *maxSeries <= 0:
		return fmt.Errorf("-max-series %d: must be above 0", *maxSeries)
	}
	to, err := parseWhen(*toFlag, time.Now())
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	from, err := parseWhen(*fromFlag, to)
	if err != nil {
		return fmt.Errorf("-from: %w", err)
	}
	set, err := rules.Load(*rulesPath)
	if err != nil {
		return err
	}
	if set.Len() == 0 {
		return fmt.Errorf("rules %s: no rules", *rulesPath)
	}
	var rt http.RoundTripper
	if *httpConfig != "" {
		cfg, _, err := promconfig.LoadHTTPConfigFile(*httpConfig)
		if err != nil {
			return fmt.Errorf("-http-config %s: %w", *httpConfig, err)
		}
		if rt, err = promconfig.NewRoundTripperFromConfig(*cfg, "augur-whatif"); err != nil {
			return fmt.Errorf("-http-config %s: %w", *httpConfig, err)
		}
	}
	prom, err := whatif.NewPrometheus(*promURL, rt)
	if err != nil {
		return err
	}
	prom.Timeout = *timeout
	rep, err := whatif.Run(ctx, prom, set, whatif.Options{
		From: from, To: to, Step: *step, MaxSeries: *maxSeries,
		Scaling:  whatif.ScalingOptions{PodStart: *podStart, Warmup: *warmup},
		Progress: newProgress(os.Stderr),
	})
	if err != nil {
		return err
	}
	if err := rep.Write(*out); err != nil {
		return err
	}
	failed := 0
	for _, r := range rep.Rules {
		switch {
		case r.Error != "":
			failed++
			fmt.Fprintf(stdout, "%-24s %s\n", r.Name, r.Error)
		case r.Augur != nil:
			fmt.Fprintf(stdout, "%-24s under-provisioned minutes %.0f (%s %.0f), pod-hours %.1f (%.1f), reversals %d (%d); forecast MASE %.2f, 80%% coverage %.0f%%\n",
				r.Name, r.Augur.UnderProvisionedMinutes, r.Baseline.Kind, r.Baseline.UnderProvisionedMinutes, r.Augur.PodHours, r.Baseline.PodHours,
				r.Augur.Reversals, r.Baseline.Reversals, r.Forecast.MASE, 100*r.Forecast.Coverage80)
		default:
			fmt.Fprintf(stdout, "%-24s %d decisions %v\n", r.Name, totalDecisions(r.DecisionCounts), r.DecisionCounts)
		}
		for _, g := range r.Gaps {
			fmt.Fprintf(stdout, "%-24s gap: no samples from %s to %s\n", "", g.From.Format(time.RFC3339), g.To.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(*out, "report.html"))
	log.Info("whatif done", "rules", len(rep.Rules), "failed", failed, "out", *out)
	if failed == len(rep.Rules) {
		return errors.New("no rule could be replayed")
	}
	return nil
}

func totalDecisions(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// parseWhen reads a time flag: empty is ref, a duration is that long
// before ref, otherwise a time as anomaly.ParseTimestamp reads CSV ones
// (RFC 3339, or unix seconds or milliseconds).
func parseWhen(s string, ref time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ref, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration before the end must be positive", s)
		}
		return ref.Add(-d), nil
	}
	ms, err := anomaly.ParseTimestamp(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a duration (72h), an RFC 3339 time or unix seconds", s)
	}
	return time.UnixMilli(ms), nil
}

// newProgress reports progress on w: a bar redrawn in place on a
// terminal, a line per phase otherwise.
func newProgress(w *os.File) func(rule, phase string, done float64) {
	fi, err := w.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	last := ""
	return func(rule, phase string, done float64) {
		if !tty {
			// A line per phase; reading is reported once it is done.
			if phase == "reading" && done < 1 {
				return
			}
			if k := rule + " " + phase; k != last {
				last = k
				fmt.Fprintf(w, "whatif: %s: %s\n", rule, phase)
			}
			return
		}
		const width = 30
		n := int(done * width)
		fmt.Fprintf(w, "\r%-24.24s %-9s [%s%s] %3.0f%%", rule, phase, strings.Repeat("#", n), strings.Repeat(" ", width-n), 100*done)
		if phase == "done" {
			fmt.Fprintln(w)
		}
	}
}
