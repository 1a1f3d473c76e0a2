// Package labels formats series labels for people: error messages, decision
// targets and summaries.
package labels

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/augur-ops/augur/proto"
)

// Format writes lbls the way Prometheus prints a series:
// name{k="v", k2="v2"}, with __name__ in front and values quoted. A value,
// the metric name included, or a label name longer than maxValue bytes is
// cut and marked "..." (0: no limit), and output past 512 bytes ends in
// ", ..." when maxValue is set, so that a hostile series cannot blow up an
// error body. (The series ingest names in a 400 are those it refused, a
// name over the length limit among them: a name left whole echoed the
// request's bytes.)
func Format(lbls []proto.Label, maxValue int) string {
	cut := func(s string) string {
		if maxValue <= 0 || len(s) <= maxValue {
			return s
		}
		i := maxValue
		for i > 0 && !utf8.RuneStart(s[i]) {
			i-- // whole runes only: names are written unquoted
		}
		return s[:i] + "..."
	}
	var b strings.Builder
	for _, l := range lbls {
		if l.Name == "__name__" {
			b.WriteString(cut(l.Value))
			break
		}
	}
	b.WriteByte('{')
	first := true
	for _, l := range lbls {
		if l.Name == "__name__" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(cut(l.Name))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(cut(l.Value)))
		if maxValue > 0 && b.Len() > 512 {
			b.WriteString(", ...")
			break
		}
	}
	b.WriteByte('}')
	return b.String()
}
