// Package scenario simulates a service spread over availability zones, window
// by window, as the stream would aggregate it (grayfailure.ZoneStats), and
// injects zonal gray failures: added latency in one zone, packet loss in one
// zone, a drained node, a whole-region slowdown. Run drives a
// grayfailure.Detector through a simulation, applies its zonal shifts back to
// the simulated traffic and scores the decisions.
//
// The model: pods behind a load balancer with cross-zone load balancing (every
// pod gets the same share of requests, as with an ALB), a request rate with a
// daily shape (trough at 04:00, peak at 16:00) and minute-to-minute noise,
// per-request latency lognormal (median 30 ms, sigma 0.6) scaled by a fixed
// per-pod factor and by queueing (1/(1-utilisation)), 0.1% background errors,
// and the everyday noise of a healthy fleet: a pod stalling for a minute (GC,
// noisy neighbour) about once an hour and a one-minute 1% error burst in a
// zone about every 4 hours (a deploy), whatever the window length. Latency
// mean and p99 come from a sample of the window's requests, like a
// histogram would. A window is one scrape interval (15 s by default).
package scenario

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/augur-ops/augur/detectors/grayfailure"
)

// FaultKind is a kind of injected failure.
type FaultKind int

// Fault kinds.
const (
	// Latency adds N(Size, Size/4) to every request of one zone (Size
	// default 200 ms).
	Latency FaultKind = iota
	// PacketLoss loses 5% of one zone's packets: the loss signal rises, a
	// request that loses a packet waits for a retransmission (200 ms RTO) and
	// a few time out.
	PacketLoss
	// DrainNode removes one node's pods in one zone (maintenance); its
	// first minute has connection resets. Not a failure to shift for.
	DrainNode
	// Regional slows every zone down by about 150 ms, one zone after the
	// other Stagger apart: a shared dependency, not a zone.
	Regional
	// Errors fails Size of one zone's requests (default 5%).
	Errors
)

// String names the fault kind.
func (k FaultKind) String() string {
	switch k {
	case Latency:
		return "latency"
	case PacketLoss:
		return "packet_loss_5pct"
	case DrainNode:
		return "drained_node"
	case Regional:
		return "regional_slowdown"
	case Errors:
		return "errors"
	}
	return "unknown"
}

// Fault is one injected failure over [Start, End).
type Fault struct {
	Kind       FaultKind
	Zone       int // index into Config.Zones; ignored by Regional
	Start, End time.Time
	// Size is the added latency in seconds (Latency) or the failed share
	// (Errors); 0 takes the default.
	Size float64
	// Stagger is the delay between zones of a Regional fault.
	Stagger time.Duration
}

// Config describes a simulation. Zero fields take the documented defaults.
type Config struct {
	// Zones are the AZ IDs. Default use1-az1, use1-az2, use1-az4.
	Zones []string
	// NodesPerZone and PodsPerNode shape the fleet. Defaults 3 and 2.
	NodesPerZone, PodsPerNode int
	// PeakRPS is the whole service's request rate at the daily peak.
	// Default 1500; the trough is 20% of it.
	PeakRPS float64
	// PodCapacityRPS is what one pod serves at 100% utilisation. Default 300.
	PodCapacityRPS float64
	// CanaryRPS is the synthetic probe traffic a zone keeps while traffic is
	// shifted away from it, so that its recovery can be seen. Default 2.
	CanaryRPS float64
	// Samples is how many requests per zone and minute the latency
	// statistics are estimated from (scaled to the window). Default 4000
	// (the p99 of a real histogram over every request is less noisy than
	// that of a sample).
	Samples int
	// Start is the first window's start. Default 2025-01-06T00:00:00Z.
	Start time.Time
	// Step is the window length: the scrape interval. Default 15s.
	Step time.Duration
	// Seed seeds the random source.
	Seed uint64
	// Quiet turns off the everyday noise (pod stalls, error bursts).
	Quiet bool
	// Faults injected.
	Faults []Fault
}

func (c *Config) defaults() {
	if len(c.Zones) == 0 {
		c.Zones = []string{"use1-az1", "use1-az2", "use1-az4"}
	}
	if c.NodesPerZone == 0 {
		c.NodesPerZone = 3
	}
	if c.PodsPerNode == 0 {
		c.PodsPerNode = 2
	}
	if c.PeakRPS == 0 {
		c.PeakRPS = 1500
	}
	if c.PodCapacityRPS == 0 {
		c.PodCapacityRPS = 300
	}
	if c.CanaryRPS == 0 {
		c.CanaryRPS = 2
	}
	if c.Samples == 0 {
		c.Samples = 4000
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	}
	if c.Step == 0 {
		c.Step = 15 * time.Second
	}
}

