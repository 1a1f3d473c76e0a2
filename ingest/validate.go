package ingest

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/augur-ops/augur/proto"
)

// Reasons a series or sample is discarded: the closed set of values of the
// reason label of augur_ingest_discarded_samples_total.
const (
	reasonMissingMetricName  = "missing_metric_name"
	reasonInvalidMetricName  = "invalid_metric_name"
	reasonInvalidLabelName   = "invalid_label_name"
	reasonInvalidLabelValue  = "invalid_label_value"
	reasonDuplicateLabelName = "duplicate_label_name"
	reasonLabelsNotSorted    = "labels_not_sorted"
	reasonTooManyLabels      = "too_many_labels"
	reasonLabelNameTooLong   = "label_name_too_long"
	reasonLabelValueTooLong  = "label_value_too_long"
	reasonTooFarInFuture     = "too_far_in_future"
	reasonSymbolOutOfRange   = "symbol_out_of_range"
	reasonMalformedHistogram = "malformed_histogram"
	reasonSeriesTooLarge     = "series_too_large"
)

var discardReasons = []string{reasonMissingMetricName, reasonInvalidMetricName, reasonInvalidLabelName,
	reasonInvalidLabelValue, reasonDuplicateLabelName, reasonLabelsNotSorted, reasonTooManyLabels,
	reasonLabelNameTooLong, reasonLabelValueTooLong, reasonTooFarInFuture, reasonSymbolOutOfRange,
	reasonMalformedHistogram, reasonSeriesTooLarge}

// checkLabels applies the label rules of lim to lbls, which must already be
// sorted when sorted is true (2.0 senders should sort; 1.0 senders must).
// It returns the broken rule and a detail naming the offending label, or ""
// when the labels are valid.
//
// utf8Known skips the UTF-8 checks of names and values: the decoder did them.
func checkLabels(lim *Limits, lbls []proto.Label, requireSorted, utf8Known bool) (reason, detail string) {
	if len(lbls) > lim.MaxLabelsPerSeries {
		return reasonTooManyLabels, fmt.Sprintf("%d labels, limit %d", len(lbls), lim.MaxLabelsPerSeries)
	}
	legacy := lim.NameValidation == "legacy"
	hasName := false
	for i := range lbls {
		l := &lbls[i]
		if l.Name == "" {
			return reasonInvalidLabelName, "empty label name"
		}
		if i > 0 {
			switch prev := lbls[i-1].Name; {
			case prev == l.Name:
				return reasonDuplicateLabelName, fmt.Sprintf("label %q appears twice", l.Name)
			case prev > l.Name && requireSorted:
				return reasonLabelsNotSorted, fmt.Sprintf("label %q after %q", l.Name, prev)
			}
		}
		if len(l.Name) > lim.MaxLabelNameLength {
			return reasonLabelNameTooLong, fmt.Sprintf("label name %.40q... is %d bytes, limit %d", l.Name, len(l.Name), lim.MaxLabelNameLength)
		}
		if len(l.Value) > lim.MaxLabelValueLength {
			return reasonLabelValueTooLong, fmt.Sprintf("value of label %q is %d bytes, limit %d", l.Name, len(l.Value), lim.MaxLabelValueLength)
		}
		if l.Name == "__name__" {
			hasName = true
			if l.Value == "" {
				return reasonMissingMetricName, "empty metric name"
			}
			if (legacy || !utf8Known) && !validName(l.Value, legacy, true) {
				return reasonInvalidMetricName, fmt.Sprintf("metric name %q", l.Value)
			}
			continue
		}
		if (legacy || !utf8Known) && !validName(l.Name, legacy, false) {
			return reasonInvalidLabelName, fmt.Sprintf("label name %q", l.Name)
		}
		if !utf8Known && !utf8.ValidString(l.Value) {
			return reasonInvalidLabelValue, fmt.Sprintf("value of label %q is not valid UTF-8", l.Name)
		}
	}
	if !hasName {
		return reasonMissingMetricName, "no __name__ label"
	}
	return "", ""
}

// validName reports whether s is a valid metric (metric true) or label name.
func validName(s string, legacy, metric bool) bool {
	if !legacy {
		return utf8.ValidString(s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' ||
			(metric && c == ':') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// sortedLabels reports whether lbls are sorted by name.
func sortedLabels(lbls []proto.Label) bool {
	for i := 1; i < len(lbls); i++ {
		if lbls[i-1].Name > lbls[i].Name {
			return false
		}
	}
	return true
}

// validTenant applies the usual tenant-ID rules (as Cortex and Mimir do):
// 1 to 150 bytes of letters, digits and !-_.*'(), and not "." or "..".
func validTenant(t string) bool {
	if len(t) == 0 || len(t) > 150 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!-_.*'()", c) >= 0:
		default:
			return false
		}
	}
	return true
}
