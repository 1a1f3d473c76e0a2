package actuators

import (
	"errors"
	"fmt"
	"time"
)

// Mode is how far the actuator goes with a decision that passes every
// guardrail.
type Mode string

// Modes, from the most to the least conservative.
const (
	// ModeOff records the decision as refused (guardrail "mode_off") and
	// touches nothing.
	ModeOff Mode = "off"
	// ModeDryRun reads the current state and sends the change with
	// server-side dry-run (Kubernetes DryRun=All) or not at all (AWS), so
	// validation still runs; the outcome is dry_run.
	ModeDryRun Mode = "dry-run"
	// ModeEnforce applies the change.
	ModeEnforce Mode = "enforce"
)

// rank orders modes by how much they allow.
func (m Mode) rank() int {
	switch m {
	case ModeOff:
		return 0
	case ModeDryRun:
		return 1
	case ModeEnforce:
		return 2
	}
	return -1
}

// Valid reports whether m is one of the three modes.
func (m Mode) Valid() bool { return m.rank() >= 0 }

// stricter returns the more conservative of a and b; an empty mode defers to
// the other one.
func stricter(a, b Mode) Mode {
	if a == "" {
		return b
	}
	if b == "" || a.rank() <= b.rank() {
		return a
	}
	return b
}

// Rule holds the per-rule overrides of the guardrails. The zero value
// inherits everything from Config.
type Rule struct {
	// Mode for this rule's decisions. The effective mode is the stricter of
	// this and Config.Mode: a rule can never loosen the global mode. Default
	// "" (inherit).
	Mode Mode `yaml:"mode"`
	// MinReplicas and MaxReplicas bound scale, set_hpa_min and
	// reserve_capacity decisions; a decision outside them is refused
	// (guardrails "min_replicas", "max_replicas"). They narrow the global
	// bounds and never widen them, as a rule's mode never loosens the
	// global one. Default 0 (inherit Config.MinReplicas /
	// Config.MaxReplicas).
	MinReplicas int32 `yaml:"min_replicas"`
	MaxReplicas int32 `yaml:"max_replicas"`
	// AllowStatefulSets lets scale decisions of this rule touch
	// StatefulSets. Default false: refused with "statefulset_not_opted_in".
	AllowStatefulSets bool `yaml:"allow_statefulsets"`
	// RequireApproval records the intent only (outcome pending_approval)
	// and applies nothing, for every decision of the rule. Default false.
	RequireApproval bool `yaml:"require_approval"`
}

