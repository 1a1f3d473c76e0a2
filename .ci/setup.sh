#!/usr/bin/env bash
# Installs what the tests need on a fresh machine; `make test` runs it, so
# the README's test command is the whole set-up. Safe to run again: every
# step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# The real Prometheus is the remote-write sender of the end-to-end tests
# (ingest/e2e). Debian's package; needs root, as CI is.
if ! command -v prometheus >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "setup: prometheus is not installed and this is not root: the end-to-end tests will skip (install Debian's prometheus package)" >&2
  fi
fi
# Debian's package may start a service on install; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
pkill -x prometheus >/dev/null 2>&1 || true

# Debian's Chromium opens the console in cmd/augur TestConsoleInChromium.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "setup: chromium is not installed and this is not root: the console test will skip (install Debian's chromium package)" >&2
  fi
fi

# pyarrow and librdkafka (confluent-kafka) read a samples block in
# proto/pyarrow_test.go: a reader that is not augur's own code.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import pyarrow, confluent_kafka' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check pyarrow confluent-kafka
fi

# Real kube-apiserver, etcd, controller-manager, scheduler and kwok for the
# actuator tests (actuators/kube finds them in .ci/kube/bin).
bash .ci/kube/build.sh
