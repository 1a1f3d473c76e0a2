package stream

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/detectors/anomaly"
	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/labels"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/models/bank"
	"github.com/augur-ops/augur/proto"
)

// env is what every shard of a stream shares: rules, parameters and the
// model constructors. It is immutable after newEnv.
type env struct {
	rules      *rules.Set
	key        []byte
	lateness   int64 // ms
	idle       int64 // ms
	sweepEvery int64 // ms
	newGroup   NewGroupDetector
	variant    func(*scaling.Config) // Config.ScalingVariant
	anomaly    []*anomaly.Detector   // per anomaly rule (nil for other rules)
	onBand     []bool                // per anomaly rule: alert on the band alarm, not the score
	fm         *forecastMetrics      // nil: not exported
	reports    *reports              // the actuators' reports; nil: none read
}

func newEnv(cfg *Config) (*env, error) {
	e := &env{
		rules:      cfg.Rules,
		key:        cfg.SigningKey,
		lateness:   cfg.AllowedLateness.Milliseconds(),
		idle:       cfg.IdleTimeout.Milliseconds(),
		sweepEvery: max(cfg.IdleTimeout.Milliseconds()/4, 1000),
		newGroup:   cfg.NewGroupDetector,
		variant:    cfg.ScalingVariant,
		anomaly:    make([]*anomaly.Detector, cfg.Rules.Len()),
		onBand:     make([]bool, cfg.Rules.Len()),
	}
	if cfg.ActionsTopic != "-" {
		e.reports = newReports()
	}
	for i := range cfg.Rules.Len() {
		if a := cfg.Rules.Rule(i).Anomaly; a != nil {
			d, err := anomaly.New(a.DetectorConfig())
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", cfg.Rules.Rule(i).Name, err)
			}
			e.anomaly[i] = d
			e.onBand[i] = a.AlertOn == "band"
		}
	}
	return e, nil
}

// newDetector returns the anomaly detector of a new series watched by rule w.
func (e *env) newDetector(w int32) *anomaly.Series { return e.anomaly[w].NewSeries() }

