// Package deploy holds augur's operator-facing files: the configs that
// docker-compose.yml mounts (deploy/augur, deploy/prometheus,
// deploy/grafana), the Grafana dashboards and the Kubernetes manifests. It
// has no Go code of its own; its tests keep the files honest: every metric
// a dashboard queries is registered by augur's code, every PromQL
// expression parses, every file compose mounts exists, and the augur
// configs and rules load with the code that reads them.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/recent"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// repoRoot is the module root, relative to this package's directory (the
// working directory of its tests).
const repoRoot = ".."

// metricToken finds augur's metric names in a PromQL expression.
var metricToken = regexp.MustCompile(`augur_[a-zA-Z0-9_:]+`)

// registeredLiteral finds metric names in Go source: a string literal that
// is exactly an augur_ name. Metrics are registered with their full name in
// one literal (no Namespace/Subsystem parts), which this relies on.
var registeredLiteral = regexp.MustCompile(`"(augur_[a-z0-9_]+)"`)

// registeredMetrics scans the non-test Go files of the module for
// registered metric names.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	goSources(t, func(_ string, b []byte) {
		for _, m := range registeredLiteral.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
	})
	// The scan must find the metrics of every component, or the check
	// below would pass for the wrong reason.
	for _, want := range []string{"augur_ingest_requests_total", "augur_stream_decisions_total", "augur_actuator_actions_total"} {
		if !names[want] {
			t.Fatalf("scan of Go source found no %s (found %d names): the scan is broken", want, len(names))
		}
	}
	return names
}

// goSources calls fn with the path and contents of every non-test Go file
// of the module.
func goSources(t *testing.T, fn func(path string, b []byte)) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != repoRoot && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			fn(path, b)
		}
		return err
	})
	if err != nil {
		t.Fatalf("scan Go source: %v", err)
	}
}

// unregistered returns the augur_ metric names in expr that are not in
// registered, after stripping the _bucket, _sum and _count suffixes a
// histogram or summary adds.
func unregistered(expr string, registered map[string]bool) []string {
	var missing []string
	for _, tok := range metricToken.FindAllString(expr, -1) {
		name := tok
		if !registered[name] {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if s, ok := strings.CutSuffix(name, suffix); ok && registered[s] {
					name = s
					break
				}
			}
		}
		if !registered[name] && !slices.Contains(missing, tok) {
			missing = append(missing, tok)
		}
	}
	return missing
}

func TestUnregistered(t *testing.T) {
	reg := map[string]bool{"augur_a_total": true, "augur_h_seconds": true}
	tests := []struct {
		expr string
		want []string
	}{
		{`rate(augur_a_total[5m])`, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(augur_h_seconds_bucket[5m])))`, nil},
		{`rate(augur_h_seconds_sum[5m]) / rate(augur_h_seconds_count[5m])`, nil},
		{`rate(augur_missing_total[5m])`, []string{"augur_missing_total"}},
		{`augur_a_bucket`, []string{"augur_a_bucket"}},
		{`augur_h_seconds_bucket_count`, []string{"augur_h_seconds_bucket_count"}},
		{`sum(augur_nope) + sum(augur_nope) + augur_a_total`, []string{"augur_nope"}},
		{`up{job="augur"}`, nil},
	}
	for _, tt := range tests {
		if got := unregistered(tt.expr, reg); !slices.Equal(got, tt.want) {
			t.Errorf("unregistered(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// dashboard is the part of a Grafana dashboard JSON the tests read.
type dashboard struct {
	UID         string  `json:"uid"`
	Title       string  `json:"title"`
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []struct {
			Name       string    `json:"name"`
			Datasource apiSource `json:"datasource"`
			Target     apiQuery  `json:"target"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string    `json:"expr"`
		RefID      string    `json:"refId"`
		Datasource apiSource `json:"datasource"`
		apiQuery
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("grafana", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards in grafana/dashboards")
	}
	out := map[string]dashboard{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// allPanels flattens rows (collapsed rows nest their panels).
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

var grafanaVar = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// expand replaces Grafana's variables in expr the way Grafana would, with
// a value that keeps the expression parseable: interval macros become 5m,
// textbox variables their default, every other variable ".*" (they are
// used in regex matchers).
func expand(expr string, textbox map[string]string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		switch {
		case strings.HasPrefix(name, "__"):
			return "5m"
		case textbox[name] != "":
			return textbox[name]
		default:
			return ".*"
		}
	})
}

