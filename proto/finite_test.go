package proto

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestFiniteDecision sets every double of a decision and its evidence
// (found by reflection, so a field added later is covered) to NaN or an
// infinity: after FiniteDecision its JSON carries none of them.
func TestFiniteDecision(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		d := &Decision{Id: "d", Kind: KindAlert, Evidence: &Evidence{}}
		n := poison(d.ProtoReflect(), bad) + poison(d.Evidence.ProtoReflect(), bad)
		if n < 13 {
			t.Fatalf("set %d doubles, want the decision's confidence and the evidence's 12 at least", n)
		}
		before, err := MarshalJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		FiniteDecision(d)
		after, err := MarshalJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"NaN", "Infinity"} {
			if strings.Contains(string(after), s) {
				t.Errorf("%v: %s after FiniteDecision (before: %s)", bad, after, before)
			}
		}
	}
}

// poison sets every double field of m (and every value of its maps from
// string to double) to v and returns how many it set.
func poison(m protoreflect.Message, v float64) int {
	n := 0
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.IsMap() && f.MapValue().Kind() == protoreflect.DoubleKind:
			mp := m.Mutable(f).Map()
			mp.Set(protoreflect.ValueOfString("x").MapKey(), protoreflect.ValueOfFloat64(v))
			n++
		case !f.IsList() && !f.IsMap() && f.Kind() == protoreflect.DoubleKind:
			m.Set(f, protoreflect.ValueOfFloat64(v))
			n++
		}
	}
	return n
}
