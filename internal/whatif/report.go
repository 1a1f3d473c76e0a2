package whatif

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/augur-ops/augur/internal/console"
	"github.com/augur-ops/augur/proto"
)

// Write writes dir/report.json and dir/report.html (self-contained: the
// charts are inline SVG drawn with gonum/plot), creating dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	page, err := r.HTML()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), page, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// htmlRule is what the page shows of one rule.
type htmlRule struct {
	RuleReport
	LoadSVG, ReplicasSVG template.HTML
	Delta                string
}

// HTML renders the report page.
func (r *Report) HTML() ([]byte, error) {
	format := "Jan 2 15:04"
	var rs []htmlRule
	for _, rr := range r.Rules {
		h := htmlRule{RuleReport: rr}
		if rr.result != nil && len(rr.points) > 0 {
			pts := make([]proto.ForecastPoint, len(rr.points))
			for i, p := range rr.points {
				pts[i] = *p
			}
			// Days of decisions would hide the load: they are marked
			// on the replicas chart, and here only when few.
			var marks []time.Time
			if len(rr.result.Decided) <= 40 {
				for _, d := range rr.result.Decided {
					marks = append(marks, time.UnixMilli(d.At))
				}
			}
			svg, err := console.LoadChart(rr.Name, pts, marks, format)
			if err != nil {
				return nil, fmt.Errorf("report chart of %s: %w", rr.Name, err)
			}
			h.LoadSVG = template.HTML(svg) //nolint:gosec // SVG drawn by gonum/plot from numbers, escaped by it
			svg, err = replicasChart(rr.Name, rr.result, rr.Baseline.Kind, format)
			if err != nil {
				return nil, fmt.Errorf("report chart of %s: %w", rr.Name, err)
			}
			h.ReplicasSVG = template.HTML(svg) //nolint:gosec // as above
			h.Delta = fmt.Sprintf("against the %s: under-provisioned minutes %s, pod-hours %s, reversals %d (baseline %d)", baselineName[rr.Baseline.Kind],
				pct(rr.Augur.UnderProvisionedMinutes, rr.Baseline.UnderProvisionedMinutes), pct(rr.Augur.PodHours, rr.Baseline.PodHours),
				rr.Augur.Reversals, rr.Baseline.Reversals)
		}
		rs = append(rs, h)
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, struct {
		*Report
		Rules []htmlRule
		Fired []DecisionRow
	}{r, rs, r.Fired()})
	if err != nil {
		return nil, fmt.Errorf("report html: %w", err)
	}
	return buf.Bytes(), nil
}

func pct(a, b float64) string {
	if b == 0 {
		if a == 0 {
			return "unchanged"
		}
		return fmt.Sprintf("%.4g (baseline 0)", a)
	}
	return fmt.Sprintf("%+.0f%%", 100*(a-b)/b)
}

var (
	colAugur    = color.RGBA{R: 0x12, G: 0x80, B: 0x5c, A: 0xff}
	colBaseline = color.RGBA{R: 0x8a, G: 0x8f, B: 0x98, A: 0xff}
	colDecision = color.NRGBA{R: 0xb5, G: 0x47, B: 0x08, A: 0xc0}
)

var baselineName = map[string]string{BaselineSimulatedHPA: "simulated HPA", BaselineActual: "actual replicas"}

// replicasChart draws the pods augur and the baseline ran over time, and
// the pods the load needed at 100%.
func replicasChart(rule string, res *ScalingResult, baseline, format string) ([]byte, error) {
	p := plot.New()
	p.Title.Text = rule + ": replicas"
	p.Y.Label.Text = "pods"
	p.X.Tick.Marker = plot.TimeTicks{Format: format}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	end := res.Demand[len(res.Demand)-1].Ts
	steps := func(s []Step) plotter.XYs {
		var xy plotter.XYs
		for i, st := range s {
			xy = append(xy, plotter.XY{X: float64(st.At) / 1000, Y: float64(st.Replicas)})
			next := end
			if i+1 < len(s) {
				next = s[i+1].At
			}
			xy = append(xy, plotter.XY{X: float64(next) / 1000, Y: float64(st.Replicas)})
		}
		return xy
	}
	top := 1.0
	for _, s := range [][]Step{res.Augur.Replicas, res.Baseline.Replicas} {
		for _, st := range s {
			top = math.Max(top, float64(st.Replicas))
		}
	}
	p.Y.Min, p.Y.Max = 0, top*1.4
	name := baselineName[baseline]
	for _, s := range []struct {
		label string
		c     color.Color
		xy    plotter.XYs
		width vg.Length
	}{
		{name, colBaseline, steps(res.Baseline.Replicas), 1.2},
		{"augur", colAugur, steps(res.Augur.Replicas), 1.5},
	} {
		if len(s.xy) < 2 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.label, err)
		}
		l.Color, l.Width = s.c, vg.Points(float64(s.width))
		p.Add(l)
		p.Legend.Add("pods, "+s.label, l)
	}
	if len(res.Decided) > 0 {
		var xy plotter.XYs
		for _, d := range res.Decided {
			xy = append(xy, plotter.XY{X: float64(d.At) / 1000, Y: float64(d.Replicas)})
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, fmt.Errorf("decisions: %w", err)
		}
		sc.Color, sc.Radius, sc.Shape = colDecision, vg.Points(1.6), draw.CircleGlyph{}
		p.Add(sc)
		p.Legend.Add("augur's decisions", sc)
	}
	return console.SVG(p, 9*vg.Inch, 2.6*vg.Inch)
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"t":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"f2": func(v float64) string { return fmt.Sprintf("%.2f", v) },
	"pc": func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>augur whatif</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;color:#1d2433;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-top:1px solid #dde1e7;padding-top:16px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #dde1e7;padding:3px 8px;text-align:right}
