package anomaly

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/augur-ops/augur/internal/wire/wiretest"
)

// synth returns n samples of a daily-shaped series with noise, 5-minute
// steps, and a spike of height spike (0 for none) at row at.
func synth(n, at int, spike float64, seed uint64) ([]int64, []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	ts := make([]int64, n)
	vs := make([]float64, n)
	for i := range n {
		ts[i] = int64(i) * 300_000
		vs[i] = 50 + 10*math.Sin(2*math.Pi*float64(i)/288) + r.NormFloat64()
		if i == at {
			vs[i] += spike
		}
	}
	return ts, vs
}

func mustNew(t testing.TB, c Config) *Detector {
	t.Helper()
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"explicit defaults", DefaultConfig(), true},
		{"alarm 3 of 5", Config{AlarmM: 3, AlarmN: 5}, true},
		{"alarm m above n", Config{AlarmM: 4, AlarmN: 3}, false},
		{"alarm n too large", Config{AlarmM: 2, AlarmN: 17}, false},
		{"negative band", Config{BandWidth: -1}, false},
		{"infinite band", Config{BandWidth: math.Inf(1)}, false},
		{"slow faster than fast", Config{FastWindow: 100, SlowWindow: 10}, false},
		{"detect level above one", Config{DetectLevel: 1.5}, false},
		{"novelty above one", Config{NoveltyScore: 2}, false},
		{"z ramp inverted", Config{ZLow: 4, ZHigh: 3}, false},
		{"quiet off", Config{Quiet: -1}, true},
		{"seasonal off", Config{SeasonalGate: -1}, true},
		{"seasonal gate above one", Config{SeasonalGate: 1.5}, false},
		{"seasonal gate NaN", Config{SeasonalGate: math.NaN()}, false},
		{"seasonal days negative", Config{SeasonalDays: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			_, err = New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestStateSize enforces the 2 KiB per-series budget, in memory and encoded.
func TestStateSize(t *testing.T) {
	if got := unsafe.Sizeof(State{}); got > 2048 {
		t.Errorf("State is %d bytes, budget 2048", got)
	}
	var s State
	if got := len(s.AppendBinary(nil)); got != EncodedSize || got > 2048 {
		t.Errorf("encoded state is %d bytes, EncodedSize %d, budget 2048", got, EncodedSize)
	}
	t.Logf("State: %d bytes in memory, %d encoded", unsafe.Sizeof(State{}), EncodedSize)
}

func TestProfileBin(t *testing.T) {
	const h = 3_600_000
	tests := []struct {
		ts   int64
		want int
	}{
		{0, 0},                                     // Thursday 1970-01-01 00:00 UTC
		{23*h + 59*60_000, 23},                     // Thursday 23:59
		{2 * dayMs, dayBins},                       // Saturday 00:00
		{3*dayMs + 5*h, dayBins + 5},               // Sunday 05:00
		{4*dayMs + 5*h, 5},                         // Monday 05:00
		{-1, dayBins - 1},                          // Wednesday 1969-12-31 23:59:59.999
		{-5*dayMs + h, dayBins + 1},                // Saturday 1969-12-27 01:00
		{1396310400000 + 13*h, 13},                 // Tuesday 2014-04-01 13:00
		{math.MinInt64, profileBin(math.MinInt64)}, // in range, no panic
	}
	for _, tt := range tests {
		if got := profileBin(tt.ts); got != tt.want || got < 0 || got >= profileBins {
			t.Errorf("profileBin(%d) = %d, want %d", tt.ts, got, tt.want)
		}
	}
	if b := profileBin(math.MaxInt64); b < 0 || b >= profileBins {
		t.Errorf("profileBin(MaxInt64) = %d out of range", b)
	}
}

// dailySquare returns days of 5-minute samples of a daily square wave (80
// from 08:00 to 16:00 UTC, 20 otherwise, uniform noise of ±3) whose high
// phase fails to happen on day skip, as in NAB's art_daily_nojump.
func dailySquare(days, skip int, seed uint64) ([]int64, []float64) {
	r := rand.New(rand.NewPCG(seed, 3))
	n := days * 288
	ts := make([]int64, n)
	vs := make([]float64, n)
	for i := range n {
		ts[i] = 1396310400000 + int64(i)*300_000 // 2014-04-01, a Tuesday
		vs[i] = 20 + 6*r.Float64() - 3
		if h := i % 288 / 12; h >= 8 && h < 16 && i/288 != skip {
			vs[i] += 60
		}
	}
	return ts, vs
}

// TestSeasonalMissingPhase checks that the time-of-day profile catches a
// daily high phase that fails to happen, a pattern change that stays inside
// the range and is flat, so the forecast residuals and novelty miss it, and
// that the profile raises nothing on the days around it.
func TestSeasonalMissingPhase(t *testing.T) {
	ts, vs := dailySquare(12, 9, 11)
	for _, tt := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"profile", Config{}, true},
		{"profile off", Config{SeasonalGate: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, tt.cfg)
			var s State
			caught, elsewhere := false, 0
			for i := range ts {
				r := d.Update(&s, ts[i], vs[i])
				switch day := i / 288; {
				case day == 9 && r.Score >= 0.5:
					caught = true
				case day >= 3 && day != 9 && day != 10 && r.Score >= 0.5:
					elsewhere++
				}
			}
			if caught != tt.want {
				t.Errorf("missing high phase detected %v, want %v", caught, tt.want)
			}
			if tt.want && elsewhere > 0 {
				t.Errorf("%d samples scored >= 0.5 on normal days", elsewhere)
			}
		})
	}
}

