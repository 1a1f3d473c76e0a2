# Sourced by the bench scripts, from the repository root: a work dir, the
# processes to stop when the script exits, and log.

# bench_init NAME: WORK=/tmp/augur-NAME-bench.XXXXXX and PIDS=(); on exit,
# cleanup stops PIDS, runs on_exit when the script defines it, and removes
# WORK unless KEEP=1.
bench_init() {
	WORK=$(mktemp -d "/tmp/augur-$1-bench.XXXXXX")
	PIDS=()
	trap cleanup EXIT
}

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if declare -F on_exit >/dev/null; then on_exit; fi
	wait 2>/dev/null || true
	if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else echo "work dir: $WORK" >&2; fi
}

log() { echo "# $*" >&2; }
