package whatif

import (
	"math"
	"slices"
	"time"

	"github.com/augur-ops/augur/detectors/scaling"
)

// Point is one value of a series at a time (unix ms).
type Point struct {
	Ts    int64
	Value float64
}

// Scenario is one replay of a workload's load against pods: the load per
// second at the end of each aggregation window, what one pod serves and how
// long it takes to start.
type Scenario struct {
	// Demand is the load, one point per window end, ascending; it is taken
	// linear between points.
	Demand []Point
	// Capacity is the load one pod serves at 100%: demand above ready pods
	// × Capacity is under-provisioned.
	Capacity float64
	// PodStart is how long a new pod takes from created to ready.
	PodStart time.Duration
	// Tick is the control period of the simulated HPA and the scoring step.
	Tick time.Duration
	// Seen is how long after a window's end a policy sees its load: the
	// stream's allowed lateness, after which it closes the window.
	Seen time.Duration
	// Warmup is the leading span played but not scored.
	Warmup time.Duration
	// MinPods and MaxPods bound the replicas; the run starts with what the
	// first point needs at the HPA's target.
	MinPods, MaxPods int32
}

// Step is a replica count from a time on.
type Step struct {
	At       int64 // unix ms
	Replicas int32
}

// Outcome is what a policy cost and missed in a Scenario.
type Outcome struct {
	// UnderProvisionedMinutes are minutes with demand above the capacity of
	// the ready pods.
	UnderProvisionedMinutes float64 `json:"under_provisioned_minutes"`
	// PodHours counts the pods that exist (starting or ready) × hours.
	PodHours float64 `json:"pod_hours"`
	// Shortfall is the integral of unserved load, load × minutes.
	Shortfall float64 `json:"shortfall"`
	// Reversals counts scale ups within a minute of a scale down: pods
	// removed and started again, the churn a policy that scales down too
	// eagerly pays in restarts the pod-hours do not show.
	Reversals int `json:"reversals"`
	// Replicas are the pods that exist over time (every change).
	Replicas []Step `json:"-"`
}

// Policy decides the replicas wanted at each tick.
type Policy interface {
	// Observe is called with every demand point once the policy can see it.
	Observe(ts int64, v float64)
	// Want returns the replicas wanted at now, given the pods that exist.
	Want(now int64, cur int32) int32
}

// HPATarget is the utilisation the simulated HPA keeps pods at, and at which
// a pod serves a scaling rule's capacity_per_pod.
const HPATarget = 0.7

// DemandAt interpolates the demand linearly; i is a cursor kept between
// calls with non-decreasing t.
func DemandAt(pts []Point, i *int, t int64) float64 {
	for *i+1 < len(pts) && pts[*i+1].Ts <= t {
		*i++
	}
	if *i+1 >= len(pts) {
		return pts[len(pts)-1].Value
	}
	a, b := pts[*i], pts[*i+1]
	if t <= a.Ts {
		return a.Value
	}
	f := float64(t-a.Ts) / float64(b.Ts-a.Ts)
	return a.Value + f*(b.Value-a.Value)
}

