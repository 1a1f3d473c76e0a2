package actuators

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/augur-ops/augur/proto"
)

// TestGuardrailStories runs the stories in testdata/guardrails: an Actuator
// built by newTest (one fake executor for Kubernetes and ARC, a fake clock)
// fed signed decisions through Handle and tried again through Reconcile,
// and the audit records it returns. Times are offsets from the clock's
// start and never go back. Commands:
//
//	new [mode=enforce|dry-run|off] [max-step=F] [cooldown-up=D] [cooldown-down=D]
//	    [stabilization=D] [retry=D] [rate-limit=N] [rate-window=D]
//	    [max-node-actions=N] [max-node-share=F] [node-window=D] [untaint-hold-down=D]
//	    [min-healthy-zones=N] [max-shift-expiry=D] [zonal-approval]
//	    [min-replicas=N] [max-replicas=N] [allow=(ns,...)] [deny=(ns,...)] [kill-switch]
//	    [rule=R rule-mode=M rule-min=N rule-max=N rule-approval]
//	    a fresh actuator: DefaultConfig in enforce mode with overrides, and
//	    per-rule overrides for rule R (default test-rule)
//
//	observe [ns=NS name=NAME replicas=N] [nodes=N] [tainted=(n,...)]
//	    [zones=(z,...)] [shifts=(z,...)] [foreign-shifts=(z,...)]
//	    what the fake executor sees: the replicas of a Deployment (default
//	    payment/payment-service), the cluster's nodes and those tainted by
//	    augur, the zones of the load balancer, and shifts away from zones
//	    (augur's or someone else's) added to those in force
//
//	decide at=D id=X kind=K [created=D] [expires=D|none] [rule=R] [why]
//	    scale, set_hpa_min, reserve_capacity: replicas=N [ns=NS] [name=NAME] [object=KIND]
//	    taint_node, untaint_node: node=N [effect=E]
//	    zonal_shift: away=Z [shift-expiry=D]
//	    a decision named X (created at D unless created says otherwise,
//	    expiring 5m after its creation unless expires says otherwise)
//	    signed and handled at D: prints its audit record as "X: outcome
//	    [guardrail], <the world after it>" (the guardrail left out when it
//	    repeats the outcome: expired, duplicate); with why the record's
//	    error too
//
//	replay at=D id=X [why]
//	    decision X's record value handled again at D
//
//	kill-switch on|off
//	    Actuator.SetKillSwitch
//
//	reconcile at=D [until=D] [why]
//	    Reconcile at D (with until, every retry interval up to until):
//	    every record it returns, prefixed with the time; "none" when none
//
// After decide, replay and reconcile, "in force: N" says how many
// decisions are in force (Actuator.InForce) whenever it changed.
//
// Rewrite the expected output with -rewrite.
func TestGuardrailStories(t *testing.T) {
	datadriven.Walk(t, "testdata/guardrails", func(t *testing.T, path string) {
		s := &guardStory{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			args := map[string][]string{}
			for _, a := range td.CmdArgs {
				args[a.Key] = a.Vals
			}
			if td.Cmd != "new" && s.a == nil {
				td.Fatalf(t, "%s before new", td.Cmd)
			}
			out, err := s.run(t, td.Cmd, args)
			if err != nil {
				td.Fatalf(t, "%s: %v", td.Cmd, err)
			}
			return out
		})
	})
}

// guardStory is the state of one story file: the actuator, its fake world,
// and the decisions handled so far by name.
type guardStory struct {
	a        *Actuator
	ex       *fakeExec
	clk      *fakeClock
	retry    time.Duration
	values   map[string][]byte // story name -> record value
	names    map[string]string // decision id -> story name
	inForce  int
	verbose  bool
	replicas map[string]int32 // replicas per target before the command
}