func TestDashboards(t *testing.T) {
	registered := registeredMetrics(t)
	dashboards := loadDashboards(t)
	p := parser.NewParser(parser.Options{})
	uids := map[string]string{}
	names := make([]string, 0, len(dashboards))
	for n := range dashboards {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, file := range names {
		d := dashboards[file]
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid and title are required", file)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s: uid %q already used by %s", file, d.UID, other)
		}
		uids[d.UID] = file
		textbox := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Type == "textbox" {
				s, _ := v.Query.(string)
				textbox[v.Name] = s
			}
			// Query variables may name metrics too.
			var q string
			switch x := v.Query.(type) {
			case string:
				q = x
			case map[string]any:
				q, _ = x["query"].(string)
			}
			if missing := unregistered(q, registered); len(missing) > 0 {
				t.Errorf("%s: variable %s uses %v, which no Go code registers", file, v.Name, missing)
			}
		}
		exprs, ids := 0, map[int]bool{}
		for _, pn := range allPanels(d.Panels) {
			if ids[pn.ID] {
				t.Errorf("%s: panel id %d used twice", file, pn.ID)
			}
			ids[pn.ID] = true
			if pn.GridPos.W <= 0 || pn.GridPos.X+pn.GridPos.W > 24 || pn.GridPos.H <= 0 {
				t.Errorf("%s: panel %q: gridPos %+v outside the 24-column grid", file, pn.Title, pn.GridPos)
			}
			switch pn.Type {
			case "row", "text":
				continue
			}
			if len(pn.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", file, pn.Title)
			}
			refs := map[string]bool{}
			for _, tg := range pn.Targets {
				exprs++
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: panel %q: refId %q missing or repeated", file, pn.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				if tg.Datasource.Type == infinity {
					checkAPIQuery(t, file, pn.Title, tg.Datasource.UID, tg.apiQuery)
					continue
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q: empty expr", file, pn.Title)
					continue
				}
				e := expand(tg.Expr, textbox)
				if _, err := p.ParseExpr(e); err != nil {
					t.Errorf("%s: panel %q: PromQL %q (expanded %q): %v", file, pn.Title, tg.Expr, e, err)
				}
				if missing := unregistered(e, registered); len(missing) > 0 {
					t.Errorf("%s: panel %q uses %v, which no Go code registers (expr %q)", file, pn.Title, missing, tg.Expr)
				}
			}
		}
		if exprs == 0 {
			t.Errorf("%s: no PromQL at all", file)
		}
		for _, a := range d.Annotations.List {
			if a.Datasource.Type == infinity {
				checkAPIQuery(t, file, "annotation "+a.Name, a.Datasource.UID, a.Target)
			}
		}
	}
	for _, uid := range []string{"augur-pipeline", "augur-decisions", "augur-remediation"} {
		if _, ok := uids[uid]; !ok {
			t.Errorf("dashboard %s is missing", uid)
		}
	}
}

