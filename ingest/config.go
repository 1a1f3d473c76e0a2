// Package ingest is augur's front door: an HTTP receiver for Prometheus
// remote-write 1.0 and 2.0 that validates every series, routes it to a
// partition of augur.samples by its routing key, and writes one columnar
// block (proto.BlockBuilder) per partition per request to Kafka. A request is
// acknowledged with 2xx only after Kafka acknowledged every record of it with
// acks from all in-sync replicas.
package ingest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/augur-ops/augur/proto"
)

// Config configures a Receiver. The zero value of every field means its
// default; call Validate (New does) before use.
type Config struct {
	// Topic receives the sample blocks. Default "augur.samples".
	Topic string `yaml:"topic"`
	// Partitions is the partition count of Topic; routing is
	// hash(routing key) mod Partitions. Required (> 0). Changing it moves
	// series to other partitions, where their state warms up again.
	Partitions int32 `yaml:"partitions"`

	// MaxCompressedBytes bounds the request body as sent. Default 16 MiB;
	// larger bodies answer 413.
	MaxCompressedBytes int64 `yaml:"max_compressed_bytes"`
	// MaxDecodedBytes bounds the body after snappy decompression. Default
	// 64 MiB; larger bodies answer 400.
	MaxDecodedBytes int64 `yaml:"max_decoded_bytes"`
	// MaxRecordBytes is the size at which a partition's block is cut into a
	// further Kafka record. Default 4 MiB. The topic's max.message.bytes must
	// exceed it.
	MaxRecordBytes int `yaml:"max_record_bytes"`

	// MaxInflightRequests bounds requests being processed at once.
	// Default 256.
	MaxInflightRequests int `yaml:"max_inflight_requests"`
	// MaxInflightBytes bounds the bytes of requests being processed at
	// once: a request is admitted on its compressed size (Content-Length)
	// and, once its body is read, on its decoded size (snappy expands up to
	// about 20 times). Default 256 MiB; at least MaxDecodedBytes.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// InflightWait is how long a request waits for room under the two
	// limits above before it answers 503 with Retry-After. Default 250ms.
	InflightWait time.Duration `yaml:"inflight_wait"`
	// BodyTimeout bounds the reading of a request's body, which holds its
	// in-flight slot and bytes: a client that declares a body and sends
	// it slowly, or not at all, held them for as long as it kept the
	// connection open. Default 30s, Prometheus' remote_timeout: a sender
	// has given up on the request by then.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// RetryAfter is the value of the Retry-After header on 503. Default 1s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// ProduceTimeout bounds the wait for Kafka to acknowledge a request's
	// records; past it the request answers 503. Default 10s.
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	// Compression of the Kafka record batches: "zstd" (default), "lz4",
	// "snappy", "gzip" or "none". Consumers decompress whatever a batch
	// says, so it can change on a running topic. bench/RESULTS-ingest.md
	// measures bytes per sample and CPU for each.
	Compression string `yaml:"compression"`

	// SeriesRefs is how many series each partition's series dictionary
	// numbers before it begins again. A block refers to a series it wrote
	// in the last minute by number instead of its labels (proto/block.go,
	// "Series references"; DESIGN.md). Default 1,048,576, at most 16,777,215;
	// -1 writes every series' labels in every block (block version 2,
	// which streams older than version 3 blocks read).
	SeriesRefs int `yaml:"series_refs"`

	// Limits are the per-series validation rules.
	Limits Limits `yaml:"limits"`

	// Auth, when set, requires every request to authenticate.
	Auth Auth `yaml:"auth"`
	// RequireTenant rejects requests without X-Scope-OrgID (400). Default
	// false: such requests belong to the empty tenant.
	RequireTenant bool `yaml:"require_tenant"`
}

// Limits are the validation rules applied to every series. A series that
// breaks one is not written and is named in the 400 answer; the rest of the
// request is written.
type Limits struct {
	// MaxLabelsPerSeries, including __name__. Default 30.
	MaxLabelsPerSeries int `yaml:"max_labels_per_series"`
	// MaxLabelNameLength in bytes. Default 1024.
	MaxLabelNameLength int `yaml:"max_label_name_length"`
	// MaxLabelValueLength in bytes. Default 2048.
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxFutureSkew: samples later than now plus this are rejected.
	// Default 10m.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	// NameValidation is "utf8" (Prometheus 3: any valid UTF-8) or "legacy"
	// ([a-zA-Z_:][a-zA-Z0-9_:]* for metric names, no colon in label names).
	// Default "utf8".
	NameValidation string `yaml:"name_validation"`
}

// Auth configures request authentication. Secrets are read from files so
// they stay out of the config and the process list.
type Auth struct {
	// BearerTokenFile holds the token expected in "Authorization: Bearer".
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BasicUsername and BasicPasswordFile configure HTTP basic auth.
	BasicUsername     string `yaml:"basic_username"`
	BasicPasswordFile string `yaml:"basic_password_file"`
}

// DefaultMaxFutureSkew is limits.max_future_skew's default: samples
// later than the receiver's clock plus this are refused. augur whatif's
// replay drops the same (stream.ReplayMaxFutureSkew, held equal by
// cmd/augur's TestReplayDropsWhatIngestRefuses).
const DefaultMaxFutureSkew = 10 * time.Minute

