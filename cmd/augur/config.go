package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/ingest"
	"github.com/augur-ops/augur/internal/kafkaconn"
)

// fileConfig is the YAML config file of `augur run` and `augur ingest`.
// Every field is optional; README.md documents each with its default.
type fileConfig struct {
	// Listen is the address of the HTTP server: remote-write at
	// /api/v1/write, /metrics, /healthz, /readyz. Default 127.0.0.1:9201.
	Listen string `yaml:"listen"`
	// TLS serves HTTPS when both files are set.
	TLS struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// DataDir holds the embedded broker's log and the generated decision
	// key. Default ./augur-data.
	DataDir string `yaml:"data_dir"`
	Kafka   struct {
		// Brokers of a real cluster. Empty: start the embedded broker.
		Brokers []string `yaml:"brokers"`
		// Config is how every client of every role connects to Brokers:
		// client_id, tls, sasl (internal/kafkaconn). The embedded broker
		// is plaintext on loopback and ignores them.
		kafkaconn.Config `yaml:",inline"`
		// EmbeddedAddr is where the embedded broker listens (loopback only).
		// Default 127.0.0.1:9092.
		EmbeddedAddr string `yaml:"embedded_addr"`
		// EmbeddedRetention is how long the embedded broker keeps samples,
		// decisions and audit records. Default 6h.
		EmbeddedRetention time.Duration `yaml:"embedded_retention"`
		// EmbeddedRetentionBytes bounds what the embedded broker keeps on
		// disk across its topics, in bytes (see boundEmbedded for the
		// split). Default 5 GiB.
		EmbeddedRetentionBytes int64 `yaml:"embedded_retention_bytes"`
		// Partitions of augur.samples (and augur.state) when augur creates
		// them. Default 8.
		Partitions int32 `yaml:"partitions"`
		// Replication of topics augur creates; -1 takes the broker default.
		// Default -1 (1 on the embedded broker).
		Replication int16 `yaml:"replication"`
	} `yaml:"kafka"`
	// RulesFile is the rules YAML (internal/rules/README.md). Empty: no
	// rules; every series is routed by its own labels.
	RulesFile string `yaml:"rules_file"`
	// DecisionKeyFile holds the HMAC key decisions are signed with, 64 hex
	// digits (stream.LoadKey). Empty: `augur run` creates
	// <data_dir>/decision.key.
	DecisionKeyFile string `yaml:"decision_key_file"`
	// API sizes the decisions API's tail (/api/v1/decisions, actions,
	// forecasts, rules) and the console reading it.
	API struct {
		// TailSize is how many decisions, how many audit records and how
		// many forecast points per rule are kept. Default 1000.
		TailSize int `yaml:"tail_size"`
		// Lookback is how far back the topics are read at start.
		// Default 1h.
		Lookback time.Duration `yaml:"lookback"`
	} `yaml:"api"`
	// Ingest configures the receiver.
	Ingest ingest.Config `yaml:"ingest"`
	// Act configures the actuators.
	Act struct {
		// Config holds the mode (off, dry-run (default) or enforce) and
		// the guardrails, with actuators.DefaultConfig's defaults: cooldown_up,
		// cooldown_down, scale_down_stabilization, max_step,
		// retry_interval, deny_namespaces, rules, ... (README: Configuration).
		actuators.Config `yaml:",inline"`
		// Kubeconfig is "none" (or empty, the default: decisions are only
		// audited), "in-cluster" (the pod's service account) or a
		// kubeconfig path; `augur act -kubeconfig` takes the same values.
		Kubeconfig string `yaml:"kubeconfig"`
	} `yaml:"act"`
}

func defaultFileConfig() fileConfig {
	var c fileConfig
	c.Listen = "127.0.0.1:9201"
	c.DataDir = "augur-data"
	c.Kafka.EmbeddedAddr = "127.0.0.1:9092"
	c.Kafka.EmbeddedRetention = 6 * time.Hour
	c.Kafka.EmbeddedRetentionBytes = 5 << 30
	c.Kafka.Partitions = 8
	c.API.TailSize = 1000
	c.API.Lookback = time.Hour
	c.Kafka.Replication = -1
	c.Act.Config = actuators.DefaultConfig()
	return c
}

// loadFileConfig reads path over the defaults. Unknown fields are errors, so
// a typo is reported instead of silently ignored.
func loadFileConfig(path string) (fileConfig, error) {
	c := defaultFileConfig()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// validate checks the fields the subcommands use, naming each bad one.
func (c *fileConfig) validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: must not be empty"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Kafka.EmbeddedRetention <= 0 {
		errs = append(errs, fmt.Errorf("kafka.embedded_retention: must be > 0, got %v", c.Kafka.EmbeddedRetention))
	}
	if c.Kafka.EmbeddedRetentionBytes < 16<<20 {
		errs = append(errs, fmt.Errorf("kafka.embedded_retention_bytes: must be at least 16 MiB (16777216), got %d", c.Kafka.EmbeddedRetentionBytes))
	}
	if c.API.TailSize < 1 || c.API.TailSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("api.tail_size: must be between 1 and 1000000, got %d", c.API.TailSize))
	}
	if c.API.Lookback <= 0 {
		errs = append(errs, fmt.Errorf("api.lookback: must be > 0, got %v", c.API.Lookback))
	}
	if c.Kafka.Partitions <= 0 {
		errs = append(errs, fmt.Errorf("kafka.partitions: must be > 0, got %d", c.Kafka.Partitions))
	}
	if err := c.checkReplication(); err != nil {
		errs = append(errs, err)
	}
	if c.Ingest.Partitions != 0 {
		// ingest.Config has the field, but the receiver routes by the
		// samples topic's partition count (kafka.partitions when augur
		// creates it): a value here would be silently dropped.
		errs = append(errs, fmt.Errorf("ingest.partitions: not a setting (kafka.partitions sets the samples topic's partitions when augur creates it), got %d", c.Ingest.Partitions))
	}
	if len(c.Kafka.Brokers) == 0 && !strings.HasPrefix(c.Kafka.EmbeddedAddr, "127.") && !strings.HasPrefix(c.Kafka.EmbeddedAddr, "localhost:") {
		errs = append(errs, fmt.Errorf("kafka.embedded_addr: the embedded broker listens on loopback only, got %q", c.Kafka.EmbeddedAddr))
	}
	if !c.Act.Mode.Valid() {
		errs = append(errs, fmt.Errorf("act.mode: must be off, dry-run or enforce, got %q", c.Act.Mode))
	}
	ic := c.Ingest
	ic.Partitions = c.Kafka.Partitions
	if err := ic.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkReplication checks kafka.replication, which the roles that run
// alone (augur stream, augur act) use without the rest of validate: a
// broker refuses 0 or below -1 only when a topic is created, without
// naming the field.
func (c *fileConfig) checkReplication() error {
	if r := c.Kafka.Replication; r == 0 || r < -1 {
		return fmt.Errorf("kafka.replication: must be -1 (the broker's default) or at least 1, got %d", r)
	}
	return nil
}
