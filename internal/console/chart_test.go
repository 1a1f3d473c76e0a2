package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/proto"
)

type fakeSource struct {
	pts []proto.ForecastPoint
	at  []time.Time
}

func (f fakeSource) Forecasts(string) ([]proto.ForecastPoint, []time.Time) { return f.pts, f.at }

// TestChartHandler: both panels render as SVG with their series named in
// the legend; a rule without points is a 404, bad queries are 400s.
func TestChartHandler(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var src fakeSource
	for i := range 30 {
		v := 100 + float64(i)
		src.pts = append(src.pts, proto.ForecastPoint{Rule: "r", WindowEnd: t0.Add(time.Duration(i) * 10 * time.Second).UnixMilli(),
			Observed: v, Forecast: v + 5, Lower: v - 10, Upper: v + 20, HorizonSeconds: 60, Recommended: int32(v / 20), Decided: int32(v / 20)})
	}
	src.at = []time.Time{t0.Add(time.Minute), t0.Add(3 * time.Minute)}
	h := ChartHandler(src)
	for panel, want := range map[string][]string{
		"load":     {">load<", ">forecast (at its target time)<", ">80% band<", ">decision<"},
		"replicas": {">replicas recommended<", ">replicas decided<"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/chart.svg?rule=r&panel="+panel, nil))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/svg+xml" {
			t.Fatalf("%s: %d %s", panel, rec.Code, rec.Body)
		}
		for _, w := range want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("%s panel lacks %s", panel, w)
			}
		}
	}
	for url, code := range map[string]int{
		"/api/v1/chart.svg":                     400,
		"/api/v1/chart.svg?rule=r&panel=errors": 400,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		if rec.Code != code {
			t.Errorf("%s: %d, want %d", url, rec.Code, code)
		}
	}
	rec := httptest.NewRecorder()
	ChartHandler(fakeSource{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/chart.svg?rule=none", nil))
	if rec.Code != 404 {
		t.Errorf("no points: %d, want 404", rec.Code)
	}
}
