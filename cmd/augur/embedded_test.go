package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
