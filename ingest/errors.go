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

// cause is how one class of failure is answered.
type cause struct {
	err    error // matched with errors.Is
	code   int
	retry  bool   // answer carries Retry-After
	reason string // value of the outcome label of augur_ingest_requests_total
}

// causes lists every failure the receiver answers, in match order.
// Remote-write senders retry 5xx and drop 4xx, so a 5xx must mean "nothing
// bad about the data, try again", and overload is 503, never 429
// (Prometheus does not retry 429 by default).
var causes = []cause{
	{errMethod, http.StatusMethodNotAllowed, false, "method"},
	{errUnauthorized, http.StatusUnauthorized, false, "unauthorized"},
	{errContentType, http.StatusUnsupportedMediaType, false, "unsupported_media_type"},
	{errContentEncoding, http.StatusUnsupportedMediaType, false, "unsupported_media_type"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, false, "too_large"},
	{errDecodedTooLarge, http.StatusBadRequest, false, "too_large"},
	{errSnappy, http.StatusBadRequest, false, "malformed"},
	{remotewrite.ErrMalformed, http.StatusBadRequest, false, "malformed"},
	// The client went away, or stalled past body_timeout (by when a
	// Prometheus sender has given up on the request: remote_timeout 30 s).
	{errReadBody, http.StatusBadRequest, false, "malformed"},
	{errBadTenant, http.StatusBadRequest, false, "bad_tenant"},
	{errOverloaded, http.StatusServiceUnavailable, true, "overloaded"},
	{errKafka, http.StatusServiceUnavailable, true, "kafka"},
	{errShuttingDown, http.StatusServiceUnavailable, true, "shutting_down"},
}

// classify returns how err is answered. It is the only place that decides
// status codes; TestHTTPStatus enumerates every cause.
func classify(err error) cause {
	var inv *invalidSeriesError
	switch {
	case err == nil:
		return cause{code: http.StatusNoContent, reason: "ok"}
	case errors.As(err, &inv):
		return cause{err: err, code: http.StatusBadRequest, reason: "invalid_series"}
	}
	for _, c := range causes {
		if errors.Is(err, c.err) {
			return c
		}
	}
	return cause{err: err, code: http.StatusInternalServerError, reason: "internal"}
}

// httpStatus returns the status code of err and whether the answer carries
// Retry-After.
func httpStatus(err error) (code int, retry bool) {
	c := classify(err)
	return c.code, c.retry
}

// statusReason is the closed set of label values of the requests metric.
func statusReason(err error) string { return classify(err).reason }
