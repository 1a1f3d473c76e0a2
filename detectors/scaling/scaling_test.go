package scaling

import (
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
		Reservation:    Object{Name: "payment-reservation"},
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
	}
	for _, tt := range tests {
		cfg := Config{Target: Object{Namespace: "a", Name: "b"}, CapacityPerPod: 1, MaxReplicas: 10}
		tt.mod(&cfg)
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// TestUpAtOnceDownAfterStabilization walks a load peak through the scaler.
func TestUpAtOnceDownAfterStabilization(t *testing.T) {
	s := newScaler(t, nil)
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

func TestReserveCapacity(t *testing.T) {
	s := newScaler(t, nil)
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		upper       float64
		schedulable int32
		want        int32 // -1: no reserve decision
	}{
		{900, 6, 3},  // 9 needed, 6 fit
		{900, 6, -1}, // unchanged
		{1500, 6, 9},
		{500, 6, 0},  // fits again: release
		{500, 0, -1}, // unknown fit: nothing
	}
	for i, tt := range tests {
		ds := s.Decide(Input{Now: t0.Add(time.Duration(i) * 30 * time.Second), Forecast: fc(tt.upper, tt.upper, tt.upper), CurrentReplicas: 5, SchedulablePods: tt.schedulable})
		got := int32(-1)
		for _, d := range ds {
			if d.Kind == proto.KindReserveCapacity {
				got = d.Desired.Replicas
				if d.Target != "k8s/deployment/payment/payment-reservation" {
					t.Errorf("reserve target %q", d.Target)
				}
			}
		}
		if got != tt.want {
			t.Errorf("case %d: reserve %d, want %d", i, got, tt.want)
		}
	}
}
