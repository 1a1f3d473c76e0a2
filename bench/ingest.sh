#!/usr/bin/env bash
# bench/ingest.sh: remote-write ingest benchmarks of augur, side by side with
# VictoriaMetrics v1.151.0, printed as a markdown table.
#
#  1. Samples per receiver CPU-second, flat out. Three processes: the
#     receiver (`augur ingest`), the broker (bench/kfakebroker, acknowledging
#     without storing) and the generator (`augur loadgen`). The receiver's
#     CPU time is read from /proc/<pid>/stat (utime + stime) at the start and
#     end of the measured window, so other work on the machine does not
#     count; samples/CPU-s = samples acknowledged (2xx) / receiver CPU-s.
#     VictoriaMetrics (single binary, its own storage) gets the same
#     generator in the same round, and so does the whole `augur run`
#     process (receiver, embedded broker, stream tracking every series,
#     act; its CPU is everything the user runs). Every round runs augur
#     ingest v1 and v2, augur run v1 and v2, and VictoriaMetrics v1; the
#     table shows the median of ROUNDS rounds.
#  2. Request latency at a fixed rate (open loop, RATE samples/s) against
#     `augur run` with its embedded broker (and the stream and act roles it
#     starts), then against `augur ingest` with a storing kfakebroker in
#     another process (the receiver alone).
#  3. Receiver + broker CPU per sample, flat out, v1: `augur ingest` into a
#     storing bench/kfakebroker, then into Apache Kafka (one KRaft node
#     from .ci/kafka, its JVM's CPU counted), each broker in its own
#     process. Skipped with SKIP_KAFKA=1 or when .ci/kafka/fetch.sh cannot
#     get Java or the jars.
#
# Usage: bench/ingest.sh            (from the repository root)
# Environment: ROUNDS (3), DURATION (30s), WARMUP (10s), VM_WARMUP (30s),
# CONCURRENCY (8), RATE (100000), LAT_DURATION (60s), POOL (12000 distinct
# requests of the generator: 24 M samples, about 7 GB of memory; a run
# longer than 24 M samples repeats them), VM_BIN (a
# victoria-metrics binary; default: go install v1.151.0 into a temp GOBIN),
# SKIP_VM=1, SKIP_KAFKA=1, KAFKA_PORT (23192; the controller takes the
# next port), KEEP=1 (keep the work dir with logs and JSON results).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-10s}
VM_WARMUP=${VM_WARMUP:-30s}
CONCURRENCY=${CONCURRENCY:-8}
RATE=${RATE:-100000}
LAT_DURATION=${LAT_DURATION:-60s}
POOL=${POOL:-12000}
# Ports away from the usual ones (9092, 9201, 8428, and the CI broker's
# 19092) and below the ephemeral range (32768-60999), where a client
# connection can hold the port; checked free before use.
BROKER_PORT=${BROKER_PORT:-23092}
INGEST_PORT=${INGEST_PORT:-23201}
VM_PORT=${VM_PORT:-23428}
RUN_PORT=${RUN_PORT:-23301}
RUN_BROKER_PORT=${RUN_BROKER_PORT:-23093}
KAFKA_PORT=${KAFKA_PORT:-23192}

cd "$(dirname "$0")/.."
source bench/lib.sh
bench_init ingest

log "building into $WORK"
go build -o "$WORK/augur" ./cmd/augur
go build -o "$WORK/kfakebroker" ./bench/kfakebroker
if [[ "${SKIP_VM:-0}" != 1 && -z "${VM_BIN:-}" ]]; then
	log "installing victoria-metrics v1.151.0"
	GOBIN="$WORK/gobin" go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0
	VM_BIN="$WORK/gobin/victoria-metrics"
fi

# port_free PORT: fail unless nothing listens on PORT.
port_free() {
	if ss -Hltn "sport = :$1" | grep -q .; then
		echo "port $1 is in use; set the *_PORT variables" >&2
		exit 1
	fi
}

# listening PID PORT: fail unless process PID is alive and listens on PORT.
listening() {
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || { echo "process $1 (port $2) exited" >&2; exit 1; }
		ss -Hltnp "sport = :$2" | grep -q "pid=$1," && return 0
		sleep 0.2
	done
	echo "process $1 does not listen on $2" >&2
	exit 1
}

# wait_http URL: wait until URL answers.
wait_http() {
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "no answer from $1" >&2
	return 1
}