func (s *guardStory) run(t *testing.T, cmd string, args map[string][]string) (string, error) {
	one := func(k string) string {
		if v := args[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	_, s.verbose = args["why"]
	switch cmd {
	case "new":
		var err error
		s.a, s.ex, s.clk, _ = newTest(t, func(c *Config) { err = guardStoryConfig(c, args); s.retry = c.RetryInterval })
		s.values, s.names, s.inForce = map[string][]byte{}, map[string]string{}, 0
		return "", err
	case "observe":
		return "", s.observe(args)
	case "kill-switch":
		_, on := args["on"]
		s.a.SetKillSwitch(on)
		return "", nil
	case "decide", "replay":
		if err := s.advance(one("at")); err != nil {
			return "", err
		}
		id := one("id")
		v, ok := s.values[id]
		switch {
		case cmd == "replay" && !ok:
			return "", fmt.Errorf("no decision %q", id)
		case cmd == "decide" && ok:
			return "", fmt.Errorf("decision %q twice: use replay", id)
		case cmd == "decide":
			d, err := s.decision(t, args)
			if err != nil {
				return "", err
			}
			v = encode(t, d)
			s.values[id], s.names[d.GetId()] = v, id
		}
		s.snapshot()
		return s.inForceLine(strings.Join(s.lines(s.a.Handle(t.Context(), v), ""), "\n")), nil
	case "reconcile":
		if err := s.advance(one("at")); err != nil {
			return "", err
		}
		end := s.clk.Now()
		if u := one("until"); u != "" {
			d, err := time.ParseDuration(u)
			if err != nil {
				return "", err
			}
			end = t0.Add(d)
		}
		var lines []string
		for {
			s.snapshot()
			for _, act := range s.a.Reconcile(t.Context()) {
				lines = append(lines, s.lines(act, guardStoryOffset(s.clk.Now())+" ")...)
			}
			if s.clk.Now().Add(s.retry).After(end) {
				break
			}
			s.clk.Advance(s.retry)
		}
		if len(lines) == 0 {
			return s.inForceLine("none"), nil
		}
		return s.inForceLine(strings.Join(lines, "\n")), nil
	}
	return "", fmt.Errorf("unknown command")
}

// guardStoryConfig applies the new command's arguments to c.
func guardStoryConfig(c *Config, args map[string][]string) error {
	rule := Rule{}
	ruleName := "test-rule"
	for k, vs := range args {
		v := strings.Join(vs, ",")
		var err error
		dur := func(p *time.Duration) { *p, err = time.ParseDuration(v) }
		num := func(p *float64) { *p, err = strconv.ParseFloat(v, 64) }
		atoi := func(p *int) { *p, err = strconv.Atoi(v) }
		i32 := func(p *int32) {
			var n int
			n, err = strconv.Atoi(v)
			*p = int32(n)
		}
		switch k {
		case "mode":
			c.Mode = Mode(v)
		case "max-step":
			num(&c.MaxStep)
		case "cooldown-up":
			dur(&c.CooldownUp)
		case "cooldown-down":
			dur(&c.CooldownDown)
		case "stabilization":
			dur(&c.ScaleDownStabilization)
		case "retry":
			dur(&c.RetryInterval)
		case "rate-limit":
			atoi(&c.RateLimit)
		case "rate-window":
			dur(&c.RateWindow)
		case "max-node-actions":
			atoi(&c.MaxNodeActions)
		case "max-node-share":
			num(&c.MaxNodeShare)
		case "node-window":
			dur(&c.NodeWindow)
		case "untaint-hold-down":
			dur(&c.UntaintHoldDown)
		case "min-healthy-zones":
			atoi(&c.MinHealthyZones)
		case "max-shift-expiry":
			dur(&c.MaxZonalShiftExpiry)
		case "zonal-approval":
			c.ZonalShiftApproval = true
		case "min-replicas":
			i32(&c.MinReplicas)
		case "max-replicas":
			i32(&c.MaxReplicas)
		case "allow":
			c.AllowNamespaces = vs
		case "deny":
			c.DenyNamespaces = vs
		case "kill-switch":
			c.KillSwitch = true
		case "rule":
			ruleName = v
		case "rule-mode":
			rule.Mode = Mode(v)
		case "rule-min":
			i32(&rule.MinReplicas)
		case "rule-max":
			i32(&rule.MaxReplicas)
		case "rule-approval":
			rule.RequireApproval = true
		default:
			return fmt.Errorf("unknown argument %s", k)
		}
		if err != nil {
			return fmt.Errorf("%s=%s: %w", k, v, err)
		}
	}
	if rule != (Rule{}) {
		c.Rules = map[string]Rule{ruleName: rule}
	}
	return nil
}

// observe sets what the fake executor sees.
func (s *guardStory) observe(args map[string][]string) error {
	ns, name := "payment", "payment-service"
	if v := args["ns"]; len(v) == 1 {
		ns = v[0]
	}
	if v := args["name"]; len(v) == 1 {
		name = v[0]
	}
	for k, vs := range args {
		switch k {
		case "ns", "name":
		case "replicas":
			n, err := strconv.Atoi(vs[0])
			if err != nil {
				return err
			}
			s.ex.replicas[guardStoryDeployment(ns, name)] = int32(n)
		case "nodes":
			n, err := strconv.Atoi(vs[0])
			if err != nil {
				return err
			}
			s.ex.nodes = n
		case "tainted":
			clear(s.ex.tainted)
			for _, n := range vs {
				s.ex.tainted[n] = true
			}
		case "zones":
			s.ex.zones = vs
		case "shifts", "foreign-shifts":
			for _, z := range vs {
				s.ex.shifts = append(s.ex.shifts, Shift{ID: "shift-" + z, AwayFrom: z, Ours: k == "shifts"})
			}
		default:
			return fmt.Errorf("unknown argument %s", k)
		}
	}
	return nil
}

func guardStoryDeployment(ns, name string) string { return "k8s/deployment/" + ns + "/" + name }

// guardStoryZonal is the target of the stories' zonal shifts (the
// resource of the shift helper).
const guardStoryZonal = "aws/zonalshift/web"

// advance moves the clock to the offset at, which must not be in the past.
func (s *guardStory) advance(at string) error {
	d, err := time.ParseDuration(at)
	if err != nil {
		return fmt.Errorf("at=%q: %w", at, err)
	}
	to := t0.Add(d)
	if to.Before(s.clk.Now()) {
		return fmt.Errorf("at=%s is before the clock (%s)", at, s.clk.Now().Sub(t0))
	}
	s.clk.Advance(to.Sub(s.clk.Now()))
	return nil
}

// decision builds the signed decision the decide command describes.
func (s *guardStory) decision(t *testing.T, args map[string][]string) (*proto.Decision, error) {
	get := func(k, def string) string {
		if v := args[k]; len(v) > 0 {
			return strings.Join(v, ",")
		}
		return def
	}
	created := s.clk.Now()
	if c := get("created", ""); c != "" {
		d, err := time.ParseDuration(c)
		if err != nil {
			return nil, fmt.Errorf("created=%q: %w", c, err)
		}
		created = t0.Add(d)
	}
	var muts []func(*proto.Decision)
	switch e := get("expires", ""); e {
	case "":
	case "none":
		muts = append(muts, func(d *proto.Decision) { d.ExpiresAt = nil })
	default:
		d, err := time.ParseDuration(e)
		if err != nil {
			return nil, fmt.Errorf("expires=%q: %w", e, err)
		}
		muts = append(muts, func(dec *proto.Decision) { dec.ExpiresAt = timestamppb.New(created.Add(d)) })
	}
	if r := get("rule", ""); r != "" {
		muts = append(muts, func(d *proto.Decision) { d.Rule = r })
	}
	kind := get("kind", proto.KindScale)
	var target string
	var ch *proto.Change
	switch kind {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
		n, err := strconv.Atoi(get("replicas", ""))
		if err != nil {
			return nil, fmt.Errorf("replicas: %w", err)
		}
		ns, name := get("ns", "payment"), get("name", "payment-service")
		target = guardStoryDeployment(ns, name)
		ch = scaleTo(ns, name, int32(n))
		ch.Object.Kind = get("object", "Deployment")
	case proto.KindTaintNode, proto.KindUntaintNode:
		node := get("node", "")
		target = "k8s/node/" + node
		ch = taint(node, get("effect", "NoSchedule"))
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		e, err := time.ParseDuration(get("shift-expiry", "30m"))
		if err != nil {
			return nil, fmt.Errorf("shift-expiry: %w", err)
		}
		target = guardStoryZonal
		ch = shift(get("away", ""), int64(e/time.Second))
	default:
		return nil, fmt.Errorf("kind %q: the stories know no such kind", kind)
	}
	return decision(t, created, kind, target, ch, muts...), nil
}

// snapshot remembers the replicas of every target before a command.
func (s *guardStory) snapshot() { s.replicas = maps.Clone(s.ex.replicas) }

// lines renders an audit record: "X: outcome [guardrail], <world>" after
// prefix, and its error on a second line when the command asked why.
func (s *guardStory) lines(act *proto.Action, prefix string) []string {
	name := s.names[act.GetDecisionId()]
	if name == "" {
		name = "?"
	}
	line := prefix + name + ": " + act.GetOutcome()
	if g := act.GetGuardrail(); g != "" && g != act.GetOutcome() {
		line += " " + g
	}
	if w := s.world(act); w != "" {
		line += ", " + w
	}
	if s.verbose && act.GetError() != "" {
		return []string{line, "  " + act.GetError()}
	}
	return []string{line}
}

// inForceLine appends "in force: N" to out when N changed.
func (s *guardStory) inForceLine(out string) string {
	if n := s.a.InForce(); n != s.inForce {
		s.inForce = n
		return out + fmt.Sprintf("\nin force: %d", n)
	}
	return out
}

// world describes the part of the fake world act's decision touches.
func (s *guardStory) world(act *proto.Action) string {
	switch act.GetKind() {
	case proto.KindScale, proto.KindSetHPAMin, proto.KindReserveCapacity:
		before, now := s.replicas[act.GetTarget()], s.ex.replicas[act.GetTarget()]
		w := fmt.Sprintf("replicas %d", now)
		if before != now {
			w = fmt.Sprintf("replicas %d -> %d", before, now)
		}
		// Every observed replica decision's record has its goal: shown
		// for a bounded step, where it is not where the step went.
		if g := act.GetAfter()["goal"]; g != "" && act.GetGuardrail() == GuardMaxStep {
			w += " (goal " + g + ")"
		}
		return w
	case proto.KindTaintNode, proto.KindUntaintNode:
		return fmt.Sprintf("tainted %v", slices.Sorted(maps.Keys(s.ex.tainted)))
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		var away []string
		for _, sh := range s.ex.shifts {
			away = append(away, sh.AwayFrom)
		}
		return fmt.Sprintf("shifted away from %v", away)
	}
	return ""
}

// guardStoryOffset renders t as its offset from the clock's start: 1m, 1m30s.
func guardStoryOffset(t time.Time) string {
	s := t.Sub(t0).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