th{background:#f3f5f8}td.l,th.l{text-align:left}.muted{color:#667085}.err{color:#b42318;font-weight:600}
.chart svg{width:100%;height:auto}details{margin:6px 0}
</style></head><body>
<h1>augur whatif</h1>
<p class="muted">What augur would have done on {{.Prometheus}} from {{t .From}} to {{t .To}} UTC, replayed through the stream's own code from a cold start.
Pods take {{.PodStartSeconds}} s to start; a pod serves a scaling rule's <code>capacity_per_pod</code> at 70% utilisation.</p>
<table><tr><th class="l">rule</th><th class="l">kind</th><th>series</th><th class="l">result</th></tr>
{{range .Rules}}<tr><td class="l"><a href="#rule-{{.Name}}">{{.Name}}</a></td><td class="l">{{.Kind}}</td><td>{{.Series}}</td><td class="l">{{if .Error}}<span class="err">{{.Error}}</span>{{else if .Augur}}{{.Delta}}{{else if .DecisionCounts}}decisions:{{range $k, $v := .DecisionCounts}} {{$k}} {{$v}}{{end}}{{else}}no decision{{end}}</td></tr>
{{end}}</table>
{{range .Rules}}
<h2 id="rule-{{.Name}}">{{.Name}} <span class="muted">({{.Kind}})</span></h2>
<p class="muted"><code>{{.Selector}}</code>{{if .StepSeconds}}, read every {{.StepSeconds}} s{{end}}</p>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
{{range .Notes}}<p class="muted">{{.}}</p>{{end}}
{{if .Gaps}}<details><summary>{{len .Gaps}} gaps in the data</summary><ul>{{range .Gaps}}<li>{{t .From}} to {{t .To}}</li>{{end}}</ul></details>{{end}}
{{if .Augur}}
<table>
<tr><th class="l"></th><th>under-provisioned minutes</th><th>pod-hours</th><th>reversals</th><th>unserved load × minutes</th></tr>
<tr><td class="l">augur</td><td>{{f1 .Augur.UnderProvisionedMinutes}}</td><td>{{f1 .Augur.PodHours}}</td><td>{{.Augur.Reversals}}</td><td>{{f1 .Augur.Shortfall}}</td></tr>
<tr><td class="l">baseline ({{.Baseline.Kind}})</td><td>{{f1 .Baseline.UnderProvisionedMinutes}}</td><td>{{f1 .Baseline.PodHours}}</td><td>{{.Baseline.Reversals}}</td><td>{{f1 .Baseline.Shortfall}}</td></tr>
</table>
<p>Forecast at the rule's horizon: MASE {{f2 .Forecast.MASE}}, 80% interval coverage {{pc .Forecast.Coverage80}} over {{.Forecast.Scored}} windows.</p>
<div class="chart">{{.LoadSVG}}</div>
<div class="chart">{{.ReplicasSVG}}</div>
{{end}}
{{if .Decisions}}<details{{if not .Augur}} open{{end}}><summary>{{len .Decisions}} decisions{{range $k, $v := .DecisionCounts}} · {{$k}} {{$v}}{{end}}</summary>
<table><tr><th class="l">time (UTC)</th><th class="l">kind</th><th class="l">summary</th></tr>
{{range .Decisions}}<tr><td class="l">{{t .Time}}</td><td class="l">{{.Kind}}</td><td class="l">{{.Summary}}</td></tr>
{{end}}</table></details>{{else if not .Error}}<p>No decisions.</p>{{end}}
{{end}}
<h2>Alerts, zonal shifts and node actions</h2>
{{if .Fired}}<table><tr><th class="l">time (UTC)</th><th class="l">kind</th><th class="l">target</th></tr>
{{range .Fired}}<tr><td class="l">{{t .Time}}</td><td class="l">{{.Kind}}</td><td class="l">{{.Target}}</td></tr>
{{end}}</table>{{else}}<p>None would have fired.</p>{{end}}
</body></html>
`))
