package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cleanerInterval is how often the embedded broker applies retention and
// compacts augur.state (kfake's log.cleaner.backoff.ms).
const cleanerInterval = 10 * time.Second

func startEmbeddedBroker(cfg fileConfig, log *slog.Logger) (*kfake.Cluster, error) {
	host, portStr, err := net.SplitHostPort(cfg.Kafka.EmbeddedAddr)
	if err != nil {
		return nil, fmt.Errorf("kafka.embedded_addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("kafka.embedded_addr: port %q: %w", portStr, err)
	}
	dir := filepath.Join(cfg.DataDir, "kafka")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded broker data dir: %w", err)
	}
	// Without meta.json or topics.json the broker starts empty and writes
	// new offsets over the log still in partitions/: refuse instead.
	if ents, err := os.ReadDir(filepath.Join(dir, "partitions")); err == nil && len(ents) > 0 {
		for _, name := range []string{"meta.json", "topics.json"} {
			if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("embedded broker data dir %s: %s is missing but partitions/ holds a log: restore the file, or move the directory away to start empty", dir, name)
			}
		}
	}
	// kfake listens on 127.0.0.1; the address configured may be another
	// loopback one (127.0.0.2, localhost).
	listen := func(network, addr string) (net.Listener, error) {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return net.Listen(network, net.JoinHostPort(host, p))
	}
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.ListenFn(listen), kfake.NumBrokers(1), kfake.DataDir(dir),
		kfake.WithLogger(brokerLog{log.With("data_dir", dir)}),
		kfake.BrokerConfigs(map[string]string{
			"message.max.bytes":      strconv.Itoa(64 << 20),
			"log.cleaner.backoff.ms": strconv.FormatInt(cleanerInterval.Milliseconds(), 10),
		}))
	if err != nil {
		// The broker names a file by its base name: say where it is.
		return nil, fmt.Errorf("start embedded broker on %s with data dir %s: %w", cfg.Kafka.EmbeddedAddr, dir, err)
	}
	return c, nil
}

// brokerLog passes the embedded broker's warnings and errors to augur's
// log: what it repaired when loading the data dir (a segment cut short,
// corrupt log entries dropped) and writes that failed.
type brokerLog struct{ log *slog.Logger }

func (b brokerLog) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		b.log.Error("embedded broker", "detail", fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		b.log.Warn("embedded broker", "detail", fmt.Sprintf(format, args...))
	}
}

// embeddedStateTrim is how often the stream writes a partition's whole
// state and deletes augur.state's records before it, on the embedded
// broker: kfake's compaction keeps the marker of every transaction, so
// without it augur.state grows by a marker per transaction (a few a
// second per partition) for as long as the process runs, and every
// compaction pass, which holds the broker for its length, reads them all.
// A variable so that a test can shorten it.
var embeddedStateTrim = 2 * time.Minute

// Shares of kafka.embedded_retention_bytes per topic. augur.state has no
// retention: deleting by age would lose model warm-up; compaction and the
// stream's trim after a whole-state checkpoint (embeddedStateTrim) bound
// it by the live series; the 10% left is its room.
const (
	samplesShare   = 0.75
	decisionsShare = 0.05
	actionsShare   = 0.05
	forecastsShare = 0.05
)

