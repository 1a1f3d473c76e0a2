package stream

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/detectors/gpu"
	"github.com/augur-ops/augur/detectors/grayfailure"
	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/models/bank"
)

// Point is one accepted sample of a series a group rule selects, as a
// GroupDetector sees it (detectors.Point).
type Point = detectors.Point

// GroupDetector judges one gray-failure or GPU group (detectors.Group).
type GroupDetector = detectors.Group

// NewGroupDetector makes the detector of a new gray-failure or GPU group.
// rule is the whole rule (its GrayFailure or GPU section is set); groupVals
// are the values of the rule's group_by labels. It is only called with
// rules that passed Config.Validate.
type NewGroupDetector func(rule *rules.Rule, tenant string, groupVals []string) GroupDetector

// DefaultGroupDetector is the default NewGroupDetector: detectors/grayfailure
// for gray_failure rules and detectors/gpu for gpu rules.
func DefaultGroupDetector(rule *rules.Rule, tenant string, groupVals []string) GroupDetector {
	var (
		d   GroupDetector
		err error
	)
	switch {
	case rule.GrayFailure != nil:
		d, err = newGrayGroup(rule, tenant)
	case rule.GPU != nil:
		d, err = newGPUGroup(rule, tenant, groupVals)
	default:
		err = errors.New("not a gray_failure or gpu rule")
	}
	if err != nil {
		// Config.Validate built the same configuration once per rule.
		panic(fmt.Sprintf("group detector of rule %s: %v", rule.Name, err))
	}
	return d
}

// bankConfig is the forecaster bank of a scaling rule: one step per
// aggregation window, scored at the rule's horizon; the signal, a sum of
// counter rates, is never negative.
func bankConfig(s *rules.Scaling) bank.Config {
	return bank.Config{Step: s.Window, Horizon: s.Horizon, MaxHorizon: rules.MaxHorizon, NonNegative: true}
}

// scalerConfig maps a scaling rule to detectors/scaling. The scaler always
// decides on the rule's target; the stream turns its decision into the
// rule's mode (scale, hpa_min, reserve_capacity).
func scalerConfig(r *rules.Rule, tenant string) scaling.Config {
	s := r.Scaling
	return scaling.Config{
		Rule:           r.Name,
		Target:         scaling.Object{Kind: s.Target.Kind, Namespace: s.Target.Namespace, Name: s.Target.Name},
		Signal:         "sum(rate(" + s.Selector + "))",
		Tenant:         tenant,
		CapacityPerPod: s.CapacityPerPod,
		MinReplicas:    s.MinReplicas,
		MaxReplicas:    s.MaxReplicas,
		Horizon:        s.Horizon,
		Stabilization:  s.ScaleDownDelay,
		DecisionTTL:    s.DecisionTTL,
		// Size on at most the rule's interval cap (default three times
		// the point forecast), hold whole recommendations a minute,
		// and for a minute after a scale down scale up only for the
		// observed load: chosen in bench/scalesim leaving one trace
		// out (-heldout, at a 90-s pod start), among caps 0.5-2, holds
		// 1-5m and guards 0-5m; without the guard the stream reversed
		// itself 9 times as often as the HPA
		// (bench/RESULTS-forecast.md).
		IntervalCap:   s.IntervalCap,
		ForecastHold:  min(time.Minute, s.ScaleDownDelay),
		ReversalGuard: time.Minute,
		// Steps as large as the HPA's defaults allow (up to the
		// recommendation at once, down to it after the stabilization):
		// bench/scalesim's HPA baseline moves that way, and the
		// actuator's max_step guardrail applies a large change in
		// bounded steps anyway. A bound of half the replicas per
		// window took a 5-minute rule half an hour to follow a surge
		// (bench/RESULTS-forecast.md).
		MaxScaleUp:   float64(s.MaxReplicas),
		MaxScaleDown: 1,
	}
}

// validateModels builds the configuration of every rule's detectors once,
// so that a rule the detectors refuse fails at start-up with its name.
func validateModels(set *rules.Set) error {
	var errs []error
	for i := range set.Len() {
		r := set.Rule(i)
		var err error
		switch {
		case r.Anomaly != nil:
			c := r.Anomaly.DetectorConfig()
			err = c.Validate()
		case r.Scaling != nil:
			b, c := bankConfig(r.Scaling), scalerConfig(r, "")
			err = errors.Join(b.Validate(), c.Validate())
		case r.GrayFailure != nil:
			c := grayConfig(r, "")
			err = c.Validate()
		case r.GPU != nil:
			c := gpuConfig(r, "")
			err = c.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// newGrayGroup is the group detector of a gray_failure rule.
func newGrayGroup(r *rules.Rule, tenant string) (*grayfailure.Group, error) {
	return grayfailure.NewGroup(grayConfig(r, tenant), r.GrayFailure.ZoneLabel, r.GrayFailure.InstanceLabel)
}

// grayConfig maps a gray_failure rule to detectors/grayfailure (see
// internal/rules/README.md for the mapping).
func grayConfig(r *rules.Rule, tenant string) grayfailure.Config {
	g := r.GrayFailure
	t := g.Thresholds
	c := grayfailure.Config{
		Rule:             r.Name,
		Resource:         g.ResourceARN,
		Tenant:           tenant,
		Step:             g.Window,
		MinInstances:     g.MinInstances,
		MinRequests:      g.MinRequests,
		FalseAlarmDays:   g.FalseAlarmDays,
		MeanLatencyLimit: t.MeanLatencySeconds,
		P99LatencyLimit:  t.P99LatencySeconds,
		MaxLatencyLimit:  t.MaxLatencySeconds,
		ErrorShareLimit:  t.ErrorRatio,
		PacketLossLimit:  t.PacketLoss,
		ShiftExpiry:      g.ShiftExpiry,
	}
	if t.PeerRatio > 0 {
		c.ShiftRatio = t.PeerRatio
		c.WarnRatio = min(1.2, t.PeerRatio)
	}
	return c
}

// gpuConfig maps a gpu rule to detectors/gpu.
func gpuConfig(r *rules.Rule, tenant string) gpu.Config {
	g := r.GPU
	return gpu.Config{Rule: r.Name, Tenant: tenant, TaintKey: g.TaintKey, CordonOnFault: g.Cordon}
}

// newGPUGroup is the group detector of a gpu rule.
func newGPUGroup(r *rules.Rule, tenant string, groupVals []string) (*gpu.Group, error) {
	return gpu.NewGroup(gpuConfig(r, tenant), jobName(groupVals), r.GPU.StepTimeMetric, r.GPU.WorkerLabel, r.GPU.NodeLabel)
}

// jobName is the GPU detector's job of a group: its group_by values.
func jobName(vals []string) string { return strings.Join(vals, "/") }

// unixMs converts event time to a time.Time.
func unixMs(ms int64) time.Time { return time.UnixMilli(ms) }
