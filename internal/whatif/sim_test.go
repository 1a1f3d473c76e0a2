package whatif

import (
	"math"
	"testing"
	"time"
)

const minute = int64(60_000)

// stepLoad is 10 per second for 10 minutes, then 50 until minute 30.
func stepLoad() []Point {
	var pts []Point
	for m := range int64(31) {
		v := 10.0
		if m >= 10 {
			v = 50
		}
		pts = append(pts, Point{Ts: m * minute, Value: v})
	}
	return pts
}

func stepScenario() Scenario {
	return Scenario{Demand: stepLoad(), Capacity: 10, PodStart: 90 * time.Second, Tick: 15 * time.Second, MinPods: 1, MaxPods: 100}
}

// TestSimulateCountsWhatReadyPodsMiss works one replay out by hand: 2
// pods (what 10/s needs at 70%) until 8 are ordered at minute 10; they
// are ready 90 s later. The load passes 2 pods' 20/s after 9:15 (it is
// linear between points), so the ticks 9:30 to 11:15 are short: 2 minutes.
func TestSimulateCountsWhatReadyPodsMiss(t *testing.T) {
	out := Simulate(stepScenario(), NewRecorded([]Step{{At: 10 * minute, Replicas: 8}}, nil))
	if out.UnderProvisionedMinutes != 2 {
		t.Errorf("under-provisioned %v minutes, want 2", out.UnderProvisionedMinutes)
	}
	// 2 pods for the 40 ticks before 10:00, 8 for the 80 from 10:00 to 30:00.
	if want := (40*2 + 80*8) * 0.25 / 60; math.Abs(out.PodHours-want) > 1e-9 {
		t.Errorf("pod-hours %v, want %v", out.PodHours, want)
	}
	if out.Reversals != 0 || len(out.Replicas) != 2 || out.Replicas[1] != (Step{At: 10 * minute, Replicas: 8}) {
		t.Errorf("reversals %d, replicas %v", out.Reversals, out.Replicas)
	}
	// Shortfall: the unserved load, load × minutes, is positive and at most
	// (50 - 20) × 2.
	if !(out.Shortfall > 0 && out.Shortfall <= 60) {
		t.Errorf("shortfall %v", out.Shortfall)
	}
}

// TestSimulateScoresExactlyTheDataSpan: each tick stands for the time
// to the next one, so a replay scores the data's span, last minus first
// point, after the warmup, whether or not the span or the warmup is a
// whole number of ticks: 2 pods that can never serve the load are 2 × the
// span's hours and under-provisioned for all its minutes.
func TestSimulateScoresExactlyTheDataSpan(t *testing.T) {
	for _, c := range []struct {
		last, warmup time.Duration
		mins         float64
	}{
		{30 * time.Minute, 0, 30},
		{30*time.Minute + 6*time.Second, 0, 30.1},
		{30 * time.Minute, 10 * time.Minute, 20},
		{30 * time.Minute, 10*time.Minute + 6*time.Second, 19.9},
		{0, 0, 0},
	} {
		sc := Scenario{Demand: []Point{{Ts: 0, Value: 100}}, Capacity: 10, PodStart: 90 * time.Second, Tick: 15 * time.Second,
			Warmup: c.warmup, MinPods: 2, MaxPods: 2}
		if c.last > 0 {
			sc.Demand = append(sc.Demand, Point{Ts: c.last.Milliseconds(), Value: 100})
		}
		out := Simulate(sc, NewRecorded(nil, nil))
		if math.Abs(out.UnderProvisionedMinutes-c.mins) > 1e-9 || math.Abs(out.PodHours-2*c.mins/60) > 1e-9 {
			t.Errorf("data over %v, warmup %v: under-provisioned %v minutes, %v pod-hours, want %v and %v",
				c.last, c.warmup, out.UnderProvisionedMinutes, out.PodHours, c.mins, 2*c.mins/60)
		}
	}
}

