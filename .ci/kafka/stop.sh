#!/usr/bin/env bash
# Stops the broker .ci/kafka/start.sh started (by the pid it recorded) and
# removes its data. The logs stay in the run directory until the next start.
# Same KAFKA_PORT / KAFKA_RUN_DIR as start.sh. Safe to run when nothing runs.
set -euo pipefail

port="${KAFKA_PORT:-19092}"
run="${KAFKA_RUN_DIR:-${TMPDIR:-/tmp}/augur-kafka-$port}"
pidfile="$run/broker.pid"

[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
# Only a process that is still our broker is signalled: after a reboot or a
# crash the pid may belong to something else.
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
   tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $run/server.properties"; then
  kill -TERM "$pid" 2>/dev/null || true
  # A controlled shutdown of one node takes a few seconds; then it is killed.
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka: broker $pid did not stop in 20s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  echo "kafka: stopped broker $pid" >&2
fi
rm -f "$pidfile"
rm -rf "$run/data"
