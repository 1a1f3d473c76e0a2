// Package scaling turns a workload's load forecast into replica decisions:
// required replicas = ceil(upper bound of the forecast at the horizon /
// capacity per pod), clamped to [min, max], and never below what the
// observed load needs; up at once, down only after a stabilization window
// (which holds what the observed load needed for Stabilization and whole
// recommendations, the forecast's headroom included, for the shorter
// ForecastHold) and by a bounded step, and, for ReversalGuard after a scale
// down, up only for what the observed load needs beyond the HPA's
// tolerance. The stream turns a scale decision into the rule's mode
// (set_hpa_min, reserve_capacity: the placeholder Deployment sized so the
// node autoscaler provisions ahead).
//
// It is pure: the caller passes the forecast, the observed state and the
// event time, and gets unsigned *proto.Decision values back (the stream
// signs them and writes them in its transaction).
package scaling

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/models"
	"github.com/augur-ops/augur/models/bank"
	"github.com/augur-ops/augur/proto"
)

// Config configures a Scaler. Zero values mean the documented default.
type Config struct {
	// Rule names the rule in the decisions.
	Rule string
	// Target is the workload scaled (Kind defaults to Deployment).
	Target Object
	// Signal describes the forecast signal in the evidence.
	Signal string
	// Tenant is copied into the decisions.
	Tenant string
	// CapacityPerPod is the load one pod serves at its target utilisation;
	// > 0, in the forecast's unit.
	CapacityPerPod float64
	// MinReplicas defaults to 2; MaxReplicas is required (≥ MinReplicas).
	MinReplicas, MaxReplicas int32
	// Horizon is how far ahead the forecast looks: pod start plus node
	// provisioning. Default 5m, at most 30m.
	Horizon time.Duration
	// Stabilization is how long the replicas the observed load needed are
	// kept before a scale down: the scaler scales down to the largest of
	// the current recommendation, what the load observed during the window
	// needed (as the HPA does with its own recommendations) and the
	// recommendations of the last ForecastHold. Default 5m.
	Stabilization time.Duration
	// ForecastHold is how long whole recommendations, the part only the
	// forecast asked for (a peak ahead, the interval's headroom) included,
	// are kept before a scale down. Every new forecast renews that part, so
	// holding it for the whole Stabilization keeps the pods of a rise that
	// did not come, or of a peak that has passed, a window longer; not
	// holding it at all scales down and straight up again as successive
	// forecasts move. bench/scalesim measured both ends (RESULTS-forecast.md).
	// Default 2m, or Stabilization when that is shorter; at most
	// Stabilization (which restores whole-window holding); negative: the
	// forecast's part is not held.
	ForecastHold time.Duration
	// MaxScaleDown is the largest share of the current replicas removed by
	// one decision (at least one pod). Default 0.5.
	MaxScaleDown float64
	// MaxScaleUp is the largest share of the current replicas added by one
	// decision (at least one pod); the scaler recomputes every call, so a
	// large rise takes a few calls. Default 0.5. The stream sets no bound
	// (the HPA's default scale-up) and leaves bounded steps to the
	// actuator's max_step guardrail.
	MaxScaleUp float64
	// DecisionTTL is how long a decision stays valid, from Input.Now; a
	// decision that was not carried out is repeated after it while the
	// need persists. Default 2m.
	DecisionTTL time.Duration
	// IntervalCap bounds how far the upper bound may lift the load sized
	// above the point forecast, as a multiple of the point: the scaler sizes
	// on min(upper, point × (1 + IntervalCap)) (on the point when it is
	// negative). The interval adapts to
	// recent errors, so after a burst it stays wide for hours and, uncapped,
	// keeps the burst's pods all that time without predicting the next
	// burst; the observed load still sizes the workload whatever the cap.
	// Default 0: no cap. Must be ≥ 0; a small cap (under 1) sizes close to
	// the point forecast.
	IntervalCap float64
	// ReversalGuard is how long after a scale down the scaler scales up
	// only when the observed load needs more than the current replicas by
	// more than the HPA's tolerance (HPATolerance), not for the forecast's
	// headroom nor for a pod or so more: successive forecasts and samples
	// move by a pod or so, and following them straight back up removes
	// pods and starts them again (a reversal). 0: no guard.
	ReversalGuard time.Duration
}