# loadgen OUT ARGS...: run the generator, JSON result to OUT. Every
# target gets the same fleet (20,000 series, 2,000 a request) and a pool of
# POOL distinct requests (2,000 samples each), so that no sample repeats
# within a run: `augur run`'s stream drops a repeated sample as a
# duplicate before its models, and would look cheaper than it is.
loadgen() {
	local out=$1
	shift
	"$WORK/augur" loadgen -json -concurrency "$CONCURRENCY" -series 20000 -pool "$POOL" "$@" >"$out" 2>>"$WORK/loadgen.log"
}

# proc_cpu PID: CPU-seconds (user + system) of PID so far.
proc_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }

# drain PID PORT: wait (at most 2 minutes) until the stream of the augur
# run at PORT has taken every sample its receiver accepted; print the
# CPU-seconds PID used meanwhile.
drain() {
	local c0 got took
	c0=$(proc_cpu "$1")
	for _ in $(seq 1 600); do
		read -r got took < <(curl -fsS "http://127.0.0.1:$2/metrics" |
			awk '/^augur_ingest_samples_total/ {g += $2} /^augur_stream_samples_(processed|dropped)_total/ {t += $2} END {printf "%d %d\n", g, t}')
		((took >= got)) && break
		sleep 0.2
	done
	awk -v a="$c0" -v b="$(proc_cpu "$1")" 'BEGIN {printf "%.2f", b - a}'
}

# measured OUT PID URL PROTO [DRAIN_PORT]: flat out against URL, CPU of
# PID: a warm-up run of WARMUP (its own pool, not counted), then the
# measured run of DURATION. With DRAIN_PORT (augur run), the stream is
# drained after the warm-up, and after the measured run the CPU of its
# drain is added to the run's: work the stream still had queued when the
# generator stopped is part of what those samples cost.
measured() {
	local out=$1 pid=$2 url=$3 proto=$4 port=${5:-} d
	loadgen "$out.warmup" -url "$url" -protocol "$proto" -duration "$WARMUP"
	[[ -n $port ]] && drain "$pid" "$port" >/dev/null
	loadgen "$out" -url "$url" -protocol "$proto" -duration "$DURATION" -warmup 0s -cpu-pids "$pid"
	if [[ -n $port ]]; then
		d=$(drain "$pid" "$port")
		jq --argjson d "$d" '.drain_cpu_seconds = $d | .cpu[0].cpu_seconds += $d
			| .cpu[0].samples_per_cpu_second = .samples_acked / .cpu[0].cpu_seconds' "$out" >"$out.tmp"
		mv "$out.tmp" "$out"
	fi
}

# start_run NAME: a fresh `augur run` (embedded broker, stream, act) on
# RUN_PORT with its data in $WORK/NAME-data; sets RUN_PID.
start_run() {
	cat >"$WORK/$1.yaml" <<EOF
listen: 127.0.0.1:$RUN_PORT
data_dir: $WORK/$1-data
kafka:
  embedded_addr: 127.0.0.1:$RUN_BROKER_PORT
EOF
	"$WORK/augur" run -config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 &
	RUN_PID=$!
	PIDS+=("$RUN_PID")
	listening "$RUN_PID" "$RUN_PORT"
	listening "$RUN_PID" "$RUN_BROKER_PORT"
	wait_http "http://127.0.0.1:$RUN_PORT/readyz"
}

# start_storing_kfake NAME: bench/kfakebroker storing its records, on
# RUN_BROKER_PORT; sets KFAKE_PID.
start_storing_kfake() {
	"$WORK/kfakebroker" -port "$RUN_BROKER_PORT" -blackhole=false >"$WORK/$1.log" 2>&1 &
	KFAKE_PID=$!
	PIDS+=("$KFAKE_PID")
	listening "$KFAKE_PID" "$RUN_BROKER_PORT"
}

# start_ingest NAME BROKERS: augur ingest on RUN_PORT into BROKERS; sets
# INGEST_RUN_PID.
start_ingest() {
	"$WORK/augur" ingest -brokers "$2" -listen "127.0.0.1:$RUN_PORT" -partitions 8 >"$WORK/$1.log" 2>&1 &
	INGEST_RUN_PID=$!
	PIDS+=("$INGEST_RUN_PID")
	listening "$INGEST_RUN_PID" "$RUN_PORT"
	wait_http "http://127.0.0.1:$RUN_PORT/readyz"
}

