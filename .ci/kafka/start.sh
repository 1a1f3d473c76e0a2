#!/usr/bin/env bash
# Starts a real Apache Kafka broker for the real-broker test pass
# (`make test-kafka`): one KRaft node that is both broker and controller,
# listening on loopback only, data in a fresh temporary directory.
#
# The broker comes from Maven Central (org.apache.kafka:kafka_2.13 and its
# runtime dependencies, copied to .ci/kafka/lib/<version> by Maven and cached
# in ~/.m2), so the only download site is the one CI already reaches.
#
# Prints the bootstrap address on stdout when the broker is ready; every
# other message goes to stderr. .ci/kafka/stop.sh stops it.
#
# Environment (all optional):
#   KAFKA_VERSION   Kafka release to fetch (default 4.1.2; needs Java 17+)
#   KAFKA_PORT      client listener port (default 19092); the controller
#                   listens on KAFKA_PORT+1
#   KAFKA_RUN_DIR   pid file, logs and data (default $TMPDIR/augur-kafka-$KAFKA_PORT)
#   KAFKA_HEAP      JVM heap (default 512m)
#   KAFKA_START_TIMEOUT  seconds to wait for the broker (default 90)
#   KAFKA_EXTRA_PROPERTIES  a file appended to server.properties (a later
#                   key overrides an earlier one), e.g. a SASL_SSL listener
#   KAFKA_SCRAM_USER, KAFKA_SCRAM_PASSWORD  a SCRAM-SHA-512 user created
#                   when the storage is formatted
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

version="${KAFKA_VERSION:-4.1.2}"
port="${KAFKA_PORT:-19092}"
cport=$((port + 1))
run="${KAFKA_RUN_DIR:-${TMPDIR:-/tmp}/augur-kafka-$port}"
heap="${KAFKA_HEAP:-512m}"
timeout="${KAFKA_START_TIMEOUT:-90}"
lib="$here/lib/$version"

log() { echo "kafka: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# answers reports whether something accepts TCP connections on 127.0.0.1:$1.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 1. Java and the jars (.ci/kafka/fetch.sh; exit 2: skip).
lib="$(bash "$here/fetch.sh")"

# 2. A broker left over from an interrupted run of ours is stopped; anything
# else on the ports is an error (the tests would talk to the wrong broker).
if [ -f "$run/broker.pid" ]; then
  KAFKA_PORT="$port" KAFKA_RUN_DIR="$run" bash "$here/stop.sh" >&2 || true
fi
for p in "$port" "$cport"; do
  if answers "$p"; then
    log "127.0.0.1:$p is already in use; set KAFKA_PORT to a free port pair"; exit 1
  fi
done

rm -rf "$run"
mkdir -p "$run/data"

# 3. Configuration: one combined broker+controller node with a static
# quorum of itself. Replication factors and ISR minimums are 1 because there
# is one broker; the internal topics get few partitions so the first group
# and the first transaction do not wait for 50 partitions each. Session and
# transaction clean-up bounds are lowered to what the tests use (the same
# ones they give kfake).
cat >"$run/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$run/data
num.network.threads=2
num.io.threads=4
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=100
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
transaction.remove.expired.transaction.cleanup.interval.ms=60000
# 8 MiB records (ingest's largest block) plus batch overhead.
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
log.cleaner.backoff.ms=1000
EOF
if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
  cat "$KAFKA_EXTRA_PROPERTIES" >>"$run/server.properties"
fi
format_args=()
if [ -n "${KAFKA_SCRAM_USER:-}" ]; then
  format_args=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=${KAFKA_SCRAM_PASSWORD:?}]")
fi

# 4. Format the storage with a fresh cluster id (22 characters of URL-safe
# base64, what `kafka-storage random-uuid` prints). It is passed as
# --cluster-id=ID: an id starting with "-" (one in 64) would otherwise be
# read as an option.
cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
jvm=(java -Xms128m "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$run"
  -cp "$lib/*")
t0="$(now)"
"${jvm[@]}" kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$run/server.properties" "${format_args[@]}" \
  >"$run/format.log" 2>&1 || { cat "$run/format.log" >&2; log "storage format failed"; exit 1; }

# 5. Start it in the background, detached from this shell's job control so
# that only stop.sh (by pid) ends it.
nohup "${jvm[@]}" kafka.Kafka "$run/server.properties" >"$run/stdout.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$run/broker.pid"

# 6. Ready when the client port answers and the broker logged that it
# started (the port accepts connections a little before the broker is
# unfenced and can serve metadata).
deadline=$(( $(date +%s) + timeout ))
until answers "$port" && grep -q "Kafka Server started" "$run/broker.log" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    log "broker exited during start-up; last lines of its logs:"
    tail -n 40 "$run/stdout.log" "$run/broker.log" >&2 2>/dev/null || true
    rm -f "$run/broker.pid"
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "broker not ready after ${timeout}s; last lines of its log:"
    tail -n 40 "$run/broker.log" >&2 2>/dev/null || true
    KAFKA_PORT="$port" KAFKA_RUN_DIR="$run" bash "$here/stop.sh" >&2 || true
    exit 1
  fi
  sleep 0.2
done
log "Kafka $version (KRaft, pid $pid) ready at 127.0.0.1:$port in $(elapsed "$t0")s (format and start); logs in $run"
echo "127.0.0.1:$port"