// Config configures an Actuator. Build one with DefaultConfig and override
// fields; New calls Validate.
type Config struct {
	// DecisionsTopic is consumed; ActionsTopic receives one audit record per
	// decision seen. Defaults "augur.decisions" and "augur.actions".
	DecisionsTopic string `yaml:"decisions_topic"`
	ActionsTopic   string `yaml:"actions_topic"`
	// Actor names this actuator instance in the audit records (for example
	// the pod name). Default "augur-actuator".
	Actor string `yaml:"actor"`

	// DecisionKeys are the HMAC keys decisions are signed with; a decision
	// verifying under any of them is accepted (several keys allow rotation).
	// Required: with no key every decision is refused, so New rejects it.
	DecisionKeys [][]byte `yaml:"-"`

	// Mode is the global mode. Default dry-run.
	Mode Mode `yaml:"mode"`
	// KillSwitch refuses every decision (guardrail "kill_switch") while
	// true; it can also be flipped at run time with Actuator.SetKillSwitch.
	// KillSwitchFile, when set, does the same while that file exists, so an
	// operator can stop all actions with `touch`. Default false / "".
	KillSwitch     bool   `yaml:"kill_switch"`
	KillSwitchFile string `yaml:"kill_switch_file"`
	// Rules holds per-rule overrides, keyed by Decision.Rule.
	Rules map[string]Rule `yaml:"rules"`

	// DenyNamespaces are never touched (guardrail "namespace_denied").
	// Default ["kube-system"]. AllowNamespaces, when not empty, is the only
	// set of namespaces touched (guardrail "namespace_not_allowed").
	DenyNamespaces  []string `yaml:"deny_namespaces"`
	AllowNamespaces []string `yaml:"allow_namespaces"`

	// MinReplicas and MaxReplicas bound every replica count asked for.
	// Defaults 1 and 1000.
	MinReplicas int32 `yaml:"min_replicas"`
	MaxReplicas int32 `yaml:"max_replicas"`
	// MaxStep is the largest change per step as a share of the current
	// replicas (0.5 = ±50%, the default); at least one replica of change is
	// always allowed so that small workloads can move. A larger decision is
	// not refused: the step toward it is applied (audit guardrail
	// "max_step", after["goal"] the decided replicas) and, in enforce mode,
	// the next steps follow as the cooldowns allow (RetryInterval), as the
	// HPA's scale-up policies bound its steps.
	MaxStep float64 `yaml:"max_step"`
	// CooldownUp is the minimum time between two applied scale-ups of one
	// target (default 1m); CooldownDown the minimum time after any applied
	// scale change of a target before a scale-down (default 5m). Guardrails
	// "cooldown_up", "cooldown_down".
	CooldownUp   time.Duration `yaml:"cooldown_up"`
	CooldownDown time.Duration `yaml:"cooldown_down"`
	// ScaleDownStabilization refuses a scale-down while any decision for the
	// same target in this window asked for more (guardrail
	// "scale_down_stabilization"), like the HPA's stabilization window.
	// Default 5m.
	ScaleDownStabilization time.Duration `yaml:"scale_down_stabilization"`
	// RetryInterval is how often a replica decision in force is tried
	// again: one whose change max_step bounded (the next step is taken once
	// the cooldown allows) or one a timing guardrail deferred (cooldowns,
	// stabilization, rate limit). It stays in force until reached, expired
	// or replaced by a newer decision for its target. Enforce mode only.
	// Default 10s.
	RetryInterval time.Duration `yaml:"retry_interval"`

	// RateLimit is the most changes (applied or dry-run) per RateWindow
	// across all targets; further decisions are refused with "rate_limit".
	// Defaults 30 per 1m.
	RateLimit  int           `yaml:"rate_limit"`
	RateWindow time.Duration `yaml:"rate_window"`

	// Node actions (taint_node with or without cordon): never more than
	// MaxNodeActions nodes tainted by augur at once or within NodeWindow,
	// nor more than MaxNodeShare of the nodes (guardrail "blast_radius").
	// Defaults 2, 0.1 and 1h.
	MaxNodeActions int           `yaml:"max_node_actions"`
	MaxNodeShare   float64       `yaml:"max_node_share"`
	NodeWindow     time.Duration `yaml:"node_window"`
	// UntaintHoldDown is how long a node stays tainted by augur before an
	// untaint decision is accepted (guardrail "untaint_hold_down"). Default
	// 10m.
	UntaintHoldDown time.Duration `yaml:"untaint_hold_down"`

	// MinHealthyZones is the fewest zones a resource may be left with after
	// a zonal shift (guardrail "zonal_min_healthy_zones"). Default 2; less
	// than 2 is rejected by Validate.
	MinHealthyZones int `yaml:"min_healthy_zones"`
	// MaxZonalShiftExpiry bounds the expiry of a zonal shift; a decision
	// without an expiry or above it is refused ("zonal_expiry"). Default 3h
	// (AWS allows up to 3 days).
	MaxZonalShiftExpiry time.Duration `yaml:"max_zonal_shift_expiry"`
	// ZonalShiftApproval makes every zonal shift need a human: the intent is
	// recorded with outcome pending_approval. Default false.
	ZonalShiftApproval bool `yaml:"zonal_shift_approval"`

	// MaxDecisionTTL bounds how far ahead a decision may expire: a
	// decision expiring later than this after it arrives is refused
	// (guardrail "max_decision_ttl"). It is also how far back Recall
	// reads the audit records to rebuild the replay set. Default 1h.
	MaxDecisionTTL time.Duration `yaml:"max_decision_ttl"`
	// SeenCapacity bounds the set of decision ids remembered for replay
	// protection; ids of expired decisions are dropped first. Default
	// 100000.
	SeenCapacity int `yaml:"seen_capacity"`
	// MaxPollRecords bounds the decisions handled per poll. Default 100.
	MaxPollRecords int `yaml:"max_poll_records"`

	// Now is the clock. Default time.Now; tests inject a fake clock.
	Now func() time.Time `yaml:"-"`
}

