package labels

import (
	"strings"
	"testing"

	"github.com/augur-ops/augur/proto"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		lbls []proto.Label
		max  int
		want string
	}{
		{[]proto.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "api"}, {Name: "zone", Value: "use1-az1"}}, 0, `up{job="api", zone="use1-az1"}`},
		{[]proto.Label{{Name: "job", Value: "no-name"}}, 0, `{job="no-name"}`},
		{[]proto.Label{{Name: "__name__", Value: "x"}, {Name: "q", Value: "a\"b"}}, 0, `x{q="a\"b"}`},
		{[]proto.Label{{Name: "__name__", Value: "x"}, {Name: "v", Value: "abcdef"}}, 3, `x{v="abc..."}`},
	} {
		if got := Format(c.lbls, c.max); got != c.want {
			t.Errorf("Format(%v, %d) = %s, want %s", c.lbls, c.max, got, c.want)
		}
	}
	var many []proto.Label
	for range 100 {
		many = append(many, proto.Label{Name: "label", Value: strings.Repeat("v", 64)})
	}
	if got := Format(many, 64); len(got) > 700 || !strings.HasSuffix(got, ", ...}") {
		t.Errorf("long series not cut: %d bytes", len(got))
	}
}

// TestFormatCutsNames: with maxValue set, the metric name (the value of
// __name__) and label names are cut too, so that one long name cannot
// blow up an error body (ingest names each invalid series in its 400,
// including one refused for a name over the length limit).
func TestFormatCutsNames(t *testing.T) {
	long := strings.Repeat("n", 100_000)
	for _, lbls := range [][]proto.Label{
		{{Name: "__name__", Value: long}, {Name: "job", Value: "api"}},
		{{Name: "__name__", Value: "up"}, {Name: long, Value: "v"}},
	} {
		if got := Format(lbls, 64); len(got) > 700 {
			t.Errorf("Format of a series with a 100,000-byte name, maxValue 64: %d bytes, want at most 700", len(got))
		}
	}
}
