package stream

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// env is what every shard of a stream shares: rules, parameters and the
// model constructors. It is immutable after newEnv.
type env struct {
	rules      *rules.Set
	key        []byte
	lateness   int64 // ms
	idle       int64 // ms
	sweepEvery int64 // ms
	newDet     NewSeriesDetector
	newFc      NewForecaster
	newGroup   NewGroupDetector
	bands      []*bandParams // per anomaly rule, for the built-in band
	warmup     uint32        // windows a group needs before it decides
}

func newEnv(cfg *Config) *env {
	e := &env{
		rules:      cfg.Rules,
		key:        cfg.SigningKey,
		lateness:   cfg.AllowedLateness.Milliseconds(),
		idle:       cfg.IdleTimeout.Milliseconds(),
		sweepEvery: max(cfg.IdleTimeout.Milliseconds()/4, 1000),
		newDet:     cfg.NewSeriesDetector,
		newFc:      cfg.NewForecaster,
		newGroup:   cfg.NewGroupDetector,
		bands:      make([]*bandParams, cfg.Rules.Len()),
		warmup:     3,
	}
	for i := range cfg.Rules.Len() {
		if a := cfg.Rules.Rule(i).Anomaly; a != nil {
			e.bands[i] = bandParamsFor(a)
		}
	}
	return e
}

func (e *env) newDetector(w int32) SeriesDetector {
	if e.newDet != nil {
		return e.newDet(e.rules.Rule(int(w)).Anomaly)
	}
	return &EWMABand{p: e.bands[w]}
}

func (e *env) newForecaster(rule int) Forecaster {
	if e.newFc != nil {
		return e.newFc(e.rules.Rule(rule).Scaling)
	}
	return NewHoltBaseline(e.rules.Rule(rule).Scaling)
}

// windowMs returns the window of a workload rule in milliseconds.
func (e *env) windowMs(rule int) int64 {
	r := e.rules.Rule(rule)
	switch {
	case r.Scaling != nil:
		return r.Scaling.Window.Milliseconds()
	case r.GrayFailure != nil:
		return r.GrayFailure.Window.Milliseconds()
	case r.GPU != nil:
		return r.GPU.Window.Milliseconds()
	}
	return 60_000
}

// groupDecisions signs the decisions of a group detector, filling the
// tenant and rule when the detector left them empty.
func (e *env) groupDecisions(g *group, ds []*proto.Decision) []*proto.Decision {
	r := e.rules.Rule(g.rule)
	for _, d := range ds {
		if d.Tenant == "" {
			d.Tenant = g.tenant
		}
		if d.Rule == "" {
			d.Rule = r.Name
		}
		e.sign(d)
	}
	return ds
}

// KubeTarget returns the decision target of a Kubernetes object:
// k8s/<lowercase kind>/<namespace>/<name>.
func KubeTarget(o rules.KubeObject) string {
	return "k8s/" + strings.ToLower(o.Kind) + "/" + o.Namespace + "/" + o.Name
}

