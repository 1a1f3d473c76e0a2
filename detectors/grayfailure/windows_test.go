package grayfailure

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/augur-ops/augur/proto"
)

// TestWindows runs the stories in testdata/windows: a Detector fed one
// window of zone statistics at a time (what the stream's Group hands
// Update), and what it decides after each. Every zone of a window is
// healthy (6 instances, 10k requests, 0.1% errors, 40 ms mean and 150 ms
// p99 latency, 0.1% packet loss) unless an input line of the window says
// otherwise. Commands:
//
//	new [zones=(a,b,c)] [step=D] [limit=D] [expiry=D] [hold-down=D]
//	    [windows=N] [required=N] [warn=F] [shift=F] [min-evidence=F]
//	    a fresh detector: testConfig (1m windows, a 100 ms mean latency
//	    limit) with overrides (Step, MeanLatencyLimit, ShiftExpiry,
//	    HoldDown, Windows, Required, WarnRatio, ShiftRatio, MinEvidence);
//	    prints what the defaults made of it
//
//	window at=D [to=D] [trace]
//	<zone> [slow=D] [mean=D] [p99=D] [errors=F] [loss=F] [instances=N] [requests=N] [absent]
//	    the window ending at D after the start (with to, every window up
//	    to D, one step apart), each zone changed by its input line: slow
//	    adds D to the mean and the p99 latency (a zonal slowdown), mean
//	    and p99 set them, errors and loss are shares ("2%" or 0.02),
//	    absent leaves the zone out of the window. Prints each decision as
//	    "<window end>: <decision>", with trace also each window's evidence;
//	    "none" when nothing was printed.
//
//	state
//	    every zone's evidence (the signal nearest its threshold), its
//	    warning windows, healthy windows, and whether traffic is shifted
//	    away from it; "regional" while a regional event lasts
//
// Rewrite the expected output with -rewrite.
func TestWindows(t *testing.T) {
	datadriven.Walk(t, "testdata/windows", func(t *testing.T, path string) {
		var (
			d     *Detector
			zones []string
		)
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			args := map[string]string{}
			for _, a := range td.CmdArgs {
				args[a.Key] = strings.Join(a.Vals, ",")
			}
			switch td.Cmd {
			case "new":
				cfg := testConfig()
				zones = []string{"a", "b", "c"}
				for k, v := range args {
					if err := windowsConfig(&cfg, &zones, k, v); err != nil {
						td.Fatalf(t, "new %s=%s: %v", k, v, err)
					}
				}
				var err error
				if d, err = New(cfg); err != nil {
					return "error: " + err.Error()
				}
				c := d.Config()
				return fmt.Sprintf("zones %s, step %s, warn in %d of %d windows, hold-down %s, shift expiry %s",
					strings.Join(zones, ","), windowsDur(c.Step), c.Required, c.Windows, windowsDur(c.HoldDown), windowsDur(c.ShiftExpiry))
			case "window":
				if d == nil {
					td.Fatalf(t, "window before new")
				}
				from, err := time.ParseDuration(args["at"])
				if err != nil {
					td.Fatalf(t, "at=%q: %v", args["at"], err)
				}
				to := from
				if v, ok := args["to"]; ok {
					if to, err = time.ParseDuration(v); err != nil {
						td.Fatalf(t, "to=%q: %v", v, err)
					}
				}
				stats, err := windowStats(zones, td.Input)
				if err != nil {
					td.Fatalf(t, "%v", err)
				}
				_, trace := args["trace"]
				var out []string
				for at := from; at <= to; at += d.Config().Step {
					for _, dec := range d.Update(t0.Add(at), stats) {
						out = append(out, windowsDur(at)+": "+windowsDecision(dec, d.Config().Step))
					}
					if trace {
						out = append(out, windowsDur(at)+": "+windowsTrace(d))
					}
				}
				if len(out) == 0 {
					return "none"
				}
				return strings.Join(out, "\n")
			case "state":
				if d == nil {
					td.Fatalf(t, "state before new")
				}
				return windowsState(d)
			}
			td.Fatalf(t, "unknown command %q", td.Cmd)
			return ""
		})
	})
}

// windowsConfig applies the new command's argument k=v.
func windowsConfig(c *Config, zones *[]string, k, v string) error {
	dur := func(p *time.Duration) (err error) { *p, err = time.ParseDuration(v); return err }
	num := func(p *float64) (err error) { *p, err = strconv.ParseFloat(v, 64); return err }
	atoi := func(p *int) (err error) { *p, err = strconv.Atoi(v); return err }
	switch k {
	case "zones":
		*zones = strings.Split(v, ",")
		return nil
	case "step":
		return dur(&c.Step)
	case "limit":
		var l time.Duration
		err := dur(&l)
		c.MeanLatencyLimit = l.Seconds()
		return err
	case "expiry":
		return dur(&c.ShiftExpiry)
	case "hold-down":
		return dur(&c.HoldDown)
	case "windows":
		return atoi(&c.Windows)
	case "required":
		return atoi(&c.Required)
	case "warn":
		return num(&c.WarnRatio)
	case "shift":
		return num(&c.ShiftRatio)
	case "min-evidence":
		return num(&c.MinEvidence)
	}
	return fmt.Errorf("unknown argument")
}

