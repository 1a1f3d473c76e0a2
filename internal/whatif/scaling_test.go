package whatif

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// TestIntervalCapReachesTheScaler: a scaling rule's interval_cap is what
// the stream's scaler sizes with. Two days of a noisy daily load, one
// sample a minute, replayed through the stream under the default cap and
// under 0.1: the smaller cap runs fewer pod-hours, and neither sizes above
// the point forecast times (1 + cap) or the load observed.
func TestIntervalCapReachesTheScaler(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var trace []Point
	for i := range 2 * 1440 {
		day := 1 + 0.6*math.Sin(2*math.Pi*float64(i)/1440)
		trace = append(trace, Point{Ts: 1_700_000_000_000 + int64(i)*60_000, Value: 100 * day * (1 + 0.3*r.NormFloat64())})
	}
	ts, vs := CounterFromTrace(trace, 15*time.Second)
	series := []Series{{Labels: []proto.Label{{Name: "__name__", Value: "requests_total"}}, Type: "counter", Ts: ts, Vs: vs}}
	run := func(capLine string) (podHours float64, over int) {
		t.Helper()
		set, err := rules.Parse(strings.NewReader(webRule + capLine))
		if err != nil {
			t.Fatal(err)
		}
		rule := set.Rule(0)
		rep, err := Replay(rule, series, time.UnixMilli(ts[len(ts)-1]), 15*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Decisions {
			d := r.Decision
			e := d.GetEvidence()
			bound := max(e.GetForecast()*(1+rule.Scaling.IntervalCap), e.GetObserved())
			if need := int32(math.Ceil(bound / 10)); d.GetDesired().GetReplicas() > max(need, 2) && d.GetDesired().GetReplicas() > d.GetDesired().GetPreviousReplicas() {
				over++
			}
		}
		res := EvaluateScaling(rule, rep, nil, ScalingOptions{Warmup: 6 * time.Hour})
		return res.Augur.PodHours, over
	}
	def, overDef := run("")
	small, overSmall := run("    interval_cap: 0.1")
	t.Logf("pod-hours: default cap %.1f, cap 0.1 %.1f", def, small)
	if !(small < 0.97*def) {
		t.Errorf("pod-hours with interval_cap 0.1: %.1f, with the default: %.1f; want at least 3%% fewer", small, def)
	}
	if overDef > 0 || overSmall > 0 {
		t.Errorf("scale ups above max(point × (1 + cap), observed): %d with the default cap, %d with 0.1", overDef, overSmall)
	}
}

// webRule scales sim/web on requests_total, 10 per pod, a 3-minute
// horizon: the rule of the replay tests.
const webRule = `
rules:
- name: web
  scaling:
    selector: requests_total
    capacity_per_pod: 10
    window: 1m
    horizon: 3m
    min_replicas: 2
    max_replicas: 100
    target: {namespace: sim, name: web}
`
