package zonalshift

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/proto"
)

const arn = "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/app/web/0123456789abcdef"

var key = []byte("0123456789abcdef0123456789abcdef")

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	srv *arcServer
	ex  *Executor
	act *actuators.Actuator
	clk *clock
	reg *prometheus.Registry
}

func setup(t *testing.T, zones ...string) *env {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv := newARCServer(clk.Now)
	srv.resources[arn] = zones
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	cl := NewClient(awsCfg, func(o *arczonalshift.Options) {
		o.BaseEndpoint = aws.String(hs.URL)
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 6
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
	reg := prometheus.NewRegistry()
	m, err := actuators.NewAPIMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	zcfg := DefaultConfig()
	zcfg.Now = clk.Now
	ex, err := New(zcfg, cl, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg := actuators.DefaultConfig()
	cfg.DecisionKeys = [][]byte{key}
	cfg.Mode = actuators.ModeEnforce
	cfg.Now = clk.Now
	act, err := actuators.New(cfg, nil, nil, ex, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, ex: ex, act: act, clk: clk, reg: reg}
}

var n int

func (e *env) decide(t *testing.T, kind, away string, expiry int64) *proto.Action {
	t.Helper()
	n++
	ch := &proto.Change{ZonalShift: &proto.ZonalShift{ResourceIdentifier: arn, AwayFrom: away, ExpiresInSeconds: expiry}}
	d := &proto.Decision{Kind: kind, Target: "aws/zonalshift/" + arn, Rule: "gray-failure", Desired: ch,
		CreatedAt: timestamppb.New(e.clk.Now()), ExpiresAt: timestamppb.New(e.clk.Now().Add(time.Minute))}
	d.Id = proto.DecisionID(d.Rule, kind, d.Target, ch, e.clk.Now().UnixMilli()+int64(n))
	if err := proto.Sign(d, key); err != nil {
		t.Fatal(err)
	}
	v, err := proto.MarshalJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	return e.act.Handle(t.Context(), v)
}

func (e *env) shifts() []*arcShift {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return e.srv.active(arn)
}

func (e *env) calls(k string) int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return e.srv.calls[k]
}

func want(t *testing.T, a *proto.Action, outcome, guardrail string) {
	t.Helper()
	if a.GetOutcome() != outcome || a.GetGuardrail() != guardrail {
		t.Fatalf("outcome %q guardrail %q (%s), want %q %q", a.GetOutcome(), a.GetGuardrail(), a.GetError(), outcome, guardrail)
	}
}

// TestStartExtendCancel walks one shift through its life on the wire.
func TestStartExtendCancel(t *testing.T) {
	e := setup(t, "use1-az1", "use1-az2", "use1-az4")
	a := e.decide(t, proto.KindZonalShift, "use1-az2", 1800)
	want(t, a, proto.OutcomeApplied, "")
	s := e.shifts()
	if len(s) != 1 || s[0].AwayFrom != "use1-az2" || !strings.Contains(s[0].Comment, a.GetDecisionId()) ||
		!s[0].Expiry.Equal(e.clk.Now().Add(30*time.Minute)) {
		t.Fatalf("shift at the server: %+v", s)
	}
	if !strings.Contains(a.GetAfter()["shifts"], "use1-az2") {
		t.Errorf("audit after state: %v", a.GetAfter())
	}

	// Asked again while the shift has most of its life left: nothing to do.
	want(t, e.decide(t, proto.KindZonalShift, "use1-az2", 1800), proto.OutcomeNoop, "")
	if got := e.calls("PATCH /zonalshifts/{id}") + e.calls("POST /zonalshifts"); got != 1 {
		t.Fatalf("%d writes after a no-op, want 1", got)
	}

	// Later, with under half of it left: extended, not restarted.
	e.clk.Advance(20 * time.Minute)
	want(t, e.decide(t, proto.KindZonalShift, "use1-az2", 1800), proto.OutcomeApplied, "")
	if e.calls("PATCH /zonalshifts/{id}") != 1 || e.calls("POST /zonalshifts") != 1 {
		t.Fatalf("calls %v", e.srv.calls)
	}
	if s := e.shifts(); len(s) != 1 || !s[0].Expiry.Equal(e.clk.Now().Add(30*time.Minute)) {
		t.Fatalf("after extend: %+v", s)
	}
	if g := testutil.ToFloat64(activeShifts(t, e)); g != 1 {
		t.Errorf("active zonal shifts gauge %v", g)
	}
	// API latency is measured per operation: get, start, update so far.
	if n, err := testutil.GatherAndCount(e.reg, "augur_actuator_api_request_duration_seconds"); err != nil || n != 3 {
		t.Errorf("api latency series %d (%v), want 3", n, err)
	}

	// Recovery: cancelled; a second cancel is a no-op.
	want(t, e.decide(t, proto.KindCancelZonalShift, "use1-az2", 0), proto.OutcomeApplied, "")
	if len(e.shifts()) != 0 || e.calls("DELETE /zonalshifts/{id}") != 1 {
		t.Fatalf("after cancel: %+v %v", e.shifts(), e.srv.calls)
	}
	want(t, e.decide(t, proto.KindCancelZonalShift, "use1-az2", 0), proto.OutcomeNoop, "")
	if e.calls("DELETE /zonalshifts/{id}") != 1 {
		t.Fatalf("second cancel called DELETE")
	}
}

func activeShifts(t *testing.T, e *env) prometheus.Collector {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "augur_actuator_active_zonal_shifts" {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatal("augur_actuator_active_zonal_shifts not registered")
	return nil
}

// TestForeignShiftIsNeverTouched: a shift someone else started refuses
// new shifts, extensions and cancels.
func TestForeignShiftIsNeverTouched(t *testing.T) {
	e := setup(t, "use1-az1", "use1-az2", "use1-az4")
	e.srv.shifts["zs-op"] = &arcShift{ID: "zs-op", Resource: arn, AwayFrom: "use1-az2", Comment: "operator: AZ drill",
		Status: "ACTIVE", Start: e.clk.Now(), Expiry: e.clk.Now().Add(time.Hour)}
	want(t, e.decide(t, proto.KindZonalShift, "use1-az2", 1800), proto.OutcomeRefused, actuators.GuardZonalForeignShift)
	want(t, e.decide(t, proto.KindCancelZonalShift, "use1-az2", 0), proto.OutcomeNoop, "")
	if e.calls("POST /zonalshifts")+e.calls("PATCH /zonalshifts/{id}")+e.calls("DELETE /zonalshifts/{id}") != 0 {
		t.Fatalf("wrote to a foreign shift: %v", e.srv.calls)
	}
	if s := e.shifts(); len(s) != 1 || s[0].Comment != "operator: AZ drill" {
		t.Fatalf("foreign shift changed: %+v", s)
	}
}

// TestConflictException covers the race the read cannot see: the shift
// appears between augur's read and its StartZonalShift.
func TestConflictException(t *testing.T) {
	tests := []struct {
		name      string
		comment   string
		outcome   string
		guardrail string
		patches   int
	}{
		{"ours: extended", "augur decision 0000", proto.OutcomeApplied, "", 1},
		{"not ours: refused", "operator: AZ drill", proto.OutcomeRefused, actuators.GuardZonalForeignShift, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, "use1-az1", "use1-az2", "use1-az4")
			e.srv.shifts["zs-race"] = &arcShift{ID: "zs-race", Resource: arn, AwayFrom: "use1-az2", Comment: tt.comment,
				Status: "ACTIVE", Start: e.clk.Now(), Expiry: e.clk.Now().Add(5 * time.Minute)}
			e.srv.hideShifts = true
			d := &proto.Decision{Id: "d1", Kind: proto.KindZonalShift, Desired: &proto.Change{ZonalShift: &proto.ZonalShift{
				ResourceIdentifier: arn, AwayFrom: "use1-az2", ExpiresInSeconds: 1800}}}
			obs, err := e.ex.Observe(t.Context(), d)
			if err != nil || len(obs.Shifts) != 0 {
				t.Fatalf("observe: %v %+v", err, obs)
			}
			e.srv.hideShifts = false
			_, err = e.ex.Apply(t.Context(), d, obs, false)
			var outcome, guardrail string
			if r := (*actuators.Refusal)(nil); err != nil && asRefusal(err, &r) {
				outcome, guardrail = proto.OutcomeRefused, r.Guardrail
			} else if err == nil {
				outcome = proto.OutcomeApplied
			} else {
				t.Fatalf("apply: %v", err)
			}
			if outcome != tt.outcome || guardrail != tt.guardrail {
				t.Fatalf("got %s %s, want %s %s", outcome, guardrail, tt.outcome, tt.guardrail)
			}
			if e.calls("POST /zonalshifts") != 1 || e.calls("PATCH /zonalshifts/{id}") != tt.patches {
				t.Fatalf("calls %v", e.srv.calls)
			}
		})
	}
}

// TestThrottlingIsRetried: two 429 ThrottlingException answers, then
// success, through the SDK's retryer.
func TestThrottlingIsRetried(t *testing.T) {
	e := setup(t, "use1-az1", "use1-az2", "use1-az4")
	e.srv.throttle = 2 // the GET of Observe absorbs both
	want(t, e.decide(t, proto.KindZonalShift, "use1-az1", 600), proto.OutcomeApplied, "")
	if got := e.calls("GET /managedresources/{id}"); got < 3 {
		t.Fatalf("GET attempts %d, want 3 or more (2 throttled)", got)
	}
	e.srv.throttle = 2
	e.clk.Advance(time.Hour)
	want(t, e.decide(t, proto.KindZonalShift, "use1-az4", 600), proto.OutcomeApplied, "")
	if len(e.shifts()) != 1 {
		t.Fatalf("shifts %+v", e.shifts())
	}
}

// TestValidationErrorFails: the server's validation (here an expiry above
// its limit, which the guardrails would refuse earlier) fails the action
// with the service's message and is not retried.
func TestValidationErrorFails(t *testing.T) {
	e := setup(t, "use1-az1", "use1-az2", "use1-az4")
	d := &proto.Decision{Id: "d1", Kind: proto.KindZonalShift, Desired: &proto.Change{ZonalShift: &proto.ZonalShift{
		ResourceIdentifier: arn, AwayFrom: "use1-az2", ExpiresInSeconds: 5 * 24 * 3600}}}
	obs, err := e.ex.Observe(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ex.Apply(t.Context(), d, obs, false)
	if err == nil || !strings.Contains(err.Error(), "ValidationException") {
		t.Fatalf("err %v, want a ValidationException", err)
	}
	if e.calls("POST /zonalshifts") != 1 {
		t.Fatalf("validation error retried: %v", e.srv.calls)
	}
	// And through the actuator, the guardrail refuses it first.
	want(t, e.decide(t, proto.KindZonalShift, "use1-az2", 5*24*3600), proto.OutcomeRefused, actuators.GuardZonalExpiry)
}

// TestZoneGuardrailsOnTheWire: two-zone resources are never shifted, a
// second zone is never shifted while one shift is active, and an AZ name
// (not ID) is refused.
func TestZoneGuardrailsOnTheWire(t *testing.T) {
	e := setup(t, "use1-az1", "use1-az2")
	want(t, e.decide(t, proto.KindZonalShift, "use1-az1", 600), proto.OutcomeRefused, actuators.GuardZonalHealthyZones)

	e = setup(t, "use1-az1", "use1-az2", "use1-az4", "use1-az6")
	want(t, e.decide(t, proto.KindZonalShift, "use1-az1", 600), proto.OutcomeApplied, "")
	want(t, e.decide(t, proto.KindZonalShift, "use1-az2", 600), proto.OutcomeRefused, actuators.GuardZonalOneAtATime)
	want(t, e.decide(t, proto.KindZonalShift, "us-east-1a", 600), proto.OutcomeRefused, actuators.GuardZonalOneAtATime)
	if e.calls("POST /zonalshifts") != 1 {
		t.Fatalf("calls %v", e.srv.calls)
	}

	e = setup(t, "use1-az1", "use1-az2", "use1-az4")
	want(t, e.decide(t, proto.KindZonalShift, "us-east-1a", 600), proto.OutcomeRefused, actuators.GuardInvalid)
}

// TestDryRunSendsNothing: ARC has no dry-run, so dry-run reads only.
func TestDryRunSendsNothing(t *testing.T) {
	e := setup(t, "use1-az1", "use1-az2", "use1-az4")
	d := &proto.Decision{Id: "d1", Kind: proto.KindZonalShift, Desired: &proto.Change{ZonalShift: &proto.ZonalShift{
		ResourceIdentifier: arn, AwayFrom: "use1-az2", ExpiresInSeconds: 600}}}
	obs, err := e.ex.Observe(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	after, err := e.ex.Apply(context.Background(), d, obs, true)
	if err != nil || after["would_shift_away_from"] != "use1-az2" || after["expires_in"] != "10m" {
		t.Fatalf("after %v err %v", after, err)
	}
	if e.calls("POST /zonalshifts") != 0 {
		t.Fatal("dry run sent a StartZonalShift")
	}
}

func asRefusal(err error, r **actuators.Refusal) bool { return errors.As(err, r) }