// TestNoLookAhead checks that a score depends only on the past: two series
// that share a prefix and then diverge score the prefix identically.
func TestNoLookAhead(t *testing.T) {
	d := mustNew(t, Config{})
	ts, a := synth(3000, -1, 0, 1)
	_, b := synth(3000, -1, 0, 1)
	for i := 2000; i < len(b); i++ {
		b[i] = 1e6 * float64(i%7)
	}
	var sa, sb State
	for i := range ts {
		ra, rb := d.Update(&sa, ts[i], a[i]), d.Update(&sb, ts[i], b[i])
		if i < 2000 && ra != rb {
			t.Fatalf("row %d: results differ before the series diverge: %+v vs %+v", i, ra, rb)
		}
		if ra.Score < 0 || ra.Score > 1 || rb.Score < 0 || rb.Score > 1 {
			t.Fatalf("row %d: score out of [0,1]: %v %v", i, ra.Score, rb.Score)
		}
	}
}

func TestDetectsSpike(t *testing.T) {
	d := mustNew(t, Config{})
	ts, vs := synth(2000, 1500, 60, 2)
	var s State
	for i := range ts {
		r := d.Update(&s, ts[i], vs[i])
		switch {
		case i == 1500 && r.Score < 0.5:
			t.Errorf("spike at row %d scored %.3f, want >= 0.5", i, r.Score)
		case i == 1500 && !r.Outside:
			t.Errorf("spike at row %d inside band [%.2f, %.2f]", i, r.Lower, r.Upper)
		}
	}
}

// TestQuietNoiseScoresLow checks the false alarm side: a clean noisy daily
// pattern without anomalies rarely reaches 0.5 after the first two days.
// Gaussian noise keeps setting new records now and then, and a value beyond
// the range seen so far scores 1 by design, so the bound is a rate: at most
// 5 in 4400 samples (about 15 days at 5-minute steps).
func TestQuietNoiseScoresLow(t *testing.T) {
	d := mustNew(t, Config{})
	ts, vs := synth(5000, -1, 0, 3)
	var s State
	high := 0
	for i := range ts {
		if r := d.Update(&s, ts[i], vs[i]); i > 600 && r.Score >= 0.5 {
			high++
		}
	}
	if high > 5 {
		t.Errorf("%d samples of a clean series scored >= 0.5, want at most 5", high)
	}
}

