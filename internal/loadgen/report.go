package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteText writes r for people.
func (r *Result) WriteText(w io.Writer) error {
	codes := make([]string, 0, len(r.Status))
	for k := range r.Status {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	var st []string
	for _, k := range codes {
		st = append(st, fmt.Sprintf("%s=%d", k, r.Status[k]))
	}
	rate := "flat out"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f samples/s", r.TargetRate)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "protocol %s, target %s, %s measured\n", r.Protocol, rate, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "requests %d (mean body %d bytes), status %s, late %d\n", r.Requests, r.BodyBytesMean, strings.Join(st, " "), r.Late)
	fmt.Fprintf(&b, "samples sent %d, acknowledged %d, achieved %.0f samples/s\n", r.SamplesSent, r.SamplesAcked, r.AckedPerSecond)
	if r.SamplesRepeated > 0 {
		fmt.Fprintf(&b, "samples repeated %d (the request pool wrapped: same timestamps sent again; raise -pool)\n", r.SamplesRepeated)
	}
	fmt.Fprintf(&b, "latency p50 %s p90 %s p99 %s max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	for _, c := range r.CPU {
		fmt.Fprintf(&b, "pid %d: %.2f CPU-s, %.0f samples per CPU-second\n", c.Pid, c.Seconds, c.SamplesPerCPUSecond)
	}
	fmt.Fprintf(&b, "generator: %.2f CPU-s\n", r.GeneratorCPUSecs)
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// jsonResult is the machine-readable form of Result (durations in ms).
type jsonResult struct {
	Protocol         string         `json:"protocol"`
	ElapsedSeconds   float64        `json:"elapsed_seconds"`
	Requests         int            `json:"requests"`
	SamplesSent      int            `json:"samples_sent"`
	SamplesAcked     int            `json:"samples_acked"`
	Status           map[string]int `json:"status"`
	Late             int            `json:"late"`
	P50ms            float64        `json:"p50_ms"`
	P90ms            float64        `json:"p90_ms"`
	P99ms            float64        `json:"p99_ms"`
	MaxMs            float64        `json:"max_ms"`
	AckedPerSecond   float64        `json:"acked_per_second"`
	TargetRate       float64        `json:"target_rate"`
	BodyBytesMean    int            `json:"body_bytes_mean"`
	SamplesRepeated  int            `json:"samples_repeated"`
	CPU              []ProcCPU      `json:"cpu"`
	GeneratorCPUSecs float64        `json:"generator_cpu_seconds"`
}

// WriteJSON writes r as one JSON object (durations in milliseconds).
func (r *Result) WriteJSON(w io.Writer) error {
	f := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return json.NewEncoder(w).Encode(jsonResult{
		Protocol: r.Protocol, ElapsedSeconds: r.Elapsed.Seconds(), Requests: r.Requests,
		SamplesSent: r.SamplesSent, SamplesAcked: r.SamplesAcked, Status: r.Status, Late: r.Late,
		P50ms: f(r.P50), P90ms: f(r.P90), P99ms: f(r.P99), MaxMs: f(r.Max),
		AckedPerSecond: r.AckedPerSecond, TargetRate: r.TargetRate, BodyBytesMean: r.BodyBytesMean,
		SamplesRepeated: r.SamplesRepeated,
		CPU:             r.CPU, GeneratorCPUSecs: r.GeneratorCPUSecs,
	})
}