for p in "$BROKER_PORT" "$INGEST_PORT" "$VM_PORT" "$RUN_PORT" "$RUN_BROKER_PORT"; do port_free "$p"; done
uptime_before=$(uptime)
mkdir -p "$WORK/res"

# --- 1. samples per receiver CPU-second ------------------------------------
if [[ "${SKIP_VM:-0}" != 1 ]]; then
	"$VM_BIN" -storageDataPath "$WORK/vmdata" -httpListenAddr "127.0.0.1:$VM_PORT" \
		-loggerLevel WARN -memory.allowedPercent 20 >"$WORK/vm.log" 2>&1 &
	VM_PID=$!
	PIDS+=("$VM_PID")
	listening "$VM_PID" "$VM_PORT"
	wait_http "http://127.0.0.1:$VM_PORT/health"
	# First contact creates the fleet's series; steady state is what counts.
	log "victoria-metrics warm-up ($VM_WARMUP)"
	loadgen "$WORK/res/vm-warmup.json" -url "http://127.0.0.1:$VM_PORT/api/v1/write" -protocol v1 -duration "$VM_WARMUP"
fi

"$WORK/kfakebroker" -port "$BROKER_PORT" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
listening "$BROKER_PID" "$BROKER_PORT"
"$WORK/augur" ingest -brokers "127.0.0.1:$BROKER_PORT" -listen "127.0.0.1:$INGEST_PORT" -partitions 8 >"$WORK/ingest.log" 2>&1 &
INGEST_PID=$!
PIDS+=("$INGEST_PID")
listening "$INGEST_PID" "$INGEST_PORT"
wait_http "http://127.0.0.1:$INGEST_PORT/readyz"

start_run whole
WHOLE_PID=$RUN_PID

for r in $(seq 1 "$ROUNDS"); do
	for proto in v1 v2; do
		log "round $r: augur $proto flat out ($DURATION)"
		loadgen "$WORK/res/augur-$proto-$r.json" -url "http://127.0.0.1:$INGEST_PORT/api/v1/write" \
			-protocol "$proto" -duration "$DURATION" -warmup "$WARMUP" -cpu-pids "$INGEST_PID,$BROKER_PID"
		log "round $r: augur run (whole process) $proto flat out ($DURATION, then the stream drained)"
		measured "$WORK/res/whole-$proto-$r.json" "$WHOLE_PID" "http://127.0.0.1:$RUN_PORT/api/v1/write" "$proto" "$RUN_PORT"
	done
	if [[ "${SKIP_VM:-0}" != 1 ]]; then
		log "round $r: victoria-metrics v1 flat out ($DURATION)"
		measured "$WORK/res/vm-v1-$r.json" "$VM_PID" "http://127.0.0.1:$VM_PORT/api/v1/write" v1
	fi
done
uptime_cpu=$(uptime)
kill "$INGEST_PID" "$BROKER_PID" "$WHOLE_PID" 2>/dev/null || true
wait "$WHOLE_PID" 2>/dev/null || true
if [[ "${SKIP_VM:-0}" != 1 ]]; then
	vm_rows=$(curl -fsS "http://127.0.0.1:$VM_PORT/metrics" | awk '/^vm_rows_inserted_total\{type="promremotewrite"\}/ {print $2}')
	kill "$VM_PID" 2>/dev/null || true
fi
sleep 1

# --- 2. latency at a fixed rate, augur run with its embedded broker ---------
start_run run
for proto in v1 v2; do
	log "augur run: $proto at $RATE samples/s ($LAT_DURATION)"
	loadgen "$WORK/res/lat-$proto.json" -url "http://127.0.0.1:$RUN_PORT/api/v1/write" \
		-protocol "$proto" -rate "$RATE" -duration "$LAT_DURATION" -warmup 5s -cpu-pids "$RUN_PID"
done
kill "$RUN_PID" 2>/dev/null || true
sleep 1

# --- 2b. the same fixed rate against the receiver alone ----------------------
# augur ingest with a storing kfake broker in another process: what the
# receiver adds, without the stream and act roles of augur run beside it.
start_storing_kfake broker2
start_ingest ingest2 "127.0.0.1:$RUN_BROKER_PORT"
for proto in v1 v2; do
	log "augur ingest + kfakebroker: $proto at $RATE samples/s ($LAT_DURATION)"
	loadgen "$WORK/res/lat-ingest-$proto.json" -url "http://127.0.0.1:$RUN_PORT/api/v1/write" \
		-protocol "$proto" -rate "$RATE" -duration "$LAT_DURATION" -warmup 5s -cpu-pids "$INGEST_RUN_PID"
