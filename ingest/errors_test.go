package ingest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/augur-ops/augur/ingest/remotewrite"
)

// TestHTTPStatus enumerates every cause httpStatus knows.
func TestHTTPStatus(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   int
		retry  bool
		reason string
	}{
		{nil, http.StatusNoContent, false, "ok"},
		{errMethod, http.StatusMethodNotAllowed, false, "method"},
		{errUnauthorized, http.StatusUnauthorized, false, "unauthorized"},
		{fmt.Errorf("%w x", errContentType), http.StatusUnsupportedMediaType, false, "unsupported_media_type"},
		{errContentEncoding, http.StatusUnsupportedMediaType, false, "unsupported_media_type"},
		{errBodyTooLarge, http.StatusRequestEntityTooLarge, false, "too_large"},
		{errDecodedTooLarge, http.StatusBadRequest, false, "too_large"},
		{errSnappy, http.StatusBadRequest, false, "malformed"},
		{fmt.Errorf("decode: %w", remotewrite.ErrMalformed), http.StatusBadRequest, false, "malformed"},
		{errReadBody, http.StatusBadRequest, false, "malformed"},
		{errBadTenant, http.StatusBadRequest, false, "bad_tenant"},
		{&invalidSeriesError{}, http.StatusBadRequest, false, "invalid_series"},
		{errOverloaded, http.StatusServiceUnavailable, true, "overloaded"},
		{fmt.Errorf("%w: broker gone", errKafka), http.StatusServiceUnavailable, true, "kafka"},
		{errShuttingDown, http.StatusServiceUnavailable, true, "shutting_down"},
		{fmt.Errorf("something else"), http.StatusInternalServerError, false, "internal"},
	} {
		code, retry := httpStatus(c.err)
		if code != c.code || retry != c.retry {
			t.Errorf("httpStatus(%v) = %d, %v; want %d, %v", c.err, code, retry, c.code, c.retry)
		}
		if code == http.StatusTooManyRequests {
			t.Errorf("httpStatus(%v) = 429: Prometheus drops 429 by default", c.err)
		}
		if r := statusReason(c.err); r != c.reason {
			t.Errorf("statusReason(%v) = %q, want %q", c.err, r, c.reason)
		}
	}
}

// TestEveryCauseIsReachable guards the match order of causes: no entry is
// shadowed by an earlier one.
func TestEveryCauseIsReachable(t *testing.T) {
	for _, c := range causes {
		if got := classify(fmt.Errorf("wrapped: %w", c.err)); got != c {
			t.Errorf("%v classified as %+v, want %+v", c.err, got, c)
		}
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "ingest.partitions: must be > 0"},
		{Config{Partitions: 1, MaxCompressedBytes: -1}, "ingest.max_compressed_bytes: must not be negative"},
		{Config{Partitions: 1, Limits: Limits{NameValidation: "ascii"}}, `ingest.limits.name_validation: must be "utf8" or "legacy"`},
		{Config{Partitions: 1, Compression: "brotli"}, `ingest.compression: must be one of zstd, lz4, snappy, gzip, none, got "brotli"`},
		{Config{Partitions: 1, Auth: Auth{BasicUsername: "u"}}, "ingest.auth: basic_username and basic_password_file go together"},
		{Config{Partitions: 1, RetryAfter: 10}, "ingest.retry_after: must be at least 1s"},
	} {
		err := c.cfg.Validate()
		if err == nil || !contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	ok := Config{Partitions: 8}
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}
