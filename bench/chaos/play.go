package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// result is a run's findings.
type result struct {
	profile         profile
	faults          []*fault
	verdict         verdict
	rows            []sample
	failuresOutside []failure
	failuresInside  int
	notRecovered    int
	maxRecovery     time.Duration
	rssGrowth       map[string]float64 // last quarter over second quarter, long profile
	checkErr        error
	loadBefore      string
	loadAfter       string
	lagBound        int64
	busy            float64 // share of the machine's CPU time busy while the generator ran
	rate            float64 // samples acknowledged per second
	steps           []step  // capacity profile
}

// cpuTimes returns the machine's total and idle CPU ticks (/proc/stat).
func cpuTimes() (total, idle int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return total, idle
}

func busyShare(t0, i0 int64, t1, i1 int64) float64 {
	if t1 <= t0 {
		return 0
	}
	return 1 - float64(i1-i0)/float64(t1-t0)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// play runs the generator, the faults and the checker.
func (h *harness) play(ctx context.Context, p profile) (*result, error) {
	res := &result{profile: p, loadBefore: loadavg()}
	start := time.Now()
	tot0, idle0 := cpuTimes()
	h.gen.grayFrom, h.gen.grayTo = start.Add(p.grayFrom), start.Add(p.grayTo)
	gctx, stopGen := context.WithCancel(ctx)
	var genDone sync.WaitGroup
	genDone.Add(1)
	go func() { defer genDone.Done(); h.gen.run(gctx, 500, 4) }()
	logf("generator started: %s profile, %v, faults at %v", p.name, p.duration, faultTimes(p.faults))

	var mu sync.Mutex
	mctx, stopMon := context.WithCancel(ctx)
	var monDone sync.WaitGroup
	monDone.Add(1)
	go func() {
		defer monDone.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			}
			row := h.observe(mctx, start)
			mu.Lock()
			res.rows = append(res.rows, row)
			mu.Unlock()
		}
	}()

	if p.name == "capacity" {
		res.steps = h.ramp(ctx, p)
		p.duration = time.Since(start)
		res.profile.duration = p.duration
	}
	for i := range p.faults {
		f := &p.faults[i]
		sleep(ctx, time.Until(start.Add(f.at)))
		if ctx.Err() != nil {
			break
		}
		if res.lagBound == 0 {
			mu.Lock()
			res.lagBound = lagBound(res.rows)
			mu.Unlock()
			logf("warm-up over: stream lag bound %d records", res.lagBound)
		}
		logf("fault %d: %s", i+1, f.name)
		h.inject(ctx, f)
		f.recovery = h.recover(ctx, f, res.lagBound, 4*time.Minute)
		logf("  victims %s, fault lasted %.1fs, recovered in %.1fs", f.victims, f.end.Sub(f.start).Seconds(), f.recovery.Seconds())
		res.faults = append(res.faults, f)
	}
	sleep(ctx, time.Until(start.Add(p.duration)))
	stopGen()
	genDone.Wait()
	acked, _ := h.gen.stats()
	tot1, idle1 := cpuTimes()
	res.busy = busyShare(tot0, idle0, tot1, idle1)
	res.rate = float64(acked) / time.Since(start).Seconds()
	logf("generator stopped: %d samples acknowledged (%.0f/s), the machine %.0f%% busy meanwhile", acked, res.rate, 100*res.busy)

	// Drain: the stream and the actuators catch up, and the decisions in
	// force expire (their records come with the next polls).
	deadline := time.Now().Add(5 * time.Minute)
	for ctx.Err() == nil {
		s, a := h.lags(ctx)
		if s == 0 && a == 0 {
			break
		}
		if time.Now().After(deadline) {
			logf("not drained after 5m: stream lag %d, actuator lag %d", s, a)
			break
		}
		sleep(ctx, 2*time.Second)
	}
	sleep(ctx, 2*time.Minute+30*time.Second)
	stopMon()
	monDone.Wait()
	res.loadAfter = loadavg()

	// The checker runs with every augur process stopped.
	close(h.stopping)
	for _, n := range sortedNames(h.procs) {
		h.procs[n].term(30 * time.Second)
	}
	logf("checking")
	brokers := strings.Split(h.kafka.brokers(), ",")
	if err := checkSamples(ctx, brokers, h.gen.acked, &res.verdict); err != nil {
		res.checkErr = err
	}
	if err := checkLoop(ctx, brokers, h.cs, "chaos", &res.verdict); err != nil && res.checkErr == nil {
		res.checkErr = err
	}
	res.judge(h.gen)
	return res, nil
}

func faultTimes(fs []fault) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.at.String())
	}
	return out
}

