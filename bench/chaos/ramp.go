package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The capacity profile raises the generator's rate in steps until the
// deployment gives way; the soak (the long profile) runs at half of the
// last rate it held.
const (
	rampFrom   = 8000.0          // samples/s of the first step
	rampFactor = 1.5             // each step's rate over the one before
	rampStep   = 2 * time.Minute // how long each step lasts
	rampSteps  = 12              // at most
	// lagHeld is the most the stream may be behind, in seconds of what
	// is written to augur.samples, over a step's second half.
	lagHeld = 15.0
	// soakRate is half of the capacity measured with CHAOS_PROFILE=capacity
	// on this 2-core machine: 40,240 samples/s held, 60,750 not
	// (bench/RESULTS-reliability.md).
	soakRate = 20000.0
)

// step is one rate step of the capacity profile and what it showed.
type step struct {
	rate       float64 // asked for, samples/s
	acked      float64 // samples/s acknowledged
	offered    int64   // samples the generator made
	ackedN     int64   // samples acknowledged
	failures   int     // answers other than 2xx, send errors, dropped requests
	records    float64 // records/s written to augur.samples
	maxLag     int64   // the stream's largest lag over the second half, records
	lagUnknown int     // observations of the second half without a lag
	lagSeconds float64 // maxLag over records
	busy       float64 // share of the machine's CPU time busy
	load       string  // load average at the end
	held       bool
}

// ramp runs the steps until one does not hold: a failed write, fewer
// than 95% of the samples made acknowledged, the stream more than lagHeld
// seconds behind, or its lag unknown (the group not answering) more than
// twice.
func (h *harness) ramp(ctx context.Context, p profile) []step {
	var steps []step
	rate := p.rate
	for range rampSteps {
		if ctx.Err() != nil {
			break
		}
		h.gen.filler.Store(int64(fillerFor(rate, h.gen.interval, p.workloads)))
		s := step{rate: rate}
		t0 := time.Now()
		tot0, idle0 := cpuTimes()
		off0 := h.gen.offered.Load()
		ack0, _ := h.gen.stats()
		end0 := h.samplesEnd(ctx)
		half := t0.Add(rampStep / 2)
		for time.Since(t0) < rampStep && ctx.Err() == nil {
			sleep(ctx, 5*time.Second)
			if time.Now().After(half) {
				lag, _ := h.lags(ctx)
				if lag < 0 {
					s.lagUnknown++
				}
				s.maxLag = max(s.maxLag, lag)
			}
		}
		if ctx.Err() != nil {
			break // an interrupted step shows nothing
		}
		el := time.Since(t0).Seconds()
		tot1, idle1 := cpuTimes()
		ack1, _ := h.gen.stats()
		s.offered, s.ackedN = h.gen.offered.Load()-off0, ack1-ack0
		s.acked = float64(s.ackedN) / el
		s.failures = len(h.gen.failuresSince(t0))
		s.records = float64(h.samplesEnd(ctx)-end0) / el
		if s.records > 0 {
			s.lagSeconds = float64(s.maxLag) / s.records
		}
		s.busy = busyShare(tot0, idle0, tot1, idle1)
		s.load = loadavg()
		s.held = s.failures == 0 && float64(s.ackedN) >= 0.95*float64(s.offered) && s.lagSeconds <= lagHeld && s.lagUnknown <= 2
		logf("step %.0f samples/s: acknowledged %.0f/s (%d of %d made), %d failed writes, stream lag at most %d records (%.1f s), machine %.0f%% busy, load %s: held=%v",
			s.rate, s.acked, s.ackedN, s.offered, s.failures, s.maxLag, s.lagSeconds, 100*s.busy, s.load, s.held)
		steps = append(steps, s)
		if !s.held {
			break
		}
		rate *= rampFactor
	}
	return steps
}

// capacity is the acknowledged rate of the last step that held (0 when
// none did).
func capacity(steps []step) float64 {
	var c float64
	for _, s := range steps {
		if s.held {
			c = s.acked
		}
	}
	return c
}

// samplesEnd is the sum of augur.samples' end offsets (-1 when unknown).
func (h *harness) samplesEnd(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	offs, err := h.adm.ListEndOffsets(ctx, "augur.samples")
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

func printSteps(steps []step) {
	fmt.Printf("| asked, samples/s | acknowledged, samples/s | failed writes | records/s to augur.samples | stream lag, records (s) | machine busy | load average | held |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range steps {
		fmt.Printf("| %.0f | %.0f | %d | %.1f | %d (%.1f s) | %.0f%% | %s | %v |\n",
			s.rate, s.acked, s.failures, s.records, s.maxLag, s.lagSeconds, 100*s.busy, s.load, s.held)
	}
}
