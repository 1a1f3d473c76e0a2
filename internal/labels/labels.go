// Package labels formats series labels for people: error messages, decision
// targets and summaries.
package labels

import (
	"strconv"
	"strings"

	"github.com/augur-ops/augur/proto"
)

// Format writes lbls the way Prometheus prints a series:
// name{k="v", k2="v2"}, with __name__ in front and values quoted. A value
// longer than maxValue bytes is cut and marked "..." (0: no limit), and
// output past 512 bytes ends in ", ..." when maxValue is set, so that a
// hostile series cannot blow up an error body.
func Format(lbls []proto.Label, maxValue int) string {
	var b strings.Builder
	for _, l := range lbls {
		if l.Name == "__name__" {
			b.WriteString(l.Value)
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
		v := l.Value
		if maxValue > 0 && len(v) > maxValue {
			v = v[:maxValue] + "..."
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(v))
		if maxValue > 0 && b.Len() > 512 {
			b.WriteString(", ...")
			break
		}
	}
	b.WriteByte('}')
	return b.String()
}
