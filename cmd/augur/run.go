package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/actuators/kube"
	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/kafkaconn"
	"github.com/augur-ops/augur/internal/recent"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/stream"
)

func init() {
	commands["run"] = command{
		summary: "run the whole pipeline (ingest, stream, act) in one process; embedded broker unless brokers are set",
		run:     runRun,
	}
	commands["ingest"] = command{
		summary: "run the remote-write receiver alone against a Kafka cluster",
		run:     runIngest,
	}
}

// commonFlags are the flags of run and ingest; each overrides its field of
// the config file.
type commonFlags struct {
	config, listen, brokers, rules, dataDir, mode string
	partitions                                    int
	kafka                                         kafkaFlags
}

func (f *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML config file (see README: Configuration)")
	fs.StringVar(&f.listen, "listen", "", "HTTP listen address (default 127.0.0.1:9201)")
	fs.StringVar(&f.brokers, "brokers", os.Getenv("AUGUR_KAFKA_BROKERS"), "comma-separated Kafka seed brokers; empty: embedded broker (run only)")
	fs.StringVar(&f.rules, "rules", "", "rules file (YAML)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the embedded broker and the generated decision key (default ./augur-data)")
	fs.StringVar(&f.mode, "mode", "", "actuator mode: off, dry-run (default) or enforce")
	fs.IntVar(&f.partitions, "partitions", 0, "partitions of augur.samples when creating it (default 8)")
	f.kafka = registerKafkaFlags(fs)
}

func (f *commonFlags) load() (fileConfig, error) {
	c, err := loadFileConfig(f.config)
	if err != nil {
		return c, err
	}
	if f.listen != "" {
		c.Listen = f.listen
	}
	if f.brokers != "" {
		c.Kafka.Brokers = strings.Split(f.brokers, ",")
	}
	if f.rules != "" {
		c.RulesFile = f.rules
	}
	if f.dataDir != "" {
		c.DataDir = f.dataDir
	}
	if f.mode != "" {
		c.Act.Mode = actuators.Mode(f.mode)
	}
	if f.partitions != 0 {
		c.Kafka.Partitions = int32(f.partitions)
	}
	if err := f.kafka.apply(&c.Kafka.Config); err != nil {
		return c, err
	}
	return c, c.validate()
}

func newRegistry() *prometheus.Registry {
	reg := processRegistry()
	return reg
}

