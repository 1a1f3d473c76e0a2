// Package models holds augur's incremental forecasters and what they share:
// the point-and-interval Forecast type and the Tracker that turns a
// forecaster's own past errors into calibrated 80% intervals and online
// accuracy scores.
//
// Every forecaster lives in a subpackage (models/seasonal, models/holtwinters,
// models/fourier, models/drift) and models/bank combines them per workload
// series. All of
// them do constant work per sample, allocate nothing after construction and
// keep their state in flat value types (float64 fields and fixed-length
// slices, no pointers between objects), so a partition shard can keep many
// series side by side and checkpoint them with AppendBinary.
//
// Time is counted in steps: the caller (usually the bank) maps event time to
// a step index and feeds exactly one value per step.
package models

// MaxSlots bounds the number of stored values per season, so a weekly season
// at a 1-minute step (10080 steps) costs 2016 slots of 5 minutes, not 10080
// values.
const MaxSlots = 2016

// MaxPeriod bounds a season's length in steps (a week at 1-second steps);
// decoders reject longer ones so a hostile checkpoint cannot make seeding
// loop for ever.
const MaxPeriod = 7 * 24 * 3600

// SlotLayout returns how a season of period steps is stored: slots values of
// width steps each. slots*width ≥ period, and equals it when period divides
// evenly (the usual case: daily or weekly at 1- or 5-minute steps).
func SlotLayout(period int) (slots, width int) {
	if period < 1 {
		period = 1
	}
	width = (period + MaxSlots - 1) / MaxSlots
	slots = (period + width - 1) / width
	return slots, width
}

// AddMod returns (r + k) mod m for r in [0, m) and k ≥ 0, dividing only
// when k reaches past the next wrap.
func AddMod(r, k, m int64) int64 {
	r += k
	if r >= m {
		r -= m
		if r >= m {
			r %= m
		}
	}
	return r
}

// FloorMod returns q mod m in [0, m), for m > 0.
func FloorMod(q, m int64) int64 {
	r := q % m
	if r < 0 {
		r += m
	}
	return r
}
