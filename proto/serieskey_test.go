package proto

import (
	"slices"
	"testing"
)

func TestSeriesKeyRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		tenant string
		lbls   []Label
	}{
		{"", nil},
		{"team-a", []Label{{"__name__", "up"}}},
		{"", []Label{{"__name__", "http_requests_total"}, {"job", ""}, {"zone", "use1-az1"}}},
	} {
		key := string(AppendSeriesKey(nil, tt.tenant, tt.lbls))
		tenant, lbls, ok := ParseSeriesKey(key, nil)
		if !ok || tenant != tt.tenant || !slices.Equal(lbls, tt.lbls) {
			t.Errorf("ParseSeriesKey(%q) = %q, %v, %v; want %q, %v", key, tenant, lbls, ok, tt.tenant, tt.lbls)
		}
	}
	if _, _, ok := ParseSeriesKey("t\xffno-pair-separator", nil); ok {
		t.Error("a label without a name/value separator parsed")
	}
}

// FuzzParseSeriesKey: keys come back from augur.state; whatever the bytes,
// parsing does not panic, and a key that parses is rebuilt byte for byte.
func FuzzParseSeriesKey(f *testing.F) {
	f.Add("")
	f.Add("t\xff__name__\xfeup\xffjob\xfenode")
	f.Add("\xff\xfe\xff")
	f.Fuzz(func(t *testing.T, key string) {
		tenant, lbls, ok := ParseSeriesKey(key, nil)
		if !ok {
			return
		}
		if got := string(AppendSeriesKey(nil, tenant, lbls)); got != key {
			t.Fatalf("key %q parsed and rebuilt as %q", key, got)
		}
	})
}
