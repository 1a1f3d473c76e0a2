package stream

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/proto"
)

// loop drives the payment-rps group of the test rules window by window.
type loop struct {
	t   *testing.T
	e   *env
	g   *group
	end int64 // end of the last closed window, unix ms
}

func newLoop(t *testing.T) *loop {
	t.Helper()
	cfg := testConfig(t)
	// Steps of half the replicas (the scaler's own default, not the
	// stream's) make a rise take successive decisions the loop can report on.
	cfg.ScalingVariant = func(c *scaling.Config) { c.MaxScaleUp, c.MaxScaleDown = 0.5, 0.5 }
	e := mustEnv(t, &cfg)
	g := &group{rule: 0, tenant: ""}
	g.fc, g.sc = e.newScaling(0, "")
	return &loop{t: t, e: e, g: g, end: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()}
}

// window closes the next 10s window at load v and returns its decisions.
func (l *loop) window(v float64) []*proto.Decision {
	l.end += 10_000
	ds, _ := l.e.closeWindow(l.g, l.end, v)
	return ds
}

// until closes windows at load v until one decides, at most n.
func (l *loop) until(v float64, n int) *proto.Decision {
	l.t.Helper()
	for range n {
		if ds := l.window(v); len(ds) > 0 {
			return ds[0]
		}
	}
	l.t.Fatalf("no decision in %d windows at load %v", n, v)
	return nil
}

// report adds an actuator's audit record about d.
func (l *loop) report(d *proto.Decision, outcome string, before, after int32) {
	a := &proto.Action{DecisionId: d.GetId(), Kind: d.GetKind(), Target: d.GetTarget(), Outcome: outcome}
	if before > 0 {
		a.Before = map[string]string{"replicas": strconv.Itoa(int(before))}
	}
	if after > 0 {
		a.After = map[string]string{"replicas": strconv.Itoa(int(after))}
	}
	l.e.reports.add(a)
}

// TestDecisionsLiveAfterTheWindowCloses shows a decision's time to live
// counts from when its window could close (its end plus the allowed
// lateness), so it reaches the actuator with the whole TTL ahead.
func TestDecisionsLiveAfterTheWindowCloses(t *testing.T) {
	l := newLoop(t)
	d := l.until(100, 50)
	ttl := l.e.rules.Rule(0).Scaling.DecisionTTL
	lateness := time.Duration(l.e.lateness) * time.Millisecond
	if got := d.GetExpiresAt().AsTime().Sub(d.GetCreatedAt().AsTime()); got != lateness+ttl {
		t.Fatalf("expires %v after its window's end, want lateness %v + ttl %v", got, lateness, ttl)
	}
	if err := proto.Verify(d, testKey); err != nil {
		t.Fatalf("expiry changed after signing: %v", err)
	}
}

