package proto

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/klauspost/compress/zstd"

	"github.com/augur-ops/augur/internal/loadgen"
)

// BenchmarkBlockCompression measures the ways a block can be compressed
// (issue 12): Kafka batch compression of the whole record, as the receiver
// writes it (zstd at its fastest level, `ingest.compression`), against
// Arrow IPC body compression (arrow-go's writer, each buffer its own zstd
// or lz4 frame), alone and under record zstd. The block is a steady-state
// one: 250 rows that refer to their series by number, one loadgen sample
// each, as the receiver cuts them from a 2,000-series request over 8
// partitions. Reported: bytes per sample, the writer's CPU (encode and
// compress) and the reader's (decompress and BlockReader.Reset) per sample.
func BenchmarkBlockCompression(b *testing.B) {
	var blk BlockBuilder
	blk.Reset("")
	rng := rand.New(rand.NewPCG(1, 1))
	const rows = 250
	for i := range rows {
		blk.StartReference(0xabc, uint32(i+1))
		ts, v := loadgen.Sample(i, 20000, 1_700_000_000_000, 15000, rng)
		blk.AppendSampleStart(ts, 0, v)
	}
	if _, err := blk.AppendIPC(nil); err != nil { // encodes the schema message
		b.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		body   []ipc.Option // Arrow IPC body compression; nil for none
		record bool         // zstd over the whole record
	}{
		{"none", nil, false},
		{"record=zstd-fastest", nil, true},
		{"body=zstd", []ipc.Option{ipc.WithZstd()}, false},
		{"body=lz4", []ipc.Option{ipc.WithLZ4()}, false},
		{"body=zstd/record=zstd-fastest", []ipc.Option{ipc.WithZstd()}, true},
	} {
		encode := func(dst []byte) []byte {
			var v []byte
			if c.body == nil {
				v, _ = blk.AppendIPC(nil)
			} else {
				v = append(appendRecordBatchArrow(b, &blk, append([]byte(nil), blk.schemaMsg...), c.body...), eos[:]...)
			}
			if c.record {
				return enc.EncodeAll(v, dst[:0])
			}
			return append(dst[:0], v...)
		}
		stored := encode(nil)
		b.Run(c.name+"/write", func(b *testing.B) {
			var out []byte
			for b.Loop() {
				out = encode(out)
			}
			b.ReportMetric(float64(len(out))/rows, "B/sample")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/sample")
		})
		b.Run(c.name+"/read", func(b *testing.B) {
			var r BlockReader
			var raw []byte
			for b.Loop() {
				v := stored
				if c.record {
					if raw, err = dec.DecodeAll(stored, raw[:0]); err != nil {
						b.Fatal(err)
					}
					v = raw
				}
				if err := r.Reset(v); err != nil || r.Len() != rows {
					b.Fatal(fmt.Errorf("%d rows: %w", r.Len(), err))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/sample")
		})
	}
}
