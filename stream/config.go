package stream

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/detectors/scaling"
	"github.com/augur-ops/augur/internal/rules"
)

// Config configures a Stream. The zero value of every field with a default
// takes the default; Validate fills them in.
type Config struct {
	// Brokers are the Kafka seed brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "augur-stream".
	Group string
	// SamplesTopic, DecisionsTopic and StateTopic default to augur.samples,
	// augur.decisions and augur.state. StateTopic must have as many
	// partitions as SamplesTopic (EnsureTopics creates it so).
	SamplesTopic, DecisionsTopic, StateTopic string
	// ActionsTopic holds the actuators' audit records. The stream reads the
	// replicas they report for its scaling targets there, so that it never
	// takes a refused, deferred, expired or partly applied decision for
	// done (see reports). Default augur.actions; "-" reads nothing and the
	// stream takes each decision as applied.
	ActionsTopic string
	// ForecastsTopic receives a proto.ForecastPoint per window close of
	// every scaling group, in the window's transaction (the API and the
	// console read it). Default augur.forecasts; "-" writes none.
	ForecastsTopic string
	// TransactionalID identifies this member's transactional producer; it
	// must be unique per member and stable across its restarts (a restarted
	// member fences its previous incarnation). Default
	// "augur-stream-<hostname>".
	TransactionalID string
	// InstanceID makes the member static: it does not leave the group when
	// closed, and a restart with the same id gets its partitions back
	// without a rebalance. Default none.
	InstanceID string

	// Rules are the compiled rules file. Default: no rules (every series is
	// deduplicated and counted, nothing is decided).
	Rules *rules.Set
	// SigningKey is the HMAC-SHA256 key decisions are signed with; at least
	// 16 bytes. Required (see LoadKey and EnsureKey).
	SigningKey []byte

	// AllowedLateness is how far behind the partition's newest sample a
	// sample may be and still count; older samples are dropped as late and
	// windows close once the watermark passes them. Default 30s.
	AllowedLateness time.Duration
	// IdleTimeout evicts a series that had no sample for this long in event
	// time. Default 15m, at least 1s.
	IdleTimeout time.Duration

	// MaxPollRecords bounds the records of one transaction. Default 2000.
	MaxPollRecords int
	// CommitInterval is the least time between the starts of two
	// transactions: records that arrive meanwhile join the next one.
	// Every transaction leaves a marker in each partition it wrote and
	// costs the broker round trips, so under load a transaction per fetch
	// is mostly overhead. Default 100ms (Kafka Streams' commit.interval.ms
	// under exactly-once); negative: a transaction per poll.
	CommitInterval time.Duration
	// StateTrimInterval, when positive, writes each partition's whole
	// durable state at most this often (at its first checkpoint, then
	// whenever the interval has passed) and, once that transaction has
	// committed, deletes the records of the state topic before it
	// (DeleteRecords; needs the Delete ACL on the topic). For a broker
	// whose compaction keeps every transaction marker, as the embedded
	// broker's does: without it augur.state grows by a marker per
	// transaction forever, and so does every compaction pass. Zero:
	// never; a real Kafka cluster's cleaner removes the markers itself,
	// and Kafka refuses DeleteRecords on a compact-only topic.
	StateTrimInterval time.Duration
	// TransactionTimeout is the broker-side timeout of a transaction: how
	// long the transaction of a crashed member blocks the partitions it
	// wrote to. Default 10s.
	TransactionTimeout time.Duration
	// SessionTimeout: a member silent this long is removed from the group.
	// Default 10s.
	SessionTimeout time.Duration
	// RebalanceTimeout bounds a rebalance. Default 30s.
	RebalanceTimeout time.Duration
	// RestoreTimeout bounds restoring one partition's state. Default 1m.
	RestoreTimeout time.Duration

	// NewGroupDetector makes the detectors of gray-failure and GPU groups.
	// Default DefaultGroupDetector (detectors/grayfailure, detectors/gpu).
	// Anomaly watches always run detectors/anomaly and scaling rules the
	// models/bank forecaster bank with detectors/scaling.
	NewGroupDetector NewGroupDetector

	// ScalingVariant, when set, adjusts the scaler configuration each
	// scaling rule maps to (bench/scalesim measures variants through it);
	// nil in the product.
	ScalingVariant func(*scaling.Config)

	// OnProcessed, when set, is called after each samples record is
	// processed, from the partition's goroutine: the hook that measures
	// latency from ingest to processing (the record's timestamp is set when
	// ingest produced it). It must be fast and must not retain rec.
	OnProcessed func(rec *kgo.Record, samples int)
	// OnCommitted, when set, is called after each committed transaction
	// with the decisions it made readable.
	OnCommitted func(records int, decisions int)

	// Registerer receives the metrics. Default: none are registered.
	Registerer prometheus.Registerer
	// Logger logs state transitions. Default slog.Default().
	Logger *slog.Logger
	// ClientOpts are appended to the kgo options of the group client (TLS,
	// SASL, ...).
	ClientOpts []kgo.Opt

	// testBeforeEnd, when set, runs before each transaction ends; returning
	// errKilled makes the member stop right there, as if its process died.
	testBeforeEnd func(txn int) error
}

