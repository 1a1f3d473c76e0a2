package scaling

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/augur-ops/augur/proto"
)

// TestStabilization runs the stories in testdata/stabilization: a scaler
// (capacity 100 per pod, 2 to 50 replicas) fed forecasts and observed load
// over time, and what it decides at each step. Commands:
//
//	new [hold=D] [guard=D] [up=F] [down=F]   a fresh scaler (ForecastHold,
//	                                         ReversalGuard, MaxScaleUp, MaxScaleDown)
//	decide at=D upper=U observed=O current=N  → "scale N (from M)" or "none"
//
// Rewrite the expected output with -rewrite.
func TestStabilization(t *testing.T) {
	datadriven.Walk(t, "testdata/stabilization", func(t *testing.T, path string) {
		var s *Scaler
		t0 := time.Unix(1_700_000_000, 0)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			args := map[string]string{}
			for _, a := range d.CmdArgs {
				if len(a.Vals) != 1 {
					d.Fatalf(t, "argument %s: want one value", a.Key)
				}
				args[a.Key] = a.Vals[0]
			}
			dur := func(k string) time.Duration {
				v, err := time.ParseDuration(args[k])
				if err != nil {
					d.Fatalf(t, "%s=%q: %v", k, args[k], err)
				}
				return v
			}
			num := func(k string) float64 {
				v, err := strconv.ParseFloat(args[k], 64)
				if err != nil {
					d.Fatalf(t, "%s=%q: %v", k, args[k], err)
				}
				return v
			}
			switch d.Cmd {
			case "new":
				s = newScaler(t, func(c *Config) {
					if _, ok := args["hold"]; ok {
						c.ForecastHold = dur("hold")
					}
					if _, ok := args["guard"]; ok {
						c.ReversalGuard = dur("guard")
					}
					if _, ok := args["up"]; ok {
						c.MaxScaleUp = num("up")
					}
					if _, ok := args["down"]; ok {
						c.MaxScaleDown = num("down")
					}
				})
				return ""
			case "decide":
				if s == nil {
					d.Fatalf(t, "decide before new")
				}
				u := num("upper")
				in := Input{Now: t0.Add(dur("at")), Forecast: fc(u, u, u), Observed: num("observed"), CurrentReplicas: int32(num("current"))}
				var out []string
				for _, dec := range s.Decide(in) {
					if dec.Kind == proto.KindScale {
						out = append(out, fmt.Sprintf("scale %d (from %d)", dec.Desired.Replicas, dec.Desired.PreviousReplicas))
					}
				}
				if len(out) == 0 {
					return "none"
				}
				return strings.Join(out, "\n")
			}
			d.Fatalf(t, "unknown command %q", d.Cmd)
			return ""
		})
	})
}