// lagBound is what the stream's lag must be back under after a fault:
// three times the largest lag seen before the first fault, at least 50.
func lagBound(rows []sample) int64 {
	var m int64
	for _, r := range rows {
		m = max(m, r.streamLag)
	}
	return max(50, 3*m)
}

// observe is one monitor row.
func (h *harness) observe(ctx context.Context, start time.Time) sample {
	s := sample{at: time.Since(start), rss: map[string]int64{}, replicas: map[string]int32{}}
	s.streamLag, s.actLag = h.lags(ctx)
	for n, p := range h.procs {
		s.rss[n] = p.rss()
		s.restarts += p.starts - 1
	}
	for _, n := range h.kafka.nodes {
		s.rss[n.proc.name] = n.proc.rss()
	}
	s.acked, _ = h.gen.stats()
	s.leader = h.leader(ctx)
	return s
}

// judge counts failures outside the fault windows and RSS growth.
func (r *result) judge(g *generator) {
	type window struct{ from, to time.Time }
	var ws []window
	for _, f := range r.faults {
		to := f.end.Add(f.recovery)
		if f.recovery < 0 {
			r.notRecovered++
			to = f.end.Add(4 * time.Minute)
		}
		r.maxRecovery = max(r.maxRecovery, f.recovery)
		ws = append(ws, window{f.start, to.Add(5 * time.Second)})
	}
	for _, f := range g.failuresSince(time.Time{}) {
		if slices.ContainsFunc(ws, func(w window) bool { return !f.at.Before(w.from) && !f.at.After(w.to) }) {
			r.failuresInside++
			continue
		}
		r.failuresOutside = append(r.failuresOutside, f)
	}
	if r.profile.name != "long" || len(r.rows) < 8 {
		return
	}
	// RSS flat after warm-up: the median of the last quarter against the
	// median of the second quarter, per process.
	r.rssGrowth = map[string]float64{}
	q := len(r.rows) / 4
	for name := range r.rows[0].rss {
		med := func(rows []sample) float64 {
			var v []int64
			for _, row := range rows {
				if x := row.rss[name]; x > 0 {
					v = append(v, x)
				}
			}
			if len(v) == 0 {
				return 0
			}
			slices.Sort(v)
			return float64(v[len(v)/2])
		}
		if a, b := med(r.rows[q:2*q]), med(r.rows[3*q:]); a > 0 {
			r.rssGrowth[name] = b/a - 1
		}
	}
}

// rssLimit is the largest RSS growth from the second to the last quarter
// of a soak that counts as flat.
const rssLimit = 0.25

func (r *result) ok() bool {
	if r.checkErr != nil || !r.verdict.ok() || r.notRecovered > 0 {
		return false
	}
	// The capacity profile sends until writes fail: that is its finding.
	if len(r.failuresOutside) > 0 && r.profile.name != "capacity" {
		return false
	}
	for _, g := range r.rssGrowth {
		if g > rssLimit {
			return false
		}
	}
	return true
}

func (r *result) print() {
	v := r.verdict
	fmt.Println()
	// A lost sample or a duplicate decision counts against the fault
	// whose window (a minute before it to its recovery) holds its time.
	within := func(f *fault, t time.Time) bool {
		to := f.end.Add(f.recovery)
		if f.recovery < 0 {
			to = f.end.Add(4 * time.Minute)
		}
		return !t.Before(f.start.Add(-time.Minute)) && !t.After(to)
	}
	count := func(ts []time.Time, f *fault) (n int) {
		for _, t := range ts {
			if within(f, t) {
				n++
			}
		}
		return n
	}
	if r.steps != nil {
		printSteps(r.steps)
		fmt.Printf("\ncapacity: %.0f samples/s acknowledged at the last step that held; half of it: %.0f\n\n", capacity(r.steps), capacity(r.steps)/2)
	}
	fmt.Printf("| # | fault | at | victims | lasted | samples lost | duplicate decisions | recovered in |\n|---|---|---|---|---|---|---|---|\n")
	for i, f := range r.faults {
		rec := fmt.Sprintf("%.1f s", f.recovery.Seconds())
		if f.recovery < 0 {
			rec = "not within 4 min"
		}
		fmt.Printf("| %d | %s | %v | %s | %.1f s | %d | %d | %s |\n", i+1, f.name, f.at, f.victims, f.end.Sub(f.start).Seconds(),
			count(v.lostAt, f), count(v.duplicateAt, f), rec)
	}
	fmt.Println()
	fmt.Printf("samples acknowledged %d, lost %d %v\n", v.samples, v.lost, v.lostExamples)
	fmt.Printf("decisions %d %v; audit records %d (%d of decisions in force) %v; applied %d\n",
		v.decisions, v.byKind, v.actions, v.inForceRecords, v.byOutcome, v.applied)
	fmt.Printf("duplicates %d, unaudited %d, applied twice %d; Deployments whose replicas differ from the last change applied to them: %d of %d %v\n",
		v.duplicates, v.unaudited, v.doubleApplied, len(v.finalMismatch), v.finalChecked, v.finalMismatch)
	fmt.Printf("failed writes inside fault windows %d, outside %d\n", r.failuresInside, len(r.failuresOutside))
	for i, f := range r.failuresOutside {
		if i == 5 {
			break
		}
		fmt.Printf("  outside: %s %s %d %s\n", f.at.UTC().Format(time.RFC3339), f.url, f.status, f.msg)
	}
	if r.rssGrowth != nil {
		names := make([]string, 0, len(r.rssGrowth))
		for n := range r.rssGrowth {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Printf("RSS growth %s: %+.1f%%\n", n, 100*r.rssGrowth[n])
		}
	}
	if r.checkErr != nil {
		fmt.Printf("check error: %v\n", r.checkErr)
	}
	fmt.Printf("%.0f samples/s acknowledged, the machine %.0f%% busy (all its processes) while the generator ran; load average before %s, after %s\n",
		r.rate, 100*r.busy, r.loadBefore, r.loadAfter)
	fmt.Printf("chaos: faults=%d samples=%d lost=%d duplicates=%d unaudited=%d double_applied=%d max_recovery_s=%.1f\n",
		len(r.faults), v.samples, v.lost, v.duplicates, v.unaudited, v.doubleApplied, r.maxRecovery.Seconds())
}

