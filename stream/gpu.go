package stream

import (
	"fmt"
	"math"

	"github.com/augur-ops/augur/detectors/gpu"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
)

// gpuGroup adapts detectors/gpu to GroupDetector: every DCGM sample goes
// to Observe (hardware faults are decided at once), step times of the
// rule's step_time_metric to ObserveStep, and each closed window to Tick.
type gpuGroup struct {
	rule *rules.GPU
	det  *gpu.Detector
	job  string
	lbls []proto.Label // labels of the sample being observed, for label
	lfn  func(string) string
}

func newGPUGroup(r *rules.Rule, tenant string, groupVals []string) (*gpuGroup, error) {
	d, err := gpu.New(gpuConfig(r, tenant))
	if err != nil {
		return nil, err
	}
	g := &gpuGroup{rule: r.GPU, det: d, job: jobName(groupVals)}
	g.lfn = g.label // bound once: no closure per sample
	return g, nil
}

func (g *gpuGroup) label(name string) string {
	v, _ := labelValue(g.lbls, name)
	return v
}

// Observe implements GroupDetector.
func (g *gpuGroup) Observe(p *Point) []*proto.Decision {
	name, _ := labelValue(p.Labels, "__name__")
	g.lbls = p.Labels
	defer func() { g.lbls = nil }()
	if name == g.rule.StepTimeMetric {
		if finite(p.Value) {
			worker, _ := labelValue(p.Labels, g.rule.WorkerLabel)
			g.det.ObserveStep(g.job, worker, gpu.Node(g.lfn), p.Ts, p.Value)
		}
		return nil
	}
	v := p.Value
	if gpuCounter(name) {
		if math.IsNaN(p.Rate) {
			return nil // a counter's first sample
		}
		v = p.Rate
	}
	s, ok := gpu.NewSample(name, g.lfn, g.job, p.Ts, v)
	if !ok {
		return nil
	}
	return g.det.Observe(s)
}

// Close implements GroupDetector.
func (g *gpuGroup) Close(end int64) []*proto.Decision { return g.det.Tick(unixMs(end)) }

// AppendBinary implements GroupDetector.
func (g *gpuGroup) AppendBinary(b []byte) ([]byte, error) {
	b, err := g.det.AppendBinary(b)
	if err != nil {
		return nil, fmt.Errorf("gpu detector: %w", err)
	}
	return b, nil
}

// UnmarshalBinary implements GroupDetector.
func (g *gpuGroup) UnmarshalBinary(b []byte) error { return g.det.UnmarshalBinary(b) }
