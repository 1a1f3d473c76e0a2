package remotewrite

import (
	"errors"
	"fmt"
	"math"
)

// HistogramChecker validates native histograms given as protobuf bytes. It
// reuses its buffers; the zero value is ready. Not safe for concurrent use.
type HistogramChecker struct {
	negDeltas, posDeltas []int64
	negCounts, posCounts []float64
	negSpans, posSpans   []span
	custom               []float64
}

type span struct {
	offset int32
	length uint32
}

// ErrBadHistogram wraps every finding of HistogramChecker.Check.
var ErrBadHistogram = errors.New("malformed native histogram")

func badHistogram(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadHistogram, fmt.Sprintf(format, args...))
}

// Check decodes raw (a remote-write Histogram message) and applies the rules
// Prometheus' own histogram validation applies: a known schema, spans that
// match the buckets, no mixing of integer and float counts, non-negative
// bucket counts, and a total count at least the sum of the buckets.
func (c *HistogramChecker) Check(raw []byte) error {
	c.negDeltas, c.posDeltas = c.negDeltas[:0], c.posDeltas[:0]
	c.negCounts, c.posCounts = c.negCounts[:0], c.posCounts[:0]
	c.negSpans, c.posSpans = c.negSpans[:0], c.posSpans[:0]
	c.custom = c.custom[:0]
	var (
		countInt, zeroInt      uint64
		countFloat, zeroFloat  float64
		hasCountInt, hasCountF bool
		hasZeroInt, hasZeroF   bool
		schema                 int32
		resetHint              uint64
		sum, zeroThreshold     float64
	)
	p := buf{b: raw}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return err
		}
		switch field {
		case histCountInt, histZeroCountInt, histResetHint, histTimestamp, histStartTimestamp:
			v, err := p.varintOf(field, wire)
			if err != nil {
				return err
			}
			switch field {
			case histCountInt:
				countInt, hasCountInt, hasCountF = v, true, false
			case histZeroCountInt:
				zeroInt, hasZeroInt, hasZeroF = v, true, false
			case histResetHint:
				resetHint = enum(v)
			}
		case histCountFloat, histSum, histZeroThreshold, histZeroCountFloat:
			v, err := p.fixed64Of(field, wire)
			if err != nil {
				return err
			}
			f := math.Float64frombits(v)
			switch field {
			case histCountFloat:
				countFloat, hasCountF, hasCountInt = f, true, false
			case histSum:
				sum = f
			case histZeroThreshold:
				zeroThreshold = f
			case histZeroCountFloat:
				zeroFloat, hasZeroF, hasZeroInt = f, true, false
			}
		case histSchema: // sint32
			v, err := p.varintOf(field, wire)
			if err != nil {
				return err
			}
			schema = sint32(v)
		case histNegativeSpans, histPositiveSpans:
			b, err := p.bytesOf(field, wire)
			if err != nil {
				return err
			}
			s, err := decodeSpan(b)
			if err != nil {
				return err
			}
			if field == histNegativeSpans {
				c.negSpans = append(c.negSpans, s)
			} else {
				c.posSpans = append(c.posSpans, s)
			}
		case histNegativeDeltas, histPositiveDeltas: // sint64, packed or not
			dst := &c.negDeltas
			if field == histPositiveDeltas {
				dst = &c.posDeltas
			}
			if err := appendPacked(&p, wire, wireVarint, func(q *buf) error {
				v, err := q.varint()
				*dst = append(*dst, int64(v>>1)^-int64(v&1))
				return err
			}); err != nil {
				return err
			}
		case histNegativeCounts, histPositiveCounts, histCustomValues: // double, packed or not
			dst := &c.negCounts
			switch field {
			case histPositiveCounts:
				dst = &c.posCounts
			case histCustomValues:
				dst = &c.custom
			}
			if err := appendPacked(&p, wire, wireI64, func(q *buf) error {
				v, err := q.fixed64()
				*dst = append(*dst, math.Float64frombits(v))
				return err
			}); err != nil {
				return err
			}
		default:
			if err := p.skip(wire); err != nil {
				return err
			}
		}
	}
	if resetHint > 3 {
		return badHistogram("unknown reset hint %d", resetHint)
	}
	custom := schema == -53
	if !custom && (schema < -4 || schema > 8) {
		return badHistogram("schema %d out of range [-4, 8] and not custom buckets (-53)", schema)
	}
	posEnd, err := checkSpans("positive", c.posSpans, custom)
	if err != nil {
		return err
	}
	if _, err := checkSpans("negative", c.negSpans, custom); err != nil {
		return err
	}
	if custom {
		// Prometheus maps a custom bucket's index to its upper bound in
		// custom_values (the last bucket's is the implicit +Inf): spans
		// past the bounds make its bucket iterators index out of range.
		if len(c.negSpans) > 0 || len(c.negDeltas) > 0 || len(c.negCounts) > 0 {
			return badHistogram("custom-bucket histogram has negative buckets")
		}
		for i, v := range c.custom {
			if math.IsNaN(v) || (i > 0 && !(v > c.custom[i-1])) {
				return badHistogram("custom bucket bounds not increasing at %d", i)
			}
		}
		if n := len(c.custom); n > 0 && math.IsInf(c.custom[n-1], 1) {
			return badHistogram("custom bucket bounds end with +Inf, which is implicit")
		}
		if posEnd > int64(len(c.custom))+1 {
			return badHistogram("positive spans reach bucket %d, %d custom bounds cover %d buckets", posEnd-1, len(c.custom), len(c.custom)+1)
		}
		if zeroThreshold != 0 || zeroInt != 0 || zeroFloat != 0 {
			return badHistogram("custom-bucket histogram has a zero bucket (threshold %g, count %d or %g)", zeroThreshold, zeroInt, zeroFloat)
		}
	} else if len(c.custom) > 0 {
		return badHistogram("custom bucket bounds with exponential schema %d", schema)
	}
	if zeroThreshold < 0 || math.IsNaN(zeroThreshold) {
		return badHistogram("zero threshold %g", zeroThreshold)
	}
	// Prometheus (prompb.Histogram.IsFloatHistogram) tells a float
	// histogram by its count alone and reads only the fields of its kind:
	// float buckets under no count_float would be read as no buckets.
	isFloat := hasCountF
	floatFields := hasZeroF || len(c.negCounts) > 0 || len(c.posCounts) > 0
	intFields := hasCountInt || hasZeroInt || len(c.negDeltas) > 0 || len(c.posDeltas) > 0
	switch {
	case floatFields && intFields, isFloat && intFields:
		return badHistogram("mixes integer and float counts")
	case !isFloat && floatFields:
		return badHistogram("float bucket or zero counts without count_float")
	}
	if isFloat {
		n, err := checkFloatBuckets("negative", c.negSpans, c.negCounts)
		if err != nil {
			return err
		}
		pc, err := checkFloatBuckets("positive", c.posSpans, c.posCounts)
		if err != nil {
			return err
		}
		if zeroFloat < 0 {
			return badHistogram("negative zero count %g", zeroFloat)
		}
		if countFloat < 0 {
			return badHistogram("negative count %g", countFloat)
		}
		// Float sums carry rounding: only flag a clear shortfall.
		if total := n + pc + zeroFloat; !math.IsNaN(countFloat) && countFloat < total*(1-1e-9)-1e-9 {
			return badHistogram("count %g below the sum of buckets %g", countFloat, total)
		}
		return nil
	}
	n, err := checkIntBuckets("negative", c.negSpans, c.negDeltas)
	if err != nil {
		return err
	}
	pc, err := checkIntBuckets("positive", c.posSpans, c.posDeltas)
	if err != nil {
		return err
	}
	// As Prometheus validates an integer histogram: the count is the sum
	// of the buckets and the zero bucket, exactly; only NaN observations
	// (whose sum is then NaN) are counted without a bucket.
	total := n + pc + zeroInt
	if total < n || countInt < total {
		return badHistogram("count %d below the sum of buckets %d", countInt, total)
	}
	if countInt != total && !math.IsNaN(sum) {
		return badHistogram("count %d is not the sum of buckets %d (the sum %g is not NaN)", countInt, total, sum)
	}
	return nil
}