// writeResults writes the monitor rows as CSV and, for every run, the
// RSS and lag pictures.
func writeResults(dir string, p profile, r *result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if len(r.rows) == 0 {
		return nil
	}
	var names []string
	for n := range r.rows[0].rss {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("seconds,stream_lag,act_lag,acked,restarts,leader")
	for _, n := range names {
		b.WriteString(",rss_mib_" + n)
	}
	b.WriteByte('\n')
	for _, row := range r.rows {
		fmt.Fprintf(&b, "%.0f,%d,%d,%d,%d,%s", row.at.Seconds(), row.streamLag, row.actLag, row.acked, row.restarts, row.leader)
		for _, n := range names {
			b.WriteString("," + strconv.FormatFloat(float64(row.rss[n])/(1<<20), 'f', 1, 64))
		}
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "chaos-"+p.name+".csv"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// RSS of the augur processes, and the lags.
	rss := plot.New()
	rss.Title.Text = "RSS of the augur processes (" + p.name + " profile)"
	rss.X.Label.Text, rss.Y.Label.Text = "minutes", "MiB"
	rss.Legend.Top, rss.Legend.Left = true, true
	var lines []any
	for _, n := range names {
		if strings.HasPrefix(n, "kafka") {
			continue
		}
		var xy plotter.XYs
		for _, row := range r.rows {
			if v := row.rss[n]; v > 0 {
				xy = append(xy, plotter.XY{X: row.at.Minutes(), Y: float64(v) / (1 << 20)})
			}
		}
		lines = append(lines, n, xy)
	}
	if err := plotutil.AddLines(rss, lines...); err != nil {
		return err
	}
	if err := rss.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(dir, "chaos-"+p.name+"-rss.png")); err != nil {
		return err
	}
	lag := plot.New()
	lag.Title.Text = "Consumer lag (" + p.name + " profile); faults marked on the x axis"
	lag.X.Label.Text, lag.Y.Label.Text = "minutes", "records"
	lag.Legend.Top = true
	var sl, al plotter.XYs
	for _, row := range r.rows {
		if row.streamLag >= 0 {
			sl = append(sl, plotter.XY{X: row.at.Minutes(), Y: float64(row.streamLag)})
		}
		if row.actLag >= 0 {
			al = append(al, plotter.XY{X: row.at.Minutes(), Y: float64(row.actLag)})
		}
	}
	if err := plotutil.AddLines(lag, "augur-stream on augur.samples", sl, "augur-act on augur.decisions", al); err != nil {
		return err
	}
	var ticks []plot.Tick
	for i := 0; i <= int(p.duration.Minutes())+4; i++ {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: strconv.Itoa(i)})
	}
	for i, f := range r.faults {
		ticks = append(ticks, plot.Tick{Value: f.at.Minutes(), Label: "\n#" + strconv.Itoa(i+1)})
	}
	lag.X.Tick.Marker = plot.ConstantTicks(ticks)
	return lag.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(dir, "chaos-"+p.name+"-lag.png"))
}
