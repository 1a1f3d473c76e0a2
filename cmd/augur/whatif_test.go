package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/testca"
	"github.com/augur-ops/augur/internal/whatif"
	"github.com/augur-ops/augur/stream"
)

// whatifHistory is the history TestWhatifOnPrometheus loads into
// Prometheus: the demo's two days of crane load as a counter scraped every
// 15 s, a queue-depth gauge with one burst and a 40-minute hole, and a
// Deployment's replicas as kube-state-metrics reports them.
type whatifHistory struct {
	trace    []whatif.Point
	capacity float64 // per pod at 100%, as bench/scalesim sizes it
	burst    int64   // unix ms of the queue's burst
	hole     [2]int64
	fault    int64 // unix ms when zone use1-az2 starts failing 10% of requests (for 10 minutes)
}

func newWhatifHistory(t *testing.T) *whatifHistory {
	t.Helper()
	rows, err := readGzipCSV(demoTrace)
	if err != nil {
		t.Fatal(err)
	}
	h := &whatifHistory{}
	var vals []float64
	for _, r := range rows[1:] {
		ts, err1 := strconv.ParseInt(r[0], 10, 64)
		v, err2 := strconv.ParseFloat(r[1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("demo trace row %q", r)
		}
		h.trace = append(h.trace, whatif.Point{Ts: ts * 1000, Value: v})
		vals = append(vals, v)
	}
	slices.Sort(vals)
	h.capacity = vals[len(vals)*9/10] / 10 // bench/scalesim's -pods-at-p90 10
	t0 := h.trace[0].Ts
	h.burst = t0 + 30*3600_000
	h.hole = [2]int64{t0 + 20*3600_000, t0 + 20*3600_000 + 40*60_000}
	h.fault = t0 + 36*3600_000
	return h
}

// openMetrics writes the history as OpenMetrics text for promtool.
func (h *whatifHistory) openMetrics(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	sec := func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64) }
	ts, vs := whatif.CounterFromTrace(h.trace, 15*time.Second)
	fmt.Fprintln(w, "# TYPE requests counter")
	for i := range ts {
		fmt.Fprintf(w, "requests_total{namespace=\"shop\"} %s %s\n", num(vs[i]), sec(ts[i]))
	}
	fmt.Fprintln(w, "# TYPE queue_depth gauge")
	for i, t := range ts {
		if t >= h.hole[0] && t < h.hole[1] {
			continue
		}
		v := 20 + 3*math.Sin(float64(i)/7) + float64(i%5)*0.3
		if t >= h.burst && t < h.burst+60_000 {
			v = 400
		}
		fmt.Fprintf(w, "queue_depth{namespace=\"shop\"} %s %s\n", num(v), sec(t))
	}
	// A web service in three zones, three instances each, scraped every
	// 15 s: 6000 requests per scrape and instance, 0.1% errors, 10% in
	// use1-az2 for ten minutes from the fault.
	fmt.Fprintln(w, "# TYPE http_requests counter")
	if len(ts) > 0 {
		for z := range 3 {
			for i := range 3 {
				for _, code := range []string{"200", "500"} {
					c := 0.0
					for _, t := range ts {
						fmt.Fprintf(w, "http_requests_total{code=\"%s\",instance=\"10.0.%d.%d:8080\",service=\"web\",zone=\"use1-az%d\"} %s %s\n",
							code, z, i, z+1, num(c), sec(t))
						errs := 6.0
						if z == 1 && t >= h.fault && t < h.fault+10*60_000 {
							errs = 600
						}
						if code == "200" {
							c += 6000 - errs
						} else {
							c += errs
						}
					}
				}
			}
		}
	}
	fmt.Fprintln(w, "# TYPE kube_deployment_spec_replicas gauge")
	for i, t := range ts {
		if i%4 == 0 {
			fmt.Fprintf(w, "kube_deployment_spec_replicas{namespace=\"shop\",deployment=\"web-actual\"} 14 %s\n", sec(t))
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// startPromWithHistory backfills the OpenMetrics file with promtool and
// serves it with Prometheus; it returns Prometheus' base URL. web, when
// not empty, is Prometheus' web configuration (TLS, basic auth): it is
// then served over HTTPS and checked ready with client.
func startPromWithHistory(t *testing.T, om, web string, client *http.Client) string {
	t.Helper()
	promBin := needBinary(t, "prometheus", "apt-get install prometheus")
	promtool := needBinary(t, "promtool", "apt-get install prometheus")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v: %s", err, tailString(string(out), 2000))
	}
	writeFile(t, filepath.Join(dir, "prometheus.yml"), "global: {}\n")
	listen := freePort(t)
	args := []string{"--config.file=" + filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path=" + data,
		"--storage.tsdb.retention.time=36500d", "--web.listen-address=" + listen}
	url := "http://" + listen
	if web != "" {
		writeFile(t, filepath.Join(dir, "web.yml"), web)
		args = append(args, "--web.config.file="+filepath.Join(dir, "web.yml"))
		url = "https://" + listen
	} else {
		client = http.DefaultClient
	}
	runProm(t, promBin, dir, args...)
	waitFor(t, time.Minute, "Prometheus ready", func() (bool, string) {
		resp, err := client.Get(url + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, string(b)
	})
	return url
}

// TestWhatifOnPrometheus runs augur whatif against a real Prometheus
// holding two days of backfilled history: the scaling rule's numbers equal
// bench/scalesim's on the same trace and settings, the baseline is the
// workload's actual replicas when kube-state-metrics has them, the
// anomaly rule's alert fires at the burst and the hole is reported, the
// gray-failure rule shifts away from the failing zone within a minute, a
// selector matching nothing is reported without ending the run, and the
// report opens in headless Chromium with its charts.
func TestWhatifOnPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus, bench/scalesim and Chromium")
	}
	h := newWhatifHistory(t)
	dir := t.TempDir()
	om := filepath.Join(dir, "history.om")
	h.openMetrics(t, om)
	prom := startPromWithHistory(t, om, "", nil)

	// The rule bench/scalesim replays a 1-minute trace under: window one
	// step, horizon step + pod start rounded up (3m), 2..1000 replicas,
	// a pod serving the trace's p90 / 10 at 100%.
	cpp := strconv.FormatFloat(h.capacity*whatif.HPATarget, 'g', -1, 64)
	rulesFile := filepath.Join(dir, "rules.yaml")
	scalingRule := func(name, target string) string {
		return `- name: ` + name + `
  scaling:
    selector: requests_total{namespace="shop"}
    capacity_per_pod: ` + cpp + `
    window: 1m
    horizon: 3m
    min_replicas: 2
    max_replicas: 1000
    target: {namespace: shop, name: ` + target + `}
`
	}
	writeFile(t, rulesFile, "rules:\n"+scalingRule("shop", "web")+scalingRule("web-actual", "web-actual")+`- name: queue
  anomaly:
    selector: queue_depth{namespace="shop"}
- name: nothing
  anomaly:
    selector: no_such_metric{namespace="shop"}
- name: web-zones
  gray_failure:
    selector: http_requests_total{service="web"}
    zone_label: zone
    resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1
    window: 15s
`)
	from := time.UnixMilli(h.trace[0].Ts).UTC().Format(time.RFC3339)
	to := time.UnixMilli(h.trace[len(h.trace)-1].Ts).UTC().Format(time.RFC3339)
	out := filepath.Join(dir, "report")
	var stdout, stderr strings.Builder
	// -step 5m, longer than the 15-s scrape interval, gives way to it
	// (decisions a step late, and larger queries, otherwise).
	code := runMain(t.Context(), []string{"whatif", "-prometheus", prom, "-rules", rulesFile, "-from", from, "-to", to,
		"-out", out, "-warmup", "24h", "-pod-start", "90s", "-step", "5m"}, &stdout, &stderr, slog.New(slog.DiscardHandler))
	t.Logf("augur whatif:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("augur whatif exited %d: %s", code, stderr.String())
	}
	var rep struct {
		Rules []struct {
			Name     string         `json:"name"`
			Error    string         `json:"error"`
			Series   int            `json:"series"`
			Step     float64        `json:"step_seconds"`
			Augur    whatif.Outcome `json:"augur"`
			Baseline struct {
				Kind string `json:"kind"`
				whatif.Outcome
			} `json:"baseline"`
			Forecast  whatif.ForecastScore `json:"forecast"`
			Gaps      []whatif.Gap         `json:"gaps"`
			Decisions []whatif.DecisionRow `json:"decisions"`
		} `json:"rules"`
	}
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if len(rep.Rules) != 5 {
		t.Fatalf("report has %d rules, want 5: %s", len(rep.Rules), tailString(string(b), 2000))
	}
	shop, actual, queue, nothing, zones := rep.Rules[0], rep.Rules[1], rep.Rules[2], rep.Rules[3], rep.Rules[4]

	// bench/scalesim on the same trace and settings.
	data := filepath.Join(dir, "data", "traces", "crane")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "shop.csv.gz"), demoTrace, 0o600); err != nil {
		t.Fatal(err)
	}
	sim := exec.CommandContext(t.Context(), "go", "run", "github.com/augur-ops/augur/bench/scalesim", "-data", filepath.Join(dir, "data"), "-pod-start", "90s")
	simOut, err := sim.CombinedOutput()
	if err != nil {
		t.Fatalf("bench/scalesim: %v: %s", err, simOut)
	}
	var row []string
	for _, l := range strings.Split(string(simOut), "\n") {
		if strings.HasPrefix(l, "| shop |") {
			row = strings.Split(l, "|")
		}
	}
	if len(row) < 11 {
		t.Fatalf("bench/scalesim printed no row for the trace:\n%s", simOut)
	}
	cell := func(i int) string { return strings.TrimSpace(row[i]) }
	if shop.Error != "" || shop.Baseline.Kind != whatif.BaselineSimulatedHPA {
		t.Fatalf("shop: error %q, baseline %q", shop.Error, shop.Baseline.Kind)
	}
	got := []string{fmt.Sprintf("%.0f", shop.Baseline.UnderProvisionedMinutes), fmt.Sprintf("%.0f", shop.Augur.UnderProvisionedMinutes),
		fmt.Sprintf("%.1f", shop.Baseline.PodHours), fmt.Sprintf("%.1f", shop.Augur.PodHours),
		fmt.Sprintf("%d / %d", shop.Baseline.Reversals, shop.Augur.Reversals)}
	want := []string{cell(4), cell(5), cell(6), cell(7), cell(10)}
	if !slices.Equal(got, want) {
		t.Errorf("whatif (HPA under-prov., augur under-prov., HPA pod-h, augur pod-h, reversals) = %q, bench/scalesim %q", got, want)
	}
	if shop.Step != 15 || shop.Series != 1 {
		t.Errorf("shop: step %v s, %d series; want the 15 s scrape interval estimated (over -step 5m), 1 series", shop.Step, shop.Series)
	}
	if shop.Augur.PodHours == 0 || shop.Forecast.Scored == 0 || !(shop.Forecast.MASE > 0) || !(shop.Forecast.Coverage80 > 0) {
		t.Errorf("shop: augur %+v, forecast %+v: want pods and a scored forecast", shop.Augur, shop.Forecast)
	}
	scaled := 0
	for _, d := range shop.Decisions {
		if d.Kind == "scale" {
			scaled++
		}
	}
	if scaled == 0 {
		t.Error("shop: no scale decision listed")
	}

	if actual.Baseline.Kind != whatif.BaselineActual {
		t.Errorf("web-actual: baseline %q, want the replicas kube-state-metrics reported", actual.Baseline.Kind)
	} else if hrs := float64(h.trace[len(h.trace)-1].Ts-h.trace[0].Ts)/3600_000 - 24; math.Abs(actual.Baseline.PodHours-14*hrs) > 14*0.01*hrs {
		t.Errorf("web-actual: baseline %.1f pod-hours, want 14 pods over the %.1f scored hours", actual.Baseline.PodHours, hrs)
	}

	var alertAt []time.Time
	for _, d := range queue.Decisions {
		if d.Kind == "alert" {
			alertAt = append(alertAt, d.Time)
		}
	}
	burst := time.UnixMilli(h.burst)
	if len(alertAt) == 0 || !slices.ContainsFunc(alertAt, func(at time.Time) bool { return !at.Before(burst) && at.Sub(burst) <= 2*time.Minute }) {
		t.Errorf("queue: alerts at %v, want one within 2 minutes of the burst at %v", alertAt, burst.UTC())
	}
	holeFound := slices.ContainsFunc(queue.Gaps, func(g whatif.Gap) bool {
		return !g.From.After(time.UnixMilli(h.hole[0])) && !g.To.Before(time.UnixMilli(h.hole[1]))
	})
	if !holeFound {
		t.Errorf("queue: gaps %v, want the hole %v..%v", queue.Gaps, time.UnixMilli(h.hole[0]).UTC(), time.UnixMilli(h.hole[1]).UTC())
	}
	// The zonal fault: a shift away from use1-az2 within a minute of its
	// start, and no shift of any other zone.
	fault := time.UnixMilli(h.fault)
	var shifts []whatif.DecisionRow
	for _, d := range zones.Decisions {
		if d.Kind == "zonal_shift" {
			shifts = append(shifts, d)
		}
	}
	if len(shifts) == 0 || shifts[0].Time.Before(fault) || shifts[0].Time.Sub(fault) > time.Minute || !strings.Contains(shifts[0].Summary, "use1-az2") {
		t.Errorf("web-zones: zonal shifts %v, want the first away from use1-az2 within a minute of the fault at %v", shifts, fault.UTC())
	}
	for _, d := range shifts {
		if !strings.Contains(d.Summary, "use1-az2") {
			t.Errorf("web-zones: a shift of another zone: %s", d.Summary)
		}
	}
	if !strings.Contains(nothing.Error, "matches no series") {
		t.Errorf("nothing: error %q, want the selector reported as matching nothing", nothing.Error)
	}

	// What a person sees.
	browser := needBinary(t, "chromium", ".ci/setup.sh installs it (apt-get install chromium)")
	page := "file://" + filepath.Join(out, "report.html")
	dom := headless(t, browser, page, "--dump-dom")
	for _, want := range []string{"shop: load and forecast", "shop: replicas", "pods, augur", "pods, simulated HPA", "pods, actual replicas",
		">80% band<", "matches no series", "Alerts, zonal shifts and node actions"} {
		if !strings.Contains(dom, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	if n := strings.Count(dom, "<svg"); n < 4 {
		t.Errorf("report page has %d charts, want 4 (two per scaling rule)", n)
	}
	shot := filepath.Join(artifactsDir(t), "whatif-report.png")
	headless(t, browser, page, "--window-size=1100,1500", "--screenshot="+shot)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v (%v)", shot, st, err)
	}
	t.Logf("screenshot of the report: %s", shot)
}