// HPATolerance is the Kubernetes HPA's default tolerance
// (--horizontal-pod-autoscaler-tolerance): it leaves the replicas alone
// while the load needs them within 10%. The scaler applies it during
// ReversalGuard; internal/whatif's HPA baseline applies it always.
const HPATolerance = 0.1

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	if c.Target.Kind == "" {
		c.Target.Kind = "Deployment"
	}
	if c.MinReplicas == 0 {
		c.MinReplicas = 2
	}
	if c.Horizon == 0 {
		c.Horizon = 5 * time.Minute
	}
	if c.Stabilization == 0 {
		c.Stabilization = 5 * time.Minute
	}
	if c.ForecastHold == 0 {
		c.ForecastHold = min(2*time.Minute, c.Stabilization)
	}
	if c.MaxScaleDown == 0 {
		c.MaxScaleDown = 0.5
	}
	if c.MaxScaleUp == 0 {
		c.MaxScaleUp = 0.5
	}
	if c.DecisionTTL == 0 {
		c.DecisionTTL = 2 * time.Minute
	}
}

// Validate fills the zero fields of c with their defaults and reports
// whether c is usable.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.Target.Name == "" || c.Target.Namespace == "":
		return errors.New("scaling target: namespace and name are required")
	case !(c.CapacityPerPod > 0) || math.IsInf(c.CapacityPerPod, 0):
		return fmt.Errorf("scaling capacity per pod %v: must be > 0", c.CapacityPerPod)
	case c.MinReplicas < 1 || c.MaxReplicas < c.MinReplicas:
		return fmt.Errorf("scaling replicas [%d, %d]: need 1 <= min <= max", c.MinReplicas, c.MaxReplicas)
	case c.Horizon < 0 || c.Horizon > 30*time.Minute:
		return fmt.Errorf("scaling horizon %v: must be in (0, 30m]", c.Horizon)
	case c.Stabilization < 0:
		return fmt.Errorf("scaling stabilization %v: must be ≥ 0", c.Stabilization)
	case c.ForecastHold > c.Stabilization:
		return fmt.Errorf("scaling forecast hold %v: must be at most the stabilization %v", c.ForecastHold, c.Stabilization)
	case !(c.MaxScaleDown > 0 && c.MaxScaleDown <= 1):
		return fmt.Errorf("scaling max scale down %v: must be in (0, 1]", c.MaxScaleDown)
	case !(c.MaxScaleUp > 0):
		return fmt.Errorf("scaling max scale up %v: must be > 0", c.MaxScaleUp)
	case c.DecisionTTL <= 0:
		return fmt.Errorf("scaling decision ttl %v: must be > 0", c.DecisionTTL)
	case c.ReversalGuard < 0:
		return fmt.Errorf("scaling reversal guard %v: must be ≥ 0", c.ReversalGuard)
	case !(c.IntervalCap >= 0) || math.IsInf(c.IntervalCap, 0):
		return fmt.Errorf("scaling interval cap %v: must be a finite number ≥ 0", c.IntervalCap)
	}
	return nil
}

// Object names a Kubernetes object.
type Object struct {
	// Kind is Deployment (default) or StatefulSet.
	Kind      string
	Namespace string
	Name      string
}

// Input is what the Scaler decides on.
type Input struct {
	// Now is the event time of the decision (the last sample's time).
	Now time.Time
	// Forecast is the bank's forecast at Config.Horizon (or the peak of its
	// upper bound over the horizon, which is at least as safe).
	Forecast bank.Result
	// Observed is the latest observed load.
	Observed float64
	// CurrentReplicas is the workload's replicas as observed, 0 when
	// unknown (the scaler then assumes its last decision was applied).
	CurrentReplicas int32
	// Unapplied is true when the last decision is known not to have been
	// carried out (refused, deferred, failed, expired) and CurrentReplicas
	// is unknown: the decision is then made again after DecisionTTL even
	// when it equals the last one.
	Unapplied bool
}