// TestHPAReactsToWhatItSees shows the simulated HPA sizes on the load it
// has seen (Seen after each point) at its target: ceil(2 × 2.5 / 0.7) = 8
// pods at the first tick that sees 50/s, later than an order at minute 10.
func TestHPAReactsToWhatItSees(t *testing.T) {
	sc := stepScenario()
	sc.Seen = 30 * time.Second
	h := Simulate(sc, NewHPA(sc.Capacity, HPATarget, 5*time.Minute, sc.MinPods, sc.MaxPods))
	var up Step
	for _, s := range h.Replicas {
		if s.Replicas > 2 {
			up = s
			break
		}
	}
	if up != (Step{At: 10*minute + 30_000, Replicas: 8}) {
		t.Errorf("HPA replicas %v: want 8 at 10:30", h.Replicas)
	}
	early := Simulate(sc, NewRecorded([]Step{{At: 10 * minute, Replicas: 8}}, nil))
	if h.UnderProvisionedMinutes <= early.UnderProvisionedMinutes {
		t.Errorf("HPA under-provisioned %v minutes, an order at 10:00 %v: want the HPA later", h.UnderProvisionedMinutes, early.UnderProvisionedMinutes)
	}
}

// TestReversalsCountScaleUpsSoonAfterADown counts a scale up within a
// minute of a scale down, and not one two minutes after.
func TestReversalsCountScaleUpsSoonAfterADown(t *testing.T) {
	steps := []Step{{At: 2 * minute, Replicas: 1}, {At: 2*minute + 30_000, Replicas: 3}, {At: 5 * minute, Replicas: 2}, {At: 7 * minute, Replicas: 4}}
	out := Simulate(stepScenario(), NewRecorded(steps, nil))
	if out.Reversals != 1 {
		t.Errorf("reversals %d, want 1 (the up 30 s after a down, not the one 2 minutes after)", out.Reversals)
	}
	// A floor: augur's minReplicas under a running HPA never lowers it.
	floor := Simulate(stepScenario(), NewRecorded([]Step{{At: 0, Replicas: 1}}, NewHPA(10, HPATarget, 5*time.Minute, 1, 100)))
	hpa := Simulate(stepScenario(), NewHPA(10, HPATarget, 5*time.Minute, 1, 100))
	if floor.PodHours != hpa.PodHours {
		t.Errorf("a minReplicas of 1 under the HPA: %v pod-hours, the HPA alone %v", floor.PodHours, hpa.PodHours)
	}
}

// TestCounterFromTrace checks the counter's rate over each trace step is
// the trace's value, and a negative value does not make it fall.
func TestCounterFromTrace(t *testing.T) {
	trace := []Point{{0, 4}, {minute, -3}, {2 * minute, 8}, {3 * minute, 1}}
	ts, vs := CounterFromTrace(trace, 15*time.Second)
	if len(ts) != 13 || ts[12] != 3*minute {
		t.Fatalf("samples at %v", ts)
	}
	rate := func(a, b int) float64 { return (vs[b] - vs[a]) * 1000 / float64(ts[b]-ts[a]) }
	if rate(0, 4) != 4 || rate(4, 8) != 0 || rate(8, 12) != 8 {
		t.Errorf("rates per step %v %v %v, want 4 0 8", rate(0, 4), rate(4, 8), rate(8, 12))
	}
}

// TestGaps reports a span with no sample longer than two steps.
func TestGaps(t *testing.T) {
	s := []Series{{Ts: []int64{0, 15_000, 30_000, 600_000, 615_000}}, {Ts: []int64{15_000, 630_000}}}
	g := Gaps(s, time.UnixMilli(0), time.UnixMilli(700_000), 15*time.Second)
	if len(g) != 2 || g[0].From != time.UnixMilli(30_000).UTC() || g[0].To != time.UnixMilli(600_000).UTC() ||
		g[1].From != time.UnixMilli(630_000).UTC() {
		t.Errorf("gaps %v", g)
	}
}
