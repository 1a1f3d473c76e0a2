package bank

import (
	"flag"
	"testing"
	"time"

	"github.com/augur-ops/augur/internal/wire/wiretest"
)

var update = flag.Bool("update", false, "write the golden checkpoint of a new checkpoint version")

// goldenConfig is the configuration of the golden checkpoints' bank.
var goldenConfig = Config{Step: 5 * time.Minute, Horizon: 30 * time.Minute}

// goldenBank returns the fixed test state of the golden checkpoints: three
// days of synth at 5-minute steps (a daily season found, the Fourier
// model served).
func goldenBank(t *testing.T) *Bank {
	t.Helper()
	b, err := New(goldenConfig)
	if err != nil {
		t.Fatal(err)
	}
	ts, vs := synth(3*1440, 4)
	for i := range ts {
		b.Update(ts[i], vs[i])
	}
	return b
}

// TestCheckpointGoldens restores the checkpoint of every version in
// testdata/checkpoint (see package wiretest; -update writes the golden of a
// new version) and checks it holds goldenBank. The Holt-Winters weights are
// derived again on restore (TestCheckpointTakesThisVersionsWeights): the
// goldens hold this version's.
func TestCheckpointGoldens(t *testing.T) {
	wiretest.Check(t, wiretest.Format{
		Version: checkpointVersion,
		Exact:   true,
		Fresh:   func(t *testing.T) []byte { return goldenBank(t).AppendBinary(nil) },
		Restore: func(t *testing.T, data []byte) []byte {
			b, err := New(goldenConfig)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			checkGoldenBank(t, b)
			return b.AppendBinary(nil)
		},
	}, *update)
}

// checkGoldenBank checks b holds what goldenBank fed it.
func checkGoldenBank(t *testing.T, b *Bank) {
	t.Helper()
	if !b.started || b.t0 != 1_600_000_000_000 || b.n != 865 || b.histW != 2 || b.histB != 432 ||
		b.periods != [2]int64{288, 0} || b.nextCheck != 2016 || b.lastRefit != 0 || b.refits != 0 || b.served != 2 {
		t.Errorf("counters: started %v, t0 %d, n %d, history %d/%d, periods %v, next check %d, last refit %d, refits %d, served %d",
			b.started, b.t0, b.n, b.histW, b.histB, b.periods, b.nextCheck, b.lastRefit, b.refits, b.served)
	}
	const last = 100.20927399704692
	if b.lastY != last || b.histSum != last || b.histCnt != 1 || len(b.recent) != 6 || b.recent[0] != last ||
		len(b.hist) != histLen || b.hist[10] != 127.40106542243933 {
		t.Errorf("values: last %v, history sum %v count %v, %d recent, %d history, history[10] %v",
			b.lastY, b.histSum, b.histCnt, len(b.recent), len(b.hist), b.hist[10])
	}
	if s, m := b.Scores(), b.tracker(b.served).Scores(); s.N != 859 || s.MAE != 3.6227538328721685 || m.MAE != 3.310908374076853 {
		t.Errorf("scores %+v, served member's %+v; want N 859, MAE 3.6227538328721685 and 3.310908374076853", s, m)
	}
	if p := b.Periods(); len(p) != 1 || p[0] != 24*time.Hour {
		t.Errorf("periods %v, want [24h]", p)
	}
}
