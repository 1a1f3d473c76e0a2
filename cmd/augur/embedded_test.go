package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEmbeddedBrokerStaysBounded runs `augur run` with a 16 MiB bound on
// its embedded broker (two partitions) and writes 20,000 samples/s of
// remote-write load for 25 s (about three times the bound in Kafka): retention deletes the oldest samples (the log start moves),
// the data dir never grows past 1.5 times the bound while the load runs,
// and every request is accepted. With the whole-state checkpoint every 3 s
// instead of 2 minutes, augur.state is trimmed too.
func TestEmbeddedBrokerStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few hundred megabytes through augur run")
	}
	// Restored after the run has stopped (cleanups run last first).
	was := embeddedStateTrim
	t.Cleanup(func() { embeddedStateTrim = was })
	embeddedStateTrim = 3 * time.Second
	const bound = 16 << 20
	dir := t.TempDir()
	broker, listen := freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "augur.yaml"), fmt.Sprintf(`listen: %s
data_dir: %s
kafka:
  embedded_addr: %s
  embedded_retention_bytes: %d
  partitions: 2
ingest:
  # Labels in every block (about 45 B/sample instead of 16): the load
  # below then writes several times the bound.
  series_refs: -1
`, listen, filepath.Join(dir, "data"), broker, bound))
	ctx, _ := startRun(t, filepath.Join(dir, "augur.yaml"), listen)

	// Watch the data dir while the load runs.
	kafkaDir := filepath.Join(dir, "data", "kafka")
	var peak atomic.Int64
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			if n := dirBytes(kafkaDir); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	lctx, lcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer lcancel()
	if code := runMain(lctx, []string{"loadgen", "-url", "http://" + listen + "/api/v1/write", "-series", "20000",
		"-rate", "20000", "-duration", "25s", "-warmup", "0s", "-json"}, &out, io.Discard, slog.New(slog.DiscardHandler)); code != 0 {
		t.Fatalf("loadgen exited %d", code)
	}
	var res struct {
		Sent   int64          `json:"samples_sent"`
		Acked  int64          `json:"samples_acked"`
		Status map[string]int `json:"status"`
		Body   float64        `json:"body_bytes_mean"`
	}
	if err := json.Unmarshal(out.Bytes()[bytes.IndexByte(out.Bytes(), '{'):], &res); err != nil {
		t.Fatalf("loadgen result %q: %v", out.String(), err)
	}
	time.Sleep(time.Second)
	stopWatch()
	<-watched
	final := dirBytes(kafkaDir)
	t.Logf("%d samples acked of %d (%.0f MiB of requests); data dir peak %.1f MiB, end %.1f MiB, bound %d MiB",
		res.Acked, res.Sent, float64(res.Sent)/2000*res.Body/(1<<20), float64(peak.Load())/(1<<20), float64(final)/(1<<20), bound>>20)
	if res.Acked != res.Sent || res.Acked == 0 {
		t.Errorf("%d of %d samples acknowledged (%v): writes must go on under the bound", res.Acked, res.Sent, res.Status)
	}
	// Retention deleted the oldest records: some partition's log starts
	// after offset 0.
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, "augur.samples")
	if err != nil {
		t.Fatal(err)
	}
	moved := false
	starts.Each(func(o kadm.ListedOffset) { moved = moved || o.Offset > 0 })
	if !moved {
		t.Errorf("no augur.samples partition lost its oldest records (%d samples written): retention never ran", res.Sent)
	}
	// The stream deleted augur.state before its last whole-state
	// checkpoint: each partition holds that checkpoint and the few
	// transactions after it, not a marker for each of the hundreds of
	// transactions of the run (compaction alone keeps those).
	adm := kadm.NewClient(cl)
	starts, err = adm.ListStartOffsets(ctx, "augur.state")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "augur.state")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		t.Logf("augur.state partition %d: offsets %d to %d", e.Partition, s.Offset, e.Offset)
		if e.Offset-s.Offset > 100 {
			t.Errorf("augur.state partition %d holds %d offsets (%d to %d): not trimmed", e.Partition, e.Offset-s.Offset, s.Offset, e.Offset)
		}
	})
	if p := peak.Load(); p > bound+bound/2 {
		t.Errorf("data dir peaked at %d bytes, above 1.5 x the bound %d", p, bound)
	}
	if !strings.Contains(scrape(t, "http://"+listen+"/metrics"), "augur_embedded_broker_disk_bytes ") {
		t.Error("no augur_embedded_broker_disk_bytes metric")
	}
}

