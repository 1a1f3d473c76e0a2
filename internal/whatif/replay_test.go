package whatif

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// TestReplayDropsASampleYearsAhead: a history holding one sample ten years
// ahead of the rest, in the middle of a series, at its end, or alone in a
// series of its own. In the middle, the replay stopped feeding the series
// there (its next samples were older) and what followed was never
// replayed; applied, it would have moved the stream's clock ten years on
// and every later sample would have been late. At the end, the replay
// stepped through the ten years. Each time the sample is dropped and
// counted, the samples after it are replayed, and the decisions and
// forecasts are those of the history without it.
func TestReplayDropsASampleYearsAhead(t *testing.T) {
	const t0 = int64(1_700_000_000_000)
	const future = t0 + 10*365*24*3600_000
	var trace []Point
	for i := range 6 * 60 {
		trace = append(trace, Point{Ts: t0 + int64(i)*60_000, Value: 100 * (1 + 0.8*math.Sin(2*math.Pi*float64(i)/120))})
	}
	ts, vs := CounterFromTrace(trace, 15*time.Second)
	end := time.UnixMilli(ts[len(ts)-1])
	set, err := rules.Parse(strings.NewReader(webRule))
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name string) []proto.Label {
		return []proto.Label{{Name: "__name__", Value: "requests_total"}, {Name: "pod", Value: name}}
	}
	replay := func(series []Series) (*Replayed, []string) {
		t.Helper()
		start := time.Now()
		rep, err := Replay(set.Rule(0), series, end, 15*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("replay took %v", d)
		}
		var out []string
		for _, r := range rep.Decisions {
			out = append(out, fmt.Sprintf("%d %s %d", r.MadeAt, r.Decision.GetSummary(), r.Decision.GetDesired().GetReplicas()))
		}
		for _, p := range rep.Points {
			out = append(out, fmt.Sprintf("point %+v", p))
		}
		return rep, out
	}
	clean, want := replay([]Series{{Labels: pod("web-0"), Type: "counter", Ts: ts, Vs: vs}})
	if len(clean.Decisions) < 3 || clean.Future != 0 || clean.Dropped != 0 {
		t.Fatalf("the history without the sample: %d decisions, %d dropped, %d too far ahead", len(clean.Decisions), clean.Dropped, clean.Future)
	}
	mid := len(ts) / 2
	for _, tc := range []struct {
		name   string
		series []Series
	}{
		{"in the middle", []Series{{Labels: pod("web-0"), Type: "counter",
			Ts: slices.Insert(slices.Clone(ts), mid, future), Vs: slices.Insert(slices.Clone(vs), mid, vs[mid-1])}}},
		{"at the end", []Series{{Labels: pod("web-0"), Type: "counter",
			Ts: append(slices.Clone(ts), future), Vs: append(slices.Clone(vs), vs[len(vs)-1]+100)}}},
		{"a series of its own", []Series{{Labels: pod("web-0"), Type: "counter", Ts: ts, Vs: vs},
			{Labels: pod("web-1"), Type: "counter", Ts: []int64{future}, Vs: []float64{1e6}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, got := replay(tc.series)
			if rep.Future != 1 || rep.Dropped != 0 || rep.Samples != clean.Samples {
				t.Errorf("%d samples applied, %d late or repeated, %d too far ahead; want %d, 0 and 1", rep.Samples, rep.Dropped, rep.Future, clean.Samples)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%d decisions and points, without the sample %d; first difference: %s", len(got), len(want), firstDiff(got, want))
			}
		})
	}
	if n := futureNote(1); !strings.Contains(n, "too far in the future") || !strings.Contains(n, "10m0s") {
		t.Errorf("report note %q", n)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%q, without: %q", a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}
