package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// fault is one scheduled fault.
type fault struct {
	at     time.Duration // after the generator started
	name   string
	kind   string
	target string        // process names, comma-separated
	hold   time.Duration // how long a pause, a broker's downtime or an API fault lasts

	// filled in by the run
	start, end time.Time
	victims    string
	recovery   time.Duration // from end until healthy; -1: never within the limit
}

// inject applies f and returns when its fault is over (the process killed,
// the broker back, the API answering again).
func (h *harness) inject(ctx context.Context, f *fault) {
	f.start = time.Now()
	switch f.kind {
	case "kill ingest", "kill stream", "kill stream+ingest":
		f.victims = f.target
		for _, n := range strings.Split(f.target, ",") {
			h.procs[n].kill() // the supervisor starts it again
		}
	case "kill act leader":
		f.victims = h.leader(ctx)
		if p := h.procs[f.victims]; p != nil {
			p.kill()
		}
	case "kill broker":
		f.victims = f.target
		n := h.kafka.node(f.target)
		n.proc.kill()
		sleep(ctx, f.hold)
		if err := n.proc.start(); err != nil {
			logf("restart %s: %v", f.target, err)
		}
	case "pause broker":
		f.victims = f.target
		n := h.kafka.node(f.target)
		n.proc.signal(syscall.SIGSTOP)
		sleep(ctx, f.hold)
		n.proc.signal(syscall.SIGCONT)
	case "kill act leader mid-action":
		// Every API call takes 1.5 s and more while the API is slow: a
		// leader killed then is, most likely, between its Observe and
		// its Apply or waiting for the write's answer.
		h.proxy.setMode(proxySlow)
		sleep(ctx, 10*time.Second)
		f.victims = h.leader(ctx)
		if p := h.procs[f.victims]; p != nil {
			p.kill()
		}
		sleep(ctx, f.hold-10*time.Second)
		h.proxy.setMode(proxyPass)
	case "kube refuse", "kube slow":
		f.victims = "kube-apiserver"
		mode := int32(proxyRefuse)
		if f.kind == "kube slow" {
			mode = proxySlow
		}
		h.proxy.setMode(mode)
		sleep(ctx, f.hold)
		h.proxy.setMode(proxyPass)
	}
	f.end = time.Now()
}

func (c *kafkaCluster) node(name string) *kafkaNode {
	for _, n := range c.nodes {
		if n.proc.name == name {
			return n
		}
	}
	panic("no kafka node " + name)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// healthy reports whether the pipeline is back: every process running,
// the generator's last request acknowledged after since with no failure in
// the last 3 s, the stream's lag under bound and the actuators' at most 2,
// an actuator leading, and every partition of augur.samples committed past
// where it was when the fault ended (commits).
func (h *harness) healthy(ctx context.Context, since time.Time, bound int64, commits map[int32]int64) (bool, string) {
	for _, n := range sortedNames(h.procs) {
		if !h.procs[n].alive() {
			return false, n + " not running"
		}
	}
	for _, n := range h.kafka.nodes {
		if !n.proc.alive() {
			return false, n.proc.name + " not running"
		}
	}
	_, lastOK := h.gen.stats()
	if lastOK.Before(since) {
		return false, "no acknowledged write since the fault ended"
	}
	if fs := h.gen.failuresSince(time.Now().Add(-3 * time.Second)); len(fs) > 0 {
		return false, fmt.Sprintf("%d failed writes in the last 3s (%s)", len(fs), fs[len(fs)-1].msg)
	}
	stream, act := h.lags(ctx)
	if stream < 0 || stream > bound {
		return false, fmt.Sprintf("stream lag %d (bound %d)", stream, bound)
	}
	if act < 0 || act > 2 {
		return false, fmt.Sprintf("actuator lag %d", act)
	}
	if h.leader(ctx) == "" {
		return false, "no actuator leader"
	}
	// Every partition of augur.samples is being processed again: its
	// committed offset moved since the fault ended.
	now := h.streamCommits(ctx)
	for p, c := range commits {
		if now[p] <= c {
			return false, fmt.Sprintf("augur.samples partition %d: no commit since the fault ended", p)
		}
	}
	return true, ""
}

// recover waits until healthy and returns how long it took from f.end
// (-1 after limit).
func (h *harness) recover(ctx context.Context, f *fault, bound int64, limit time.Duration) time.Duration {
	var why string
	commits := h.streamCommits(ctx)
	for time.Since(f.end) < limit && ctx.Err() == nil {
		var ok bool
		if ok, why = h.healthy(ctx, f.end, bound, commits); ok {
			return time.Since(f.end)
		}
		sleep(ctx, time.Second)
	}
	logf("  not recovered after %v: %s", limit, why)
	return -1
}
