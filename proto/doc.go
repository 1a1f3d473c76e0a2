// Package proto holds the wire schemas augur writes to Kafka: the samples
// block on augur.samples (an Arrow IPC stream, see block.go), and the
// Decision and Action messages on augur.decisions and augur.actions
// (protobuf, written in its canonical JSON mapping, see augur.proto).
//
// Other teams read these topics; changing anything here is a wire change.
package proto
