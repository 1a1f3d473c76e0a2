package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/augur-ops/augur/ingest/remotewrite"
)

// Causes of a failed request. httpStatus maps each to its status code; the
// table test in errors_test.go enumerates all of them.
var (
	errMethod          = errors.New("method not allowed: remote-write uses POST")
	errUnauthorized    = errors.New("missing or wrong credentials")
	errContentType     = errors.New("unsupported Content-Type")
	errContentEncoding = errors.New("unsupported Content-Encoding: remote-write bodies are snappy block compressed")
	errBodyTooLarge    = errors.New("request body too large")
	errDecodedTooLarge = errors.New("decompressed body too large")
	errSnappy          = errors.New("decompress snappy body")
	errReadBody        = errors.New("read request body")
	errBadTenant       = errors.New("bad X-Scope-OrgID")
	errOverloaded      = errors.New("too many requests in flight")
	errKafka           = errors.New("write to kafka")
	errShuttingDown    = errors.New("shutting down")
)

// invalidSeriesError reports the series of a request that broke a
// validation rule. The valid rest of the request was written.
type invalidSeriesError struct {
	problems []string // at most maxProblems, each naming series and rule
	more     int      // further problems not listed
	written  int      // samples written despite the problems
}

// maxProblems bounds the series named in one 400 answer.
const maxProblems = 10

func (e *invalidSeriesError) add(series, reason, detail string) {
	if len(e.problems) >= maxProblems {
		e.more++
		return
	}
	e.problems = append(e.problems, fmt.Sprintf("series %s: %s (%s)", series, detail, reason))
}

func (e *invalidSeriesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid series not written, %d samples written", len(e.problems)+e.more, e.written)
	for _, p := range e.problems {
		b.WriteString("\n")
		b.WriteString(p)
	}
	if e.more > 0 {
		fmt.Fprintf(&b, "\nand %d more", e.more)
	}
	return b.String()
}

// httpStatus maps the cause of a failed request to its status code and says
// whether the answer carries Retry-After. It is the only place that decides
// status codes. Remote-write senders retry 5xx and drop 4xx, so a 5xx must
// mean "nothing bad about the data, try again", and overload is 503, never
// 429 (Prometheus does not retry 429 by default).
func httpStatus(err error) (code int, retry bool) {
	var inv *invalidSeriesError
	switch {
	case err == nil:
		return http.StatusNoContent, false
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, false
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized, false
	case errors.Is(err, errContentType), errors.Is(err, errContentEncoding):
		return http.StatusUnsupportedMediaType, false
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge, false
	case errors.Is(err, errDecodedTooLarge), errors.Is(err, errSnappy),
		errors.Is(err, remotewrite.ErrMalformed), errors.Is(err, errBadTenant),
		errors.As(err, &inv):
		return http.StatusBadRequest, false
	case errors.Is(err, errReadBody):
		// The client went away or stalled; it will resend.
		return http.StatusBadRequest, false
	case errors.Is(err, errOverloaded), errors.Is(err, errKafka), errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable, true
	default:
		return http.StatusInternalServerError, false
	}
}

// statusReason is the closed set of label values of the requests metric.
func statusReason(err error) string {
	var inv *invalidSeriesError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errMethod):
		return "method"
	case errors.Is(err, errUnauthorized):
		return "unauthorized"
	case errors.Is(err, errContentType), errors.Is(err, errContentEncoding):
		return "unsupported_media_type"
	case errors.Is(err, errBodyTooLarge), errors.Is(err, errDecodedTooLarge):
		return "too_large"
	case errors.Is(err, errSnappy), errors.Is(err, remotewrite.ErrMalformed), errors.Is(err, errReadBody):
		return "malformed"
	case errors.Is(err, errBadTenant):
		return "bad_tenant"
	case errors.As(err, &inv):
		return "invalid_series"
	case errors.Is(err, errOverloaded):
		return "overloaded"
	case errors.Is(err, errKafka):
		return "kafka"
	case errors.Is(err, errShuttingDown):
		return "shutting_down"
	default:
		return "internal"
	}
}