// defaults fills the zero fields of c. It is the one place the defaults
// are written; Validate calls it.
func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def64 := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	defD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Topic == "" {
		c.Topic = "augur.samples"
	}
	def64(&c.MaxCompressedBytes, 16<<20)
	def64(&c.MaxDecodedBytes, 64<<20)
	def(&c.MaxRecordBytes, 4<<20)
	def(&c.SeriesRefs, 1<<20)
	def(&c.MaxInflightRequests, 256)
	def64(&c.MaxInflightBytes, 256<<20)
	defD(&c.InflightWait, 250*time.Millisecond)
	defD(&c.BodyTimeout, 30*time.Second)
	defD(&c.RetryAfter, time.Second)
	defD(&c.ProduceTimeout, 10*time.Second)
	def(&c.Limits.MaxLabelsPerSeries, 30)
	def(&c.Limits.MaxLabelNameLength, 1024)
	def(&c.Limits.MaxLabelValueLength, 2048)
	defD(&c.Limits.MaxFutureSkew, DefaultMaxFutureSkew)
	if c.Limits.NameValidation == "" {
		c.Limits.NameValidation = "utf8"
	}
	if c.Compression == "" {
		c.Compression = "zstd"
	}
}

// codec returns the franz-go codec of Compression, false when unknown.
func (c *Config) codec() (kgo.CompressionCodec, bool) {
	switch c.Compression {
	case "zstd":
		// The fastest level: on the receiver's blocks it writes 2% more
		// bytes than franz-go's default level for 11% less receiver CPU
		// (bench/RESULTS-ingest.md, "zstd's fastest level").
		return kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest)), true
	case "lz4":
		return kgo.Lz4Compression(), true
	case "snappy":
		return kgo.SnappyCompression(), true
	case "gzip":
		return kgo.GzipCompression(), true
	case "none":
		return kgo.NoCompression(), true
	}
	return kgo.NoCompression(), false
}

// Validate fills in defaults and reports every bad field, each error naming
// it by its YAML path under "ingest".
func (c *Config) Validate() error {
	c.defaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ingest.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Partitions <= 0 {
		bad("partitions", "must be > 0, got %d", c.Partitions)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_compressed_bytes", c.MaxCompressedBytes},
		{"max_decoded_bytes", c.MaxDecodedBytes},
		{"max_record_bytes", int64(c.MaxRecordBytes)},
		{"max_inflight_requests", int64(c.MaxInflightRequests)},
		{"max_inflight_bytes", c.MaxInflightBytes},
		{"inflight_wait", int64(c.InflightWait)},
		{"body_timeout", int64(c.BodyTimeout)},
		{"retry_after", int64(c.RetryAfter)},
		{"produce_timeout", int64(c.ProduceTimeout)},
		{"limits.max_labels_per_series", int64(c.Limits.MaxLabelsPerSeries)},
		{"limits.max_label_name_length", int64(c.Limits.MaxLabelNameLength)},
		{"limits.max_label_value_length", int64(c.Limits.MaxLabelValueLength)},
		{"limits.max_future_skew", int64(c.Limits.MaxFutureSkew)},
	} {
		if f.v < 0 {
			bad(f.name, "must not be negative, got %d", f.v)
		}
	}
	if c.SeriesRefs < -1 || c.SeriesRefs >= proto.MaxSeriesRef {
		bad("series_refs", "must be -1 (off) or 1 to %d, got %d", proto.MaxSeriesRef-1, c.SeriesRefs)
	}
	if c.MaxInflightBytes > 0 && c.MaxInflightBytes < max(c.MaxCompressedBytes, c.MaxDecodedBytes) {
		bad("max_inflight_bytes", "%d is below max_compressed_bytes %d or max_decoded_bytes %d: a largest request could never run",
			c.MaxInflightBytes, c.MaxCompressedBytes, c.MaxDecodedBytes)
	}
	if c.ProduceTimeout > 0 && c.ProduceTimeout < time.Second {
		bad("produce_timeout", "must be at least 1s (the Kafka client's lower bound), got %s", c.ProduceTimeout)
	}
	if c.RetryAfter > 0 && c.RetryAfter < time.Second {
		bad("retry_after", "must be at least 1s (the header counts whole seconds), got %s", c.RetryAfter)
	}
	if _, ok := c.codec(); !ok {
		bad("compression", `must be one of zstd, lz4, snappy, gzip, none, got %q`, c.Compression)
	}
	switch c.Limits.NameValidation {
	case "utf8", "legacy":
	default:
		bad("limits.name_validation", `must be "utf8" or "legacy", got %q`, c.Limits.NameValidation)
	}
	if (c.Auth.BasicUsername == "") != (c.Auth.BasicPasswordFile == "") {
		bad("auth", "basic_username and basic_password_file go together")
	}
	if c.Auth.BearerTokenFile != "" && c.Auth.BasicUsername != "" {
		bad("auth", "choose bearer_token_file or basic auth, not both")
	}
	return errors.Join(errs...)
}

// readSecret reads a secret file, trimming the trailing newline editors add.
func readSecret(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("ingest.auth.%s: %w", field, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("ingest.auth.%s: %s is empty", field, path)
	}
	return s, nil
}
