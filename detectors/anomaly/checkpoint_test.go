package anomaly

import (
	"math/bits"
	"testing"

	"github.com/augur-ops/augur/internal/wire/wiretest"
)

// goldenState returns the fixed test state of the golden checkpoints: 2205
// samples of a daily-shaped series, five after a spike (in its quiet
// period, with samples outside the band).
func goldenState(t testing.TB) State {
	t.Helper()
	d := mustNew(t, Config{})
	ts, vs := synth(2205, 2200, 40, 5)
	var s State
	for i := range ts {
		d.Update(&s, ts[i], vs[i])
	}
	return s
}

// TestCheckpointGoldens restores the checkpoint of every state version in
// testdata/checkpoint (see package wiretest; -update writes the golden of a
// new version) and checks it holds goldenState.
func TestCheckpointGoldens(t *testing.T) {
	wiretest.Check(t, wiretest.Format{
		Version: stateVersion,
		Exact:   true,
		Fresh: func(t *testing.T) []byte {
			s := goldenState(t)
			return s.AppendBinary(nil)
		},
		Restore: func(t *testing.T, data []byte) []byte {
			var s State
			if err := s.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			checkGoldenState(t, &s)
			return s.AppendBinary(nil)
		},
	}, *update)
}

// checkGoldenState checks s holds what goldenState fed it.
func checkGoldenState(t *testing.T, s *State) {
	t.Helper()
	if s.n != 2205 || s.quiet != 124 || s.outside != 0b10000010000 || s.b1 != 1 || s.b2 != 1 ||
		s.seenLvl != 0xffff || s.lastTs != 2204*300_000 {
		t.Errorf("counters: n %d, quiet %d, outside %b, levels %d %d, seen levels %b, last %d",
			s.n, s.quiet, s.outside, s.b1, s.b2, s.seenLvl, s.lastTs)
	}
	want := [13]float64{43.12684158134195, 5.281903218724943, 43.503489301028075, 8.07397981358685,
		51.08283618102439, 6.0523023431880905, 37.752965508216256, 82.07619389313939,
		0.07410476722075905, 0.028748711588041913, 0.008751296647294862, 300000, 1.2396382436284554}
	for i, f := range s.floats() {
		if *f != want[i] {
			t.Errorf("float field %d is %v, want %v", i, *f, want[i])
		}
	}
	n := 0
	for _, b := range s.seen {
		n += bits.OnesCount8(b)
	}
	if n != 358 {
		t.Errorf("%d 3-grams seen, want 358", n)
	}
	for _, tt := range []struct {
		bin      int
		lvl, mad float64
		cnt      uint16
	}{
		{0, 51.159305510824375, 1.0116923613502296, 71},
		{33, 56.388019742445664, 0.709843370134276, 24},
		{44, 41.759191920217184, 0.844977020681872, 24},
	} {
		if s.pLvl[tt.bin] != tt.lvl || s.pMAD[tt.bin] != tt.mad || s.pCnt[tt.bin] != tt.cnt {
			t.Errorf("profile bin %d: %v ± %v (%d), want %v ± %v (%d)",
				tt.bin, s.pLvl[tt.bin], s.pMAD[tt.bin], s.pCnt[tt.bin], tt.lvl, tt.mad, tt.cnt)
		}
	}
}

// benchState returns a state fed 2000 samples of synth: every field set.
func benchState(b *testing.B) State {
	b.Helper()
	d := mustNew(b, Config{})
	ts, vs := synth(2000, 1500, 30, 11)
	var s State
	for i := range ts {
		d.Update(&s, ts[i], vs[i])
	}
	return s
}

// BenchmarkAppendBinary measures one series' checkpoint into a reused
// buffer, as the stream writes it per dirty series.
func BenchmarkAppendBinary(b *testing.B) {
	s := benchState(b)
	buf := make([]byte, 0, EncodedSize)
	b.ReportAllocs()
	for b.Loop() {
		buf = s.AppendBinary(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkUnmarshalBinary measures one series' restore.
func BenchmarkUnmarshalBinary(b *testing.B) {
	s := benchState(b)
	buf := s.AppendBinary(nil)
	var t State
	b.ReportAllocs()
	for b.Loop() {
		if err := t.UnmarshalBinary(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
