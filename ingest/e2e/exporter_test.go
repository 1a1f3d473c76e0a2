package e2e

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// exporter serves a fixed set of series in the Prometheus text format whose
// values are a function of the scrape number k (1 for the first scrape), so
// a test can recompute what any scrape served: e2e_scrapes_total is k
// itself, and every other series of the same scrape has the same timestamp.
type exporter struct {
	scrapes atomic.Int64
}

// expFamily is one metric family of the exporter.
type expFamily struct {
	name, typ, help string
	metrics         []expMetric
}

// expMetric is one series: name (the family's when empty), labels in the
// order they are written, and its value at scrape k.
type expMetric struct {
	name   string
	labels [][2]string
	value  func(k int64) float64
}

func constant(v float64) func(int64) float64 { return func(int64) float64 { return v } }

// exporterFamilies are the exporter's series. They cover a counter, gauges
// with labels, label values that need escaping and are not ASCII, the float
// values whose bits are easy to lose (NaN, infinities, negative zero, the
// smallest subnormal, the largest finite, non-terminating fractions), a
// classic histogram and a summary.
var exporterFamilies = []expFamily{
	{name: "e2e_scrapes_total", typ: "counter", help: "Scrapes served by the e2e exporter.", metrics: []expMetric{
		{value: func(k int64) float64 { return float64(k) }},
	}},
	{name: "e2e_temperature_celsius", typ: "gauge", help: "A gauge per room.", metrics: []expMetric{
		{labels: [][2]string{{"room", "a"}, {"floor", "1"}}, value: func(k int64) float64 { return 20 + 0.1*float64(k) }},
		{labels: [][2]string{{"room", "b"}, {"floor", "2"}}, value: func(k int64) float64 { return -1.5 * float64(k) }},
		{labels: [][2]string{{"room", "c"}, {"floor", "2"}}, value: func(k int64) float64 { return float64(k) / 3 }},
	}},
	{name: "e2e_special", typ: "gauge", help: "Values whose bits are easy to lose.", metrics: []expMetric{
		{labels: [][2]string{{"kind", "nan"}}, value: constant(math.NaN())},
		{labels: [][2]string{{"kind", "pos_inf"}}, value: constant(math.Inf(1))},
		{labels: [][2]string{{"kind", "neg_inf"}}, value: constant(math.Inf(-1))},
		{labels: [][2]string{{"kind", "neg_zero"}}, value: constant(math.Copysign(0, -1))},
		{labels: [][2]string{{"kind", "min_subnormal"}}, value: constant(math.SmallestNonzeroFloat64)},
		{labels: [][2]string{{"kind", "max_finite"}}, value: constant(math.MaxFloat64)},
		{labels: [][2]string{{"kind", "above_2_53"}}, value: func(k int64) float64 { return float64(1<<53) + 2*float64(k) }},
		{labels: [][2]string{{"kind", "ulp_steps"}}, value: func(k int64) float64 { return math.Float64frombits(math.Float64bits(1) + uint64(k)) }},
	}},
	{name: "e2e_escaped", typ: "gauge", help: "Label values with quotes, backslashes, newlines and UTF-8.", metrics: []expMetric{
		{labels: [][2]string{{"path", `C:\dir\file`}, {"quote", `say "hi"`}, {"newline", "a\nb"}, {"utf8", "héllo ✓ 日本"}}, value: func(k int64) float64 { return float64(k) }},
	}},
	{name: "e2e_request_duration_seconds", typ: "histogram", help: "A classic histogram.", metrics: []expMetric{
		{name: "e2e_request_duration_seconds_bucket", labels: [][2]string{{"le", "0.1"}}, value: func(k int64) float64 { return float64(k) }},
		{name: "e2e_request_duration_seconds_bucket", labels: [][2]string{{"le", "0.5"}}, value: func(k int64) float64 { return float64(2 * k) }},
		{name: "e2e_request_duration_seconds_bucket", labels: [][2]string{{"le", "+Inf"}}, value: func(k int64) float64 { return float64(3 * k) }},
		{name: "e2e_request_duration_seconds_sum", value: func(k int64) float64 { return 0.37 * float64(k) }},
		{name: "e2e_request_duration_seconds_count", value: func(k int64) float64 { return float64(3 * k) }},
	}},
	{name: "e2e_rpc_seconds", typ: "summary", help: "A summary.", metrics: []expMetric{
		{labels: [][2]string{{"quantile", "0.5"}}, value: constant(0.05)},
		{labels: [][2]string{{"quantile", "0.99"}}, value: func(k int64) float64 { return 0.2 + 0.001*float64(k) }},
		{name: "e2e_rpc_seconds_sum", value: func(k int64) float64 { return 0.07 * float64(k) }},
		{name: "e2e_rpc_seconds_count", value: func(k int64) float64 { return float64(k) }},
	}},
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	k := e.scrapes.Add(1)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	for _, f := range exporterFamilies {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, m := range f.metrics {
			name := m.name
			if name == "" {
				name = f.name
			}
			b.WriteString(name)
			if len(m.labels) > 0 {
				b.WriteByte('{')
				for i, l := range m.labels {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=\"%s\"", l[0], escapeLabelValue(l[1]))
				}
				b.WriteByte('}')
			}
			b.WriteByte(' ')
			b.WriteString(formatValue(m.value(k)))
			b.WriteByte('\n')
		}
	}
	_, _ = w.Write([]byte(b.String()))
}

// escapeLabelValue escapes as the text exposition format requires.
func escapeLabelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// formatValue writes v so that Prometheus parses exactly v back.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// expectedSeries returns the exporter's series as Prometheus stores them
// (with job and instance added), keyed by seriesKey, each with its value
// function.
func expectedSeries(job, instance string) map[string]func(int64) float64 {
	out := map[string]func(int64) float64{}
	for _, f := range exporterFamilies {
		for _, m := range f.metrics {
			name := m.name
			if name == "" {
				name = f.name
			}
			ls := map[string]string{"__name__": name, "job": job, "instance": instance}
			for _, l := range m.labels {
				ls[l[0]] = l[1]
			}
			out[mapKey(ls)] = m.value
		}
	}
	return out
}
