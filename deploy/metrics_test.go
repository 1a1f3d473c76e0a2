package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/proto"
)

// metricDef is what the Go source says about one registered metric.
type metricDef struct {
	typ    string // counter, gauge, histogram or summary
	labels []string
}

// metricDecl finds a metric constructor with its full name and, for a
// vector, its label names: prometheus.NewCounterVec(prometheus.CounterOpts{
// Name: "augur_…", …}, []string{"a", "b"}). The options end at the first
// line that starts with "}" (Buckets literals close on their own line).
var metricDecl = regexp.MustCompile(`(?s)prometheus\.New(Counter|Gauge|Histogram|Summary)(Vec)?\(\s*prometheus\.\w+Opts\{\s*Name:\s*"(augur_[a-z0-9_]+)".*?\n\s*\}(?:,\s*\[\]string\{([^}]*)\})?\)`)

// metricDefs scans the non-test Go files of the module for the type and
// label names of every augur_ metric.
func metricDefs(t *testing.T) map[string]metricDef {
	t.Helper()
	defs := map[string]metricDef{}
	goSources(t, func(path string, b []byte) {
		for _, m := range metricDecl.FindAllSubmatch(b, -1) {
			vec, name := len(m[2]) > 0, string(m[3])
			var labels []string
			for _, l := range strings.Split(string(m[4]), ",") {
				if l = strings.Trim(strings.TrimSpace(l), `"`); l != "" {
					labels = append(labels, l)
				}
			}
			if vec != (len(labels) > 0) {
				t.Errorf("%s: %s: vector %v with labels %q: the scan is broken", path, name, vec, labels)
			}
			defs[name] = metricDef{typ: strings.ToLower(string(m[1])), labels: labels}
		}
	})
	// Every name the literal scan finds must have been understood here, or
	// the checks below would skip it.
	for name := range registeredMetrics(t) {
		if _, ok := defs[name]; !ok {
			t.Errorf("metric %s: registered, but its type and labels were not found: the scan is broken", name)
		}
	}
	return defs
}

// closedLabelValues are the label values augur's code can set for the
// labels of a closed set, from the sets the code itself exports.
func closedLabelValues() map[string]map[string][]string {
	kinds := append(slices.Clone(proto.Kinds), "unknown")
	return map[string]map[string][]string{
		"augur_actuator_actions_total":  {"kind": kinds, "outcome": proto.Outcomes},
		"augur_actuator_refusals_total": {"guardrail": actuators.Guardrails},
		"augur_stream_decisions_total":  {"kind": proto.Kinds},
	}
}

// rateFuncs take a range of a counter: over a gauge they read every drop
// as a counter reset.
var rateFuncs = map[string]bool{"rate": true, "irate": true, "increase": true, "resets": true}