// compose is the part of docker-compose.yml the tests read.
type compose struct {
	Services map[string]struct {
		Image     string `yaml:"image"`
		Hostname  string `yaml:"hostname"`
		Command   any    `yaml:"command"`
		DependsOn any    `yaml:"depends_on"`
		Volumes   []any  `yaml:"volumes"`
		Build     *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// mount is one entry of a service's volumes.
type mount struct{ source, target string }

func parseMount(v any) (mount, error) {
	switch x := v.(type) {
	case string:
		parts := strings.Split(x, ":")
		if len(parts) < 2 {
			return mount{}, fmt.Errorf("volume %q: want source:target[:mode]", x)
		}
		return mount{source: parts[0], target: parts[1]}, nil
	case map[string]any:
		s, _ := x["source"].(string)
		tg, _ := x["target"].(string)
		return mount{source: s, target: tg}, nil
	}
	return mount{}, fmt.Errorf("volume %v: unknown syntax", v)
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// composeMounts maps the container path of every file or directory of
// the repository a service mounts to its path in the repository.
func composeMounts(t *testing.T, c compose, service string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range c.Services[service].Volumes {
		m, err := parseMount(v)
		if err != nil {
			t.Fatalf("service %s: %v", service, err)
		}
		if strings.HasPrefix(m.source, ".") {
			out[m.target] = filepath.Join(repoRoot, m.source)
		}
	}
	return out
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, s := range []string{"kafka", "augur", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s is missing", s)
		}
	}
	if img := c.Services["kafka"].Image; !strings.HasPrefix(img, "apache/kafka:") {
		t.Errorf("kafka image %q: want apache/kafka", img)
	}
	bindMounts := 0
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			m, err := parseMount(v)
			if err != nil {
				t.Errorf("service %s: %v", name, err)
				continue
			}
			switch {
			case strings.HasPrefix(m.source, "."):
				bindMounts++
				if _, err := os.Stat(filepath.Join(repoRoot, m.source)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, m.source, err)
				}
			case strings.HasPrefix(m.source, "/"):
				// Host paths (node-exporter's /proc and /sys).
			default:
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("service %s: named volume %q is not declared", name, m.source)
				}
			}
		}
		var deps []string
		switch x := s.DependsOn.(type) {
		case []any:
			for _, d := range x {
				deps = append(deps, fmt.Sprint(d))
			}
		case map[string]any:
			for d := range x {
				deps = append(deps, d)
			}
		}
		for _, d := range deps {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, d)
			}
		}
		if s.Build != nil {
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Stat(filepath.Join(repoRoot, s.Build.Context, df)); err != nil {
				t.Errorf("service %s builds from %s: %v", name, df, err)
			}
		}
	}
	if bindMounts < 5 {
		t.Errorf("found %d bind mounts of repository files, want the augur, Prometheus and Grafana ones", bindMounts)
	}
}

// augurConfig mirrors the YAML of cmd/augur's fileConfig (package main
// cannot be imported). Decoded with KnownFields, so a field renamed there
// and not here, or misspelt in a config file, fails the test.
type augurConfig struct {
	Listen string `yaml:"listen"`
	TLS    struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	DataDir string `yaml:"data_dir"`
	Kafka   struct {
		Brokers      []string `yaml:"brokers"`
		EmbeddedAddr string   `yaml:"embedded_addr"`
		Partitions   int32    `yaml:"partitions"`
		Replication  int16    `yaml:"replication"`
	} `yaml:"kafka"`
	RulesFile       string        `yaml:"rules_file"`
	DecisionKeyFile string        `yaml:"decision_key_file"`
	Ingest          ingest.Config `yaml:"ingest"`
	Act             struct {
		actuators.Config `yaml:",inline"`
		Kubeconfig       string `yaml:"kubeconfig"`
	} `yaml:"act"`
}

// checkAugurConfig decodes an augur config file strictly and validates
// what can be validated outside cmd/augur.
func checkAugurConfig(t *testing.T, name string, b []byte) augurConfig {
	t.Helper()
	var c augurConfig
	c.Kafka.Partitions = 8 // the default of cmd/augur
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("%s: %v", name, err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		t.Errorf("%s: listen %q: %v", name, c.Listen, err)
	}
	switch c.Act.Mode {
	case "", "off", "dry-run", "enforce":
	default:
		t.Errorf("%s: act.mode %q: want off, dry-run or enforce", name, c.Act.Mode)
	}
	ic := c.Ingest
	ic.Partitions = c.Kafka.Partitions
	if err := ic.Validate(); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return c
}

func checkRules(t *testing.T, name string, b []byte) {
	t.Helper()
	rs, err := rules.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if rs.Len() == 0 {
		t.Errorf("%s: no rules", name)
	}
}

