package proto

import "strings"

// Separators of series keys. Label names and values are UTF-8, in which
// 0xff and 0xfe never occur, so a key is unambiguous.
const (
	KeySep     = 0xff // before each label, and between a group key's fields
	KeyPairSep = 0xfe // between a label's name and value
)

// AppendSeriesKey appends the key of a series to dst: tenant, then
// (KeySep name KeyPairSep value) for each label, in the order given (sorted
// by name in a samples block). The stream indexes its series by it, and
// internal/rules keys the Kafka records of series no rule groups by it.
func AppendSeriesKey(dst []byte, tenant string, lbls []Label) []byte {
	dst = append(dst, tenant...)
	for i := range lbls {
		dst = append(dst, KeySep)
		dst = append(dst, lbls[i].Name...)
		dst = append(dst, KeyPairSep)
		dst = append(dst, lbls[i].Value...)
	}
	return dst
}

// ParseSeriesKey splits a key made by AppendSeriesKey into its tenant and
// labels (appended to dst); the strings alias key. ok is false when a
// label has no KeyPairSep.
func ParseSeriesKey(key string, dst []Label) (tenant string, lbls []Label, ok bool) {
	const sep, pairSep = "\xff", "\xfe" // KeySep, KeyPairSep
	tenant, rest, more := strings.Cut(key, sep)
	for more {
		var pair string
		pair, rest, more = strings.Cut(rest, sep)
		n, v, ok := strings.Cut(pair, pairSep)
		if !ok {
			return "", dst, false
		}
		dst = append(dst, Label{Name: n, Value: v})
	}
	return tenant, dst, true
}