func TestAlarmMofN(t *testing.T) {
	// A series alternating 0, 1 has a steady band; 100 is far outside it.
	base := func(i int) float64 { return float64(i % 2) }
	tests := []struct {
		name    string
		m, n    int
		outside []int // rows (after 500) replaced with 100
		alarms  []int // rows where Alarm must be true, among 500..520
	}{
		{"2 of 3, single outlier", 2, 3, []int{505}, nil},
		{"2 of 3, two in a row", 2, 3, []int{505, 506}, []int{506, 507}},
		{"2 of 3, gap of one", 2, 3, []int{505, 507}, []int{507}},
		{"2 of 3, gap of two", 2, 3, []int{505, 508}, nil},
		{"1 of 1", 1, 1, []int{505}, []int{505}},
		{"3 of 5", 3, 5, []int{505, 507, 509}, []int{509}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t, Config{AlarmM: tt.m, AlarmN: tt.n})
			var s State
			var got []int
			for i := range 521 {
				v := base(i)
				for _, o := range tt.outside {
					if i == o {
						v = 100
					}
				}
				r := d.Update(&s, int64(i), v)
				if r.Alarm && i >= 500 {
					got = append(got, i)
				}
				if r.Lower > r.Forecast || r.Upper < r.Forecast {
					t.Fatalf("row %d: band [%v, %v] does not hold forecast %v", i, r.Lower, r.Upper, r.Forecast)
				}
			}
			if !equalInts(got, tt.alarms) {
				t.Errorf("alarms at %v, want %v", got, tt.alarms)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSkipsDuplicatesAndNaN(t *testing.T) {
	d := mustNew(t, Config{})
	ts, vs := synth(800, -1, 0, 4)
	var a, b State
	for i := range ts {
		d.Update(&a, ts[i], vs[i])
		d.Update(&b, ts[i], vs[i])
		// b also sees a retry, a late sample and a staleness marker.
		for _, r := range []Result{d.Update(&b, ts[i], vs[i]+5), d.Update(&b, ts[i]-1, 0), d.Update(&b, ts[i]+1, math.NaN())} {
			if r != (Result{}) {
				t.Fatalf("row %d: ignored sample gave %+v", i, r)
			}
		}
	}
	if a != b {
		t.Error("duplicates, late samples or NaN changed the state")
	}
}

// TestCheckpointRoundTrip restores a checkpoint taken mid-stream and checks
// that every later result is identical to the uninterrupted series.
func TestCheckpointRoundTrip(t *testing.T) {
	d := mustNew(t, Config{})
	ts, vs := synth(3000, 2200, 40, 5)
	for _, cut := range []int{0, 1, 63, 700, 2199} {
		var live State
		for i := range cut {
			d.Update(&live, ts[i], vs[i])
		}
		buf := live.AppendBinary([]byte("prefix"))
		var restored State
		if err := restored.UnmarshalBinary(buf[len("prefix"):]); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		for i := cut; i < len(ts); i++ {
			if a, b := d.Update(&live, ts[i], vs[i]), d.Update(&restored, ts[i], vs[i]); a != b {
				t.Fatalf("cut %d, row %d: restored %+v, live %+v", cut, i, b, a)
			}
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	var s State
	good := s.AppendBinary(nil)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:len(good)-1]},
		{"long", append(append([]byte{}, good...), 0)},
		{"version", append([]byte{9}, good[1:]...)},
		{"level out of range", func() []byte { b := append([]byte{}, good...); b[11] = levels; return b }()},
		{"NaN mean", func() []byte {
			b := append([]byte{}, good...)
			binary.LittleEndian.PutUint64(b[23:], math.Float64bits(math.NaN()))
			return b
		}()},
		{"negative spread", func() []byte {
			b := append([]byte{}, good...)
			binary.LittleEndian.PutUint64(b[31:], math.Float64bits(-1))
			return b
		}()},
		{"negative profile spread", func() []byte {
			b := append([]byte{}, good...)
			binary.LittleEndian.PutUint64(b[EncodedSize-profileBins*18+8:], math.Float64bits(-1))
			return b
		}()},
		{"infinite profile level", func() []byte {
			b := append([]byte{}, good...)
			binary.LittleEndian.PutUint64(b[EncodedSize-18:], math.Float64bits(math.Inf(1)))
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.UnmarshalBinary(tt.b); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	d, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	ts, vs := synth(1000, 900, 30, 6)
	var s State
	f.Add(s.AppendBinary(nil))
	for i := range ts {
		d.Update(&s, ts[i], vs[i])
		if i%300 == 0 {
			f.Add(s.AppendBinary(nil))
		}
	}
	for _, g := range wiretest.Goldens(f, wiretest.Dir) {
		f.Add(g.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s State
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		if got := s.AppendBinary(nil); string(got) != string(b) {
			t.Fatal("re-encoding differs")
		}
		for i := range 50 {
			r := d.Update(&s, s.lastTs+int64(i)+1, float64(i))
			if !(r.Score >= 0 && r.Score <= 1) {
				t.Fatalf("score %v out of [0,1] after a decoded state", r.Score)
			}
		}
	})
}

func TestUpdateAllocs(t *testing.T) {
	d := mustNew(t, Config{})
	ts, vs := synth(1000, 500, 30, 7)
	s := d.NewSeries()
	i := 0
	if n := testing.AllocsPerRun(2000, func() {
		s.Update(ts[i%len(ts)]+int64(i/len(ts))*1e9, vs[i%len(vs)])
		i++
	}); n != 0 {
		t.Errorf("Update allocates %v times per sample", n)
	}
}

func BenchmarkUpdate(b *testing.B) {
	d := mustNew(b, Config{})
	ts, vs := synth(4096, 3000, 30, 10)
	var s State
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		d.Update(&s, int64(i)*300_000, vs[i&4095])
		i++
	}
	_ = ts
}

// TestLevelShiftLearntOnce: a series that steps from 10 to 20 and stays
// there is detected at the step; at the end of the quiet period the slow
// forecast takes the new level, so its residuals (and scale) are the new
// level's noise again, not the step. Without LevelShift it is still
// crawling toward 20 two hundred samples later.
func TestLevelShiftLearntOnce(t *testing.T) {
	slowAfter := func(cfg Config) (first int, slow float64) {
		d := mustNew(t, cfg)
		var s State
		rng := rand.New(rand.NewPCG(3, 4))
		first = -1
		for i := range 1200 {
			v := 10 + rng.NormFloat64()
			if i >= 1000 {
				v += 10
			}
			if r := d.Update(&s, int64(i)*300_000, v); r.Score >= 0.5 && i >= 1000 && first < 0 {
				first = i
			}
		}
		return first, s.slowMean
	}
	// The level is the fast forecast's at the end of the quiet period
	// (a 4-sample EWMA of unit noise: within about one).
	if first, slow := slowAfter(Config{}); first != 1000 || math.Abs(slow-20) > 1 {
		t.Errorf("with LevelShift: detected at %d, slow forecast %.2f 200 samples after the step; want 1000 and about 20", first, slow)
	}
	if first, slow := slowAfter(Config{LevelShift: -1}); first != 1000 || slow > 18.5 {
		t.Errorf("without LevelShift: detected at %d, slow forecast %.2f; want 1000 and still below 18.5", first, slow)
	}
}

// TestWarmupAtMostADay: the warm-up ends after Warmup samples or a day of
// them, whichever comes first, but never before MinWarmup samples. A spike
// at row 100 of an hourly series is scored (four days in); at 5-minute
// samples row 100 is still in the warm-up (8 hours in), and so is a spike
// at row 40 of the hourly series.
func TestWarmupAtMostADay(t *testing.T) {
	d := mustNew(t, Config{})
	for _, tc := range []struct {
		name     string
		step     int64
		at       int
		detected bool
	}{
		{"hourly, row 100", 3_600_000, 100, true},
		{"hourly, row 40 (under MinWarmup)", 3_600_000, 40, false},
		{"5-minute, row 100", 300_000, 100, false},
	} {
		r := rand.New(rand.NewPCG(7, 1))
		var s State
		var got Result
		for i := 0; i <= tc.at; i++ {
			v := 50 + r.NormFloat64()
			if i == tc.at {
				v += 60
			}
			got = d.Update(&s, int64(i)*tc.step, v)
		}
		if (got.Score >= 0.5) != tc.detected {
			t.Errorf("%s: spike scored %.3f, want detected %v", tc.name, got.Score, tc.detected)
		}
	}
}

// TestLoneSampleIsNotAnIncident: on a quiet daily series whose
// time-of-day profile is trusted, 24 days in (the likelihood's history has
// settled near zero), one sample 6 deviations off its hour's level (inside
// the range seen, at the daily low) does not reach the detection level;
// two in a row do, a day later. With a fixed deviation floor of 0.0003
// (the version before) the lone sample scored 0.755.
func TestLoneSampleIsNotAnIncident(t *testing.T) {
	d := mustNew(t, Config{})
	ts, vs := synth(8000, -1, 0, 5)
	lone, pair := 0.0, 0.0
	var s State
	for i := range ts {
		v := vs[i]
		if i == 7128 || i == 7416 || i == 7417 { // 7128 % 288 = 216: the daily low, 40
			v += 6
		}
		r := d.Update(&s, ts[i], v)
		switch i {
		case 7128, 7129, 7130:
			lone = max(lone, r.Score)
		case 7416, 7417, 7418:
			pair = max(pair, r.Score)
		}
	}
	if lone >= 0.5 {
		t.Errorf("a lone sample 6 deviations out scored %.3f, want < 0.5", lone)
	}
	if pair < 0.5 {
		t.Errorf("two samples in a row 6 deviations out scored %.3f, want >= 0.5", pair)
	}
}
