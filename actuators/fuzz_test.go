package actuators

import (
	"testing"

	"github.com/augur-ops/augur/proto"
)

// FuzzHandle feeds arbitrary record values (the untrusted bytes of
// augur.decisions) to Handle: it must never panic, always return one audit
// record with an outcome, and never act on an unsigned decision.
func FuzzHandle(f *testing.F) {
	a, ex, clk, _ := newTest(f, nil)
	f.Add(encode(f, decision(f, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6))))
	f.Add([]byte(`{"id":"x","kind":"taint_node","desired":{"node":"n","taint":{"key":"augur.io/x","effect":"NoExecute"}},"signature":"00"}`))
	f.Add([]byte(`{"kind":"zonal_shift","expiresAt":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, v []byte) {
		before := ex.applies + ex.dryRuns
		act := a.Handle(t.Context(), v)
		if act == nil || act.GetOutcome() == "" {
			t.Fatalf("no outcome for %q", v)
		}
		d, err := proto.UnmarshalDecision(v)
		signed := err == nil && proto.Verify(d, testKey) == nil
		if !signed && ex.applies+ex.dryRuns != before {
			t.Fatalf("acted on an unsigned decision %q", v)
		}
	})
}

// BenchmarkHandleRefused measures the cost of a decision that is verified
// and refused before any API call (the common case under a flood).
func BenchmarkHandleRefused(b *testing.B) {
	a, _, clk, _ := newTest(b, func(c *Config) { c.KillSwitch = true })
	vs := make([][]byte, 1024)
	for i := range vs {
		vs[i] = encode(b, decision(b, clk.Now(), proto.KindScale, dep, scaleTo("payment", "payment-service", 6)))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Handle(b.Context(), vs[i%len(vs)])
		i++
	}
}
