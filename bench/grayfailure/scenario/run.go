package scenario

import (
	"fmt"
	"time"

	"github.com/augur-ops/augur/detectors/grayfailure"
	"github.com/augur-ops/augur/proto"
)

// Event is one decision seen during a run.
type Event struct {
	At     time.Time
	Kind   string // decision kind
	Reason string // alert reason, or "shift", "extend", "cancel"
	Zone   string // zone shifted away from (shift decisions)
}

// Result scores one run.
type Result struct {
	// Name of the scenario.
	Name string
	// Windows simulated.
	Windows int
	// Events are the decisions in order.
	Events []Event
	// Faults injected.
	Faults []Fault
	// DetectDelay per Latency, PacketLoss or Errors fault, in order: from the fault's
	// start to the zonal_shift away from its zone; -1 when it was missed.
	DetectDelay []time.Duration
	// RegionalAlertDelay per Regional fault: from its start to the
	// regional_degradation alert; -1 when none.
	RegionalAlertDelay []time.Duration
	// Shifts counts new zonal shifts (not extensions).
	Shifts int
	// FalseShifts counts new shifts that are not away from a zone with an
	// active Latency, PacketLoss or Errors fault.
	FalseShifts int
	// RegionalShifts counts new shifts while a Regional fault is active.
	RegionalShifts int
	// DrainShifts counts new shifts away from a zone while it is drained.
	DrainShifts int
	// Cancels counts cancel_zonal_shift decisions; CancelDelay is from the
	// fault's end to the cancel, per detected fault (-1 when none).
	Cancels     int
	CancelDelay []time.Duration
	// Warnings and Alerts count warning and critical alerts.
	Warnings, Alerts int
}

// Run simulates dur of cfg through a detector built from dcfg, applies its
// zonal shifts to the simulated traffic, and scores the decisions.
func Run(name string, cfg Config, dcfg grayfailure.Config, dur time.Duration) (Result, error) {
	det, err := grayfailure.New(dcfg)
	if err != nil {
		return Result{}, fmt.Errorf("scenario %s: %w", name, err)
	}
	sim := New(cfg)
	cfg = sim.Config()
	res := Result{Name: name, Faults: cfg.Faults}
	end := cfg.Start.Add(dur)
	shifted := ""
	for {
		at, stats := sim.Next()
		if at.After(end) {
			break
		}
		res.Windows++
		for _, d := range det.Update(at, stats) {
			ev := Event{At: at, Kind: d.GetKind()}
			switch d.GetKind() {
			case proto.KindZonalShift:
				ev.Zone = d.GetDesired().GetZonalShift().GetAwayFrom()
				ev.Reason = "shift"
				if ev.Zone == shifted {
					ev.Reason = "extend"
					break
				}
				shifted = ev.Zone
				res.Shifts++
				z := zoneIndex(cfg.Zones, ev.Zone)
				if !sim.faultAt(Latency, z, at) && !sim.faultAt(PacketLoss, z, at) && !sim.faultAt(Errors, z, at) {
					res.FalseShifts++
				}
				if sim.faultAt(Regional, z, at) {
					res.RegionalShifts++
				}
				if sim.faultAt(DrainNode, z, at) {
					res.DrainShifts++
				}
			case proto.KindCancelZonalShift:
				ev.Zone = d.GetDesired().GetZonalShift().GetAwayFrom()
				ev.Reason = "cancel"
				shifted = ""
				res.Cancels++
			case proto.KindAlert:
				ev.Reason = d.GetDesired().GetAlert().GetReason()
				if d.GetDesired().GetAlert().GetSeverity() == "warning" {
					res.Warnings++
				} else {
					res.Alerts++
				}
			}
			res.Events = append(res.Events, ev)
		}
		sim.SetShifted(det.Shifted())
		shifted = det.Shifted()
	}
	for _, f := range cfg.Faults {
		switch f.Kind {
		case Latency, PacketLoss, Errors:
			dd, cd := time.Duration(-1), time.Duration(-1)
			for _, e := range res.Events {
				if e.Reason == "shift" && e.Zone == cfg.Zones[f.Zone] && !e.At.Before(f.Start) && dd < 0 && e.At.Before(f.End.Add(cfg.Step)) {
					dd = e.At.Sub(f.Start)
				}
				if dd >= 0 && e.Reason == "cancel" && e.Zone == cfg.Zones[f.Zone] && cd < 0 {
					cd = e.At.Sub(f.End)
				}
			}
			res.DetectDelay = append(res.DetectDelay, dd)
			res.CancelDelay = append(res.CancelDelay, cd)
		case Regional:
			dd := time.Duration(-1)
			for _, e := range res.Events {
				if e.Reason == "regional_degradation" && !e.At.Before(f.Start) && e.At.Before(f.End.Add(cfg.Step)) {
					dd = e.At.Sub(f.Start)
					break
				}
			}
			res.RegionalAlertDelay = append(res.RegionalAlertDelay, dd)
		}
	}
	return res, nil
}

// faultAt reports whether a fault of kind k touches zone z in the window
// ending at t (or ended within the window before, to credit a decision made
// on the fault's last minute).
func (s *Sim) faultAt(k FaultKind, z int, t time.Time) bool {
	if z < 0 {
		return false
	}
	return s.overlaps(k, z, t.Add(-2*s.cfg.Step), t)
}

func zoneIndex(zones []string, z string) int {
	for i, n := range zones {
		if n == z {
			return i
		}
	}
	return -1
}