// Replicas returns ceil(load / capacity) clamped to [lo, hi]; a load that is
// NaN or not positive gives lo, +Inf gives hi.
func Replicas(load, capacity float64, lo, hi int32) int32 {
	if !(load > 0) || !(capacity > 0) {
		return lo
	}
	n := math.Ceil(load / capacity)
	if n >= float64(hi) {
		return hi
	}
	return max(int32(n), lo)
}

// WindowEntry is one entry of a Scaler's stabilization window: what a
// decision at At recommended and the part of it held for the whole window.
type WindowEntry struct {
	At        int64 // unix ms
	Hold      int32 // replicas the observed load needed (Hold)
	Recommend int32 // the whole recommendation
}

// MaxWindow bounds the stabilization window's memory, in entries.
const MaxWindow = 4096

// Scaler decides the replicas of one workload. It is not safe for
// concurrent use (one owner per workload). Its state is the stabilization
// window (the held replicas of the last decisions, see Hold) and what it
// last decided; it is small and rebuilds within one window after a restart.
type Scaler struct {
	cfg      Config
	target   string
	recs     []WindowEntry
	last     int32 // replicas last decided (0 none)
	lastAt   int64
	lastDown int64 // unix ms of the last scale down decided (0 none)
}

// New returns a Scaler for cfg.
func New(cfg Config) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Scaler{cfg: cfg, target: Target(&cfg.Target)}
	return s, nil
}

// Target returns the decision target of a Kubernetes object:
// k8s/<lowercase kind>/<namespace>/<name>.
func Target(o *Object) string {
	return "k8s/" + strings.ToLower(o.Kind) + "/" + o.Namespace + "/" + o.Name
}

// Target returns the scaler's decision target (see the function Target).
func (s *Scaler) Target() string { return s.target }

// Recommend returns the replicas the forecast asks for, before
// stabilization and step bounds: ceil(max(Load(forecast), observed) /
// capacity), clamped. A forecast that is not a number sizes on the
// observed load alone.
func (s *Scaler) Recommend(in Input) int32 {
	load := s.Load(in.Forecast.Forecast)
	if in.Observed > load || !(load < math.Inf(1)) { // a diverged forecast: NaN or +Inf
		load = in.Observed
	}
	return Replicas(load, s.cfg.CapacityPerPod, s.cfg.MinReplicas, s.cfg.MaxReplicas)
}

// Load returns the load the scaler sizes on for one forecast: its upper
// bound, or, when IntervalCap is set, min(upper, point + IntervalCap ×
// max(point, 0)).
func (s *Scaler) Load(f models.Forecast) float64 {
	if s.cfg.IntervalCap > 0 {
		return min(f.Upper, f.Point+s.cfg.IntervalCap*max(f.Point, 0))
	}
	return f.Upper
}

// Peak returns the forecast of b to decide on after its last sample, when
// the load observed then was observed: over the path from now to
// Config.Horizon, taken linear between the bank's steps (as the load moves
// between samples), Point is the largest point forecast and Upper the
// largest Load. The other fields are those of the forecast at the first
// step at or after the horizon, but Horizon, which is Config.Horizon when
// the bank sees that far. Sizing on the whole path scales up for a
// rise that peaks before the horizon; scaling down is left to the
// stabilization window. It costs one Forecast per step of the horizon and
// allocates nothing.
func (s *Scaler) Peak(b *bank.Bank, observed float64) bank.Result {
	step := b.Config().Step
	h := s.cfg.Horizon
	prevP, prevL := observed, observed
	pkP, pkL := observed, observed
	for at := step; ; at += step {
		r := b.Forecast(at)
		p, l := r.Point, s.Load(r.Forecast)
		if at < h && r.Horizon >= at {
			pkP, pkL = max(pkP, p), max(pkL, l)
			prevP, prevL = p, l
			continue
		}
		// The horizon falls within this step, or the bank sees no further:
		// the path ends there.
		f := 1.0
		if r.Horizon >= at {
			f = float64(h-(at-step)) / float64(step)
			r.Horizon = h // the values are the horizon's, not the step's
		}
		r.Point = max(pkP, prevP+f*(p-prevP))
		r.Upper = max(pkL, prevL+f*(l-prevL))
		return r
	}
}

