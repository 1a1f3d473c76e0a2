package gpu

import (
	"fmt"
	"math"
	"time"

	"github.com/augur-ops/augur/detectors"
	"github.com/augur-ops/augur/proto"
)

// Group is a Detector fed as a detectors.Group: every DCGM sample goes to
// Observe (hardware faults are decided at once), step times of the
// stepTimeMetric to ObserveStep, and each closed window to Tick.
type Group struct {
	stepTimeMetric, workerLabel string
	nodeLabel                   string // the rule's node_label, tried before Node's labels
	det                         *Detector
	job                         string
	lbls                        []proto.Label // labels of the sample being observed, for label
	lfn                         func(string) string
}

// NewGroup returns the Group of a Detector configured by cfg for the job
// (the group's group_by values), with training step times in the gauge
// stepTimeMetric ("" none) per worker label workerLabel. nodeLabel (a
// gpu rule's node_label) names the node of a series; a series without it
// falls back to Node's labels.
func NewGroup(cfg Config, job, stepTimeMetric, workerLabel, nodeLabel string) (*Group, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	g := &Group{stepTimeMetric: stepTimeMetric, workerLabel: workerLabel, nodeLabel: nodeLabel, det: d, job: job}
	g.lfn = g.label // bound once: no closure per sample
	return g, nil
}

func (g *Group) label(name string) string {
	v, _ := proto.LabelValue(g.lbls, name)
	return v
}

// Observe implements detectors.Group.
func (g *Group) Observe(p *detectors.Point) []*proto.Decision {
	name, _ := proto.LabelValue(p.Labels, "__name__")
	g.lbls = p.Labels
	defer func() { g.lbls = nil }()
	if name == g.stepTimeMetric && name != "" {
		if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
			worker, _ := proto.LabelValue(p.Labels, g.workerLabel)
			g.det.ObserveStep(g.job, worker, nodeOf(g.lfn, g.nodeLabel), p.Ts, p.Value)
		}
		return nil
	}
	v := p.Value
	if Counter(name) {
		if math.IsNaN(p.Rate) {
			return nil // a counter's first sample
		}
		v = p.Rate
	}
	s, ok := newSample(name, g.lfn, g.nodeLabel, g.job, p.Ts, v)
	if !ok {
		return nil
	}
	return g.det.Observe(s)
}

// Close implements detectors.Group.
func (g *Group) Close(end int64) []*proto.Decision { return g.det.Tick(time.UnixMilli(end)) }

// AppendBinary implements detectors.Group.
func (g *Group) AppendBinary(b []byte) ([]byte, error) {
	b, err := g.det.AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("gpu detector: %w", err)
	}
	return b, nil
}

// UnmarshalBinary implements detectors.Group.
func (g *Group) UnmarshalBinary(b []byte) error { return g.det.UnmarshalBinary(b) }

// Counter reports whether a DCGM (or companion) series is a counter the
// detector wants as a per-second rate, whatever its metadata says (DCGM's
// counters end in _TOTAL or have no suffix at all).
func Counter(name string) bool {
	switch m, _ := Lookup(name); m {
	case MetricECCDBE, MetricThermalViolation, MetricPowerViolation, MetricNetRx:
		return true
	}
	return false
}
