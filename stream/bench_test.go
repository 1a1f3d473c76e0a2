package stream

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/augur-ops/augur/internal/loadgen"
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

// BenchmarkProcessCompressed decodes and applies blocks of `augur
// loadgen`'s series (one partition's share of its 2,000-series requests:
// 250 series, one sample each, about 12 labels) with each block compressed as the receiver's batches are
// (`ingest.compression`: klauspost/compress zstd at its fastest
// level, pierrec/lz4, or none) and decompressed before decoding, as the
// stream's client does: the stream's CPU per sample for each option, and
// the bytes per sample of the compressed blocks.
func BenchmarkProcessCompressed(b *testing.B) {
	// As franz-go's zstd codec at the level ingest.compression uses.
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true))
	if err != nil {
		b.Fatal(err)
	}
	zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	defer zdec.Close()
	codecs := []struct {
		name       string
		compress   func([]byte) ([]byte, error)
		decompress func(dst, src []byte) ([]byte, error)
	}{
		{"none", func(v []byte) ([]byte, error) { return v, nil }, func(_, src []byte) ([]byte, error) { return src, nil }},
		{"lz4", func(v []byte) ([]byte, error) {
			var buf bytes.Buffer
			w := lz4.NewWriter(&buf)
			if _, err := w.Write(v); err != nil {
				return nil, err
			}
			err := w.Close()
			return buf.Bytes(), err
		}, func(dst, src []byte) ([]byte, error) {
			buf := bytes.NewBuffer(dst[:0])
			_, err := buf.ReadFrom(lz4.NewReader(bytes.NewReader(src)))
			return buf.Bytes(), err
		}},
		{"zstd", func(v []byte) ([]byte, error) { return zenc.EncodeAll(v, nil), nil }, func(dst, src []byte) ([]byte, error) { return zdec.DecodeAll(src, dst[:0]) }},
	}
	const series = 250
	for _, c := range codecs {
		for _, refs := range []bool{true, false} {
			name := "codec=" + c.name + "/refs=off"
			if refs {
				name = "codec=" + c.name + "/refs=on"
			}
			b.Run(name, func(b *testing.B) {
				cfg := testConfig(b)
				e := mustEnv(b, &cfg)
				blocks := loadgenBlocks(b, 64, series, refs)
				size := 0
				for i := range blocks {
					if blocks[i], err = c.compress(blocks[i]); err != nil {
						b.Fatal(err)
					}
					size += len(blocks[i])
				}
				var rd proto.BlockReader
				var buf []byte
				sh := newShard(0, e)
				var n, i int
				cpu0 := cpuTime()
				for b.Loop() {
					if i == len(blocks) {
						b.StopTimer()
						sh, i = newShard(0, e), 0
						b.StartTimer()
					}
					v, err := c.decompress(buf, blocks[i])
					if err != nil {
						b.Fatal(err)
					}
					buf = v
					if err := rd.Reset(v); err != nil {
						b.Fatal(err)
					}
					sh.processBlock(&rd)
					sh.out = sh.out[:0]
					i++
					n += series
				}
				if cpu := cpuTime() - cpu0; cpu > 0 {
					b.ReportMetric(float64(n)/cpu.Seconds(), "samples/cpu-s")
				}
				b.ReportMetric(float64(size)/float64(len(blocks)*series), "B/sample")
			})
		}
	}
}

// loadgenBlocks builds nBlocks consecutive blocks of `series` series of
// augur loadgen's fleet (every eighth series, as one of 8 partitions
// receives them), one sample each, as the receiver writes them: with refs,
// each series' first row defines its number and the later ones refer to
// it (the fleet's 2,500 series of a partition cycle every 10 blocks of
// 250).
func loadgenBlocks(b *testing.B, nBlocks, series int, refs bool) [][]byte {
	b.Helper()
	const fleet = 20000
	lbls := loadgen.Fleet(fleet)
	rng := rand.New(rand.NewPCG(1, 2))
	const t0 = int64(1_700_000_000_000)
	var bb proto.BlockBuilder
	var pl []proto.Label
	out := make([][]byte, nBlocks)
	j := 0
	for k := range nBlocks {
		bb.Reset("")
		for range series {
			ts, v := loadgen.Sample(j, fleet/8, t0, 15000, rng)
			pl = pl[:0]
			for _, l := range lbls[(j%(fleet/8))*8] {
				pl = append(pl, proto.Label{Name: l.Name, Value: l.Value})
			}
			bb.AddSeries(pl, []int64{ts}, []float64{v})
			if refs {
				n := uint32(j%(fleet/8)) + 1
				bb.Refer(1, n, j < fleet/8)
			}
			j++
		}
		v, err := bb.AppendIPC(nil)
		if err != nil {
			b.Fatal(err)
		}
		out[k] = v
	}
	return out
}