// Hold returns the replicas the stabilization window keeps for in for the
// whole Stabilization: what the observed load needs, clamped. It is at most
// Recommend(in).
func (s *Scaler) Hold(in Input) int32 {
	return Replicas(in.Observed, s.cfg.CapacityPerPod, s.cfg.MinReplicas, s.cfg.MaxReplicas)
}

// LastDown returns when the scaler last decided a scale down (unix ms, 0
// none), for a checkpoint.
func (s *Scaler) LastDown() int64 { return s.lastDown }

// Last returns the replicas the scaler last decided (0 none) and when (unix
// ms), for a checkpoint: a decision equal to the last one is not repeated
// within DecisionTTL.
func (s *Scaler) Last() (replicas int32, at int64) { return s.last, s.lastAt }

// SetLast restores Last.
func (s *Scaler) SetLast(replicas int32, at int64) { s.last, s.lastAt = replicas, at }

// SetLastDown restores LastDown.
func (s *Scaler) SetLastDown(t int64) { s.lastDown = t }

// Window returns the stabilization window, oldest first, for a
// checkpoint. It is valid until the next Decide or Stabilize.
func (s *Scaler) Window() []WindowEntry { return s.recs }

// SetWindow replaces the stabilization window by a copy of w, as Window
// returned it (a restored checkpoint): entries oldest first, at most
// MaxWindow (older ones beyond are dropped).
func (s *Scaler) SetWindow(w []WindowEntry) {
	w = w[max(len(w)-MaxWindow, 0):]
	s.recs = append(s.recs[:0], w...)
}

// Stabilize returns the replicas to run now given the recommendation, the
// part of it held for the whole window (Hold) and the current replicas cur,
// and records both in the stabilization window: up at once to the
// recommendation (by a bounded step); down to the largest of the
// recommendation, the held values of the window and the recommendations of
// the last ForecastHold (by a bounded step).
func (s *Scaler) Stabilize(now time.Time, recommend, hold, cur int32) int32 {
	t := now.UnixMilli()
	cut := t - s.cfg.Stabilization.Milliseconds()
	i := 0
	for i < len(s.recs) && s.recs[i].At < cut {
		i++
	}
	s.recs = append(s.recs[:0], s.recs[i:]...)
	if len(s.recs) == MaxWindow {
		s.recs = append(s.recs[:0], s.recs[1:]...)
	}
	s.recs = append(s.recs, WindowEntry{At: t, Hold: min(hold, recommend), Recommend: recommend})
	if cur <= 0 {
		return recommend
	}
	if recommend >= cur {
		// In float64: cur × MaxScaleUp overflows int32 when the stream
		// sets MaxScaleUp to a large max_replicas.
		step := max(1, math.Floor(float64(cur)*s.cfg.MaxScaleUp))
		return int32(min(float64(recommend), float64(cur)+step))
	}
	want := recommend
	fcut := t - s.cfg.ForecastHold.Milliseconds()
	for _, r := range s.recs {
		want = max(want, r.Hold)
		if r.At >= fcut {
			want = max(want, r.Recommend)
		}
	}
	// A window restored from a run with a larger max_replicas holds no
	// more than today's maximum.
	want = min(want, s.cfg.MaxReplicas)
	if want >= cur {
		return cur
	}
	step := max(1, int32(math.Floor(float64(cur)*s.cfg.MaxScaleDown)))
	return max(want, cur-step)
}