// DefaultConfig returns the defaults documented on Config. DecisionKeys is
// left empty: the caller must set it.
func DefaultConfig() Config {
	return Config{
		DecisionsTopic:         "augur.decisions",
		ActionsTopic:           "augur.actions",
		Actor:                  "augur-actuator",
		Mode:                   ModeDryRun,
		DenyNamespaces:         []string{"kube-system"},
		MinReplicas:            1,
		MaxReplicas:            1000,
		MaxStep:                0.5,
		CooldownUp:             time.Minute,
		CooldownDown:           5 * time.Minute,
		ScaleDownStabilization: 5 * time.Minute,
		RetryInterval:          10 * time.Second,
		RateLimit:              30,
		RateWindow:             time.Minute,
		MaxNodeActions:         2,
		MaxNodeShare:           0.1,
		NodeWindow:             time.Hour,
		UntaintHoldDown:        10 * time.Minute,
		MinHealthyZones:        2,
		MaxZonalShiftExpiry:    3 * time.Hour,
		MaxDecisionTTL:         time.Hour,
		SeenCapacity:           100000,
		MaxPollRecords:         100,
		Now:                    time.Now,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.DecisionsTopic == "" || c.ActionsTopic == "" {
		errs = append(errs, errors.New("decisions and actions topics are required"))
	}
	if len(c.DecisionKeys) == 0 {
		errs = append(errs, errors.New("at least one decision key is required"))
	}
	for i, k := range c.DecisionKeys {
		if len(k) < 16 {
			errs = append(errs, fmt.Errorf("decision key %d: %d bytes, want at least 16", i, len(k)))
		}
	}
	if !c.Mode.Valid() {
		errs = append(errs, fmt.Errorf("mode %q: want off, dry-run or enforce", c.Mode))
	}
	for name, r := range c.Rules {
		if r.Mode != "" && !r.Mode.Valid() {
			errs = append(errs, fmt.Errorf("rule %q: mode %q: want off, dry-run or enforce", name, r.Mode))
		}
		if r.MaxReplicas != 0 && r.MinReplicas > r.MaxReplicas {
			errs = append(errs, fmt.Errorf("rule %q: min replicas %d above max %d", name, r.MinReplicas, r.MaxReplicas))
		}
	}
	if c.MinReplicas < 0 || c.MaxReplicas < c.MinReplicas {
		errs = append(errs, fmt.Errorf("replica bounds [%d, %d] invalid", c.MinReplicas, c.MaxReplicas))
	}
	if c.MaxStep <= 0 {
		errs = append(errs, fmt.Errorf("max step %v: want > 0", c.MaxStep))
	}
	if c.CooldownUp < 0 || c.CooldownDown < 0 || c.ScaleDownStabilization < 0 || c.UntaintHoldDown < 0 {
		errs = append(errs, errors.New("cooldowns, stabilization and hold-down must not be negative"))
	}
	if c.RetryInterval <= 0 {
		errs = append(errs, fmt.Errorf("retry interval %v: want > 0", c.RetryInterval))
	}
	if c.RateLimit <= 0 || c.RateWindow <= 0 {
		errs = append(errs, fmt.Errorf("rate limit %d per %v: want both > 0", c.RateLimit, c.RateWindow))
	}
	if c.MaxNodeActions <= 0 || c.MaxNodeShare <= 0 || c.MaxNodeShare > 1 || c.NodeWindow <= 0 {
		errs = append(errs, fmt.Errorf("node blast radius (%d nodes, share %v, window %v) invalid", c.MaxNodeActions, c.MaxNodeShare, c.NodeWindow))
	}
	if c.MinHealthyZones < 2 {
		errs = append(errs, fmt.Errorf("min healthy zones %d: want at least 2", c.MinHealthyZones))
	}
	if c.MaxZonalShiftExpiry <= 0 || c.MaxZonalShiftExpiry > 72*time.Hour {
		errs = append(errs, fmt.Errorf("max zonal shift expiry %v: want (0, 72h]", c.MaxZonalShiftExpiry))
	}
	if c.MaxDecisionTTL <= 0 || c.MaxDecisionTTL > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("max decision ttl %v: want (0, 168h]", c.MaxDecisionTTL))
	}
	if c.SeenCapacity <= 0 || c.MaxPollRecords <= 0 {
		errs = append(errs, errors.New("seen capacity and max poll records must be > 0"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("clock (Now) is required"))
	}
	return errors.Join(errs...)
}

// rule returns the overrides for a rule name merged with the globals.
func (c *Config) rule(name string) (r Rule) {
	r = c.Rules[name]
	r.Mode = stricter(c.Mode, r.Mode)
	r.MinReplicas = max(r.MinReplicas, c.MinReplicas)
	if r.MaxReplicas == 0 || r.MaxReplicas > c.MaxReplicas {
		r.MaxReplicas = c.MaxReplicas
	}
	return r
}
