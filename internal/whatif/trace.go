package whatif

import "time"

// CounterFromTrace is a counter whose per-second rate over each step of a
// load trace is the trace's value at the step's start, sampled every
// scrape from the first point to the last: a trace turned into what
// Prometheus would have scraped from the workload. bench/scalesim replays
// traces through it and the end-to-end test of augur whatif loads the same
// samples into Prometheus, so both see the same history.
func CounterFromTrace(trace []Point, scrape time.Duration) (ts []int64, vs []float64) {
	if len(trace) == 0 {
		return nil, nil
	}
	st := scrape.Milliseconds()
	c := 0.0
	i := 0
	for t := trace[0].Ts; t <= trace[len(trace)-1].Ts; t += st {
		if t > trace[0].Ts {
			// The rate in force over (t-st, t]: the point at or before t-st.
			for i+1 < len(trace) && trace[i+1].Ts <= t-st {
				i++
			}
			c += max(trace[i].Value, 0) * float64(st) / 1000 // a counter never falls
		}
		ts, vs = append(ts, t), append(vs, c)
	}
	return ts, vs
}
