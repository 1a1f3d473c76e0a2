package main

import (
	"math"
	"slices"
	"time"

	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/models/backtest"
	"github.com/augur-ops/augur/models/bank"
)

// scenario is one replay: a trace used as request load, the capacity of a
// pod and the pod start time.
type scenario struct {
	pts      []backtest.Point
	capacity float64       // load one pod serves at 100%
	start    time.Duration // pod start (created to ready)
	tick     time.Duration // control loop period
	warmup   time.Duration // leading span not scored
	minPods  int32
	maxPods  int32
}

// outcome is what a policy cost and missed.
type outcome struct {
	underMin  float64 // minutes with demand above ready capacity
	podHours  float64 // pods that exist (starting or ready) × hours
	shortfall float64 // integral of unserved load, load × minutes
	// reversals counts scale ups within a minute of a scale down: pods
	// removed and started again, the churn a policy that scales down too
	// eagerly pays in restarts the pod-hours do not show.
	reversals int
}

// policy decides the replicas wanted at each tick.
type policy interface {
	// observe is called with every sample when it becomes available.
	observe(ts int64, v float64)
	// want returns the replicas wanted at now, given the pods that exist.
	want(now int64, cur int32) int32
}

// demandAt interpolates the trace linearly.
func demandAt(pts []backtest.Point, i *int, t int64) float64 {
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

// run replays sc under p.
func run(sc scenario, p policy) outcome {
	var out outcome
	tick := sc.tick.Milliseconds()
	startMs := sc.start.Milliseconds()
	t0 := sc.pts[0].Ts
	score := t0 + sc.warmup.Milliseconds()
	// pods holds the ready time of each existing pod, sorted.
	n0 := scaling.Replicas(sc.pts[0].Value, sc.capacity*0.7, sc.minPods, sc.maxPods)
	pods := make([]int64, n0)
	for i := range pods {
		pods[i] = t0
	}
	next, di := 0, 0
	lastDown := int64(math.MinInt64)
	end := sc.pts[len(sc.pts)-1].Ts
	for t := t0; t <= end; t += tick {
		for next < len(sc.pts) && sc.pts[next].Ts <= t {
			p.observe(sc.pts[next].Ts, sc.pts[next].Value)
			next++
		}
		w := p.want(t, int32(len(pods)))
		switch {
		case int(w) > len(pods):
			if t-lastDown <= 60_000 && t >= score {
				out.reversals++
			}
			for len(pods) < int(w) {
				pods = append(pods, t+startMs)
			}
		case int(w) < len(pods):
			// Remove the pods that are not ready first (newest).
			slices.Sort(pods)
			pods = pods[:w]
			lastDown = t
		}
		d := demandAt(sc.pts, &di, t)
		ready := 0
		for _, r := range pods {
			if r <= t {
				ready++
			}
		}
		if t < score {
			continue
		}
		mins := float64(tick) / 60000
		if c := float64(ready) * sc.capacity; d > c {
			out.underMin += mins
			out.shortfall += (d - c) * mins
		}
		out.podHours += float64(len(pods)) * mins / 60
	}
	return out
}

// hpa is the reactive policy of the Kubernetes HPA: desired = ceil(current ×
// utilisation / target) on the latest metric, a 10% tolerance, scale up at
// once, scale down to the highest recommendation of the last 5 minutes.
type hpa struct {
	capacity float64
	target   float64
	stab     int64
	last     float64
	has      bool
	recs     []struct {
		at int64
		n  int32
	}
	min, max int32
}

func (h *hpa) observe(_ int64, v float64) { h.last, h.has = v, true }

func (h *hpa) want(now int64, cur int32) int32 {
	if !h.has || cur == 0 {
		return max(cur, h.min)
	}
	util := h.last / (float64(cur) * h.capacity)
	ratio := util / h.target
	rec := cur
	if math.Abs(ratio-1) > 0.1 {
		rec = int32(math.Ceil(float64(cur) * ratio))
	}
	rec = min(max(rec, h.min), h.max)
	cut := now - h.stab
	i := 0
	for i < len(h.recs) && h.recs[i].at < cut {
		i++
	}
	h.recs = append(h.recs[:0], h.recs[i:]...)
	h.recs = append(h.recs, struct {
		at int64
		n  int32
	}{now, rec})
	if rec >= cur {
		return rec
	}
	w := rec
	for _, r := range h.recs {
		w = max(w, r.n)
	}
	return min(w, cur)
}

// predictive is augur: the forecaster bank is fed every sample and
// detectors/scaling decides every tick on the peak of the forecast path up
// to its horizon (Scaler.Peak).
type predictive struct {
	b     *bank.Bank
	s     *scaling.Scaler
	lastV float64
	res   bank.Result
	has   bool
	// floor, when set, is an HPA that keeps running: augur only raises
	// its minReplicas (mode hpa_min), so the replicas are the larger of
	// the two.
	floor *hpa
}

func (p *predictive) observe(ts int64, v float64) {
	p.b.Update(ts, v)
	p.lastV, p.has = v, true
	p.res = p.s.Peak(p.b, v)
}

func (p *predictive) want(now int64, cur int32) int32 {
	if p.floor != nil {
		p.floor.observe(0, p.lastV)
		r := p.floor.want(now, cur)
		if !p.has {
			return r
		}
		return max(r, p.scale(now, cur))
	}
	if !p.has {
		return cur
	}
	return p.scale(now, cur)
}

func (p *predictive) scale(now int64, cur int32) int32 {
	ds := p.s.Decide(scaling.Input{Now: time.UnixMilli(now), Forecast: p.res, Observed: p.lastV, CurrentReplicas: cur})
	for _, d := range ds {
		if d.GetDesired().GetReplicas() > 0 && d.Kind == "scale" {
			return d.Desired.Replicas
		}
	}
	return cur
}

// oracle knows the load ahead: it runs the pods that the peak load over the
// next lead (pod start plus one tick) needs at utilisation u, with no
// stabilization. It bounds what any forecast could do with these pods.
type oracle struct {
	pts      []backtest.Point
	capacity float64
	u        float64
	lead     int64 // ms
	min, max int32
	i        int
}

func (o *oracle) observe(int64, float64) {}

func (o *oracle) want(now int64, _ int32) int32 {
	pk := 0.0
	i := o.i
	for t := now; t <= now+o.lead; t += 5000 {
		pk = max(pk, demandAt(o.pts, &i, t))
	}
	for o.i+1 < len(o.pts) && o.pts[o.i+1].Ts <= now {
		o.i++
	}
	return scaling.Replicas(pk, o.capacity*o.u, o.min, o.max)
}