// TestWhatifBadInput shows the errors a user gets: a bad flag value or an
// unreachable Prometheus ends the run naming it; a rule with less history than it
// needs is reported and, when no rule could be replayed, the exit code
// says so.
func TestWhatifBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	dir := t.TempDir()
	rulesFile := whatifRulesFile(t, dir)
	run := func(args ...string) (int, string) {
		var stdout, stderr strings.Builder
		code := runMain(t.Context(), append([]string{"whatif", "-rules", rulesFile, "-out", filepath.Join(dir, "out")}, args...), &stdout, &stderr, slog.New(slog.DiscardHandler))
		return code, stdout.String() + stderr.String()
	}
	closed := freePort(t) // nothing listens there
	// Bad flag values end the run naming the flag, before Prometheus is
	// read (a -step of -15s became a range selector Prometheus refused
	// with a parse error naming neither; a -pod-start of 0 was taken as
	// the default without a word).
	for _, c := range [][2]string{{"-step", "-15s"}, {"-pod-start", "-1m30s"}, {"-pod-start", "0s"}, {"-warmup", "-1h0m0s"}, {"-timeout", "0s"}, {"-max-series", "0"}} {
		if code, msg := run("-prometheus", "http://"+closed, c[0], c[1]); code == 0 || !strings.Contains(msg, c[0]+" "+c[1]+": must") {
			t.Errorf("%s %s: exit %d, %q; want an error naming the flag and its value", c[0], c[1], code, msg)
		}
	}
	code, msg := run("-prometheus", "http://"+closed)
	if code == 0 || !strings.Contains(msg, "prometheus http://"+closed+" unreachable") {
		t.Errorf("unreachable Prometheus: exit %d, %q", code, msg)
	}
	code, msg = run("-prometheus", "ftp://x")
	if code == 0 || !strings.Contains(msg, "want an http:// or https:// URL") {
		t.Errorf("bad URL: exit %d, %q", code, msg)
	}

	h := newWhatifHistory(t)
	h.trace = h.trace[:20] // 20 minutes of history
	om := filepath.Join(dir, "history.om")
	h.openMetrics(t, om)
	prom := startPromWithHistory(t, om, "", nil)
	from := time.UnixMilli(h.trace[0].Ts).UTC().Format(time.RFC3339)
	to := time.UnixMilli(h.trace[0].Ts).Add(4 * time.Minute).UTC().Format(time.RFC3339)
	code, msg = run("-prometheus", prom, "-from", from, "-to", to)
	if code == 0 || !strings.Contains(msg, "needs at least 6m0s of history, Prometheus has 4m0s") || !strings.Contains(msg, "no rule could be replayed") {
		t.Errorf("4 minutes of history for a 5m horizon: exit %d, %q", code, msg)
	}
}