func runRun(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	var f commonFlags
	fs := newFlagSet("run", stdout)
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	rs, err := runRules(cfg.RulesFile, log)
	if err != nil {
		return err
	}
	if err := checkDecisionTTLs(rs, stream.DefaultAllowedLateness, cfg.Act.MaxDecisionTTL); err != nil {
		return err
	}

	seeds := cfg.Kafka.Brokers
	replication := cfg.Kafka.Replication
	var cluster *kfake.Cluster
	if len(seeds) == 0 {
		// One process per data dir: the lock is released after the
		// broker closes.
		release, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer release()
		cluster, err = startEmbeddedBroker(cfg, log)
		if err != nil {
			return err
		}
		defer cluster.Close()
		seeds = cluster.ListenAddrs()
		replication = 1
		log.Info("embedded kafka broker started", "addr", seeds[0], "data_dir", filepath.Join(cfg.DataDir, "kafka"),
			"retention", cfg.Kafka.EmbeddedRetention, "retention_bytes", cfg.Kafka.EmbeddedRetentionBytes)
	}

	keyFile := cfg.DecisionKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "decision.key")
	}
	key, err := stream.EnsureKey(keyFile)
	if err != nil {
		return err
	}
	logKey(log, "signs and verifies decisions", keyFile, key)

	reg := newRegistry()
	conn, err := connOptions(ctx, cfg.Kafka.Config, seeds, cluster != nil)
	if err != nil {
		return err
	}
	parts, err := ensureTopics(ctx, conn, cfg, replication, false)
	if err != nil {
		return err
	}
	cfg.Ingest.Partitions = parts
	var disk *diskWatch
	if cluster != nil {
		if err := boundEmbedded(ctx, conn, cfg, parts); err != nil {
			return err
		}
		if disk, err = newDiskWatch(filepath.Join(cfg.DataDir, "kafka"), cfg.Kafka.EmbeddedRetentionBytes, cluster, reg, log); err != nil {
			return err
		}
	}

	recv, prodClient, err := newReceiver(cfg, conn, rs, reg, log)
	if err != nil {
		return err
	}
	defer prodClient.Close()

	samplesTopic := cfg.Ingest.Topic
	if samplesTopic == "" {
		samplesTopic = "augur.samples" // ingest.Config's default
	}
	scfg := stream.Config{
		Brokers: seeds, ClientOpts: conn, Rules: rs, SigningKey: key, Registerer: reg, Logger: log,
		// The stream consumes what the receiver writes (ingest.topic).
		SamplesTopic: samplesTopic, DecisionsTopic: cfg.Act.DecisionsTopic, ActionsTopic: cfg.Act.ActionsTopic,
	}
	if cluster != nil {
		scfg.StateTrimInterval = embeddedStateTrim
	}
	st, err := stream.New(scfg)
	if err != nil {
		return err
	}

	acfg := cfg.Act.Config
	acfg.DecisionKeys = [][]byte{key}
	acfg.Actor = actHostname(acfg.Actor)
	kx, err := kubeExecutor(cfg.Act.Kubeconfig, reg, log)
	if err != nil {
		return err
	}
	if kx != nil {
		defer kx.Close()
	}
	var kex actuators.Executor // a nil *kube.Executor must stay a nil interface
	if kx != nil {
		kex = kx
	}
	act, err := actuators.New(acfg, nil, kex, nil, reg, log)
	if err != nil {
		return err
	}
	// Audit records and offsets commit in one transaction: exactly one
	// audit record per decision across restarts.
	actSession, err := kgo.NewGroupTransactSession(append(append(actuators.TransactionalOptions(acfg, "augur-act", "augur-act-"+acfg.Actor), act.RebalanceOptions(conn)...), conn...)...)
	if err != nil {
		return fmt.Errorf("kafka transactional session: %w", err)
	}
	defer actSession.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	url := writeURL(cfg, ln)
	log.Info("augur running",
		"remote_write_url", url, "console", strings.TrimSuffix(url, "api/v1/write"),
		"prometheus_config", fmt.Sprintf("remote_write: [{url: %s}]", url),
		"read_decisions", fmt.Sprintf("kcat -b %s -C -t augur.decisions -f '%%k %%s\\n'", seeds[0]),
		"read_samples", fmt.Sprintf("kcat -b %s -C -t %s -c 1 -f '%%h %%S bytes\\n'", seeds[0], samplesTopic),
		"actuator_mode", acfg.Mode, "partitions", parts)

	g, gctx := errgroup.WithContext(ctx)
	// The decisions and actions API reads the topics back, read committed.
	tail := recent.New(recent.Config{DecisionsTopic: cfg.Act.DecisionsTopic, ActionsTopic: cfg.Act.ActionsTopic, ForecastsTopic: "augur.forecasts",
		Size: cfg.API.TailSize, Lookback: cfg.API.Lookback}, log)
	tailClient, err := kgo.NewClient(append(conn, tail.Options()...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer tailClient.Close()
	g.Go(func() error { return serveHTTP(gctx, cfg, ln, recv, prodClient, tail, reg, log) })
	g.Go(func() error { return tail.Run(gctx, tailClient) })
	g.Go(func() error { return st.Run(gctx) })
	if disk != nil {
		g.Go(func() error { disk.run(gctx); return nil })
	}
	g.Go(func() error {
		// Decisions admitted before a restart are refused if written
		// again, and the guardrails' memory holds (Actuator.Recall).
		if _, err := act.Recall(gctx, conn); err != nil {
			if gctx.Err() != nil {
				return nil // stopped while recalling
			}
			return err
		}
		return act.RunSession(gctx, actSession)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // a signal, not a failure
	}
	log.Info("augur stopped")
	return err
}

func runIngest(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	var f commonFlags
	fs := newFlagSet("ingest", stdout)
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		fmt.Fprintln(stdout, "augur ingest: -brokers (or kafka.brokers, or AUGUR_KAFKA_BROKERS) is required; `augur run` embeds a broker")
		return errUsage
	}
	rs, err := loadRules(cfg.RulesFile)
	if err != nil {
		return err
	}
	reg := newRegistry()
	conn, err := connOptions(ctx, cfg.Kafka.Config, cfg.Kafka.Brokers, false)
	if err != nil {
		return err
	}
	parts, err := ensureTopics(ctx, conn, cfg, cfg.Kafka.Replication, true)
	if err != nil {
		return err
	}
	cfg.Ingest.Partitions = parts
	recv, client, err := newReceiver(cfg, conn, rs, reg, log)
	if err != nil {
		return err
	}
	defer client.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("remote-write receiver running", "url", writeURL(cfg, ln), "partitions", parts)
	err = serveHTTP(ctx, cfg, ln, recv, client, nil, reg, log)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil
	}
	return err
}

// checkDecisionTTLs reports a scaling rule whose decisions would reach the
// actuator valid for longer than act.max_decision_ttl (decision_ttl plus
// the stream's allowed lateness): the actuator would refuse every one.
func checkDecisionTTLs(rs *rules.Set, lateness, maxTTL time.Duration) error {
	for i := range rs.Len() {
		r := rs.Rule(i)
		if r.Scaling != nil && r.Scaling.DecisionTTL+lateness > maxTTL {
			return fmt.Errorf("rule %q: scaling.decision_ttl %v (plus the stream's allowed lateness %v) is longer than act.max_decision_ttl %v: the actuator would refuse its decisions",
				r.Name, r.Scaling.DecisionTTL, lateness, maxTTL)
		}
	}
	return nil
}

