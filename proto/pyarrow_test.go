package proto_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
)

// TestBlockReadByPyarrow shows a reader that is not augur's decoding a real
// record: bench/read_block.py fetches it with librdkafka and decodes it with
// pyarrow. Skips without python3, pyarrow and confluent-kafka, except in CI.
func TestBlockReadByPyarrow(t *testing.T) {
	if err := exec.Command("python3", "-c", "import pyarrow, confluent_kafka").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs python3 with pyarrow and confluent-kafka (.ci/setup.sh installs them): %v", err)
		}
		t.Skipf("python3 with pyarrow and confluent-kafka not available: %v", err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "augur.samples"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// zstd batches, as the receiver writes them by default.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Three records, as a receiver writes them: a block without series
	// numbers (version 2), one defining series number 7 (version 3) and one
	// referring to it.
	stale := math.Float64frombits(0x7ff0000000000002)
	lbls := []proto.Label{{Name: "__name__", Value: "http_requests_total"}, {Name: "job", Value: "api"}}
	const dict = 0xa5a5
	for _, ref := range []struct {
		n      uint32
		define bool
	}{{0, true}, {7, true}, {7, false}} {
		var b proto.BlockBuilder
		b.Reset("team-a")
		b.StartSeries(lbls, proto.Metadata{Type: "counter"})
		if ref.n != 0 && !b.Refer(dict, ref.n, ref.define) {
			t.Fatal("Refer refused")
		}
		b.AppendSample(1_700_000_000_000, 42.5)
		b.AppendSample(1_700_000_015_000, stale)
		b.AppendExemplar([]proto.Label{{Name: "trace_id", Value: "abc"}}, 1, 1_700_000_000_000)
		value, err := b.AppendIPC(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "augur.samples", Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// librdkafka logs to stderr, at any point of a line on stdout: the
	// rows are read from stdout alone.
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, "python3", "../bench/read_block.py", c.ListenAddrs()[0], "augur.samples", "3")
	cmd.Stderr = &logs
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read_block.py: %v\n%s%s", err, out, logs.Bytes())
	}
	var rows []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 3 {
		t.Fatalf("pyarrow read %d rows, want 3:\n%s%s", len(rows), out, logs.Bytes())
	}
	for i, want := range []struct {
		version, typ string
		ref          float64
	}{{proto.BlockVersionPlain, "counter", 0}, {proto.BlockVersion, "counter", 7}, {proto.BlockVersion, "", 7}} {
		r := rows[i]
		got := fmt.Sprint(r["version"], r["labels"], r["series_ref"], r["timestamps"], r["values"], r["tenant"], r["metric_type"], r["exemplars"])
		w := fmt.Sprint(want.version, map[string]any{"__name__": "http_requests_total", "job": "api"}, want.ref,
			[]any{1.7e12, 1.700000015e12}, []any{"4045400000000000", "7ff0000000000002"}, "team-a", want.typ, 1.0)
		if got != w {
			t.Fatalf("pyarrow read row %d\n%s\nwant\n%s", i, got, w)
		}
	}
}
