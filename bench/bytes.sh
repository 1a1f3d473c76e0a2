#!/usr/bin/env bash
# bench/bytes.sh: what the log costs on disk. For each setting of
# ingest.compression, a fresh `augur run` (embedded broker, stream, act)
# takes `augur loadgen` at RATE samples/s (20,000 series, 2,000 series per
# request, one sample each, about 12 labels) for DURATION; then the
# embedded broker's data dir and its augur.samples partitions are measured
# and divided by the samples acknowledged; the whole process's CPU time
# (/proc, over the measured run) is divided by them too.
#
# Usage: bench/bytes.sh                   (from the repository root)
# Environment: COMPRESSIONS ("none lz4 zstd"), PROTOCOLS ("v1 v2"),
# RATE (10000), DURATION (30s), PORT (24201), BROKER_PORT (24092).
set -euo pipefail
COMPRESSIONS=${COMPRESSIONS:-none lz4 zstd}
PROTOCOLS=${PROTOCOLS:-v1 v2}
RATE=${RATE:-10000}
DURATION=${DURATION:-30s}
PORT=${PORT:-24201}
BROKER_PORT=${BROKER_PORT:-24092}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/augur-bytes.XXXXXX)
trap 'kill "${PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
go build -o "$WORK/augur" ./cmd/augur
echo "| compression | protocol | samples | request B/sample | data dir B/sample | augur.samples B/sample | augur run CPU µs/sample |"
echo "|---|---|---|---|---|---|---|"
for comp in $COMPRESSIONS; do
	for proto in $PROTOCOLS; do
		d="$WORK/$comp-$proto"
		mkdir -p "$d"
		cat > "$d/augur.yaml" <<EOT
listen: 127.0.0.1:$PORT
data_dir: $d/data
kafka: {embedded_addr: 127.0.0.1:$BROKER_PORT}
ingest: {compression: $comp}
EOT
		"$WORK/augur" run -config "$d/augur.yaml" > "$d/log" 2>&1 &
		PID=$!
		for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
		"$WORK/augur" loadgen -url "http://127.0.0.1:$PORT/api/v1/write" -series 20000 -series-per-request 2000 \
			-rate "$RATE" -duration "$DURATION" -warmup 0s -protocol "$proto" -cpu-pids "$PID" -json 2>/dev/null > "$d/lg.json"
		sleep 2
		kill "$PID"; wait "$PID" || true
		python3 - "$d" "$comp" "$proto" <<'PY'
import json, os, sys
d, comp, proto = sys.argv[1:]
lg = json.load(open(os.path.join(d, "lg.json")))
n = lg["samples_acked"]
def size(root, pred=lambda p: True):
    t = 0
    for dp, _, fs in os.walk(root):
        if pred(dp):
            t += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    return t
k = os.path.join(d, "data", "kafka")
total = size(k)
samples = size(k, lambda p: "augur.samples" in p)
cpu = sum(c["cpu_seconds"] for c in lg.get("cpu") or [])
print(f"| {comp} | {proto} | {n} | {lg['body_bytes_mean']/2000:.1f} | {total/n:.1f} | {samples/n:.1f} | {cpu/n*1e6:.2f} |")
PY
	done
done