// newScaling returns the forecaster bank and scaler of a new scaling group.
func (e *env) newScaling(rule int, tenant string) (*bank.Bank, *scaling.Scaler) {
	r := e.rules.Rule(rule)
	b, err := bank.New(bankConfig(r.Scaling))
	if err == nil {
		c := scalerConfig(r, tenant)
		if e.variant != nil {
			e.variant(&c)
		}
		var sc *scaling.Scaler
		if sc, err = scaling.New(c); err == nil {
			return b, sc
		}
	}
	// Config.Validate built both configurations for every rule.
	panic(fmt.Sprintf("scaling models of rule %s: %v", r.Name, err))
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

// closeWindow feeds the signal of a closed window to the group's forecaster
// bank and asks the scaler for a decision from the first whole window on: a
// new bank serves the last value until another member earns it, so a new
// rule decides on the load it sees within two windows of its first sample.
//
// It also returns the window's forecast point for augur.forecasts, nil for
// a window the bank did not take.
func (e *env) closeWindow(g *group, end int64, value float64) ([]*proto.Decision, *proto.ForecastPoint) {
	r := e.rules.Rule(g.rule)
	sc := r.Scaling
	if !g.opened {
		// A new group's first window lacks the increase up to each series'
		// first sample (a counter's first sample has no rate): fed to the
		// bank, its low value would seed the forecast and widen the
		// interval. A restored bank has seen windows already.
		g.opened = true
		if g.fc.Steps() == 0 {
			return nil, nil
		}
	}
	g.fc.Update(end, value)
	f := g.fc.Forecast(sc.Horizon)
	e.fm.observe(r.Name, g, value, f)
	pt := &proto.ForecastPoint{Rule: r.Name, Tenant: g.tenant, Target: g.sc.Target(), WindowEnd: end, Observed: value,
		Forecast: f.Point, Lower: f.Lower, Upper: f.Upper, HorizonSeconds: f.Horizon.Seconds(), Model: f.Model}
	if g.fc.Steps() < minDecideSteps {
		pt.Decided = g.last
		return nil, pt
	}
	// Size on the peak of the forecast path up to the horizon, not only its
	// end: a rise that peaks before the horizon still needs the pods
	// (bench/scalesim measures this policy).
	cur, unapplied := e.current(g, end)
	in := scaling.Input{Now: unixMs(end), Forecast: g.sc.Peak(g.fc, value), Observed: value, CurrentReplicas: cur, Unapplied: unapplied}
	rec := g.sc.Recommend(in)
	ds := e.madeAtClose(g.sc.Decide(in))
	e.fm.recommend(r.Name, rec)
	for _, d := range ds {
		if d.Kind != proto.KindScale {
			continue
		}
		switch sc.Mode {
		case rules.ModeHPAMin:
			retarget(d, proto.KindSetHPAMin, "set minReplicas of %s to %d (from %d)", end)
		case rules.ModeReserveCapacity:
			retarget(d, proto.KindReserveCapacity, "size capacity reservation %s to %d pods (from %d)", end)
		}
		g.last, g.lastID, g.lastExp = d.Desired.Replicas, d.Id, d.ExpiresAt.AsTime().UnixMilli()
		e.sign(d)
	}
	pt.Recommended, pt.Decided = rec, g.last
	return ds, pt
}

// current returns the replicas a scaling group decides from and whether
// its last decision is known not to have been carried out while the
// replicas are unknown. The stream cannot see the workload: it takes the
// replicas the actuator last reported (augur.actions) when the report is
// about its last decision, or when that decision has expired (whatever
// happened to it, the report then tells the state of the target); until
// then, and without reports, it takes its last decision as applied.
func (e *env) current(g *group, end int64) (cur int32, unapplied bool) {
	rep, ok := e.reports.get(g.sc.Target())
	if !ok || (g.lastID != "" && rep.decisionID != g.lastID && end < g.lastExp) {
		return g.last, false
	}
	if rep.replicas > 0 {
		return rep.replicas, false
	}
	return g.last, !rep.applied
}

// madeAtClose gives decisions made when a window closed their whole
// time to live from that moment. A decision's CreatedAt is its window's
// end (event time), but the window closes only once the watermark passes
// it, allowed_lateness later; counted from the end, a TTL shorter than the
// lateness had expired before the decision was even written.
func (e *env) madeAtClose(ds []*proto.Decision) []*proto.Decision {
	for _, d := range ds {
		if d.ExpiresAt != nil {
			d.ExpiresAt = timestamppb.New(d.ExpiresAt.AsTime().Add(time.Duration(e.lateness) * time.Millisecond))
		}
	}
	return ds
}

// minDecideSteps is how many windows a scaling group's bank has seen before
// it decides.
const minDecideSteps = 1

// retarget turns the scaler's scale decision into the rule's mode: another
// kind (and so another id) and the summary's first clause.
func retarget(d *proto.Decision, kind, what string, end int64) {
	d.Kind = kind
	d.Id = proto.DecisionID(d.Rule, kind, d.Target, d.Desired, end)
	_, rest, _ := strings.Cut(d.Summary, ": ")
	d.Summary = fmt.Sprintf(what, d.Target, d.Desired.Replicas, d.Desired.PreviousReplicas) + ": " + rest
}

// restoreScaler rebuilds a group's scaler with its checkpointed
// stabilization window, last scale down and last decision.
func (e *env) restoreScaler(g *group, window []scaling.WindowEntry, lastDown int64, last int32, lastAt int64) {
	_, g.sc = e.newScaling(g.rule, g.tenant)
	g.sc.SetWindow(window)
	g.sc.SetLastDown(lastDown)
	g.sc.SetLast(last, lastAt)
}

// alertDecision makes the alert for a series whose anomaly score made a
// detection, or whose band went into alarm (alert_on: band).
func (e *env) alertDecision(key string, watch int, t int64, v float64, res anomaly.Result) *proto.Decision {
	r := e.rules.Rule(watch)
	tenant, lbls, _ := proto.ParseSeriesKey(key, nil)
	series := labels.Format(lbls, 0)
	target := "alert/" + r.Name + "/" + series
	model := "anomaly_score"
	summary := fmt.Sprintf("%s = %.4g is anomalous: anomaly score %.2f (the rule alerts at %.2f), forecast %.4g, band [%.4g, %.4g]",
		series, v, res.Score, r.Anomaly.Score, res.Forecast, res.Lower, res.Upper)
	if e.onBand[watch] {
		model = "anomaly_band"
		summary = fmt.Sprintf("%s = %.4g is outside its band [%.4g, %.4g] around the forecast %.4g in %d of the last %d samples (anomaly score %.2f)",
			series, v, res.Lower, res.Upper, res.Forecast, r.Anomaly.M, r.Anomaly.N, res.Score)
	}
	change := &proto.Change{Alert: &proto.Alert{Severity: r.Anomaly.Severity, Reason: model}}
	d := &proto.Decision{
		Id:      proto.DecisionID(r.Name, proto.KindAlert, target, change, t),
		Kind:    proto.KindAlert,
		Target:  target,
		Rule:    r.Name,
		Desired: change,
		Evidence: &proto.Evidence{
			Model:     model,
			Forecast:  proto.Finite(res.Forecast),
			Observed:  proto.Finite(v),
			BandLower: proto.Finite(res.Lower),
			BandUpper: proto.Finite(res.Upper),
			Score:     proto.Finite(res.Score),
			Signal:    series,
		},
		Confidence: proto.Finite(max(res.Score, 0.5)),
		CreatedAt:  timestamppb.New(time.UnixMilli(t)),
		ExpiresAt:  timestamppb.New(time.UnixMilli(t).Add(15 * time.Minute)),
		Tenant:     tenant,
		Summary:    summary,
	}
	e.sign(d)
	return d
}

func (e *env) sign(d *proto.Decision) {
	proto.FiniteDecision(d)
	// Sign only fails when the message does not marshal, which a Decision
	// built from finite numbers and UTF-8 strings always does.
	if err := proto.Sign(d, e.key); err != nil {
		panic(fmt.Sprintf("sign decision %s: %v", d.Id, err))
	}
}