// checkSemantics checks what unregistered cannot: the series a query reads
// has the labels it filters and groups by, with values the code sets;
// rate() and friends read counters (or a histogram's _bucket, _sum,
// _count); _bucket is read from histograms only.
func checkSemantics(expr parser.Expr, defs map[string]metricDef) []string {
	var problems []string
	add := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if !slices.Contains(problems, s) {
			problems = append(problems, s)
		}
	}
	// resolve returns the metric a series name belongs to and the
	// labels its series carry.
	resolve := func(name string) (string, metricDef, []string, bool) {
		if d, ok := defs[name]; ok {
			return name, d, d.labels, true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			if !ok {
				continue
			}
			d, ok := defs[base]
			if !ok {
				continue
			}
			switch {
			case d.typ == "histogram":
			case d.typ == "summary" && suffix != "_bucket":
			default:
				add("%s: a %s has no %s series", name, d.typ, suffix)
			}
			labels := d.labels
			if suffix == "_bucket" {
				labels = append(slices.Clone(labels), "le")
			}
			return base, d, labels, true
		}
		return "", metricDef{}, nil, false
	}
	closed := closedLabelValues()
	// Labels every scraped series has.
	target := []string{"job", "instance"}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			base, _, have, ok := resolve(n.Name)
			if !ok {
				return nil
			}
			for _, m := range n.LabelMatchers {
				if m.Name == "__name__" || slices.Contains(target, m.Name) {
					continue
				}
				if !slices.Contains(have, m.Name) {
					add("%s has no label %q (its labels: %q)", n.Name, m.Name, have)
					continue
				}
				vals, ok := closed[base][m.Name]
				if !ok {
					continue
				}
				if m.Type == labels.MatchEqual && m.Value != "" && !slices.Contains(vals, m.Value) {
					add("%s{%s=%q}: augur never sets that value (it sets %q)", n.Name, m.Name, m.Value, vals)
				}
			}
		case *parser.Call:
			if !rateFuncs[n.Func.Name] {
				return nil
			}
			for _, arg := range n.Args {
				ms, ok := arg.(*parser.MatrixSelector)
				if !ok {
					continue
				}
				vs, ok := ms.VectorSelector.(*parser.VectorSelector)
				if !ok {
					continue
				}
				if d, ok := defs[vs.Name]; ok && d.typ != "counter" {
					add("%s(%s): %s is a %s, not a counter", n.Func.Name, vs.Name, vs.Name, d.typ)
				}
			}
		case *parser.AggregateExpr:
			if n.Without || len(n.Grouping) == 0 {
				return nil
			}
			// Grouping labels must exist on the augur series aggregated.
			var have []string
			only := true
			parser.Inspect(n.Expr, func(c parser.Node, _ []parser.Node) error {
				if vs, ok := c.(*parser.VectorSelector); ok {
					if _, _, labels, ok := resolve(vs.Name); ok {
						have = append(have, labels...)
					} else {
						only = false
					}
				}
				return nil
			})
			if !only || len(have) == 0 && !containsSelector(n.Expr) {
				return nil
			}
			for _, g := range n.Grouping {
				if !slices.Contains(have, g) && !slices.Contains(target, g) {
					add("%s by (%s): no series aggregated has label %q", n.Op, strings.Join(n.Grouping, ","), g)
				}
			}
		}
		return nil
	})
	return problems
}

func containsSelector(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if _, ok := n.(*parser.VectorSelector); ok {
			found = true
		}
		return nil
	})
	return found
}

func TestCheckSemantics(t *testing.T) {
	defs := map[string]metricDef{
		"augur_a_total":                 {typ: "counter", labels: []string{"reason"}},
		"augur_g":                       {typ: "gauge", labels: []string{"partition"}},
		"augur_h_seconds":               {typ: "histogram", labels: []string{"outcome"}},
		"augur_c_total":                 {typ: "counter"},
		"augur_actuator_actions_total":  {typ: "counter", labels: []string{"kind", "outcome"}},
		"augur_actuator_refusals_total": {typ: "counter", labels: []string{"guardrail"}},
	}
	p := parser.NewParser(parser.Options{})
	tests := []struct {
		expr string
		bad  bool
	}{
		{`sum by (reason) (rate(augur_a_total{job=~".*",reason="x"}[5m]))`, false},
		{`histogram_quantile(0.99, sum by (le, outcome) (rate(augur_h_seconds_bucket[5m])))`, false},
		{`sum by (outcome) (rate(augur_h_seconds_count[5m]))`, false},
		{`sum by (partition) (augur_g)`, false},
		{`sum(increase(augur_actuator_actions_total{outcome="applied"}[1h]))`, false},
		{`rate(augur_g[5m])`, true},                                   // rate over a gauge
		{`augur_c_total_bucket`, true},                                // _bucket of a counter
		{`sum by (partition) (rate(augur_a_total[5m]))`, true},        // no such label
		{`augur_a_total{outcome="ok"}`, true},                         // no such label
		{`augur_actuator_actions_total{outcome="refusd"}`, true},      // value never set
		{`augur_actuator_refusals_total{guardrail="cooldown"}`, true}, // value never set
		{`sum by (le) (rate(augur_h_seconds_sum[5m]))`, true},         // le only on _bucket
	}
	for _, tt := range tests {
		e, err := p.ParseExpr(tt.expr)
		if err != nil {
			t.Fatalf("%q: %v", tt.expr, err)
		}
		if got := checkSemantics(e, defs); (len(got) > 0) != tt.bad {
			t.Errorf("checkSemantics(%q) = %q, want problems: %v", tt.expr, got, tt.bad)
		}
	}
}

