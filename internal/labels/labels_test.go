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