func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestEmbeddedBrokerDiskFull fills the filesystem under the embedded
// broker (a 12 MiB tmpfs, larger than the retention bound allows for):
// remote writes answer 503, the process stays up and says why in its log
// (a warning before, an error when full), and once the filesystem has room
// again (remounted larger) writes are accepted again. Mounting needs root:
// CI runs as root; elsewhere the test is skipped.
func TestEmbeddedBrokerDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs and fills it through augur run")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs as root under CI: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	broker, listen := freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "augur.yaml"), fmt.Sprintf(`listen: %s
data_dir: %s
kafka:
  embedded_addr: %s
  embedded_retention_bytes: 1073741824
  partitions: 2
ingest:
  series_refs: -1 # labels in every block: about 45 B/sample, see below
`, listen, filepath.Join(mnt, "data"), broker))
	ctx, logs := startRun(t, filepath.Join(dir, "augur.yaml"), listen)

	load := func(rate, seconds int) map[string]int {
		t.Helper()
		var out bytes.Buffer
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if code := runMain(lctx, []string{"loadgen", "-url", "http://" + listen + "/api/v1/write", "-series", "20000",
			"-rate", strconv.Itoa(rate), "-duration", strconv.Itoa(seconds) + "s", "-warmup", "0s", "-json"}, &out, io.Discard, slog.New(slog.DiscardHandler)); code != 0 {
			t.Fatalf("loadgen exited %d", code)
		}
		var res struct {
			Status map[string]int `json:"status"`
		}
		if err := json.Unmarshal(out.Bytes()[bytes.IndexByte(out.Bytes(), '{'):], &res); err != nil {
			t.Fatalf("loadgen result %q: %v", out.String(), err)
		}
		return res.Status
	}
	// At about 45 bytes a sample on disk, 12 MiB holds some 280,000
	// samples: 20 s at up to 40,000 samples/s fills it even under -race.
	full := load(40000, 20)
	t.Logf("filling 12 MiB: %v", full)
	if full["503"] == 0 {
		t.Fatalf("statuses %v with the filesystem full: want 503s", full)
	}
	waitReady(t, "http://"+listen+"/readyz") // still up
	l := logs.String()
	warn, errAt := strings.Index(l, "embedded broker disk nearly full"), strings.Index(l, "embedded broker disk full: remote writes answer 503")
	if warn < 0 || errAt < 0 || warn > errAt {
		t.Errorf("log: want the nearly-full warning, then the disk-full error (at %d, %d)", warn, errAt)
	}
	if !strings.Contains(scrape(t, "http://"+listen+"/metrics"), "augur_embedded_broker_disk_free_bytes ") {
		t.Error("no augur_embedded_broker_disk_free_bytes metric")
	}

	if out, err := exec.Command("mount", "-o", "remount,size=96m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount larger: %v: %s", err, out)
	}
	waitFor(t, 30*time.Second, "the log to say the disk has room again", func() (bool, string) {
		return strings.Contains(logs.String(), "embedded broker disk has room again"), tailString(logs.String(), 300)
	})
	again := load(10000, 5)
	t.Logf("with room again: %v", again)
	if again["503"] != 0 || again["204"] == 0 {
		t.Errorf("statuses %v once the filesystem has room: want every write accepted", again)
	}
}

// TestRunRefusesADataDirInUse: a second `augur run` on the data dir of a
// running one (with ports of its own) stops at once with an error naming
// the data dir: two embedded brokers writing one log corrupt it.
func TestRunRefusesADataDirInUse(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	config := func(name string) (file, listen string) {
		broker, listen := freePort(t), freePort(t)
		file = filepath.Join(dir, name)
		writeFile(t, file, fmt.Sprintf("listen: %s\ndata_dir: %s\nrules_file: none\nkafka:\n  embedded_addr: %s\n  partitions: 1\n", listen, data, broker))
		return file, listen
	}
	first, listen := config("first.yaml")
	startRun(t, first, listen)
	second, _ := config("second.yaml")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	code := runMain(ctx, []string{"run", "-config", second}, io.Discard, &stderr, slog.New(slog.DiscardHandler))
	if code != 1 || !strings.Contains(stderr.String(), "data_dir "+data+" is in use by another augur run") {
		t.Fatalf("second augur run on the data dir: exit %d, %q; want exit 1 naming the data dir in use", code, stderr.String())
	}
	waitReady(t, "http://"+listen+"/readyz") // the first one runs on
}

// TestEmbeddedBrokerReportsADamagedDataDir: what the embedded broker
// repairs when it loads its data dir (a segment cut short by a torn
// write loses its last batch) is logged, naming the partition and the
// dir; a file it cannot parse, or a log whose meta.json or topics.json is
// gone (the broker would start empty over it), stops the start with an
// error naming the file and the dir.
func TestEmbeddedBrokerReportsADamagedDataDir(t *testing.T) {
	cfg := defaultFileConfig()
	cfg.DataDir = t.TempDir()
	cfg.Kafka.EmbeddedAddr = freePort(t)
	kdir := filepath.Join(cfg.DataDir, "kafka")
	start := func() (*kfake.Cluster, string, error) {
		t.Helper()
		var logs syncBuffer
		c, err := startEmbeddedBroker(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		return c, logs.String(), err
	}

	c, _, err := start()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "t", Partition: 0, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	c.Close()

	// A torn last write: the segment ends in the middle of a batch.
	seg := filepath.Join(kdir, "partitions", "t-0", "0.dat")
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, fi.Size()-5); err != nil {
		t.Fatal(err)
	}
	c, logs, err := start()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "partition t-0 segment 0: truncating") || !strings.Contains(logs, kdir) {
		t.Errorf("segment cut short: log %q, want a warning naming the partition and %s", logs, kdir)
	}

	topics := filepath.Join(kdir, "topics.json")
	saved, err := os.ReadFile(topics)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		content []byte // nil: removed
	}{
		{"topics.json", []byte("{not json")},
		{"topics.json", nil},
		{"meta.json", nil},
	} {
		path := filepath.Join(kdir, tc.name)
		was, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if tc.content == nil {
			err = os.Remove(path)
		} else {
			err = os.WriteFile(path, tc.content, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		damage := "removed"
		if tc.content != nil {
			damage = fmt.Sprintf("%q", tc.content)
		}
		c, _, err := start()
		if err == nil {
			c.Close()
			t.Errorf("%s %s: the broker started; want an error naming it", tc.name, damage)
		} else if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), kdir) {
			t.Errorf("%s %s: error %q does not name the file and %s", tc.name, damage, err, kdir)
		}
		if err := os.WriteFile(path, was, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(topics, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	// Restored, the data dir loads again.
	c, _, err = start()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestEmbeddedBrokerOnAnotherLoopbackAddress: kafka.embedded_addr
// 127.0.0.2:PORT is where the broker listens and what it advertises (it
// listened on 127.0.0.1 whatever the address said).
func TestEmbeddedBrokerOnAnotherLoopbackAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 is not a loopback address here: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := defaultFileConfig()
	cfg.DataDir = t.TempDir()
	cfg.Kafka.EmbeddedAddr = addr
	c, err := startEmbeddedBroker(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ListenAddrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("broker listens on %v, want %s", got, addr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(t.Context(), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce through %s: %v", addr, err)
	}
}
