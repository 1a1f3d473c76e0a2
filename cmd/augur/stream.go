package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/internal/recent"
	"github.com/augur-ops/augur/internal/rules"
	"github.com/augur-ops/augur/proto"
	"github.com/augur-ops/augur/stream"
)

func init() {
	commands["stream"] = command{
		summary: "consume augur.samples, keep series and workload state, write signed decisions (exactly once)",
		run:     runStream,
	}
}

func runStream(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	var cfg stream.Config
	fs := newFlagSet("stream", stdout)
	brokers := fs.String("brokers", os.Getenv("AUGUR_KAFKA_BROKERS"), "comma-separated Kafka seed brokers (required, here or in -config)")
	configFile := fs.String("config", "", "YAML config file whose kafka: block (brokers, client_id, tls, sasl; replication of the topics it creates) this role connects with")
	rulesFile := fs.String("rules", "", "rules file (YAML); empty: no rules")
	keyFile := fs.String("decision-key-file", "", "file holding the HMAC key decisions are signed with: 64 hex digits, e.g. from openssl rand -hex 32 (required)")
	metricsAddr := fs.String("metrics-addr", ":9464", `address serving /metrics, the decisions API and the console ("" disables)`)
	var api apiFlags
	api.register(fs)
	createTopics := fs.Bool("create-topics", true, "create the state and decisions topics when missing")
	fs.StringVar(&cfg.Group, "group", "augur-stream", "consumer group")
	fs.StringVar(&cfg.SamplesTopic, "samples-topic", "augur.samples", "topic consumed")
	fs.StringVar(&cfg.DecisionsTopic, "decisions-topic", "augur.decisions", "topic decisions go to")
	fs.StringVar(&cfg.StateTopic, "state-topic", "augur.state", "compacted checkpoint topic (as many partitions as the samples topic)")
	fs.StringVar(&cfg.ForecastsTopic, "forecasts-topic", "augur.forecasts", `topic of the scaling rules' forecast points ("-": none)`)
	fs.StringVar(&cfg.TransactionalID, "transactional-id", "", "unique, stable id of this member (default augur-stream-<hostname>)")
	fs.StringVar(&cfg.InstanceID, "instance-id", "", "static group membership id (e.g. the pod name of a StatefulSet)")
	fs.DurationVar(&cfg.AllowedLateness, "allowed-lateness", 30*time.Second, "how late a sample may be behind its partition's newest")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 15*time.Minute, "evict series without samples for this long (event time)")
	kf := registerKafkaFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	kc, fc, err := roleKafka(*configFile, kf, brokers)
	if err != nil {
		return err
	}
	if *brokers == "" || *keyFile == "" {
		fmt.Fprintln(stdout, "augur stream: -brokers (or kafka.brokers in -config) and -decision-key-file are required")
		return errUsage
	}
	cfg.Brokers = strings.Split(*brokers, ",")
	if cfg.ClientOpts, err = connOptions(ctx, kc, cfg.Brokers, false); err != nil {
		return err
	}
	key, err := stream.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	logKey(log, "signs decisions", *keyFile, key)
	cfg.SigningKey = key
	if *rulesFile != "" {
		if cfg.Rules, err = rules.Load(*rulesFile); err != nil {
			return err
		}
	}
	reg := processRegistry()
	cfg.Registerer = reg
	cfg.Logger = log
	s, err := stream.New(cfg)
	if err != nil {
		return err
	}
	// The connection is checked with or without -create-topics, so that a
	// bad TLS or SASL setting stops the role at start-up, named.
	cl, err := kgo.NewClient(cfg.ClientOpts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	err = kc.Check(ctx, cl, 15*time.Second)
	if err == nil && *createTopics {
		err = stream.EnsureTopics(ctx, kadm.NewClient(cl), &cfg, fc.Kafka.Replication, stream.DecisionPartitions)
	}
	cl.Close()
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		stop, err := serveRoleHTTP(ctx, *metricsAddr, cfg.ClientOpts, recent.Config{DecisionsTopic: cfg.DecisionsTopic, ActionsTopic: "augur.actions",
			ForecastsTopic: cfg.ForecastsTopic, Size: api.size, Lookback: api.lookback}, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	return s.Run(ctx)
}

// logKey logs the fingerprint of the decision key a role loaded
// (proto.KeyFingerprint): augur stream's and augur act's must be the same,
// or every decision fails the actuator's signature check.
func logKey(log *slog.Logger, use, path string, key []byte) {
	log.Info("decision key loaded", "use", use, "file", path, "fingerprint", proto.KeyFingerprint(key))
}
