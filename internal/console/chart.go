package console

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"net/http"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/augur-ops/augur/proto"
)

// Source is what the charts read: a scaling rule's forecast points and its
// decisions' times, oldest first (recent.Tail).
type Source interface {
	Forecasts(rule string) ([]proto.ForecastPoint, []time.Time)
}

// Chart colors, as in the console's legend.
var (
	colLoad     = color.RGBA{R: 0x1d, G: 0x24, B: 0x33, A: 0xff}
	colForecast = color.RGBA{R: 0x1f, G: 0x5f, B: 0xb4, A: 0xff}
	colBand     = color.RGBA{R: 0xd6, G: 0xe4, B: 0xf7, A: 0xff}
	colDecision = color.NRGBA{R: 0xb5, G: 0x47, B: 0x08, A: 0x90}
	colRecomm   = color.RGBA{R: 0x7a, G: 0x5a, B: 0xf8, A: 0xff}
	colDecided  = color.RGBA{R: 0x12, G: 0x80, B: 0x5c, A: 0xff}
)

// ChartHandler serves GET /api/v1/chart.svg?rule=NAME&panel=load|replicas:
// a scaling rule's chart drawn with gonum/plot from src. panel=load (the
// default) is the load against the forecast made a horizon earlier for the
// same time, its 80% band and the decisions; panel=replicas the replicas
// recommended and decided.
func ChartHandler(src Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		rule, panel := q.Get("rule"), q.Get("panel")
		if rule == "" {
			http.Error(w, "bad query: rule=NAME is required", http.StatusBadRequest)
			return
		}
		if panel == "" {
			panel = "load"
		}
		if panel != "load" && panel != "replicas" {
			http.Error(w, fmt.Sprintf("bad query: panel %q: want load or replicas", panel), http.StatusBadRequest)
			return
		}
		pts, decisions := src.Forecasts(rule)
		if len(pts) == 0 {
			http.Error(w, fmt.Sprintf("no forecast points for rule %q", rule), http.StatusNotFound)
			return
		}
		b, err := drawChart(rule, panel, pts, decisions, "15:04")
		if err != nil {
			http.Error(w, "chart: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	})
}

// LoadChart renders the load panel of a scaling rule as SVG, with time
// ticks in tickFormat (augur whatif's report draws days of it).
func LoadChart(rule string, pts []proto.ForecastPoint, decisions []time.Time, tickFormat string) ([]byte, error) {
	if len(pts) == 0 {
		return nil, fmt.Errorf("no forecast points for rule %q", rule)
	}
	return drawChart(rule, "load", pts, decisions, tickFormat)
}

// drawChart renders one panel as SVG.
func drawChart(rule, panel string, pts []proto.ForecastPoint, decisions []time.Time, tickFormat string) ([]byte, error) {
	p := plot.New()
	p.X.Tick.Marker = plot.TimeTicks{Format: tickFormat}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	sec := func(ms int64) float64 { return float64(ms) / 1000 }
	hz := int64(pts[0].HorizonSeconds * 1000)
	switch panel {
	case "load":
		p.Title.Text = rule + ": load and forecast"
		p.Y.Label.Text = "per second"
		var obs, fc, band plotter.XYs
		for _, pt := range pts {
			obs = append(obs, plotter.XY{X: sec(pt.WindowEnd), Y: pt.Observed})
			if finite(pt.Forecast) {
				fc = append(fc, plotter.XY{X: sec(pt.WindowEnd + hz), Y: pt.Forecast})
			}
		}
		for _, pt := range pts {
			if finite(pt.Upper) {
				band = append(band, plotter.XY{X: sec(pt.WindowEnd + hz), Y: pt.Upper})
			}
		}
		for i := len(pts) - 1; i >= 0; i-- {
			if finite(pts[i].Lower) {
				band = append(band, plotter.XY{X: sec(pts[i].WindowEnd + hz), Y: pts[i].Lower})
			}
		}
		if len(band) >= 3 {
			poly, err := plotter.NewPolygon(band)
			if err != nil {
				return nil, fmt.Errorf("band: %w", err)
			}
			poly.Color, poly.Width = colBand, 0
			p.Add(poly)
			p.Legend.Add("80% band", poly)
		}
		ymin, ymax := 0.0, 1.0
		for _, xy := range append(append(plotter.XYs{}, obs...), band...) {
			ymin, ymax = math.Min(ymin, xy.Y), math.Max(ymax, xy.Y)
		}
		// Headroom above the data for the legend.
		p.Y.Min, p.Y.Max = ymin, ymin+(ymax-ymin)*1.3
		t0, t1 := sec(pts[0].WindowEnd), sec(pts[len(pts)-1].WindowEnd+hz)
		marked := false
		for _, d := range decisions {
			x := float64(d.UnixMilli()) / 1000
			if x < t0 || x > t1 {
				continue
			}
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: ymin}, {X: x, Y: ymax}})
			if err != nil {
				return nil, fmt.Errorf("decision: %w", err)
			}
			l.Color, l.Width = colDecision, vg.Points(0.6)
			p.Add(l)
			if !marked {
				p.Legend.Add("decision", l)
				marked = true
			}
		}
		if len(fc) > 0 {
			l, err := plotter.NewLine(fc)
			if err != nil {
				return nil, fmt.Errorf("forecast: %w", err)
			}
			l.Color, l.Width, l.Dashes = colForecast, vg.Points(1.2), []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
			p.Legend.Add("forecast (at its target time)", l)
		}
		l, err := plotter.NewLine(obs)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		l.Color, l.Width = colLoad, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add("load", l)
	case "replicas":
		p.Title.Text = rule + ": replicas"
		p.Y.Label.Text = "replicas"
		top := 1.0
		for _, pt := range pts {
			top = math.Max(top, float64(max(pt.Recommended, pt.Decided)))
		}
		p.Y.Min, p.Y.Max = 0, top*1.45
		for _, s := range []struct {
			name string
			c    color.Color
			v    func(proto.ForecastPoint) int32
		}{
			{"recommended", colRecomm, func(pt proto.ForecastPoint) int32 { return pt.Recommended }},
			{"decided", colDecided, func(pt proto.ForecastPoint) int32 { return pt.Decided }},
		} {
			var xy plotter.XYs
			for i, pt := range pts {
				xy = append(xy, plotter.XY{X: sec(pt.WindowEnd), Y: float64(s.v(pt))})
				if i+1 < len(pts) {
					xy = append(xy, plotter.XY{X: sec(pts[i+1].WindowEnd), Y: float64(s.v(pt))})
				}
			}
			l, err := plotter.NewLine(xy)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			l.Color, l.Width = s.c, vg.Points(1.5)
			p.Add(l)
			p.Legend.Add("replicas "+s.name, l)
		}
	}
	height := 3.2 * vg.Inch
	if panel == "replicas" {
		height = 1.9 * vg.Inch
	}
	return SVG(p, 9*vg.Inch, height)
}

// SVG renders p at the given size as SVG.
func SVG(p *plot.Plot, width, height vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(width, height, "svg")
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return buf.Bytes(), nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