// TestWhatifOverTLSWithBasicAuth reads a Prometheus served over HTTPS with
// basic auth (its --web.config.file), with Prometheus' own client settings
// in -http-config: a CA file and a password file. Without them, or with a
// wrong password, the run ends naming what failed.
func TestWhatifOverTLSWithBasicAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	dir := t.TempDir()
	ca := testca.New(t, "prometheus")
	// bcrypt of "whatif-secret", cost 4.
	const hash = "$2a$04$sbPwBTR9FRcJEw632Rokye6/h43h4A4ykWisQHsteunDbvhhwP9q."
	web := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  augur: %s\n", ca.ServerCertFile, ca.ServerKeyFile, hash)
	client := &http.Client{Transport: basicAuth{"augur", "whatif-secret",
		&http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}}
	h := newWhatifHistory(t)
	h.trace = h.trace[:120] // two hours
	om := filepath.Join(dir, "history.om")
	h.openMetrics(t, om)
	prom := startPromWithHistory(t, om, web, client)

	rulesFile := filepath.Join(dir, "rules.yaml")
	writeFile(t, rulesFile, `rules:
- name: shop
  scaling:
    selector: requests_total{namespace="shop"}
    capacity_per_pod: 10
    window: 1m
    min_replicas: 2
    max_replicas: 50
    target: {namespace: shop, name: web}
`)
	pw := filepath.Join(dir, "password")
	writeFile(t, pw, "whatif-secret\n")
	httpConfig := func(password string) string {
		f := password + ".http.yml"
		writeFile(t, f, fmt.Sprintf("basic_auth:\n  username: augur\n  password_file: %s\ntls_config:\n  ca_file: %s\n", password, ca.File))
		return f
	}
	from := time.UnixMilli(h.trace[0].Ts).UTC().Format(time.RFC3339)
	to := time.UnixMilli(h.trace[len(h.trace)-1].Ts).UTC().Format(time.RFC3339)
	run := func(args ...string) (int, string) {
		var stdout, stderr strings.Builder
		code := runMain(t.Context(), append([]string{"whatif", "-prometheus", prom, "-rules", rulesFile, "-from", from, "-to", to,
			"-out", filepath.Join(dir, "out")}, args...), &stdout, &stderr, slog.New(slog.DiscardHandler))
		return code, stdout.String() + stderr.String()
	}
	if code, msg := run("-http-config", httpConfig(pw)); code != 0 || !strings.Contains(msg, "under-provisioned minutes") {
		t.Fatalf("over TLS with basic auth: exit %d: %s", code, msg)
	}
	code, msg := run()
	t.Logf("without the CA: %s", msg)
	if code == 0 || !strings.Contains(msg, "TLS: tls: failed to verify certificate: x509: certificate signed by unknown authority") {
		t.Errorf("without the CA: exit %d: %s", code, msg)
	}
	wrong := filepath.Join(dir, "wrong")
	writeFile(t, wrong, "not-it\n")
	code, msg = run("-http-config", httpConfig(wrong))
	t.Logf("a wrong password: %s", msg)
	if code == 0 || !strings.Contains(msg, "not authorised (client error: 401)") {
		t.Errorf("a wrong password: exit %d: %s", code, msg)
	}
}