done
uptime_lat=$(uptime)
kill "$INGEST_RUN_PID" "$KFAKE_PID" 2>/dev/null || true
wait "$INGEST_RUN_PID" "$KFAKE_PID" 2>/dev/null || true

# --- 3. receiver + broker: kfakebroker (storing) and Apache Kafka -----------
if [[ "${SKIP_KAFKA:-0}" != 1 ]]; then
	start_storing_kfake broker3
	start_ingest ingest3 "127.0.0.1:$RUN_BROKER_PORT"
	log "augur ingest + kfakebroker (storing): v1 flat out ($DURATION)"
	loadgen "$WORK/res/pair-kfake.json" -url "http://127.0.0.1:$RUN_PORT/api/v1/write" \
		-protocol v1 -duration "$DURATION" -warmup "$WARMUP" -cpu-pids "$INGEST_RUN_PID,$KFAKE_PID"
	kill "$INGEST_RUN_PID" "$KFAKE_PID" 2>/dev/null || true
	wait "$INGEST_RUN_PID" "$KFAKE_PID" 2>/dev/null || true
	port_free "$KAFKA_PORT"
	port_free $((KAFKA_PORT + 1))
	if kbrokers=$(KAFKA_PORT=$KAFKA_PORT KAFKA_RUN_DIR="$WORK/kafka" bash .ci/kafka/start.sh 2>>"$WORK/kafka-start.log"); then
		on_exit() { KAFKA_PORT=$KAFKA_PORT KAFKA_RUN_DIR="$WORK/kafka" bash .ci/kafka/stop.sh 2>/dev/null || true; }
		KAFKA_PID=$(cat "$WORK/kafka/broker.pid")
		start_ingest ingest4 "$kbrokers"
		log "augur ingest + Apache Kafka: v1 flat out ($DURATION)"
		loadgen "$WORK/res/pair-kafka.json" -url "http://127.0.0.1:$RUN_PORT/api/v1/write" \
			-protocol v1 -duration "$DURATION" -warmup "$WARMUP" -cpu-pids "$INGEST_RUN_PID,$KAFKA_PID"
		kill "$INGEST_RUN_PID" 2>/dev/null || true
		KAFKA_PORT=$KAFKA_PORT KAFKA_RUN_DIR="$WORK/kafka" bash .ci/kafka/stop.sh 2>/dev/null || true
	else
		log "Apache Kafka not started (see $WORK/kafka-start.log): its row is skipped"
	fi
fi
uptime_pair=$(uptime)

# --- table -------------------------------------------------------------------
# med FILES... : median of .cpu[0].samples_per_cpu_second (and the run it came from).
med() {
	jq -s 'sort_by(.cpu[0].samples_per_cpu_second) | .[(length/2|floor)]' "$@"
}
row() {
	local name=$1 proto=$2
	shift 2
	local m
	m=$(med "$@")
	local all
	all=$(jq -s -r 'map(.cpu[0].samples_per_cpu_second|floor|tostring)|join(", ")' "$@")
	jq -r --arg n "$name" --arg p "$proto" --arg all "$all" \
		'"| \($n) | \($p) | \(.cpu[0].samples_per_cpu_second|floor) | \($all) | \(.samples_acked) | \(.cpu[0].cpu_seconds*100|round/100) | \(if (.cpu|length)>1 then (.cpu[1].cpu_seconds*100|round/100|tostring) else "-" end) | \(.acked_per_second|floor) | \(.p50_ms*100|round/100) / \(.p99_ms*100|round/100) | \(.status|tostring) |"' <<<"$m"
}

