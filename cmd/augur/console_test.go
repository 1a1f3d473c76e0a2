package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConsoleInChromium runs `augur demo` and opens its console in
// headless Chromium (Debian's): the page, rendered by a real browser from
// the decisions API alone, shows the scale decisions with their outcome,
// the scaling rule's chart (load, forecast, 80% band, decisions, replicas
// recommended and decided), the zones of the gray-failure rule with the
// shifted zone, the tainted GPU node, the forecast accuracy, and it keeps
// refreshing itself. A second load shows decisions the first did not have.
func TestConsoleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts augur demo and Chromium")
	}
	browser := needBinary(t, "chromium", ".ci/setup.sh installs it (apt-get install chromium)")
	listen, broker := freePort(t), freePort(t)
	began := time.Now()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out syncBuffer
	// The data dir is made before the demo starts, so that its removal is
	// registered before the cleanup that stops the demo and runs after it:
	// made inside the goroutine, it could be removed while the demo's
	// broker still wrote to it, and be left behind in /tmp.
	dataDir := t.TempDir()
	go func() {
		done <- runMain(ctx, []string{"demo", "-listen", listen, "-kafka-addr", broker, "-history", "30m", "-data-dir", dataDir}, &out, io.Discard, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("augur demo exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("augur demo did not stop within 30s")
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "live samples") {
		if time.Now().After(deadline) {
			t.Fatalf("augur demo did not send its history within 90s: %q", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Within three minutes of the start the decisions API lists a scale
	// decision, a zonal shift and a taint, each with its audit record.
	for _, kind := range []string{"scale", "zonal_shift", "taint_node"} {
		waitFor(t, 3*time.Minute-time.Since(began), "a "+kind+" decision with its audit record on the decisions API", func() (bool, string) {
			body := scrape(t, "http://"+listen+"/api/v1/decisions?kind="+kind+"&limit=1000")
			return regexp.MustCompile(`"actions":\[\{[^\]]*"outcome":"`).MatchString(body), tailString(body, 600)
		})
	}
	// A scale-up made ahead of the load: for the upper bound of its
	// forecast, above the load of the window it was decided in.
	waitFor(t, 3*time.Minute-time.Since(began), "a scale-up decided for a forecast bound above the current load", func() (bool, string) {
		var resp struct {
			Decisions []struct {
				Decision struct {
					Summary  string `json:"summary"`
					Evidence struct {
						Upper    float64 `json:"upper"`
						Observed float64 `json:"observed"`
					} `json:"evidence"`
				} `json:"decision"`
			} `json:"decisions"`
		}
		body := scrape(t, "http://"+listen+"/api/v1/decisions?rule=shop-scaling&limit=1000")
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			return false, body
		}
		for _, d := range resp.Decisions {
			ev := d.Decision.Evidence
			if strings.Contains(d.Decision.Summary, " up to ") && strings.Contains(d.Decision.Summary, "(from ") && ev.Upper > 1.05*ev.Observed {
				return true, d.Decision.Summary
			}
		}
		return false, tailString(body, 600)
	})
	// And the straggler of the PAI job's replay.
	waitFor(t, 3*time.Minute-time.Since(began), "the straggler alert of the replayed PAI job", func() (bool, string) {
		body := scrape(t, "http://"+listen+"/api/v1/decisions?rule=training-gpus&kind=alert&limit=1000")
		return strings.Contains(body, "worker-6 in job train is a straggler"), tailString(body, 600)
	})
	t.Logf("scale, zonal_shift and taint_node decisions with their audit records, and the straggler alert, %v after augur demo started", time.Since(began).Round(time.Second))

	chromium := func(extra ...string) string { return headless(t, browser, "http://"+listen+"/", extra...) }
	dump := func() string { return chromium("--dump-dom") }
	first := dump()
	// What a person sees, saved: $AUGUR_TEST_ARTIFACTS (default
	// $TMPDIR/augur-test-artifacts)/console.png.
	shot := filepath.Join(artifactsDir(t), "console.png")
	chromium("--window-size=1400,1000", "--screenshot="+shot)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v (%v)", shot, st, err)
	}
	t.Logf("screenshot of the console: %s", shot)
	for _, want := range []string{
		`data-kind="scale"`,                          // the decision stream
		"scale k8s/deployment/demo/shop",             // a decision's summary
		`class="outcome dry_run"`,                    // with the actuator's outcome
		`data-rule="shop-scaling"`,                   // the scaling rule's chart
		`data-panel="load"`, `data-panel="replicas"`, // its two panels (gonum/plot SVG)
		">load<", ">forecast (at its target time)<", // actual and forecast series
		">80% band<", ">decision<", // band and decisions
		">replicas recommended<", ">replicas decided<", // replicas
		`data-zone="use1-az2"`,   // the zones table
		`data-node="gpu-node-2"`, // the GPU nodes
		`class="state-tainted"`,  // the sick GPU
		`accuracy (100% − MAPE)`, // accuracy per rule
	} {
		if !strings.Contains(first, want) {
			t.Errorf("console lacks %s", want)
		}
	}
	if strings.Contains(first, `data-zone="worker-`) {
		t.Error("the zones section lists the GPU job's workers")
	}
	m := regexp.MustCompile(`data-refreshes="(\d+)"`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("console never refreshed: %s", tailString(first, 3000))
	}
	if n, _ := strconv.Atoi(m[1]); n < 3 {
		t.Errorf("console refreshed %d times in 15s of page time, want it to keep polling (every 2s)", n)
	}
	newest := func(dom string) int64 {
		m := regexp.MustCompile(`data-newest-window="(\d+)"`).FindStringSubmatch(dom)
		if m == nil {
			return 0
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	time.Sleep(12 * time.Second) // a forecast point every 10 s window
	if a, b := newest(first), newest(dump()); a == 0 || b <= a {
		t.Errorf("newest forecast window %d on the first load, %d on a load 12s later: want a later one", a, b)
	}
	if t.Failed() {
		t.Logf("console DOM: %s", tailString(first, 6000))
	}
}