// TestDashboardSemantics checks every dashboard query against the types,
// labels and label values of the metrics augur registers.
func TestDashboardSemantics(t *testing.T) {
	defs := metricDefs(t)
	// The scan must find label names and types, or nothing is checked.
	if d := defs["augur_actuator_actions_total"]; d.typ != "counter" || !slices.Equal(d.labels, []string{"kind", "outcome"}) {
		t.Fatalf("augur_actuator_actions_total scanned as %+v: the scan is broken", d)
	}
	if d := defs["augur_ingest_request_duration_seconds"]; d.typ != "histogram" || !slices.Equal(d.labels, []string{"version"}) {
		t.Fatalf("augur_ingest_request_duration_seconds scanned as %+v: the scan is broken", d)
	}
	p := parser.NewParser(parser.Options{})
	dashboards := loadDashboards(t)
	for _, file := range slices.Sorted(maps.Keys(dashboards)) {
		d := dashboards[file]
		textbox := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Type == "textbox" {
				s, _ := v.Query.(string)
				textbox[v.Name] = s
			}
		}
		for _, pn := range allPanels(d.Panels) {
			for _, tg := range pn.Targets {
				if tg.Datasource.Type == infinity || strings.TrimSpace(tg.Expr) == "" {
					continue
				}
				e, err := p.ParseExpr(expand(tg.Expr, textbox))
				if err != nil {
					continue // TestDashboards reports it
				}
				for _, problem := range checkSemantics(e, defs) {
					t.Errorf("%s: panel %q: %s (expr %q)", file, pn.Title, problem, tg.Expr)
				}
			}
		}
	}
}

// outcomeStat is the title of a panel that counts one outcome of the
// actuators: "Applied in range", "Dry-run in range".
var outcomeStat = regexp.MustCompile(`^([A-Za-z-]+) in range$`)