echo
echo "load before: $uptime_before"
echo "load after the CPU runs: $uptime_cpu"
echo "load after the latency runs: $uptime_lat"
echo "load after the broker runs: $uptime_pair"
echo
echo "Samples per receiver CPU-second, flat out, $CONCURRENCY requests in flight, 2,000 series x 1 sample per request, $DURATION per run after $WARMUP warm-up, median of $ROUNDS rounds:"
echo
echo "| receiver | protocol | samples / receiver CPU-s (median) | all runs | samples acked (median run) | receiver CPU-s | broker CPU-s | achieved samples/s | p50 / p99 ms | status |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row "augur ingest (+ kfakebroker process)" v1 "$WORK"/res/augur-v1-*.json
row "augur ingest (+ kfakebroker process)" v2 "$WORK"/res/augur-v2-*.json
row "augur run (whole process)" v1 "$WORK"/res/whole-v1-*.json
row "augur run (whole process)" v2 "$WORK"/res/whole-v2-*.json
if [[ "${SKIP_VM:-0}" != 1 ]]; then
	row "victoria-metrics v1.151.0 (own storage)" v1 "$WORK"/res/vm-v1-*.json
	a1=$(med "$WORK"/res/augur-v1-*.json | jq '.cpu[0].samples_per_cpu_second')
	a2=$(med "$WORK"/res/augur-v2-*.json | jq '.cpu[0].samples_per_cpu_second')
	w1=$(med "$WORK"/res/whole-v1-*.json | jq '.cpu[0].samples_per_cpu_second')
	w2=$(med "$WORK"/res/whole-v2-*.json | jq '.cpu[0].samples_per_cpu_second')
	vm=$(med "$WORK"/res/vm-v1-*.json | jq '.cpu[0].samples_per_cpu_second')
	echo
	echo "ratio augur/VictoriaMetrics (samples per receiver CPU-second): v1 $(jq -n "$a1/$vm*100|round/100")x, v2 $(jq -n "$a2/$vm*100|round/100")x (VictoriaMetrics v1)"
	echo "ratio augur run (whole process)/VictoriaMetrics: v1 $(jq -n "$w1/$vm*100|round/100")x, v2 $(jq -n "$w2/$vm*100|round/100")x"
	echo "victoria-metrics rows inserted over the whole run (its own counter): $vm_rows"
fi
echo "augur run: CPU-seconds of the stream's drain after each measured run, added to it: $(jq -s -r 'map("\(.protocol) \(.drain_cpu_seconds)") | join(", ")' "$WORK"/res/whole-*.json)"
echo
echo "Latency at a fixed $RATE samples/s (open loop, from the time each request was due), $LAT_DURATION per run:"
echo
echo "| server | protocol | requests | status | late | achieved samples/s | p50 ms | p90 ms | p99 ms | max ms | server CPU-s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for f in run:lat ingest:lat-ingest; do
	name="augur run (embedded broker, stream and act)"
	[[ ${f%%:*} == ingest ]] && name="augur ingest + kfakebroker process (storing)"
	for proto in v1 v2; do
		jq -r --arg n "$name" --arg p "$proto" '"| \($n) | \($p) | \(.requests) | \(.status|tostring) | \(.late) | \(.acked_per_second|floor) | \(.p50_ms*100|round/100) | \(.p90_ms*100|round/100) | \(.p99_ms*100|round/100) | \(.max_ms*100|round/100) | \(.cpu[0].cpu_seconds*100|round/100) |"' "$WORK/res/${f#*:}-$proto.json"
	done
done
if [[ -f "$WORK/res/pair-kfake.json" ]]; then
	echo
	echo "Receiver + broker, flat out, v1, $DURATION after $WARMUP warm-up (each broker its own process; Apache Kafka: one KRaft node, JVM included):"
	echo
	echo "| broker | samples acked | receiver CPU-s | broker CPU-s | receiver + broker CPU µs / sample | samples / (receiver + broker) CPU-s | achieved samples/s | p50 / p99 ms |"
	echo "|---|---|---|---|---|---|---|---|"
	for f in kfake kafka; do
		[[ -f "$WORK/res/pair-$f.json" ]] || continue
		name="bench/kfakebroker (storing, in memory)"
		[[ $f == kafka ]] && name="Apache Kafka (.ci/kafka, one node)"
		jq -r --arg n "$name" '(.cpu[0].cpu_seconds + .cpu[1].cpu_seconds) as $c | "| \($n) | \(.samples_acked) | \(.cpu[0].cpu_seconds*100|round/100) | \(.cpu[1].cpu_seconds*100|round/100) | \($c/.samples_acked*1e8|round/100) | \(.samples_acked/$c|floor) | \(.acked_per_second|floor) | \(.p50_ms*100|round/100) / \(.p99_ms*100|round/100) |"' "$WORK/res/pair-$f.json"
	done
fi
