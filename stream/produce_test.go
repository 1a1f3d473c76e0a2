package stream

import (
	"errors"
	"strings"
	"testing"
)

// TestProducedErrStaysShort: a broker that refuses every record of a
// transaction (a full disk) gives one error naming the first and how many
// failed, not every error joined (a log line of megabytes).
func TestProducedErrStaysShort(t *testing.T) {
	var p producedErr
	refused := errors.New("UNKNOWN_SERVER_ERROR: the server experienced an unexpected error")
	for range 5000 {
		p.promise(nil, refused)
	}
	p.promise(nil, nil)
	if p.failed != 5000 || !errors.Is(p.err, refused) {
		t.Fatalf("failed %d, err %v", p.failed, p.err)
	}
	if msg := p.err.Error(); strings.Count(msg, "UNKNOWN_SERVER_ERROR") != 1 {
		t.Errorf("error %q repeats the refusal", msg)
	}
}
