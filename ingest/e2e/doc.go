// Package e2e holds the end-to-end tests of the remote-write receiver with a
// real Prometheus as the sender: Prometheus scrapes itself and a small
// deterministic exporter, remote-writes to an ingest.Receiver in front of
// Kafka (kfake, or the brokers in AUGUR_KAFKA_BROKERS), and the tests compare
// every raw sample in Prometheus' TSDB with the samples decoded from the
// topic, also across a window in which the broker refuses produces.
//
// The package has no non-test code besides this comment; run it with
// `go test ./ingest/e2e -v`. See README.md.
package e2e