// Sim is a running simulation.
type Sim struct {
	cfg     Config
	rng     *rand.Rand
	now     time.Time // start of the next window
	podF    [][]float64
	shifted int // zone index traffic is shifted away from, -1 none
	stats   []grayfailure.ZoneStats
	lat     []float64
	// regionalExtra is the slowdown of each zone in a regional event, s.
	regionalExtra []float64
	// The everyday noise in progress: a stalled pod and an error burst,
	// until the times given.
	stallZone, stallPod, burstZone int
	stallUntil, burstUntil         time.Time
}

// New starts a simulation.
func New(cfg Config) *Sim {
	cfg.defaults()
	s := &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: cfg.Start, shifted: -1,
		stallZone: -1, burstZone: -1}
	pods := cfg.NodesPerZone * cfg.PodsPerNode
	for range cfg.Zones {
		f := make([]float64, pods)
		for p := range f {
			f[p] = math.Exp(0.1 * s.rng.NormFloat64())
		}
		s.podF = append(s.podF, f)
	}
	s.regionalExtra = make([]float64, len(cfg.Zones))
	for z := range s.regionalExtra {
		s.regionalExtra[z] = 0.150 * (1 + 0.1*(s.rng.Float64()*2-1))
	}
	s.stats = make([]grayfailure.ZoneStats, len(cfg.Zones))
	s.lat = make([]float64, 0, cfg.Samples)
	return s
}

// Config returns the configuration with defaults applied.
func (s *Sim) Config() Config { return s.cfg }

// SetShifted moves the load balancer's traffic away from zone ("" for none).
func (s *Sim) SetShifted(zone string) {
	s.shifted = slices.Index(s.cfg.Zones, zone)
}

// overlaps reports whether a fault of kind k on zone z overlaps [a, b).
func (s *Sim) overlaps(k FaultKind, z int, a, b time.Time) bool {
	for _, f := range s.cfg.Faults {
		if f.Kind == k && (f.Zone == z || k == Regional) && f.Start.Before(b) && a.Before(f.End) {
			return true
		}
	}
	return false
}

