package scaling

import (
	"math"
	"testing"
	"time"

	"github.com/augur-ops/augur/models"
	"github.com/augur-ops/augur/models/bank"
	"github.com/augur-ops/augur/proto"
)

func newScaler(t *testing.T, mod func(*Config)) *Scaler {
	t.Helper()
	cfg := Config{
		Rule:           "payment",
		Target:         Object{Namespace: "payment", Name: "payment-service"},
		CapacityPerPod: 100,
		MaxReplicas:    50,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fc(point, lo, hi float64) bank.Result {
	return bank.Result{Forecast: models.Forecast{Point: point, Lower: lo, Upper: hi}, Model: "holt_winters",
		Scores: models.Scores{Accuracy: 91}, Horizon: 5 * time.Minute}
}

func TestReplicas(t *testing.T) {
	tests := []struct {
		load, capacity float64
		lo, hi, want   int32
	}{
		{0, 100, 2, 10, 2},
		{150, 100, 2, 10, 2},
		{201, 100, 2, 10, 3},
		{5000, 100, 2, 10, 10},
		{-1, 100, 2, 10, 2},
		{100, 0, 2, 10, 2},
		{math.NaN(), 100, 2, 10, 2},
		{math.Inf(1), 100, 2, 10, 10},
	}
	for _, tt := range tests {
		if got := Replicas(tt.load, tt.capacity, tt.lo, tt.hi); got != tt.want {
			t.Errorf("Replicas(%v, %v, %d, %d) = %d, want %d", tt.load, tt.capacity, tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"ok", func(*Config) {}, true},
		{"no capacity", func(c *Config) { c.CapacityPerPod = 0 }, false},
		{"max below min", func(c *Config) { c.MaxReplicas = 1 }, false},
		{"horizon too long", func(c *Config) { c.Horizon = time.Hour }, false},
		{"no target", func(c *Config) { c.Target.Name = "" }, false},
		{"down ratio above 1", func(c *Config) { c.MaxScaleDown = 2 }, false},
		{"forecast hold above stabilization", func(c *Config) { c.ForecastHold = 6 * time.Minute }, false},
		{"short stabilization, default forecast hold", func(c *Config) { c.Stabilization = time.Minute }, true},
		{"forecast not held", func(c *Config) { c.ForecastHold = -1 }, true},
		{"negative reversal guard", func(c *Config) { c.ReversalGuard = -time.Second }, false},
	}
	for _, tt := range tests {
		cfg := Config{Target: Object{Namespace: "a", Name: "b"}, CapacityPerPod: 1, MaxReplicas: 10}
		tt.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// TestUpAtOnceDownAfterStabilization walks a load peak through the scaler
// whose window holds whole recommendations (ForecastHold = Stabilization).
func TestUpAtOnceDownAfterStabilization(t *testing.T) {
	s := newScaler(t, func(c *Config) { c.ForecastHold = 5 * time.Minute })
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at        time.Duration
		upper     float64
		cur       int32
		wantScale int32 // 0: no scale decision
	}
	steps := []step{
		{0, 390, 4, 0},                 // needs 4, has 4
		{time.Minute, 790, 4, 6},       // needs 8: +50% step
		{2 * time.Minute, 790, 6, 8},   // rest of the way
		{3 * time.Minute, 390, 8, 0},   // lower, but within stabilization
		{7 * time.Minute, 390, 8, 0},   // the 790 of minute 2 is still in the window
		{8 * time.Minute, 390, 8, 4},   // window clear: down by at most 50%
		{9 * time.Minute, 150, 4, 0},   // 2 wanted, but 390 (4) is in the window
		{14 * time.Minute, 150, 4, 2},  // down to min
		{15 * time.Minute, 150, 2, 0},  // at min
		{16 * time.Minute, 9000, 2, 3}, // at least one pod up
	}
	for _, st := range steps {
		ds := s.Decide(Input{Now: t0.Add(st.at), Forecast: fc(st.upper*0.8, st.upper*0.6, st.upper), Observed: st.upper * 0.7, CurrentReplicas: st.cur})
		var got int32
		for _, d := range ds {
			if d.Kind == proto.KindScale {
				got = d.Desired.Replicas
				if d.Evidence.Model != "holt_winters" || d.Evidence.Accuracy != 91 || d.Evidence.Upper != st.upper || d.Signature != "" {
					t.Errorf("at %v: evidence %v", st.at, d.Evidence)
				}
				if d.Id != proto.DecisionID("payment", proto.KindScale, "k8s/deployment/payment/payment-service", d.Desired, t0.Add(st.at).UnixMilli()) {
					t.Errorf("at %v: id not deterministic", st.at)
				}
			}
		}
		if got != st.wantScale {
			t.Errorf("at %v (upper %v, current %d): scale to %d, want %d", st.at, st.upper, st.cur, got, st.wantScale)
		}
	}
}

// TestStabilizationHoldsObserved checks the window with the forecast's part
// not held: what the observed load needed is held, a forecast peak that did
// not come is not.
func TestStabilizationHoldsObserved(t *testing.T) {
	s := newScaler(t, func(c *Config) { c.MaxScaleUp, c.MaxScaleDown, c.ForecastHold = 100, 1, -1 })
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at          time.Duration
		upper, obs  float64
		cur, want   int32 // want 0: no scale decision
		hold, recom int32
	}{
		{0, 390, 390, 4, 0, 4, 4},
		{time.Minute, 990, 390, 4, 10, 4, 10},        // a rise forecast: up at once
		{2 * time.Minute, 390, 390, 10, 4, 4, 4},     // it did not come: down with the next forecast
		{3 * time.Minute, 790, 790, 4, 8, 8, 8},      // the load rose
		{4 * time.Minute, 190, 190, 8, 0, 2, 2},      // the load of minute 3 is held
		{8 * time.Minute, 190, 190, 8, 0, 2, 2},      // still in the window
		{9 * time.Minute, 190, 190, 8, 2, 2, 2},      // window clear
		{10 * time.Minute, 9000, 100, 2, 50, 2, 50},  // capped at max
		{11 * time.Minute, 100, 100, 50, 2, 2, 2},    // nothing observed to hold
		{12 * time.Minute, 100, 4990, 2, 50, 50, 50}, // observed above the forecast
		{13 * time.Minute, 100, 100, 50, 0, 2, 2},    // held
	}
	for _, st := range steps {
		in := Input{Now: t0.Add(st.at), Forecast: fc(st.upper, st.upper, st.upper), Observed: st.obs, CurrentReplicas: st.cur}
		if h, r := s.Hold(in), s.Recommend(in); h != st.hold || r != st.recom {
			t.Errorf("at %v: hold %d recommend %d, want %d %d", st.at, h, r, st.hold, st.recom)
		}
		if got := scaledTo(s, in); got != st.want {
			t.Errorf("at %v (upper %v, observed %v, current %d): scale to %d, want %d", st.at, st.upper, st.obs, st.cur, got, st.want)
		}
	}
}

// TestReversalGuard checks the guard's memory: the time of the last scale
// down (checkpointed by the stream), and the guard's end (the stories are
// in testdata/stabilization).
func TestReversalGuard(t *testing.T) {
	s := newScaler(t, func(c *Config) {
		c.MaxScaleUp, c.MaxScaleDown, c.ForecastHold, c.ReversalGuard = 100, 1, time.Minute, time.Minute
	})
	t0 := time.Unix(1_700_000_000, 0)
	scaledTo(s, Input{Now: t0, Forecast: fc(590, 590, 590), Observed: 390, CurrentReplicas: 4})
	scaledTo(s, Input{Now: t0.Add(6 * time.Minute), Forecast: fc(390, 390, 390), Observed: 390, CurrentReplicas: 6})
	if s.LastDown() != t0.Add(6*time.Minute).UnixMilli() {
		t.Errorf("last scale down at %d", s.LastDown())
	}
	// After the guard, the forecast's headroom is followed again.
	g := newScaler(t, func(c *Config) {
		c.MaxScaleUp, c.MaxScaleDown, c.ForecastHold, c.ReversalGuard = 100, 1, time.Minute, time.Minute
	})
	g.SetLastDown(t0.UnixMilli())
	if got := scaledTo(g, Input{Now: t0.Add(61 * time.Second), Forecast: fc(590, 590, 590), Observed: 390, CurrentReplicas: 4}); got != 6 {
		t.Errorf("61 s after a scale down: scale to %d, want 6", got)
	}
}

// scaledTo returns the replicas of the scale decision s makes for in, 0
// when it makes none.
func scaledTo(s *Scaler, in Input) int32 {
	for _, d := range s.Decide(in) {
		if d.Kind == proto.KindScale {
			return d.Desired.Replicas
		}
	}
	return 0
}

func TestIntervalCap(t *testing.T) {
	tests := []struct {
		name              string
		cap               float64
		point, upper, obs float64
		load              float64
		want              int32
	}{
		{"no cap: upper", 0, 100, 1000, 0, 1000, 10},
		{"cap 1: twice the point", 1, 100, 1000, 0, 200, 2},
		{"cap above the interval: upper", 20, 100, 1000, 0, 1000, 10},
		{"observed above the capped load", 1, 100, 1000, 500, 200, 5},
		{"negative point: the point", 1, -50, 300, 0, -50, 1},
	}
	for _, tt := range tests {
		s := newScaler(t, func(c *Config) { c.IntervalCap = tt.cap; c.MinReplicas = 1 })
		if got := s.Load(models.Forecast{Point: tt.point, Lower: tt.point / 2, Upper: tt.upper}); got != tt.load {
			t.Errorf("%s: Load = %v, want %v", tt.name, got, tt.load)
		}
		in := Input{Now: time.Unix(1_700_000_000, 0), Forecast: fc(tt.point, tt.point/2, tt.upper), Observed: tt.obs}
		if got := s.Recommend(in); got != tt.want {
			t.Errorf("%s: Recommend = %d, want %d", tt.name, got, tt.want)
		}
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		cfg := Config{Target: Object{Namespace: "a", Name: "b"}, CapacityPerPod: 1, MaxReplicas: 10, IntervalCap: bad}
		if cfg.Validate() == nil {
			t.Errorf("IntervalCap %v: Validate accepted it", bad)
		}
	}
}

// TestDivergedForecastSizesOnTheObservedLoad: a forecast bound that is
// not a number or infinite (a diverged model) leaves the observed load to
// size on. NaN was read as no load at all, and the scaler decided
// min_replicas for a load that needed 8 pods; +Inf decided max_replicas.
func TestDivergedForecastSizesOnTheObservedLoad(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		for _, cap := range []float64{0, 2} {
			s := newScaler(t, func(c *Config) { c.IntervalCap = cap })
			in := Input{Now: time.Unix(1_700_000_000, 0), Forecast: fc(bad, bad, bad), Observed: 750, CurrentReplicas: 8}
			if got := s.Recommend(in); got != 8 {
				t.Errorf("forecast %v, interval cap %v: Recommend = %d for an observed load of 750 (100 per pod), want 8", bad, cap, got)
			}
			if ds := s.Decide(in); len(ds) != 0 {
				t.Errorf("forecast %v, interval cap %v: decided %s", bad, cap, ds[0].Summary)
			}
		}
	}
}

// TestRestoredWindowWithinMax: a window restored from a run with a larger
// max_replicas held the workload above today's maximum for the whole
// stabilization.
func TestRestoredWindowWithinMax(t *testing.T) {
	s := newScaler(t, func(c *Config) { c.MaxReplicas = 20; c.MaxScaleDown = 1 })
	t0 := time.Unix(1_700_000_000, 0)
	s.SetWindow([]WindowEntry{{At: t0.UnixMilli(), Hold: 50, Recommend: 50}})
	s.SetLast(50, t0.UnixMilli())
	ds := s.Decide(Input{Now: t0.Add(time.Minute), Forecast: fc(100, 100, 100), Observed: 100, CurrentReplicas: 50})
	if len(ds) != 1 || ds[0].Desired.Replicas != 20 {
		t.Fatalf("decisions %v, want one to max_replicas 20", ds)
	}
}

// TestPeak checks the forecast path the scaler sizes on: a rise before the
// horizon lifts it, the path is linear between the bank's steps, and on a
// fall the observed load is the peak.
func TestPeak(t *testing.T) {
	tests := []struct {
		name  string
		slope float64 // load per minute
	}{
		{"rising", 2},
		{"falling", -2},
	}
	for _, tt := range tests {
		b, err := bank.New(bank.Config{Step: time.Minute, Horizon: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t0 := int64(1_700_000_000_000)
		var v float64
		for i := range 600 {
			v = 5000 + tt.slope*float64(i)
			b.Update(t0+int64(i)*60_000, v)
		}
		s := newScaler(t, func(c *Config) { c.Horizon = 150 * time.Second; c.IntervalCap = 0.5 })
		got := s.Peak(b, v)
		f2, f3 := b.Forecast(2*time.Minute), b.Forecast(3*time.Minute)
		want := max(v, b.Forecast(time.Minute).Point, f2.Point, f2.Point+0.5*(f3.Point-f2.Point))
		if math.Abs(got.Point-want) > 1e-9 {
			t.Errorf("%s: peak point %v, want %v", tt.name, got.Point, want)
		}
		if tt.slope > 0 && !(got.Point > f2.Point && got.Point < f3.Point) {
			t.Errorf("%s: peak point %v not between the forecasts at 2m (%v) and 3m (%v)", tt.name, got.Point, f2.Point, f3.Point)
		}
		if tt.slope < 0 && got.Point != v {
			t.Errorf("%s: peak point %v, want the observed %v", tt.name, got.Point, v)
		}
		if got.Upper < got.Point || got.Upper > 1.5*got.Point+1e-9 {
			t.Errorf("%s: peak load %v outside [point, 1.5 point] for point %v", tt.name, got.Upper, got.Point)
		}
		if got.Horizon != 150*time.Second || got.Model == "" {
			t.Errorf("%s: horizon %v, model %q", tt.name, got.Horizon, got.Model)
		}
	}
}

// TestSetWindow checks that a scaler given another's window (a restored
// checkpoint) decides as that one does, and that the copy is its own.
func TestSetWindow(t *testing.T) {
	a := newScaler(t, func(c *Config) { c.MaxScaleUp, c.MaxScaleDown = 100, 1 })
	t0 := time.Unix(1_700_000_000, 0)
	in := func(at time.Duration, upper, obs float64, cur int32) Input {
		return Input{Now: t0.Add(at), Forecast: fc(upper, upper, upper), Observed: obs, CurrentReplicas: cur}
	}
	scaledTo(a, in(0, 390, 390, 4))
	scaledTo(a, in(time.Minute, 990, 390, 4))    // forecast peak: 10, held 2m
	scaledTo(a, in(2*time.Minute, 790, 790, 10)) // observed 8, held 5m
	b := newScaler(t, func(c *Config) { c.MaxScaleUp, c.MaxScaleDown = 100, 1 })
	b.SetWindow(a.Window())
	if len(b.Window()) != 3 || &b.Window()[0] == &a.Window()[0] {
		t.Fatalf("window not copied: %d entries", len(b.Window()))
	}
	for _, st := range []struct {
		at   time.Duration
		want int32
	}{
		{3 * time.Minute, 0},             // the 10 of minute 1 is held
		{3*time.Minute + time.Second, 8}, // released; the observed 8 is held
		{7*time.Minute + time.Second, 2}, // window clear
	} {
		ga, gb := scaledTo(a, in(st.at, 100, 100, 10)), scaledTo(b, in(st.at, 100, 100, 10))
		if ga != st.want || gb != st.want {
			t.Errorf("at %v: original scales to %d, restored to %d, want %d", st.at, ga, gb, st.want)
		}
	}
}

// TestLargeMaxScaleUp: the stream sets MaxScaleUp to max_replicas (the HPA
// scales up to the recommendation at once); with a large max_replicas,
// cur × MaxScaleUp overflowed int32 and the scaler crept up one pod per
// decision.
func TestLargeMaxScaleUp(t *testing.T) {
	for _, maxR := range []int32{1000, 1_000_000, math.MaxInt32} {
		s := newScaler(t, func(c *Config) { c.MaxReplicas = maxR; c.MaxScaleUp = float64(maxR) })
		if got := s.Stabilize(time.Unix(1_700_000_000, 0), 500, 500, 10); got != 500 {
			t.Errorf("max_replicas %d: from 10 toward 500, got %d", maxR, got)
		}
		if got := s.Stabilize(time.Unix(1_700_000_060, 0), maxR, maxR, maxR/2+1); got != maxR {
			t.Errorf("max_replicas %d: from %d toward %d, got %d", maxR, maxR/2+1, maxR, got)
		}
	}
}

// TestReversalGuardSizesForTheObservedLoad: within the reversal guard a
// load beyond the HPA's tolerance scales up to what that load needs, as the
// HPA would (ceil(load / capacity)), not to the load less the tolerance:
// the package never decides fewer replicas than the observed load needs.
func TestReversalGuardSizesForTheObservedLoad(t *testing.T) {
	s := newScaler(t, func(c *Config) {
		c.MaxScaleUp, c.MaxScaleDown, c.ForecastHold, c.ReversalGuard = 100, 1, time.Minute, time.Minute
	})
	t0 := time.Unix(1_700_000_000, 0)
	s.SetLastDown(t0.UnixMilli())
	// 1200 at 100 per pod needs 12; 10 run: 20% beyond the tolerance.
	if got := scaledTo(s, Input{Now: t0.Add(30 * time.Second), Forecast: fc(1200, 1200, 1200), Observed: 1200, CurrentReplicas: 10}); got != 12 {
		t.Errorf("30 s after a scale down, load needing 12 of 10 running: scale to %d, want 12", got)
	}
}