// Decide returns the decisions for in: a scale decision when the desired
// replicas differ from the current ones (repeated after DecisionTTL while
// they still differ). Decisions are unsigned.
func (s *Scaler) Decide(in Input) []*proto.Decision {
	cur := in.CurrentReplicas
	if cur <= 0 {
		cur = s.last
	}
	recommend := s.Recommend(in)
	hold := s.Hold(in)
	want := s.Stabilize(in.Now, recommend, hold, cur)
	t := in.Now.UnixMilli()
	if want > cur && s.lastDown != 0 && t-s.lastDown <= s.cfg.ReversalGuard.Milliseconds() {
		// The tolerance decides whether to move, as the HPA's does; the
		// move is to what the observed load needs (Hold), as the HPA's
		// is: sized on the load less the tolerance, it stayed short of it.
		if Replicas(in.Observed/(1+HPATolerance), s.cfg.CapacityPerPod, s.cfg.MinReplicas, s.cfg.MaxReplicas) > cur {
			want = max(cur, min(want, hold))
		} else {
			want = cur
		}
	}
	ttl := s.cfg.DecisionTTL.Milliseconds()
	var out []*proto.Decision
	if (want != cur || in.Unapplied) && (want != s.last || t-s.lastAt >= ttl) {
		prev := cur
		if in.Unapplied {
			prev = 0 // not known: the last decision did not happen
		}
		out = append(out, s.decision(in, proto.KindScale, &s.cfg.Target, s.target, want, prev, recommend))
		s.last, s.lastAt = want, t
		if want < cur {
			s.lastDown = t
		}
	} else if want == cur {
		s.last = want
	}

	return out
}

func (s *Scaler) decision(in Input, kind string, obj *Object, target string, want, prev, recommend int32) *proto.Decision {
	f := in.Forecast
	change := &proto.Change{
		Object:           &proto.KubeObject{Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name},
		Replicas:         want,
		PreviousReplicas: prev,
	}
	h := s.cfg.Horizon
	if f.Horizon > 0 {
		h = f.Horizon
	}
	var summary string
	switch {
	case prev == 0:
		summary = fmt.Sprintf("scale %s to %d replicas (current replicas unknown): forecast %.4g (up to %.4g) in %s, load %.4g now, %.4g per pod, model %s at %.0f%% accuracy",
			target, want, f.Point, f.Upper, h, in.Observed, s.cfg.CapacityPerPod, f.Model, f.Scores.Accuracy)
	case want > prev:
		summary = fmt.Sprintf("scale %s up to %d replicas (from %d): forecast %.4g (up to %.4g) in %s, load %.4g now, %.4g per pod, model %s at %.0f%% accuracy",
			target, want, prev, f.Point, f.Upper, h, in.Observed, s.cfg.CapacityPerPod, f.Model, f.Scores.Accuracy)
	default:
		summary = fmt.Sprintf("scale %s down to %d replicas (from %d): forecast at most %.4g in %s for the last %s, and the load of the last %s needed no more (%.4g now), %.4g per pod",
			target, want, prev, f.Upper, h, s.cfg.ForecastHold, s.cfg.Stabilization, in.Observed, s.cfg.CapacityPerPod)
	}
	return &proto.Decision{
		Id:      proto.DecisionID(s.cfg.Rule, kind, target, change, in.Now.UnixMilli()),
		Kind:    kind,
		Target:  target,
		Rule:    s.cfg.Rule,
		Desired: change,
		Evidence: &proto.Evidence{
			Model:          f.Model,
			HorizonSeconds: h.Seconds(),
			Forecast:       proto.Finite(f.Point),
			Lower:          proto.Finite(f.Lower),
			Upper:          proto.Finite(f.Upper),
			Accuracy:       proto.Finite(f.Scores.Accuracy),
			Observed:       proto.Finite(in.Observed),
			CapacityPerPod: s.cfg.CapacityPerPod,
			Signal:         s.cfg.Signal,
			Values:         map[string]float64{"recommended_replicas": float64(recommend), "mase": proto.Finite(f.Scores.MASE), "coverage": proto.Finite(f.Scores.Coverage)},
		},
		Confidence: confidence(f.Point, f.Lower, f.Upper),
		CreatedAt:  timestamppb.New(in.Now),
		ExpiresAt:  timestamppb.New(in.Now.Add(s.cfg.DecisionTTL)),
		Tenant:     s.cfg.Tenant,
		Summary:    summary,
	}
}

// confidence is 1 for a tight interval and falls as it widens relative to
// the forecast.
func confidence(point, lo, hi float64) float64 {
	if !(point > 0) || !(hi >= lo) {
		return 0.5
	}
	return proto.Finite(1 / (1 + (hi-lo)/(2*point)))
}