// closeWindow feeds the signal of a closed window to the group's forecaster
// and returns a scaling decision when the replicas it wants change: at once
// when more are needed, after the rule's scale-down delay when fewer are.
func (e *env) closeWindow(g *group, end int64, value float64) *proto.Decision {
	r := e.rules.Rule(g.rule)
	sc := r.Scaling
	g.fc.Update(end, value)
	g.lastValue = value
	if g.closed < math.MaxUint32 {
		g.closed++
	}
	if g.closed < e.warmup {
		return nil
	}
	point, lo, hi, ok := g.fc.Forecast(sc.Horizon)
	if !ok {
		return nil
	}
	need := max(hi, value)
	want := int32(min(math.Ceil(need/sc.CapacityPerPod), float64(sc.MaxReplicas)))
	want = max(want, sc.MinReplicas)
	switch {
	case g.last == 0 || want > g.last:
		g.downSince = 0
	case want == g.last:
		g.downSince = 0
		return nil
	default: // want < g.last: scale down slowly
		if g.downSince == 0 {
			g.downSince, g.downMax = end, want
			return nil
		}
		g.downMax = max(g.downMax, want)
		if end-g.downSince < sc.ScaleDownDelay.Milliseconds() {
			return nil
		}
		want = g.downMax
		g.downSince = 0
		if want == g.last {
			return nil
		}
	}
	prev := g.last
	g.last = want
	kind := proto.KindScale
	switch sc.Mode {
	case rules.ModeHPAMin:
		kind = proto.KindSetHPAMin
	case rules.ModeReserveCapacity:
		kind = proto.KindReserveCapacity
	}
	target := KubeTarget(sc.Target)
	change := &proto.Change{
		Object:           &proto.KubeObject{Kind: sc.Target.Kind, Namespace: sc.Target.Namespace, Name: sc.Target.Name},
		Replicas:         want,
		PreviousReplicas: prev,
	}
	from := fmt.Sprintf("from %d", prev)
	if prev == 0 {
		from = "first decision"
	}
	var what string
	switch sc.Mode {
	case rules.ModeHPAMin:
		what = fmt.Sprintf("set minReplicas of %s to %d (%s)", target, want, from)
	case rules.ModeReserveCapacity:
		what = fmt.Sprintf("size capacity reservation %s to %d pods (%s)", target, want, from)
	default:
		what = fmt.Sprintf("scale %s to %d replicas (%s)", target, want, from)
	}
	d := &proto.Decision{
		Id:      proto.DecisionID(r.Name, kind, target, change, end),
		Kind:    kind,
		Target:  target,
		Rule:    r.Name,
		Desired: change,
		Evidence: &proto.Evidence{
			Model:          "holt_baseline",
			HorizonSeconds: sc.Horizon.Seconds(),
			Forecast:       proto.Finite(point),
			Lower:          proto.Finite(lo),
			Upper:          proto.Finite(hi),
			Observed:       proto.Finite(value),
			CapacityPerPod: sc.CapacityPerPod,
			Signal:         "sum(rate(" + sc.Selector + "))",
		},
		Confidence: confidence(point, lo, hi),
		CreatedAt:  timestamppb.New(time.UnixMilli(end)),
		ExpiresAt:  timestamppb.New(time.UnixMilli(end).Add(sc.DecisionTTL)),
		Tenant:     g.tenant,
		Summary: fmt.Sprintf("%s: load %.4g/s now, forecast %.4g/s (up to %.4g/s) in %s, %.4g/s per pod",
			what, value, point, hi, sc.Horizon, sc.CapacityPerPod),
	}
	if e.newFc != nil {
		d.Evidence.Model = "forecaster"
	}
	e.sign(d)
	return d
}

// confidence is 1 for a tight interval and falls as it widens relative to
// the forecast.
func confidence(point, lo, hi float64) float64 {
	if !(point > 0) || !(hi >= lo) {
		return 0.5
	}
	return proto.Finite(1 / (1 + (hi-lo)/(2*point)))
}

// alertDecision makes the alert for a series whose band went into alarm.
func (e *env) alertDecision(key string, watch int, t int64, v, score, lo, hi float64) *proto.Decision {
	r := e.rules.Rule(watch)
	tenant, lbls, _ := parseSeriesKey(key, nil)
	series := formatLabels(lbls)
	target := "alert/" + r.Name + "/" + series
	change := &proto.Change{Alert: &proto.Alert{Severity: r.Anomaly.Severity, Reason: "anomaly_band"}}
	d := &proto.Decision{
		Id:      proto.DecisionID(r.Name, proto.KindAlert, target, change, t),
		Kind:    proto.KindAlert,
		Target:  target,
		Rule:    r.Name,
		Desired: change,
		Evidence: &proto.Evidence{
			Model:     "ewma_band",
			Observed:  proto.Finite(v),
			BandLower: proto.Finite(lo),
			BandUpper: proto.Finite(hi),
			Score:     proto.Finite(score),
			Signal:    series,
		},
		Confidence: proto.Finite(score),
		CreatedAt:  timestamppb.New(time.UnixMilli(t)),
		ExpiresAt:  timestamppb.New(time.UnixMilli(t).Add(15 * time.Minute)),
		Tenant:     tenant,
		Summary: fmt.Sprintf("%s = %.4g is outside its band [%.4g, %.4g] in %d of the last %d samples",
			series, v, lo, hi, r.Anomaly.M, r.Anomaly.N),
	}
	if e.newDet != nil {
		d.Evidence.Model = "anomaly_band"
	}
	e.sign(d)
	return d
}

func (e *env) sign(d *proto.Decision) {
	// Sign only fails when the message does not marshal, which a Decision
	// built from finite numbers and UTF-8 strings always does.
	if err := proto.Sign(d, e.key); err != nil {
		panic(fmt.Sprintf("sign decision %s: %v", d.Id, err))
	}
}

// formatLabels writes labels in the Prometheus text form: name{k="v",...}.
func formatLabels(lbls []proto.Label) string {
	var b strings.Builder
	name := ""
	for _, l := range lbls {
		if l.Name == "__name__" {
			name = l.Value
		}
	}
	b.WriteString(name)
	b.WriteByte('{')
	first := true
	for _, l := range lbls {
		if l.Name == "__name__" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}