// boundEmbedded sets the embedded broker's topic configs so that it cannot
// fill the disk: retention.ms and retention.bytes (a share of the total per
// topic, split over its partitions, as Kafka counts it per partition) on
// samples, decisions and actions, and segments small enough that
// retention frees space in steps of at most a quarter of a partition's
// share (at least 1 MiB, so a bound far below a MiB per partition is not
// kept). It runs at every start, so a data dir from an older version gets
// the bounds too.
func boundEmbedded(ctx context.Context, conn []kgo.Opt, cfg fileConfig, samplesParts int32) error {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ic := cfg.Ingest // its defaults name the samples topic
	ic.Partitions = samplesParts
	if err := ic.Validate(); err != nil {
		return err
	}
	total := float64(cfg.Kafka.EmbeddedRetentionBytes)
	retMs := strconv.FormatInt(cfg.Kafka.EmbeddedRetention.Milliseconds(), 10)
	topics := []struct {
		name  string
		share float64
		parts int32
	}{
		{ic.Topic, samplesShare, samplesParts},
		{cfg.Act.DecisionsTopic, decisionsShare, 12},
		{cfg.Act.ActionsTopic, actionsShare, 12},
		{"augur.forecasts", forecastsShare, 12},
	}
	var alters []kadm.AlterConfig
	for _, t := range topics {
		// Retention deletes whole sealed segments and keeps the active
		// one: a partition holds retention.bytes plus up to a segment.
		perPart := int64(total * t.share / float64(t.parts))
		seg := min(max(perPart/4, 1<<20), 100<<20)
		segment := strconv.FormatInt(seg, 10)
		bytes := strconv.FormatInt(max(perPart-seg, seg), 10)
		alters = append(alters,
			kadm.AlterConfig{Name: "retention.ms", Value: &retMs},
			kadm.AlterConfig{Name: "retention.bytes", Value: &bytes},
			kadm.AlterConfig{Name: "segment.bytes", Value: &segment})
		// Op zero is SET: only these keys change.
		resp, err := adm.AlterTopicConfigs(ctx, alters, t.name)
		if err == nil {
			var r kadm.AlterConfigsResponse
			if r, err = resp.On(t.name, nil); err == nil && r.Err != nil {
				err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			return fmt.Errorf("bound embedded topic %s: %w", t.name, err)
		}
		alters = alters[:0]
	}
	return nil
}

// diskWatch measures the embedded broker's data dir every 250ms, exports
// it, and applies retention (then compaction) at once when the dir nears
// its bound: the
// broker's own cleaner runs every cleanerInterval, and at full speed
// ingest writes tens of megabytes a second. It warns in the log when the
// dir stays well above the bound.
type diskWatch struct {
	dir     string
	limit   int64
	cluster *kfake.Cluster
	gauge   prometheus.Gauge
	free    prometheus.Gauge
	log     *slog.Logger
	warned  bool
	space   spaceState
}

// spaceState is what the filesystem under the data dir was last seen as.
type spaceState int

const (
	spaceRoom spaceState = iota
	spaceLow             // under a fifth of the filesystem free: warned
	spaceFull            // under fullBelow free: writes are refused
)

// fullBelow is the free space under which the broker's writes fail (a
// produce batch does not fit): the disk is full.
const fullBelow = 1 << 20

func newDiskWatch(dir string, limit int64, cluster *kfake.Cluster, reg prometheus.Registerer, log *slog.Logger) (*diskWatch, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "augur_embedded_broker_disk_bytes",
		Help: "Bytes the embedded broker's data dir holds on disk (kafka.embedded_retention_bytes bounds it).",
	})
	free := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "augur_embedded_broker_disk_free_bytes",
		Help: "Bytes free on the filesystem of the embedded broker's data dir; when it is full, remote writes answer 503 until space returns.",
	})
	for _, c := range []prometheus.Collector{g, free} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register embedded broker metrics: %w", err)
		}
	}
	return &diskWatch{dir: dir, limit: limit, cluster: cluster, gauge: g, free: free, log: log}, nil
}

// run measures every 250ms until ctx ends.
func (w *diskWatch) run(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		w.measure()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *diskWatch) measure() {
	n := w.size()
	if n > w.limit-w.limit/10 {
		w.cluster.ApplyRetention()
		n = w.size()
	}
	if n > w.limit {
		// Retention bounds every topic but augur.state, which only
		// compaction bounds: compact now rather than at the next pass.
		w.cluster.Compact()
		n = w.size()
	}
	w.gauge.Set(float64(n))
	// Retention frees whole segments, so the dir runs a little over its
	// bound; well over it, something retention does not bound grows.
	over := n > w.limit+w.limit/4
	if over && !w.warned {
		w.log.Warn("embedded broker data dir above its bound", "bytes", n, "retention_bytes", w.limit, "dir", w.dir)
	}
	w.warned = over
	w.checkSpace()
}

// checkSpace watches the filesystem under the data dir, which other files
// share: it warns once when under a fifth of it is free, logs an error
// when it is full (the broker refuses writes, and remote writes answer 503
// until space returns: nothing already acknowledged is lost), and says
// when there is room again.
func (w *diskWatch) checkSpace() {
	free, size, ok := diskSpace(w.dir)
	if !ok {
		return
	}
	w.free.Set(float64(free))
	now := spaceRoom
	switch {
	case free < fullBelow:
		now = spaceFull
	case free < size/5:
		now = spaceLow
	}
	if now == w.space {
		return
	}
	switch {
	case now == spaceFull:
		w.log.Error("embedded broker disk full: remote writes answer 503 until space returns; free space or lower kafka.embedded_retention_bytes",
			"free_bytes", free, "filesystem_bytes", size, "dir", w.dir)
	case now == spaceLow && w.space == spaceRoom:
		w.log.Warn("embedded broker disk nearly full: under a fifth free; lower kafka.embedded_retention_bytes or free space",
			"free_bytes", free, "filesystem_bytes", size, "retention_bytes", w.limit, "dir", w.dir)
	case w.space == spaceFull:
		w.log.Info("embedded broker disk has room again: writes are accepted", "free_bytes", free, "dir", w.dir)
	}
	w.space = now
}

// size returns the bytes of the files under the data dir.
func (w *diskWatch) size() int64 {
	var n int64
	_ = filepath.WalkDir(w.dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil // a file removed while walking is not an error
	})
	return n
}