// DefaultAllowedLateness is AllowedLateness when not set.
const DefaultAllowedLateness = 30 * time.Second

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Group, "augur-stream")
	def(&c.SamplesTopic, "augur.samples")
	def(&c.DecisionsTopic, "augur.decisions")
	def(&c.StateTopic, "augur.state")
	def(&c.ActionsTopic, "augur.actions")
	def(&c.ForecastsTopic, "augur.forecasts")
	if c.TransactionalID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "local"
		}
		c.TransactionalID = "augur-stream-" + h
	}
	if c.Rules == nil {
		c.Rules = rules.Empty()
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	dur(&c.AllowedLateness, DefaultAllowedLateness)
	dur(&c.IdleTimeout, 15*time.Minute)
	dur(&c.TransactionTimeout, 10*time.Second)
	dur(&c.SessionTimeout, 10*time.Second)
	dur(&c.RebalanceTimeout, 30*time.Second)
	dur(&c.RestoreTimeout, time.Minute)
	dur(&c.CommitInterval, 100*time.Millisecond)
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 2000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NewGroupDetector == nil {
		c.NewGroupDetector = DefaultGroupDetector
	}
}

// Validate fills the zero fields of c with their defaults and checks the
// configuration.
func (c *Config) Validate() error {
	c.defaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: required"))
	}
	if len(c.SigningKey) < 16 {
		errs = append(errs, fmt.Errorf("signing key: %d bytes, need at least 16", len(c.SigningKey)))
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, errors.New("allowed lateness: must be >= 0"))
	}
	if c.IdleTimeout < time.Second {
		errs = append(errs, errors.New("idle timeout: must be >= 1s"))
	}
	if c.StateTrimInterval < 0 {
		errs = append(errs, errors.New("state trim interval: must be >= 0"))
	}
	if c.MaxPollRecords < 0 {
		errs = append(errs, errors.New("max poll records: must be > 0"))
	}
	if err := validateModels(c.Rules); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// KeyHexDigits is the length of a decision key file's key: 64 hex digits,
// 32 random bytes, as EnsureKey generates and `openssl rand -hex 32` prints.
const KeyHexDigits = 64

// keyForm is what a decision key file must hold, for errors.
const keyForm = "want 64 hex digits (32 random bytes, as augur run generates and `openssl rand -hex 32` prints)"

// LoadKey reads a decision signing key: a file holding 64 hex digits, with
// surrounding whitespace (a trailing newline) ignored. The key is those 64
// characters as they are (the bytes decisions have always been signed
// with), not the 32 bytes they spell. Anything else is refused naming the
// file and what is wrong: a file cut short still held 16 bytes or more,
// was taken as another key, and every decision then failed the actuator's
// signature check.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read decision key: %w", err)
	}
	k := bytes.TrimSpace(b)
	for i, c := range k {
		if strings.IndexByte("0123456789abcdefABCDEF", c) < 0 {
			return nil, fmt.Errorf("decision key %s: character %d (%q) is not a hex digit: %s", path, i+1, string(k[i:i+1]), keyForm)
		}
	}
	switch {
	case len(k) == 0:
		return nil, fmt.Errorf("decision key %s: empty: %s", path, keyForm)
	case len(k) < KeyHexDigits:
		return nil, fmt.Errorf("decision key %s: %d characters, %s: the file looks cut short", path, len(k), keyForm)
	case len(k) > KeyHexDigits:
		return nil, fmt.Errorf("decision key %s: %d characters, %s", path, len(k), keyForm)
	}
	return k, nil
}

// EnsureKey loads the key at path, creating it first (64 random hex digits
// and a newline, mode 0600) when the file does not exist. `augur run` uses
// it for a local key when none is given.
func EnsureKey(path string) ([]byte, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		var raw [KeyHexDigits / 2]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, fmt.Errorf("generate decision key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create decision key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.WriteString(hex.EncodeToString(raw[:]) + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create decision key: %w", err)
		}
	}
	return LoadKey(path)
}