// TestReportsCloseTheLoop shows the stream decides from the replicas the
// actuator reports: a refused or expired decision whose need persists is
// decided again after its TTL, a bounded step is taken for what it is, and
// a report about an older decision does not override one still in force.
func TestReportsCloseTheLoop(t *testing.T) {
	ttlWindows := func(l *loop) int { return int(l.e.rules.Rule(0).Scaling.DecisionTTL / (10 * time.Second)) }

	t.Run("without reports the last decision is taken as applied", func(t *testing.T) {
		l := newLoop(t)
		l.until(10, 50) // warm at 1 replica
		d1 := l.until(60, 10)
		d2 := l.until(60, 2)
		if d2.GetDesired().GetReplicas() <= d1.GetDesired().GetReplicas() {
			t.Fatalf("no report: want the next step up after %d, got %d", d1.GetDesired().GetReplicas(), d2.GetDesired().GetReplicas())
		}
	})

	t.Run("refused: decided again after the ttl", func(t *testing.T) {
		l := newLoop(t)
		l.until(10, 50) // warm at 1 replica
		d1 := l.until(30, 10)
		want := d1.GetDesired().GetReplicas()
		l.report(d1, proto.OutcomeRefused, 1, 0)
		quiet := 0
		var d2 *proto.Decision
		for d2 == nil && quiet < 3*ttlWindows(l) {
			if ds := l.window(30); len(ds) > 0 {
				d2 = ds[0]
			} else {
				quiet++
			}
		}
		if d2 == nil || d2.GetDesired().GetReplicas() != want || d2.GetId() == d1.GetId() {
			t.Fatalf("after a refusal at 1 replica: %v, want %d replicas again", d2, want)
		}
		if quiet+1 < ttlWindows(l) {
			t.Errorf("decided again after %d windows, before the ttl (%d windows)", quiet+1, ttlWindows(l))
		}
		if d2.GetDesired().GetPreviousReplicas() != 1 {
			t.Errorf("previous replicas %d, want the reported 1", d2.GetDesired().GetPreviousReplicas())
		}
	})

	t.Run("expired without a look: decided again, replicas unknown", func(t *testing.T) {
		l := newLoop(t)
		l.until(10, 50)
		d1 := l.until(30, 10)
		l.report(d1, proto.OutcomeExpired, 0, 0)
		d2 := l.until(30, 3*ttlWindows(l))
		if d2.GetDesired().GetReplicas() < d1.GetDesired().GetReplicas() || d2.GetDesired().GetPreviousReplicas() != 0 {
			t.Fatalf("after expiry: %v, want at least %d replicas from unknown", d2.GetDesired(), d1.GetDesired().GetReplicas())
		}
	})

	t.Run("partial step: decides from the replicas reached", func(t *testing.T) {
		l := newLoop(t)
		l.until(10, 50)
		l.until(100, 10)
		l.until(100, 2)
		d := l.until(100, 2)
		want := d.GetDesired().GetReplicas()
		prev := d.GetDesired().GetPreviousReplicas()
		l.report(d, proto.OutcomeApplied, prev, want-1) // a bounded step short of it
		next := l.until(100, 3*ttlWindows(l))
		if next.GetDesired().GetPreviousReplicas() != want-1 {
			t.Fatalf("after a step to %d of %d: %v, want a decision from %d", want-1, want, next.GetDesired(), want-1)
		}
	})

	t.Run("a report about an older decision does not override one in force", func(t *testing.T) {
		l := newLoop(t)
		l.until(10, 50)
		d1 := l.until(30, 10)
		d2 := l.until(60, 10) // the next step, in force
		l.report(d1, proto.OutcomeRefused, 1, 0)
		if cur, _ := l.e.current(l.g, l.end); cur != d2.GetDesired().GetReplicas() {
			t.Fatalf("current %d, want the decision in force %d", cur, d2.GetDesired().GetReplicas())
		}
		if ds := l.window(60); len(ds) != 0 && ds[0].GetDesired().GetReplicas() < d2.GetDesired().GetReplicas() {
			t.Fatalf("an old report moved the stream back: %v", ds[0].GetDesired())
		}
	})
}

// TestRestoreDecidesAsTheRunItReplaces: restored from a checkpoint taken
// right after a decision the actuator refused, the stream makes the same
// decisions from there as the run that went on: it does not repeat a
// decision still in its time to live (the scaler's last decision and the
// group's last decision id are part of the checkpoint).
func TestRestoreDecidesAsTheRunItReplaces(t *testing.T) {
	run := func(restore bool) []string {
		l := newLoop(t)
		sh := newShard(0, l.e)
		key := string(l.e.rules.GroupKey(nil, 0, "", nil))
		l.g = sh.groups[sh.newGroup(key, 0, "")]
		l.until(10, 50)
		d := l.until(30, 10)
		l.report(d, proto.OutcomeRefused, 1, 0)
		if restore {
			recs, err := sh.snapshot()
			if err != nil {
				t.Fatal(err)
			}
			back := newShard(0, l.e)
			for _, r := range recs {
				if err := back.apply(r.key, r.value); err != nil {
					t.Fatal(err)
				}
			}
			back.finishRestore()
			l.g = back.groups[back.groupIndex[key]]
		}
		var out []string
		for range 30 {
			for _, d := range l.window(30) {
				out = append(out, d.GetSummary())
			}
		}
		return out
	}
	went, restored := run(false), run(true)
	if len(went) == 0 || !slices.Equal(went, restored) {
		t.Errorf("decisions of the run that went on:\n%q\nof the restored one:\n%q", went, restored)
	}
}