// windowStats returns one window's statistics: every zone healthy, changed
// by the input lines "<zone> key=value...".
func windowStats(zones []string, input string) ([]ZoneStats, error) {
	stats := make([]ZoneStats, 0, len(zones))
	for _, z := range zones {
		stats = append(stats, healthy(z))
	}
	for line := range strings.Lines(input) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		i := slices.IndexFunc(stats, func(s ZoneStats) bool { return s.Zone == f[0] })
		if i < 0 {
			return nil, fmt.Errorf("zone %q is not one of %v", f[0], zones)
		}
		for _, kv := range f[1:] {
			if kv == "absent" {
				stats[i].Zone = ""
				continue
			}
			if err := windowsStat(&stats[i], kv); err != nil {
				return nil, fmt.Errorf("zone %s: %s: %w", f[0], kv, err)
			}
		}
	}
	return slices.DeleteFunc(stats, func(s ZoneStats) bool { return s.Zone == "" }), nil
}

// windowsStat applies one key=value of a zone's input line to s.
func windowsStat(s *ZoneStats, kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("want key=value")
	}
	seconds := func() (float64, error) {
		d, err := time.ParseDuration(v)
		return d.Seconds(), err
	}
	share := func() (float64, error) {
		if p, ok := strings.CutSuffix(v, "%"); ok {
			f, err := strconv.ParseFloat(p, 64)
			return f / 100, err
		}
		return strconv.ParseFloat(v, 64)
	}
	var err error
	var f float64
	switch k {
	case "slow":
		if f, err = seconds(); err == nil {
			s.LatencySum += f * s.LatencyCount
			s.LatencyP99 += f
		}
	case "mean":
		if f, err = seconds(); err == nil {
			s.LatencySum = f * s.LatencyCount
		}
	case "p99":
		s.LatencyP99, err = seconds()
	case "errors":
		if f, err = share(); err == nil {
			s.Errors = f * s.Requests
		}
	case "loss":
		s.PacketLoss, err = share()
	case "instances":
		s.Instances, err = strconv.Atoi(v)
	case "requests":
		// The error share and the mean latency stay as they were.
		if f, err = strconv.ParseFloat(v, 64); err == nil {
			s.Errors *= f / s.Requests
			s.LatencySum *= f / s.LatencyCount
			s.Requests, s.LatencyCount = f, f
		}
	default:
		return fmt.Errorf("unknown key")
	}
	return err
}

// windowsDecision renders a decision on one line: its kind, the zone and why.
func windowsDecision(dec *proto.Decision, step time.Duration) string {
	ev := dec.GetEvidence()
	switch dec.GetKind() {
	case proto.KindZonalShift, proto.KindCancelZonalShift:
		zs := dec.GetDesired().GetZonalShift()
		s := fmt.Sprintf("%s away from %s", dec.GetKind(), zs.GetAwayFrom())
		sum := dec.GetSummary()
		switch {
		case dec.GetKind() == proto.KindCancelZonalShift && strings.Contains(sum, "regional"):
			return s + " (regional event)"
		case dec.GetKind() == proto.KindCancelZonalShift:
			return s + fmt.Sprintf(" (healthy for %s)", windowsDur(time.Duration(ev.GetValues()["healthy_windows"])*step))
		case strings.Contains(sum, "extend"):
			return s + fmt.Sprintf(" (extend by %s)", windowsDur(time.Duration(zs.GetExpiresInSeconds())*time.Second))
		}
		sig := ev.GetSignal()
		v := ev.GetValues()
		return s + fmt.Sprintf(" (%s %.2fx its peers, evidence %.1f of %.1f)", sig, v[sig+"_ratio"], v[sig+"_evidence"], v[sig+"_threshold"])
	case proto.KindAlert:
		a := dec.GetDesired().GetAlert()
		return fmt.Sprintf("alert %s %s: %s", a.GetSeverity(), a.GetReason(), dec.GetSummary())
	}
	return dec.GetKind() + ": " + dec.GetSummary()
}

// windowsTrace renders the evidence every zone holds after a window, or "no
// evidence".
func windowsTrace(d *Detector) string {
	var parts []string
	for i := range d.zones {
		if s := windowsEvidence(d, i); s != "" {
			parts = append(parts, d.zones[i].name+" "+s)
		}
	}
	if len(parts) == 0 {
		return "no evidence"
	}
	return strings.Join(parts, ", ")
}

// windowsEvidence renders zone i's evidence on the signal nearest its
// threshold, or "" when it has none.
func windowsEvidence(d *Detector, i int) string {
	frac, sig := d.fraction(i)
	if frac == 0 || sig < 0 {
		return ""
	}
	th := d.w.thresh[sig][i]
	if th == 0 {
		th = d.threshold(&d.zones[i], sig)
	}
	return fmt.Sprintf("%s %.1f of %.1f", signalNames[sig], d.zones[i].ev[sig], th)
}

// windowsState renders every zone's state, one line each.
func windowsState(d *Detector) string {
	var out []string
	for i := range d.zones {
		z := &d.zones[i]
		parts := []string{}
		if z.valid&1 == 0 {
			parts = append(parts, "no data")
		}
		if s := windowsEvidence(d, i); s != "" {
			parts = append(parts, "evidence "+s)
		} else {
			parts = append(parts, "no evidence")
		}
		if n := d.count(z.warn); n > 0 {
			parts = append(parts, fmt.Sprintf("worse in %d of %d windows", n, d.cfg.Windows))
		}
		parts = append(parts, fmt.Sprintf("healthy %d windows", z.healthy))
		if z.shiftedUntil != 0 {
			parts = append(parts, "shifted away until "+windowsDur(time.UnixMilli(z.shiftedUntil).Sub(t0)))
		}
		out = append(out, z.name+": "+strings.Join(parts, ", "))
	}
	if d.regional {
		out = append(out, "regional")
	}
	if len(out) == 0 {
		return "no zones"
	}
	return strings.Join(out, "\n")
}

// windowsDur renders d without zero trailing units: 2m, 1h, 1m30s.
func windowsDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
