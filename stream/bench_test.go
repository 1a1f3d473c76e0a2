package stream

import (
	"fmt"
	"math"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/augur-ops/augur/proto"
)

// benchBlocks builds nBlocks consecutive blocks of `series` series with
// `samples` samples each (1s apart), the shape of one remote-write request
// per partition. Every series is watched by the anomaly band; a quarter are
// counters of a scaling rule.
func benchBlocks(b *testing.B, nBlocks, series, samples int) [][]byte {
	b.Helper()
	lbls := make([][]proto.Label, series)
	for i := range lbls {
		if i%4 == 0 {
			lbls[i] = lbl("__name__", "http_requests_total", "namespace", "payment", "service", "payment",
				"pod", "payment-"+strconv.Itoa(i), "code", "200")
		} else {
			lbls[i] = lbl("__name__", "request_latency_seconds", "instance", "10.0.0."+strconv.Itoa(i%250)+":8080",
				"job", "api", "pod", "api-"+strconv.Itoa(i))
		}
	}
	const t0 = int64(1_700_000_000_000)
	out := make([][]byte, nBlocks)
	ts := make([]int64, samples)
	vs := make([]float64, samples)
	var bb proto.BlockBuilder
	for k := range nBlocks {
		bb.Reset("")
		for i, l := range lbls {
			for j := range samples {
				step := k*samples + j
				ts[j] = t0 + int64(step)*1000
				if i%4 == 0 {
					vs[j] = float64(step * (10 + i%7))
				} else {
					vs[j] = 0.1 + 0.01*math.Sin(float64(step+i))
				}
			}
			bb.AddSeries(l, ts, vs)
		}
		v, err := bb.AppendIPC(nil)
		if err != nil {
			b.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// BenchmarkProcess measures samples per CPU-second through decode, dedupe,
// counter rates, window aggregation and the anomaly band (one goroutine).
func BenchmarkProcess(b *testing.B) {
	for _, shape := range []struct{ series, samples int }{{1000, 1}, {1000, 10}, {200, 50}} {
		b.Run(fmt.Sprintf("series=%d/samples=%d", shape.series, shape.samples), func(b *testing.B) {
			cfg := testConfig(b)
			e := mustEnv(b, &cfg)
			blocks := benchBlocks(b, 64, shape.series, shape.samples)
			perBlock := shape.series * shape.samples
			var rd proto.BlockReader
			sh := newShard(0, e)
			var n, i int
			b.ReportAllocs()
			cpu0 := cpuTime()
			start := time.Now()
			for b.Loop() {
				if i == len(blocks) {
					// Timestamps repeat from here: start a new table so
					// samples are applied, not dropped as duplicates.
					b.StopTimer()
					sh, i = newShard(0, e), 0
					b.StartTimer()
				}
				if err := rd.Reset(blocks[i]); err != nil {
					b.Fatal(err)
				}
				sh.processBlock(&rd)
				sh.out = sh.out[:0]
				i++
				n += perBlock
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "samples/s")
			if cpu > 0 {
				b.ReportMetric(float64(n)/cpu.Seconds(), "samples/cpu-s")
			}
			b.ReportMetric(float64(sh.stats.samples)/float64(max(1, sh.stats.samples+sh.stats.duplicates)), "applied-ratio")
		})
	}
}

// cpuTime is the process' user+system CPU time (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckpoint measures encoding the changed state of a partition
// of 10,000 series after one sample each.
func BenchmarkCheckpoint(b *testing.B) {
	cfg := testConfig(b)
	e := mustEnv(b, &cfg)
	blocks := benchBlocks(b, 2, 10_000, 1)
	var rd proto.BlockReader
	sh := newShard(0, e)
	if err := rd.Reset(blocks[0]); err != nil {
		b.Fatal(err)
	}
	sh.processBlock(&rd)
	b.ReportAllocs()
	var recs []stateRecord
	for b.Loop() {
		for i := range sh.flags {
			sh.flags[i] |= fDirty
		}
		var err error
		if recs, err = sh.appendCheckpoint(recs[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs)), "records/op")
}