func TestComposeAugurConfig(t *testing.T) {
	c := loadCompose(t)
	mounts := composeMounts(t, c, "augur")
	var cfgPath string
	for target, src := range mounts {
		if strings.HasSuffix(target, "config.yaml") {
			cfgPath = src
		}
	}
	if cfgPath == "" {
		t.Fatal("augur service mounts no config.yaml")
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := checkAugurConfig(t, cfgPath, b)

	// Kafka: a real broker, the compose service.
	if len(cfg.Kafka.Brokers) == 0 {
		t.Fatalf("%s: kafka.brokers is empty: augur would start its embedded broker", cfgPath)
	}
	for _, br := range cfg.Kafka.Brokers {
		host, _, err := net.SplitHostPort(br)
		if err != nil {
			t.Errorf("%s: broker %q: %v", cfgPath, br, err)
			continue
		}
		if _, ok := c.Services[host]; !ok {
			t.Errorf("%s: broker %q is not a compose service", cfgPath, br)
		}
	}
	// The rules file the config names is the one compose mounts there.
	rulesSrc, ok := mounts[cfg.RulesFile]
	if !ok {
		t.Fatalf("%s: rules_file %q is not mounted into the augur service", cfgPath, cfg.RulesFile)
	}
	rb, err := os.ReadFile(rulesSrc)
	if err != nil {
		t.Fatal(err)
	}
	checkRules(t, rulesSrc, rb)

	// Prometheus scrapes augur and remote-writes to it.
	_, augurPort, _ := net.SplitHostPort(cfg.Listen)
	pb, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
		RemoteWrite []struct {
			URL string `yaml:"url"`
		} `yaml:"remote_write"`
	}
	if err := yaml.Unmarshal(pb, &prom); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scrapesAugur := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				host, port, err := net.SplitHostPort(tg)
				if err != nil {
					t.Errorf("prometheus.yml: target %q: %v", tg, err)
					continue
				}
				if _, ok := c.Services[host]; !ok && host != "localhost" {
					t.Errorf("prometheus.yml: target %q is not a compose service", tg)
				}
				if host == "augur" && port == augurPort {
					scrapesAugur = true
				}
			}
		}
	}
	if !scrapesAugur {
		t.Errorf("prometheus.yml does not scrape augur:%s", augurPort)
	}
	if len(prom.RemoteWrite) != 1 {
		t.Fatalf("prometheus.yml: %d remote_write entries, want 1", len(prom.RemoteWrite))
	}
	u, err := url.Parse(prom.RemoteWrite[0].URL)
	if err != nil || u.Hostname() != "augur" || u.Port() != augurPort || u.Path != "/api/v1/write" {
		t.Errorf("prometheus.yml: remote_write url %q: want http://augur:%s/api/v1/write (err %v)", prom.RemoteWrite[0].URL, augurPort, err)
	}
}