// sint32 decodes a sint32 field from its varint v: protobuf keeps the low
// 32 bits, then undoes the zigzag encoding.
func sint32(v uint64) int32 {
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1)
}

func decodeSpan(b []byte) (span, error) {
	var s span
	p := buf{b: b}
	for !p.done() {
		field, wire, err := p.tag()
		if err != nil {
			return s, err
		}
		switch field {
		case spanOffset, spanLength:
			v, err := p.varintOf(field, wire)
			if err != nil {
				return s, err
			}
			if field == spanOffset {
				s.offset = sint32(v)
			} else {
				s.length = uint32(v)
			}
		default:
			if err := p.skip(wire); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// appendPacked reads a repeated scalar field, packed (wireLen) or not
// (elemWire).
func appendPacked(p *buf, wire, elemWire int, one func(*buf) error) error {
	if wire != wireLen {
		if wire != elemWire {
			return malformed("repeated field has wire type %d, want %d or %d", wire, elemWire, wireLen)
		}
		return one(p)
	}
	b, err := p.bytes()
	if err != nil {
		return err
	}
	q := buf{b: b}
	for !q.done() {
		if err := one(&q); err != nil {
			return err
		}
	}
	return nil
}

// checkSpans checks spans as Prometheus does and returns the index after
// their last bucket. Only the first span of exponential buckets may have a
// negative offset (of custom buckets, none), and bucket indexes are int32.
func checkSpans(kind string, spans []span, custom bool) (int64, error) {
	var end int64
	for i, s := range spans {
		switch {
		case (i > 0 || custom) && s.offset < 0:
			return 0, badHistogram("%s span %d has negative offset %d", kind, i, s.offset)
		case i == 0 && s.offset == math.MinInt32:
			return 0, badHistogram("%s span 0 starts at bucket index %d, out of the int32 range", kind, s.offset)
		}
		end += int64(s.offset) + int64(s.length)
		if end-1 > math.MaxInt32 {
			return 0, badHistogram("%s span %d ends at bucket index %d, out of the int32 range", kind, i, end-1)
		}
	}
	return end, nil
}

// spanBuckets returns the number of buckets spans (checked) need.
func spanBuckets(spans []span) uint64 {
	var n uint64
	for _, s := range spans {
		n += uint64(s.length)
	}
	return n
}

func checkIntBuckets(kind string, spans []span, deltas []int64) (uint64, error) {
	n := spanBuckets(spans)
	if n != uint64(len(deltas)) {
		return 0, badHistogram("%s spans need %d buckets, have %d", kind, n, len(deltas))
	}
	var cur int64
	var total uint64
	for i, d := range deltas {
		cur += d
		if cur < 0 {
			return 0, badHistogram("%s bucket %d has negative count %d", kind, i, cur)
		}
		total += uint64(cur)
	}
	return total, nil
}

func checkFloatBuckets(kind string, spans []span, counts []float64) (float64, error) {
	n := spanBuckets(spans)
	if n != uint64(len(counts)) {
		return 0, badHistogram("%s spans need %d buckets, have %d", kind, n, len(counts))
	}
	var total float64
	for i, c := range counts {
		if c < 0 || math.IsNaN(c) {
			return 0, badHistogram("%s bucket %d has count %g", kind, i, c)
		}
		total += c
	}
	return total, nil
}
