package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// prometheusBinary returns the Prometheus executable: $AUGUR_PROMETHEUS when
// set, else `prometheus` on PATH. Missing, the test skips locally and fails
// on CI (CI=true), where .ci/run installs Debian's package.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Prometheus; skipped in -short mode")
	}
	bin := os.Getenv("AUGUR_PROMETHEUS")
	if bin == "" {
		bin = "prometheus"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus binary not found (%v): CI must install it (.ci/run installs Debian's prometheus package)", err)
		}
		t.Skipf("prometheus binary not found (%v): install it (apt-get install prometheus) or set AUGUR_PROMETHEUS", err)
	}
	return path
}

// promConfig is what the Prometheus under test does: scrape itself and the
// targets of job "e2e" every second, remote-write everything to writeURL.
type promConfig struct {
	bin       string
	e2eTarget string // host:port of the exporter
	writeURL  string
}

// prom is a running Prometheus process.
type prom struct {
	addr    string // host:port of its web listener
	logPath string
	exited  chan struct{}
	waitErr error
	http    *http.Client
}

// Config of the Prometheus under test. remote_write flushes a batch at least
// every second and retries 5xx with short backoff, so the tests stay short;
// metadata goes out every 2s so that a test sees it.
const promConfigTemplate = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1m
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [%q]
  - job_name: e2e
    static_configs:
      - targets: [%q]
remote_write:
  - url: %q
    remote_timeout: 20s
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 2s
`

// startPrometheus starts Prometheus on a free loopback port with a fresh
// TSDB and waits until it is ready. The process is killed on cleanup; its
// log is printed when the test failed.
func startPrometheus(t *testing.T, cfg promConfig) *prom {
	t.Helper()
	var lastErr error
	// The free port is found by binding and releasing it; another process
	// may take it in between, so a failed start is tried again.
	for range 3 {
		p, err := tryStartPrometheus(t, cfg)
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

func tryStartPrometheus(t *testing.T, cfg promConfig) (*prom, error) {
	dir := t.TempDir()
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, promConfigTemplate, addr, cfg.e2eTarget, cfg.writeURL), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cfg.bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("exec %s: %w", cfg.bin, err)
	}
	p := &prom{addr: addr, logPath: logPath, exited: make(chan struct{}), http: &http.Client{Timeout: 10 * time.Second}}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-p.exited
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			p.dumpLog(t)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/-/ready", nil)
		resp, err := p.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("prometheus exited before ready (%w): %s", p.waitErr, tail(log, 2000))
		case <-ctx.Done():
			stop()
			return nil, errors.New("prometheus not ready within 30s")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *prom) dumpLog(t *testing.T) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Logf("prometheus log: %v", err)
		return
	}
	t.Logf("prometheus log (tail):\n%s", tail(b, 8000))
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// sample is one raw float sample: unix ms and the value's bits.
type sample struct {
	ts   int64
	bits uint64
}

// rawSamples asks Prometheus for every raw sample of the series matching
// selector with a timestamp in [at-10m, at], evaluated at the fixed time at
// (unix ms): a range-vector selector returns the stored samples unchanged
// (stale markers excluded). The result is keyed by seriesKey.
func (p *prom) rawSamples(ctx context.Context, selector string, at int64) (map[string][]sample, error) {
	q := url.Values{}
	q.Set("query", selector+"[10m]")
	q.Set("time", fmt.Sprintf("%d.%03d", at/1000, at%1000))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read query answer: %w", err)
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string    `json:"metric"`
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("decode query answer %q: %w", tail(body, 200), err)
	}
	if ans.Status != "success" || ans.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("query %s: status %q type %q error %q", selector, ans.Status, ans.Data.ResultType, ans.Error)
	}
	out := make(map[string][]sample, len(ans.Data.Result))
	for _, r := range ans.Data.Result {
		ss := make([]sample, 0, len(r.Values))
		for _, v := range r.Values {
			ts, err := parsePromTime(string(v[0]))
			if err != nil {
				return nil, err
			}
			var s string
			if err := json.Unmarshal(v[1], &s); err != nil {
				return nil, fmt.Errorf("sample value %s: %w", v[1], err)
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("sample value %q: %w", s, err)
			}
			ss = append(ss, sample{ts: ts, bits: floatBits(f)})
		}
		out[mapKey(r.Metric)] = ss
	}
	return out, nil
}

// parsePromTime turns the API's decimal seconds ("1700000000.5") into unix
// milliseconds without going through a float.
func parsePromTime(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	if len(frac) > 3 {
		return 0, fmt.Errorf("timestamp %q has more than millisecond precision", s)
	}
	frac += strings.Repeat("0", 3-len(frac))
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	ms, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return secs*1000 + ms, nil
}