// manifest is the part of a Kubernetes object the tests read.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				ServiceAccountName string `yaml:"serviceAccountName"`
				Containers         []struct {
					Name string   `yaml:"name"`
					Args []string `yaml:"args"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func loadManifests(t *testing.T, path string) []manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m.Kind == "" && m.APIVersion == "" {
			continue // an empty document
		}
		out = append(out, m)
	}
}

func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join("kubernetes", "augur")
	kb, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kust struct {
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(kb, &kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(kust.Resources, b) {
			t.Errorf("%s is not listed in kustomization.yaml", f)
		}
	}

	// ServiceAccounts defined anywhere under kubernetes/ (the actuator's
	// RBAC lives next to this directory).
	accounts := map[string]bool{}
	others, _ := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	for _, f := range append(others, files...) {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, m := range loadManifests(t, f) {
			if m.Kind == "ServiceAccount" {
				accounts[m.Metadata.Namespace+"/"+m.Metadata.Name] = true
			}
		}
	}

	roles := map[string]bool{}
	for _, r := range kust.Resources {
		path := filepath.Join(dir, r)
		objs := loadManifests(t, path)
		if len(objs) == 0 {
			t.Errorf("%s: no objects", path)
		}
		for _, m := range objs {
			if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
				t.Errorf("%s: object without apiVersion, kind or metadata.name: %+v", path, m.Metadata)
			}
			if m.Metadata.Namespace != kust.Namespace {
				t.Errorf("%s: %s %s in namespace %q, want %q", path, m.Kind, m.Metadata.Name, m.Metadata.Namespace, kust.Namespace)
			}
			if sa := m.Spec.Template.Spec.ServiceAccountName; sa != "" && !accounts[m.Metadata.Namespace+"/"+sa] {
				t.Errorf("%s: %s %s runs as ServiceAccount %s, defined in no file under kubernetes/", path, m.Kind, m.Metadata.Name, sa)
			}
			for _, c := range m.Spec.Template.Spec.Containers {
				if len(c.Args) > 0 {
					roles[m.Kind+" "+c.Args[0]] = true
				}
			}
			if m.Kind == "ConfigMap" && m.Metadata.Name == "augur-config" {
				checkAugurConfig(t, path+" config.yaml", []byte(m.Data["config.yaml"]))
				checkRules(t, path+" rules.yaml", []byte(m.Data["rules.yaml"]))
				if m.Data["kafka-brokers"] == "" {
					t.Errorf("%s: kafka-brokers is empty", path)
				}
			}
		}
	}
	for _, want := range []string{"Deployment ingest", "StatefulSet stream", "Deployment act"} {
		if !roles[want] {
			t.Errorf("no %s in %s", want, dir)
		}
	}
}

// infinity is the type of Grafana's JSON-over-HTTP datasource plugin, which
// reads augur's decisions API.
const infinity = "yesoreyeram-infinity-datasource"

// apiSource is a panel's or an annotation's datasource.
type apiSource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// apiQuery is an Infinity (JSON over HTTP) query of augur's API.
type apiQuery struct {
	URL        string `json:"url"`
	URLOptions struct {
		Params []struct{ Key, Value string } `json:"params"`
	} `json:"url_options"`
	RootSelector string `json:"root_selector"`
	Columns      []struct {
		Selector string `json:"selector"`
		Text     string `json:"text"`
	} `json:"columns"`
}

// checkAPIQuery checks an Infinity query against what augur serves: the
// datasource is provisioned with augur's address, the URL and its
// parameters (the dashboard's $rule as "payment") are a query augur's API
// accepts, and every column's selector finds a value in the API's answer
// for a decision of rule "payment" the actuator has handled.
func checkAPIQuery(t *testing.T, file, title, uid string, q apiQuery) {
	t.Helper()
	path, root, cols := q.URL, q.RootSelector, q.Columns
	params := url.Values{}
	for _, p := range q.URLOptions.Params {
		params.Set(p.Key, strings.ReplaceAll(p.Value, "$rule", "payment"))
	}
	b, err := os.ReadFile(filepath.Join("grafana", "provisioning", "datasources", "augur-api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Datasources) != 1 || prov.Datasources[0].UID != uid || prov.Datasources[0].Type != infinity || prov.Datasources[0].URL != "http://augur:9201" {
		t.Errorf("%s: panel %q: datasource %q is not the provisioned augur API: %+v", file, title, uid, prov.Datasources)
	}
	tail := recent.New(recent.Config{}, nil)
	d := &proto.Decision{Id: "d1", Kind: proto.KindScale, Rule: "payment", Target: "k8s/deployment/payment/api", Summary: "scale to 12",
		Desired: &proto.Change{Replicas: 12}, CreatedAt: timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(time.Minute))}
	db, err := proto.MarshalJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	ab, err := proto.MarshalJSON(&proto.Action{DecisionId: "d1", Kind: proto.KindScale, Target: d.Target, Outcome: "refused", Guardrail: "cooldown", At: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	tail.Add("augur.decisions", db)
	tail.Add("augur.actions", ab)
	rec := httptest.NewRecorder()
	tail.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path+"?"+params.Encode(), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: panel %q: augur answers %s with %d: %s", file, title, path, rec.Code, rec.Body)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	rows, ok := body[root].([]any)
	if !ok || len(rows) != 1 {
		t.Fatalf("%s: panel %q: root selector %q finds %v", file, title, root, body[root])
	}
	for _, c := range cols {
		v := rows[0]
		for _, part := range strings.Split(c.Selector, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[part]
			case []any:
				i, err := strconv.Atoi(part)
				if err != nil || i >= len(x) {
					v = nil
				} else {
					v = x[i]
				}
			default:
				v = nil
			}
		}
		if v == nil || v == "" {
			t.Errorf("%s: panel %q: column %q (%s) finds nothing in augur's answer %s", file, title, c.Text, c.Selector, rec.Body)
		}
	}
}