// Next simulates one window and returns its end and every zone's stats. The
// returned slice is reused by the next call.
func (s *Sim) Next() (time.Time, []grayfailure.ZoneStats) {
	c := &s.cfg
	a, b := s.now, s.now.Add(c.Step)
	s.now = b
	sec := c.Step.Seconds()
	hour := float64(a.Hour()) + float64(a.Minute())/60 + float64(a.Second())/3600
	shape := 0.2 + 0.8*(0.5-0.5*math.Cos(2*math.Pi*(hour-4)/24))
	total := c.PeakRPS * shape * math.Exp(0.05*s.rng.NormFloat64())

	// Pods per zone, after drains; traffic per pod with cross-zone LB.
	podsPer := c.NodesPerZone * c.PodsPerNode
	pods := make([]int, len(c.Zones))
	servingPods := 0
	for z := range c.Zones {
		pods[z] = podsPer
		if s.overlaps(DrainNode, z, a, b) {
			pods[z] -= c.PodsPerNode
		}
		if z != s.shifted {
			servingPods += pods[z]
		}
	}
	perPod := total / float64(servingPods)
	util := math.Min(perPod/c.PodCapacityRPS, 0.9)
	queue := 1 / (1 - util)

	// Everyday noise: a stalled pod about once an hour, an error burst
	// about every 4 hours, each for a minute.
	if !a.Before(s.stallUntil) {
		s.stallZone = -1
	}
	if !a.Before(s.burstUntil) {
		s.burstZone = -1
	}
	if !c.Quiet {
		if s.stallZone < 0 && s.rng.Float64() < sec/3600 {
			s.stallZone, s.stallPod, s.stallUntil = s.rng.IntN(len(c.Zones)), s.rng.IntN(podsPer), a.Add(time.Minute)
		}
		if s.burstZone < 0 && s.rng.Float64() < sec/(4*3600) {
			s.burstZone, s.burstUntil = s.rng.IntN(len(c.Zones)), a.Add(time.Minute)
		}
	}
	stallZone, stallPod, burstZone := s.stallZone, s.stallPod, s.burstZone

	for z, name := range c.Zones {
		rps := perPod * float64(pods[z])
		if z == s.shifted {
			rps = c.CanaryRPS
		}
		lambda := rps * sec
		req := math.Max(0, math.Round(lambda+math.Sqrt(lambda)*s.rng.NormFloat64()))
		errP := 0.001
		if z == burstZone {
			errP += 0.01
		}
		if f, ok := s.firstOverlap(Errors, z, a, b); ok {
			size := f.Size
			if size == 0 {
				size = 0.05
			}
			errP += size * overlapShare(f, a, b)
		}
		if f, ok := s.firstOverlap(DrainNode, z, a, b); ok && !f.Start.Before(a) {
			errP += 0.005 // connections reset while the node drains
		}
		lossF, lossOn := Fault{}, s.overlaps(PacketLoss, z, a, b)
		if lossOn {
			lossF, _ = s.firstOverlap(PacketLoss, z, a, b)
		}
		latF, latOn := s.firstOverlap(Latency, z, a, b)
		regF, regOn := s.firstOverlap(Regional, z, a, b)
		regStart := regF.Start.Add(time.Duration(z) * regF.Stagger)
		latSize := latF.Size
		if latSize == 0 {
			latSize = 0.200
		}

		n := min(int(float64(c.Samples)*sec/60), int(req))
		s.lat = s.lat[:0]
		var sum float64
		extraErr := 0.0
		for range n {
			at := a.Add(time.Duration(s.rng.Float64() * float64(c.Step)))
			p := s.rng.IntN(pods[z])
			v := 0.030 * s.podF[z][p] * math.Exp(0.6*s.rng.NormFloat64()) * queue
			if z == stallZone && p == stallPod {
				v *= 4
			}
			if latOn && !at.Before(latF.Start) && at.Before(latF.End) {
				v += math.Max(0, latSize*(1+0.25*s.rng.NormFloat64()))
			}
			if regOn && !at.Before(regStart) && at.Before(regF.End) {
				v += math.Max(0, s.regionalExtra[z]*(1+0.25*s.rng.NormFloat64()))
			}
			if lossOn && !at.Before(lossF.Start) && at.Before(lossF.End) {
				// Six packets per exchange; each lost one costs an RTO
				// (200 ms, doubling); a request losing three times out.
				lost := 0
				for range 6 {
					if s.rng.Float64() < 0.05 {
						lost++
					}
				}
				for k := range lost {
					v += 0.2 * float64(int(1)<<k)
				}
				if lost >= 2 {
					extraErr++
				}
			}
			s.lat = append(s.lat, v)
			sum += v
		}
		st := &s.stats[z]
		*st = grayfailure.ZoneStats{Zone: name, Instances: pods[z], Requests: req}
		if n > 0 {
			slices.Sort(s.lat)
			st.LatencyMean = sum / float64(n)
			st.LatencyP99 = s.lat[min(n-1, int(math.Ceil(0.99*float64(n)))-1)]
			st.LatencyMax = s.lat[n-1]
			errP += extraErr / float64(n)
		}
		st.Errors = s.binomial(req, errP)
		loss := 0.001 + 0.0005*math.Abs(s.rng.NormFloat64())
		if lossOn {
			share := overlapShare(lossF, a, b)
			loss += 0.05 * share
		}
		st.PacketLoss = loss
	}
	return b, s.stats
}

// firstOverlap returns the first fault of kind k on zone z overlapping [a, b).
func (s *Sim) firstOverlap(k FaultKind, z int, a, b time.Time) (Fault, bool) {
	for _, f := range s.cfg.Faults {
		if f.Kind == k && (f.Zone == z || k == Regional) && f.Start.Before(b) && a.Before(f.End) {
			return f, true
		}
	}
	return Fault{}, false
}

// overlapShare is the share of [a, b) covered by f.
func overlapShare(f Fault, a, b time.Time) float64 {
	lo, hi := a, b
	if f.Start.After(lo) {
		lo = f.Start
	}
	if f.End.Before(hi) {
		hi = f.End
	}
	if !hi.After(lo) {
		return 0
	}
	return float64(hi.Sub(lo)) / float64(b.Sub(a))
}

// binomial draws Binomial(n, p) by its normal approximation (n is large).
func (s *Sim) binomial(n, p float64) float64 {
	m := n * p
	v := m + math.Sqrt(n*p*(1-p))*s.rng.NormFloat64()
	return math.Max(0, math.Min(n, math.Round(v)))
}