// Simulate replays sc under p. New pods are ready PodStart after the tick that
// created them; pods removed are the newest first. A tick stands for the
// time to the next one, cut to the scored span, from the first point plus
// Warmup to the last point: the outcome covers exactly the data's span
// after the warmup.
func Simulate(sc Scenario, p Policy) Outcome {
	var out Outcome
	if len(sc.Demand) == 0 {
		return out
	}
	tick := sc.Tick.Milliseconds()
	startMs := sc.PodStart.Milliseconds()
	seen := sc.Seen.Milliseconds()
	t0 := sc.Demand[0].Ts
	score := t0 + sc.Warmup.Milliseconds()
	// pods holds the ready time of each existing pod.
	n0 := scaling.Replicas(sc.Demand[0].Value, sc.Capacity*HPATarget, sc.MinPods, sc.MaxPods)
	pods := make([]int64, n0)
	for i := range pods {
		pods[i] = t0
	}
	out.Replicas = append(out.Replicas, Step{At: t0, Replicas: n0})
	next, di := 0, 0
	lastDown := int64(math.MinInt64)
	end := sc.Demand[len(sc.Demand)-1].Ts
	for t := t0; t < end; t += tick {
		for next < len(sc.Demand) && sc.Demand[next].Ts+seen <= t {
			p.Observe(sc.Demand[next].Ts, sc.Demand[next].Value)
			next++
		}
		w := p.Want(t, int32(len(pods)))
		switch {
		case int(w) > len(pods):
			if lastDown != math.MinInt64 && t-lastDown <= 60_000 && t >= score {
				out.Reversals++
			}
			for len(pods) < int(w) {
				pods = append(pods, t+startMs)
			}
		case int(w) < len(pods):
			slices.Sort(pods)
			pods = pods[:w]
			lastDown = t
		}
		if n := int32(len(pods)); n != out.Replicas[len(out.Replicas)-1].Replicas {
			out.Replicas = append(out.Replicas, Step{At: t, Replicas: n})
		}
		d := DemandAt(sc.Demand, &di, t)
		ready := 0
		for _, r := range pods {
			if r <= t {
				ready++
			}
		}
		from, to := max(t, score), min(t+tick, end)
		if from >= to {
			continue
		}
		mins := float64(to-from) / 60000
		if c := float64(ready) * sc.Capacity; d > c {
			out.UnderProvisionedMinutes += mins
			out.Shortfall += (d - c) * mins
		}
		out.PodHours += float64(len(pods)) * mins / 60
	}
	return out
}

// HPA is the reactive policy of the Kubernetes HPA: desired = ceil(current
// × utilisation / target) on the latest load, a 10% tolerance, scale up at
// once, scale down to the highest recommendation of the stabilization
// window.
type HPA struct {
	capacity, target float64
	stab             int64
	min, max         int32
	last             float64
	has              bool
	recs             []Step
}

// NewHPA returns the HPA of pods serving capacity at 100%, keeping them at
// target utilisation, with a scale-down stabilization of stab.
func NewHPA(capacity, target float64, stab time.Duration, lo, hi int32) *HPA {
	return &HPA{capacity: capacity, target: target, stab: stab.Milliseconds(), min: lo, max: hi}
}

// Observe implements Policy.
func (h *HPA) Observe(_ int64, v float64) { h.last, h.has = v, true }

// Want implements Policy.
func (h *HPA) Want(now int64, cur int32) int32 {
	if !h.has || cur == 0 {
		return max(cur, h.min)
	}
	util := h.last / (float64(cur) * h.capacity)
	ratio := util / h.target
	rec := cur
	if math.Abs(ratio-1) > scaling.HPATolerance {
		rec = int32(math.Ceil(float64(cur) * ratio))
	}
	rec = min(max(rec, h.min), h.max)
	cut := now - h.stab
	i := 0
	for i < len(h.recs) && h.recs[i].At < cut {
		i++
	}
	h.recs = append(h.recs[:0], h.recs[i:]...)
	h.recs = append(h.recs, Step{At: now, Replicas: rec})
	if rec >= cur {
		return rec
	}
	w := rec
	for _, r := range h.recs {
		w = max(w, r.Replicas)
	}
	return min(w, cur)
}

// Recorded replays replicas decided ahead of time: from each step's time
// on, its replicas are wanted (the pods already there before the first
// step are kept). With a floor (an HPA that keeps running while augur sets
// its minReplicas) the larger of the two is wanted.
type Recorded struct {
	steps []Step
	i     int
	floor *HPA
}

// NewRecorded returns the policy that follows steps (ascending in time);
// floor may be nil.
func NewRecorded(steps []Step, floor *HPA) *Recorded { return &Recorded{steps: steps, floor: floor} }

// Observe implements Policy.
func (r *Recorded) Observe(ts int64, v float64) {
	if r.floor != nil {
		r.floor.Observe(ts, v)
	}
}

// Want implements Policy.
func (r *Recorded) Want(now int64, cur int32) int32 {
	for r.i < len(r.steps) && r.steps[r.i].At <= now {
		r.i++
	}
	w := cur
	if r.i > 0 {
		w = r.steps[r.i-1].Replicas
	}
	if r.floor != nil {
		w = max(w, r.floor.Want(now, cur))
	}
	return w
}