func loadRules(path string) (*rules.Set, error) {
	if path == "" || path == "none" {
		return rules.Empty(), nil
	}
	return rules.Load(path)
}

//go:embed starter_rules.yaml
var starterRules string

// runRules returns the rules of `augur run`: the file at path; with no
// path the starter rules (starter_rules.yaml, on what Prometheus and a node
// exporter send about themselves); "none" for no rules at all.
func runRules(path string, log *slog.Logger) (*rules.Set, error) {
	if path != "" {
		return loadRules(path)
	}
	rs, err := rules.Parse(strings.NewReader(starterRules))
	if err != nil {
		return nil, fmt.Errorf("starter rules: %w", err)
	}
	log.Info("no rules file: the starter rules decide on Prometheus' and node exporter's own metrics (-rules FILE for yours, -rules none for none)",
		"rules", rs.Len())
	return rs, nil
}

// ensureTopics checks the connection (a bad TLS or SASL setting fails here,
// named), creates augur's topics where missing and returns the partition
// count of augur.samples.
//
// With onlySamples (augur ingest) only augur.samples is checked or
// created: the ingest principal needs no ACL on the other topics.
func ensureTopics(ctx context.Context, conn []kgo.Opt, cfg fileConfig, replication int16, onlySamples bool) (int32, error) {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := cfg.Kafka.Check(ctx, cl, 15*time.Second); err != nil {
		return 0, err
	}
	adm := kadm.NewClient(cl)
	ic := cfg.Ingest
	ic.Partitions = cfg.Kafka.Partitions
	if err := ic.Validate(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	parts, err := ingest.EnsureTopic(ctx, adm, ic.Topic, cfg.Kafka.Partitions, replication, ic.MaxRecordBytes)
	if err != nil || onlySamples {
		return parts, kafkaconn.ACLHint(err)
	}
	scfg := stream.Config{SamplesTopic: ic.Topic, DecisionsTopic: cfg.Act.DecisionsTopic, StateTopic: "augur.state", ForecastsTopic: "augur.forecasts"}
	if err := stream.EnsureTopics(ctx, adm, &scfg, replication, stream.DecisionPartitions); err != nil {
		return 0, kafkaconn.ACLHint(err)
	}
	if err := stream.CreateMissing(ctx, adm, cfg.Act.ActionsTopic, stream.DecisionPartitions, replication); err != nil {
		return 0, kafkaconn.ACLHint(err)
	}
	return parts, nil
}

func newReceiver(cfg fileConfig, conn []kgo.Opt, rs *rules.Set, reg prometheus.Registerer, log *slog.Logger) (*ingest.Receiver, *kgo.Client, error) {
	cl, err := kgo.NewClient(append(ingest.ClientOptions(cfg.Ingest), conn...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	recv, err := ingest.New(cfg.Ingest, cl, rs, reg, log, nil)
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return recv, cl, nil
}

// serveHTTP serves remote-write, /metrics, /healthz and /readyz until ctx
// ends, then shuts down in two phases: stop intake (503) and answer the
// requests in flight, then close the server and flush the producer.
//
// api, when not nil, serves /api/v1/decisions, /api/v1/actions,
// /api/v1/forecasts and /api/v1/rules, the charts at /api/v1/chart.svg and
// the console at /.
func serveHTTP(ctx context.Context, cfg fileConfig, ln net.Listener, recv *ingest.Receiver, cl *kgo.Client, api *recent.Tail, reg *prometheus.Registry, log *slog.Logger) error {
	var stopping atomic.Bool
	mux := roleMux(reg, api)
	mux.Handle("/api/v1/write", recv)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := cl.Ping(pctx); err != nil {
			http.Error(w, "kafka unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := newHTTPServer(mux, 10*time.Second)
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS.CertFile != "" {
			errc <- srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	stopping.Store(true)
	// The parent context is done; shutdown gets its own deadline on purpose.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := recv.Drain(sctx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown incomplete", "err", err)
	}
	if err := cl.Flush(sctx); err != nil {
		log.Warn("producer flush incomplete", "err", err)
	}
	return ctx.Err()
}

// kubeExecutor returns the Kubernetes executor for `augur run`: none for
// "" or "none" (decisions are audited but nothing is called), the pod's
// service account for "in-cluster", else the kubeconfig at the path.
func kubeExecutor(setting string, reg prometheus.Registerer, log *slog.Logger) (*kube.Executor, error) {
	if noKube(setting) {
		return nil, nil
	}
	rc, err := kubeRESTConfig(setting)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	apiM, err := actuators.NewAPIMetrics(reg)
	if err != nil {
		return nil, err
	}
	return kube.New(kube.DefaultConfig(), cs, apiM, log)
}

// writeURL is the remote-write URL of the bound listener (the real port when
// the configured one is 0).
func writeURL(cfg fileConfig, ln net.Listener) string {
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String() + "/api/v1/write"
}
