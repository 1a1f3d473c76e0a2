#!/usr/bin/env bash
# Stream role alone against Kafka's own consumer, on one Apache Kafka broker.
#
# 1. One KRaft broker (.ci/kafka/start.sh). `augur ingest` writes `augur
#    loadgen`'s fleet into augur.samples (20,000 series, 2,000 a request,
#    zstd) for DURATION, with a request pool large enough that every sample
#    is new: a repeated request would be dropped as duplicates by the
#    stream after its lookup, and cost it less than a real sample.
# 2. Alternately, ROUNDS times each, from the start of the topic:
#    - Kafka's consumer (org.apache.kafka.tools.ConsumerPerformance from
#      kafka-tools, same version as the broker, fetched from Maven Central):
#      fetch and decompress every batch, nothing else. Its JVM's CPU
#      (user + sys) is counted, and a run that reads one message measures
#      the JVM's start-up, reported apart.
#    - `augur stream` with the starter rules of `augur run`, a fresh group
#      and state topic each time, until its processed + dropped samples
#      reach what was written; CPU of the process from /proc.
# Prints one markdown row per run and the samples per CPU-second of each.
#
# Usage: bench/stream.sh   (from the repository root; Java 17 and Maven)
# Environment: ROUNDS (2), DURATION (30s), KAFKA_PORT (23192),
# INGEST_PORT (23201), METRICS_PORT (23202), KEEP=1 keeps the work dir.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-30s}
KAFKA_PORT=${KAFKA_PORT:-23192}
INGEST_PORT=${INGEST_PORT:-23201}
METRICS_PORT=${METRICS_PORT:-23202}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.2}

cd "$(dirname "$0")/.."
source bench/lib.sh
bench_init stream
on_exit() { KAFKA_PORT=$KAFKA_PORT KAFKA_RUN_DIR="$WORK/kafka" bash .ci/kafka/stop.sh 2>/dev/null || true; }

log "building into $WORK"
go build -o "$WORK/augur" ./cmd/augur
lib=$(KAFKA_VERSION=$KAFKA_VERSION bash .ci/kafka/fetch.sh)
mvn -B -q dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$KAFKA_VERSION" -DoutputDirectory="$WORK/tools" >&2
cp="$lib/*:$WORK/tools/*"
od -An -N32 -tx1 /dev/urandom | tr -d " \n" >"$WORK/key" # 64 hex digits, as augur run generates

brokers=$(KAFKA_PORT=$KAFKA_PORT KAFKA_RUN_DIR="$WORK/kafka" bash .ci/kafka/start.sh 2>"$WORK/kafka-start.log")
"$WORK/augur" ingest -brokers "$brokers" -listen "127.0.0.1:$INGEST_PORT" -partitions 8 >"$WORK/ingest.log" 2>&1 &
ingest=$!
PIDS+=("$ingest")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$INGEST_PORT/readyz" 2>/dev/null && break; sleep 0.2; done
# 8,000 distinct requests of 2,000 series: 16 M samples before one repeats.
log "writing for $DURATION"
"$WORK/augur" loadgen -json -concurrency 4 -url "http://127.0.0.1:$INGEST_PORT/api/v1/write" -protocol v1 \
	-series 20000 -pool 8000 -duration "$DURATION" >"$WORK/loadgen.json" 2>"$WORK/loadgen.log"
kill "$ingest"
wait "$ingest" 2>/dev/null || true
total=$(jq .samples_acked "$WORK/loadgen.json")
requests=$(jq '[.status[]] | add' "$WORK/loadgen.json")
repeated=$((requests > 8000 ? (requests - 8000) * 2000 : 0))
log "$total samples in augur.samples ($repeated of them repeats of earlier requests)"

# jvm_cpu OUT MESSAGES: ConsumerPerformance from the start; prints CPU seconds.
jvm_cpu() {
	local out=$1 n=$2
	( TIMEFORMAT='%U %S'; time java -Xmx512m -cp "$cp" org.apache.kafka.tools.ConsumerPerformance \
		--bootstrap-server "$brokers" --topic augur.samples --messages "$n" --timeout 5000 \
		--group "perf-$RANDOM$RANDOM" >"$out" 2>&1 ) 2>"$out.time"
	awk '{printf "%.2f", $1 + $2}' "$out.time"
}

# stream_cpu: augur stream from the start until processed + dropped reach
# total; prints "CPU-seconds processed dropped".
stream_cpu() {
	local tag=s$RANDOM$RANDOM n=0 d=0
	"$WORK/augur" stream -brokers "$brokers" -rules cmd/augur/starter_rules.yaml -decision-key-file "$WORK/key" \
		-metrics-addr "127.0.0.1:$METRICS_PORT" -group "bench-$tag" -state-topic "augur.state.$tag" \
		-decisions-topic "augur.decisions.$tag" -forecasts-topic - >"$WORK/stream-$tag.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 1 1200); do
		sleep 0.5
		kill -0 "$pid" 2>/dev/null || { echo "augur stream exited: $WORK/stream-$tag.log" >&2; exit 1; }
		read -r n d < <(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
			awk '/^augur_stream_samples_processed_total/ {p+=$2} /^augur_stream_samples_dropped_total/ {d+=$2} END {printf "%d %d\n", p, d}') || true
		((n + d >= total)) && break
	done
	local cpu
	cpu=$(awk '{printf "%.2f", ($14+$15)/100}' "/proc/$pid/stat")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	echo "$cpu $n $d"
}

before=$(uptime)
startup=$(jvm_cpu "$WORK/perf-one.out" 1)
echo "| run | reader | CPU-s | samples | samples per CPU-s |"
echo "|---|---|---|---|---|"
for r in $(seq 1 "$ROUNDS"); do
	c=$(jvm_cpu "$WORK/perf-$r.out" 1000000000)
	echo "| $r | Kafka ConsumerPerformance (JVM) | $c | $total | $(awk -v t="$total" -v c="$c" 'BEGIN {printf "%d", t / c}') |"
	read -r c n d < <(stream_cpu)
	echo "| $r | augur stream (starter rules) | $c | $n processed, $d dropped | $(awk -v t="$((n + d))" -v c="$c" 'BEGIN {printf "%d", t / c}') |"
done
echo
echo "JVM start-up (ConsumerPerformance reading one message): $startup CPU-s."
echo "load average: before: ${before##*load average: }; after: $(uptime | sed 's/.*load average: //')"
