package recent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func decision(t *testing.T, i int, kind, rule string) *proto.Decision {
	t.Helper()
	d := &proto.Decision{Id: fmt.Sprintf("d%d", i), Kind: kind, Rule: rule, Target: fmt.Sprintf("k8s/deployment/ns/w%d", i%2),
		CreatedAt: timestamppb.New(t0.Add(time.Duration(i) * time.Minute)), Summary: fmt.Sprintf("decision %d", i)}
	return d
}

func get(t *testing.T, tl *Tail, url string) (int, map[string][]json.RawMessage, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	tl.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	var out map[string][]json.RawMessage
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return rec.Code, out, rec.Body.String()
}

func TestDecisionsAndActions(t *testing.T) {
	tl := New(Config{Size: 4}, nil)
	for i := range 6 {
		kind := proto.KindScale
		if i%3 == 0 {
			kind = proto.KindAlert
		}
		b, err := proto.MarshalJSON(decision(t, i, kind, "r"+fmt.Sprint(i%2)))
		if err != nil {
			t.Fatal(err)
		}
		tl.Add("augur.decisions", b)
		a := &proto.Action{DecisionId: fmt.Sprintf("d%d", i), Kind: kind, Target: fmt.Sprintf("k8s/deployment/ns/w%d", i%2), Outcome: proto.OutcomeApplied, At: timestamppb.New(t0.Add(time.Duration(i)*time.Minute + time.Second))}
		b, _ = proto.MarshalJSON(a)
		tl.Add("augur.actions", b)
	}
	tl.Add("augur.decisions", []byte("not json")) // skipped

	code, out, body := get(t, tl, "/api/v1/decisions")
	if code != 200 || len(out["decisions"]) != 4 {
		t.Fatalf("%d %s: want the 4 newest", code, body)
	}
	var first struct {
		D       json.RawMessage  `json:"decision"`
		Actions []map[string]any `json:"actions"`
	}
	if err := json.Unmarshal(out["decisions"][0], &first); err != nil {
		t.Fatal(err)
	}
	d, err := proto.UnmarshalDecision(first.D)
	if err != nil || d.GetId() != "d5" || len(first.Actions) != 1 || first.Actions[0]["outcome"] != "applied" {
		t.Fatalf("newest decision %v %v, actions %v: want d5 joined with its applied record", d, err, first.Actions)
	}
	for url, want := range map[string]int{
		"/api/v1/decisions?kind=alert":                                               1, // d3 (d0 fell out of the tail)
		"/api/v1/decisions?rule=r1":                                                  2, // d3, d5
		"/api/v1/decisions?target=k8s/deployment/ns/w0":                              2,
		"/api/v1/decisions?limit=1":                                                  1,
		"/api/v1/decisions?since=" + t0.Add(4*time.Minute).Format(time.RFC3339):      2,
		fmt.Sprintf("/api/v1/decisions?until=%d", t0.Add(3*time.Minute).UnixMilli()): 2,
		"/api/v1/actions":                                                            4,
		"/api/v1/actions?kind=scale":                                                 3,
	} {
		code, out, body := get(t, tl, url)
		n := len(out["decisions"]) + len(out["actions"])
		if code != 200 || n != want {
			t.Errorf("%s: %d, %d records (%s), want %d", url, code, n, body, want)
		}
	}
	for url, reason := range map[string]string{
		"/api/v1/decisions?limit=0":                                               "limit",
		"/api/v1/decisions?limit=5":                                               "limit",
		"/api/v1/decisions?since=yesterday":                                       "since",
		"/api/v1/decisions?kind=explode":                                          "kind",
		"/api/v1/decisions?colour=red":                                            "colour",
		"/api/v1/decisions?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z": "until is before since",
		"/api/v1/actions?rule=r1":                                                 "rule",
	} {
		code, _, body := get(t, tl, url)
		if code != http.StatusBadRequest || !strings.Contains(body, reason) {
			t.Errorf("%s: %d %q, want 400 naming %s", url, code, body, reason)
		}
	}
	if code, _, _ := get(t, tl, "/api/v1/nothing"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	if len(tl.byID) > 4 {
		t.Errorf("%d decisions' audit records kept for a tail of 4", len(tl.byID))
	}
}

func TestForecasts(t *testing.T) {
	tl := New(Config{Size: 3}, nil)
	for i := range 5 {
		b, err := proto.MarshalForecastPoint(&proto.ForecastPoint{Rule: "api", Target: "k8s/deployment/demo/api",
			WindowEnd: t0.Add(time.Duration(i) * 10 * time.Second).UnixMilli(), Observed: float64(i), Forecast: float64(i) + 1, Recommended: int32(i)})
		if err != nil {
			t.Fatal(err)
		}
		tl.Add("augur.forecasts", b)
	}
	tl.Add("augur.forecasts", []byte(`{"observed": 1}`)) // no rule: skipped
	rec := httptest.NewRecorder()
	tl.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/forecasts?rule=api", nil))
	var out struct {
		Rule   string                `json:"rule"`
		Points []proto.ForecastPoint `json:"points"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if len(out.Points) != 3 || out.Points[0].Observed != 2 || out.Points[2].Observed != 4 {
		t.Fatalf("points %+v: want the 3 newest, oldest first", out.Points)
	}
	rec = httptest.NewRecorder()
	tl.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/forecasts?rule=other", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"points":[]`) {
		t.Errorf("unknown rule: %d %s, want 200 with no points", rec.Code, rec.Body)
	}
	for _, url := range []string{"/api/v1/forecasts", "/api/v1/forecasts?rule=api&kind=scale"} {
		if code, _, body := get(t, tl, url); code != http.StatusBadRequest || !strings.Contains(body, "rule=NAME") {
			t.Errorf("%s: %d %q, want 400", url, code, body)
		}
	}
	// The rules list: the forecast rule with its points.
	rec = httptest.NewRecorder()
	tl.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/rules", nil))
	if body := rec.Body.String(); rec.Code != 200 || body != `{"rules":[{"name":"api","kinds":[],"forecast_points":3}],"tail_size":3}` {
		t.Errorf("rules: %d %s", rec.Code, body)
	}
}

// TestDecisionsOrderedByTimeAcrossPartitions: records come partition by
// partition (after a restart each partition's last hour in turn), so in
// arrival order the newest decisions of earlier partitions come first. The
// tail orders them by time: newest first is newest by time, and a full
// tail drops the oldest by time, not the earliest to arrive.
func TestDecisionsOrderedByTimeAcrossPartitions(t *testing.T) {
	tl := New(Config{Size: 10}, nil)
	// Two partitions of 8 decisions each over the same 8 minutes: w0's
	// records all arrive first, then w1's.
	for part := range 2 {
		for m := range 8 {
			d := &proto.Decision{Id: fmt.Sprintf("p%d-%d", part, m), Kind: proto.KindScale, Rule: "r",
				Target: fmt.Sprintf("k8s/deployment/ns/w%d", part), CreatedAt: timestamppb.New(t0.Add(time.Duration(m) * time.Minute))}
			b, err := proto.MarshalJSON(d)
			if err != nil {
				t.Fatal(err)
			}
			tl.Add("augur.decisions", b)
		}
	}
	_, out, body := get(t, tl, "/api/v1/decisions?limit=4")
	var ids []string
	for _, raw := range out["decisions"] {
		var v struct {
			Decision struct{ ID string } `json:"decision"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.Decision.ID)
	}
	// The newest four by time: minutes 7 and 6 of both partitions.
	want := map[string]bool{"p0-7": true, "p1-7": true, "p0-6": true, "p1-6": true}
	if len(ids) != 4 || !want[ids[0]] || !want[ids[1]] || !want[ids[2]] || !want[ids[3]] {
		t.Errorf("newest four decisions %v, want minutes 7 and 6 of both partitions: %s", ids, body)
	}
	// Ten kept of sixteen: the six dropped are the oldest by time.
	_, out, _ = get(t, tl, "/api/v1/decisions?target=k8s/deployment/ns/w0")
	if n := len(out["decisions"]); n != 5 {
		t.Errorf("%d of w0's decisions kept, want 5 (minutes 3 to 7)", n)
	}
}

// TestJoinStaysBounded: audit records of decisions the tail does not hold
// (an expiry or a later step arriving after 1,000 newer decisions pushed
// its decision out, or records read back further than the decisions) do
// not pile up in the join: it holds at most the ids of the decisions and
// actions held.
func TestJoinStaysBounded(t *testing.T) {
	tl := New(Config{Size: 4}, nil)
	for i := range 200 {
		b, err := proto.MarshalJSON(decision(t, i, proto.KindScale, "r"))
		if err != nil {
			t.Fatal(err)
		}
		tl.Add("augur.decisions", b)
		if i < 10 {
			continue
		}
		// The record of a decision ten decisions old: out of the tail.
		a := &proto.Action{DecisionId: fmt.Sprintf("d%d", i-10), Kind: proto.KindScale, Target: "k8s/deployment/ns/w0",
			Outcome: proto.OutcomeExpired, At: timestamppb.New(t0.Add(time.Duration(i)*time.Minute + time.Second))}
		b, _ = proto.MarshalJSON(a)
		tl.Add("augur.actions", b)
	}
	tl.mu.RLock()
	n := len(tl.byID)
	tl.mu.RUnlock()
	if n > 2*4 {
		t.Errorf("join holds %d decision ids, want at most %d (the decisions and actions held)", n, 2*4)
	}
	// The join still joins.
	b, _ := proto.MarshalJSON(&proto.Action{DecisionId: "d199", Kind: proto.KindScale, Target: "k8s/deployment/ns/w1",
		Outcome: proto.OutcomeApplied, At: timestamppb.New(t0.Add(199*time.Minute + 2*time.Second))})
	tl.Add("augur.actions", b)
	_, out, body := get(t, tl, "/api/v1/decisions?limit=1")
	var first struct {
		Actions []map[string]any `json:"actions"`
	}
	if len(out["decisions"]) != 1 || json.Unmarshal(out["decisions"][0], &first) != nil || len(first.Actions) != 1 {
		t.Fatalf("newest decision not joined with its record: %s", body)
	}
}