// basicAuth adds basic auth to every request.
type basicAuth struct {
	user, password string
	next           http.RoundTripper
}

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.password)
	return b.next.RoundTrip(r)
}

// TestParseWhen reads -from and -to: a duration before the end, an RFC 3339
// time, unix seconds; anything else is an error naming the forms.
func TestParseWhen(t *testing.T) {
	ref := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"", ref},
		{"72h", ref.Add(-72 * time.Hour)},
		{"2021-08-11T00:00:00Z", time.Date(2021, 8, 11, 0, 0, 0, 0, time.UTC)},
		{"1628640000", time.Date(2021, 8, 11, 0, 0, 0, 0, time.UTC)},
	} {
		if got, err := parseWhen(c.in, ref); err != nil || !got.Equal(c.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"-3h", "yesterday"} {
		if _, err := parseWhen(bad, ref); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
}

// TestReplayDropsWhatIngestRefuses: augur whatif's replay drops a sample
// as too far in the future exactly where augur ingest, with its default
// limits, refuses it. The stream does not import the receiver, so the two
// limits meet here.
func TestReplayDropsWhatIngestRefuses(t *testing.T) {
	var c ingest.Config
	_ = c.Validate() // fills the defaults; the zero config's other errors do not matter here
	if c.Limits.MaxFutureSkew != stream.ReplayMaxFutureSkew {
		t.Fatalf("augur ingest refuses samples %v ahead by default, whatif's replay %v", c.Limits.MaxFutureSkew, stream.ReplayMaxFutureSkew)
	}
}
