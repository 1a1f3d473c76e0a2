// Package detectors is the contract between the stream and the detectors
// of workload groups (detectors/grayfailure, detectors/gpu): the points the
// stream feeds them and the interface they implement. The stream knows
// nothing of what a group's series mean; a group knows nothing of Kafka.
package detectors

import "github.com/augur-ops/augur/proto"

// Point is one accepted sample of a series a group rule selects, as a
// Group sees it.
type Point struct {
	// Labels are the series labels sorted by name; the slice is valid only
	// during Observe (the strings may be kept).
	Labels []proto.Label
	// Ts is the event time, unix milliseconds.
	Ts int64
	// Value is the sample value.
	Value float64
	// Rate is the per-second rate of a counter since its previous sample
	// (reset-corrected); NaN for gauges and for a counter's first sample.
	Rate float64
	// Increase is the counter's increase since its previous sample
	// (reset-corrected); NaN when Rate is.
	Increase float64
}

// Group judges one gray-failure or GPU group: the series a rule selects
// for one tenant and group-by values, which routing brings to one
// partition. The stream feeds it every accepted sample of those series, in
// per-series event-time order, and closes a window (the rule's window) each
// time the partition watermark passes its end. The stream signs what it
// returns and checkpoints its state in the transaction that carries its
// decisions.
type Group interface {
	// Observe feeds one sample and returns the decisions it leads to at
	// once (unsigned; nil for none), e.g. a GPU that fell off the bus.
	Observe(p *Point) []*proto.Decision
	// Close ends the window ending at end (unix ms) and returns the
	// decisions it leads to (unsigned; nil for none).
	Close(end int64) []*proto.Decision
	// AppendBinary appends the detector state for a checkpoint.
	AppendBinary(dst []byte) ([]byte, error)
	// UnmarshalBinary restores state written by AppendBinary.
	UnmarshalBinary(b []byte) error
}

// WindowCeil returns the smallest multiple of w at or after t: a time on
// the grid of windows of length w, t itself when it is on it.
func WindowCeil(t, w int64) int64 {
	if s := WindowStart(t, w); s != t {
		return s + w
	}
	return t
}

// WindowStart returns the start of the window of length w holding t: the
// largest multiple of w at or before t.
func WindowStart(t, w int64) int64 {
	q := t / w
	if t%w != 0 && (t < 0) != (w < 0) {
		q--
	}
	return q * w
}