// TestOutcomeStats checks that a panel named after an actuator outcome
// counts the audit records with that outcome, and not something else
// (augur_actuator_refusals_total counts every guardrail that stopped a
// decision: expired, duplicate and deferred ones too, not only refusals).
func TestOutcomeStats(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	checked := 0
	for file, d := range loadDashboards(t) {
		for _, pn := range allPanels(d.Panels) {
			m := outcomeStat.FindStringSubmatch(pn.Title)
			if m == nil {
				continue
			}
			outcome := strings.ReplaceAll(strings.ToLower(m[1]), "-", "_")
			if !slices.Contains(proto.Outcomes, outcome) {
				continue
			}
			checked++
			for _, tg := range pn.Targets {
				e, err := p.ParseExpr(expand(tg.Expr, nil))
				if err != nil {
					continue
				}
				ok := false
				parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
					vs, isVS := n.(*parser.VectorSelector)
					if !isVS || vs.Name != "augur_actuator_actions_total" {
						return nil
					}
					for _, lm := range vs.LabelMatchers {
						if lm.Name == "outcome" && lm.Type == labels.MatchEqual && lm.Value == outcome {
							ok = true
						}
					}
					return nil
				})
				if !ok {
					t.Errorf("%s: panel %q counts %q, not augur_actuator_actions_total{outcome=%q}", file, pn.Title, tg.Expr, outcome)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no outcome panel found (\"Applied in range\", …): the check is broken")
	}
}

// TestComposeOutcomesDocumented runs an actuator with the compose config
// (its act: section, no Kubernetes API) on a scale decision and an alert,
// and checks that the outcomes and guardrails the docker compose section of
// deploy/README.md says the dashboards show are the ones it records.
func TestComposeOutcomesDocumented(t *testing.T) {
	c := loadCompose(t)
	var cfgPath string
	for target, src := range composeMounts(t, c, "augur") {
		if strings.HasSuffix(target, "config.yaml") {
			cfgPath = src
		}
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// As cmd/augur reads it: the file over the actuators' defaults.
	var cfg augurConfig
	cfg.Act.Config = actuators.DefaultConfig()
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", cfgPath, err)
	}
	if cfg.Act.Kubeconfig != "" {
		t.Skipf("%s: compose gives the actuators a Kubernetes API", cfgPath)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	acfg := cfg.Act.Config
	acfg.DecisionKeys = [][]byte{key}
	act, err := actuators.New(acfg, nil, nil, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	decisions := []*proto.Decision{
		{Id: "scale-1", Kind: proto.KindScale, Rule: "prometheus-api", Target: "k8s/deployment/demo/prometheus-api",
			Desired: &proto.Change{Object: &proto.KubeObject{Kind: "Deployment", Namespace: "demo", Name: "prometheus-api"}, Replicas: 3}, CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute))},
		{Id: "alert-1", Kind: proto.KindAlert, Rule: "augur-anomalies", Target: "node/x", Summary: "anomaly",
			CreatedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute))},
	}
	seen := map[string]bool{}
	for _, d := range decisions {
		if err := proto.Sign(d, key); err != nil {
			t.Fatal(err)
		}
		v, err := proto.MarshalJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		a := act.Handle(context.Background(), v)
		t.Logf("%s decision: outcome %q guardrail %q (%s)", d.Kind, a.GetOutcome(), a.GetGuardrail(), a.GetError())
		seen[a.GetOutcome()] = true
		if g := a.GetGuardrail(); g != "" {
			seen[g] = true
		}
	}

	rb, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(rb)
	start := strings.Index(section, "## docker compose")
	if start < 0 {
		t.Fatal("README.md has no docker compose section")
	}
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	named := 0
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(section, -1) {
		w := m[1]
		if !slices.Contains(proto.Outcomes, w) && !slices.Contains(actuators.Guardrails, w) {
			continue
		}
		named++
		if !seen[w] {
			t.Errorf("README.md, docker compose: says the dashboards show `%s`, which the compose actuator does not record for a scale decision or an alert (it records %v)", w, keys(seen))
		}
	}
	if named == 0 {
		t.Error("README.md, docker compose: names no outcome: the check is broken")
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestReadmeDiscardReasons checks the README's list of ingest validation
// rules against the reason label values the receiver pre-creates on
// augur_ingest_discarded_samples_total, in both directions.
func TestReadmeDiscardReasons(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("augur", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := checkAugurConfig(t, "augur/config.yaml", b)
	ic := cfg.Ingest
	ic.Partitions = cfg.Kafka.Partitions
	reg := prometheus.NewRegistry()
	if _, err := ingest.New(ic, nil, nil, reg, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, mf := range mfs {
		if mf.GetName() != "augur_ingest_discarded_samples_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" {
					reasons = append(reasons, lp.GetValue())
				}
			}
		}
	}
	if len(reasons) == 0 {
		t.Fatal("the receiver pre-creates no reason of augur_ingest_discarded_samples_total: the check is broken")
	}

	rb, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const intro = "Validation rules (each counted in `augur_ingest_discarded_samples_total{reason}`):"
	para, ok := strings.CutPrefix(string(rb)[max(strings.Index(string(rb), intro), 0):], intro)
	if !ok {
		t.Fatalf("README.md has no paragraph starting %q", intro)
	}
	if end := strings.Index(para, "\n\n"); end >= 0 {
		para = para[:end]
	}
	var listed []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(para, -1) {
		listed = append(listed, m[1])
	}
	for _, r := range reasons {
		if !slices.Contains(listed, r) {
			t.Errorf("README.md: the validation rules do not list reason %q, which augur counts", r)
		}
	}
	for _, l := range listed {
		if !slices.Contains(reasons, l) {
			t.Errorf("README.md: the validation rules list %q, which augur never counts (it counts %q)", l, reasons)
		}
	}
}
