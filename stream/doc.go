// Package stream is the stateful middle of augur: a consumer group on
// augur.samples whose members own partitions, keep per-series and
// per-workload state, run the detectors and forecasters, and write signed
// decisions to augur.decisions.
//
// Exactly once: every poll is one Kafka transaction carrying the decisions
// it made, a checkpoint of the state it changed (to the compacted
// augur.state topic, partitioned like augur.samples) and the input offsets.
// A member restores a partition's state from augur.state before processing
// it; an aborted transaction drops the partitions it touched, which reload
// their last committed state. Processing depends only on the records of a
// partition (event time, per-partition watermark), so a replay after a crash
// or rebalance makes exactly the decisions of an uninterrupted run.
//
// Per series (struct-of-arrays tables, one per partition): exact duplicates
// (equal timestamp) and late samples are dropped and counted, counters
// become rates with reset handling, Prometheus stale markers end a series,
// idle series are evicted. Per workload group (a scaling rule and tenant):
// counter increases are summed into event-time windows that close when the
// partition watermark passes them; each closed window feeds the forecaster bank,
// whose upper bound at the rule's horizon sizes the workload.
//
// The models and detectors are augur's own (pure Go, no Kafka): every
// series an anomaly rule watches runs detectors/anomaly; every scaling group
// runs the models/bank forecaster bank and detectors/scaling; gray-failure
// and GPU groups run detectors/grayfailure and detectors/gpu behind the
// GroupDetector interface. Their state is checkpointed with the rest.
package stream
