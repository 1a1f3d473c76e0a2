#!/usr/bin/env bash
# Fetches Apache Kafka's jars from Maven Central into .ci/kafka/lib/<version>
# (cached in ~/.m2) and prints that directory. start.sh and bench/chaos run
# the broker from it.
#
# Java 17+ and Maven are installed from Debian when missing and this runs as
# root (as CI does); elsewhere a missing tool exits 2 ("skip") unless CI is
# set.
#
# Environment: KAFKA_VERSION (default 4.1.2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${KAFKA_VERSION:-4.1.2}"
lib="$here/lib/$version"

log() { echo "kafka: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Java 17+ and Maven: installed from Debian when missing and this is root
# (as CI is). Elsewhere a missing tool skips the real-broker pass (exit 2,
# which `make test-kafka` treats as "skipped") unless CI is set.
java_major() { java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ { split($2, v, "."); print v[1] }'; }
if ! command -v java >/dev/null || ! command -v mvn >/dev/null || [ "$(java_major)" -lt 17 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Java 17 and Maven from Debian"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless maven >&2
  elif [ -n "${CI:-}" ]; then
    log "Java 17+ and Maven are needed for the real-broker tests"; exit 1
  else
    log "Java 17+ and Maven are needed for the real-broker tests: skipping them"; exit 2
  fi
fi

# The jars. lib/<version>/.complete marks a finished copy, so an
# interrupted fetch is redone, not half used.
if [ ! -f "$lib/.complete" ]; then
  command -v mvn >/dev/null || { log "mvn is not installed: cannot fetch Kafka $version from Maven Central"; exit 1; }
  t0="$(now)"
  tmp="$here/lib/.tmp-$version-$$"
  rm -rf "$tmp"
  # Maven 3.8 prints colour resets even in batch mode; they are dropped.
  mvn -B -q -f "$here/pom.xml" -Dkafka.version="$version" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g' >&2
  touch "$tmp/.complete"
  rm -rf "$lib"
  mv "$tmp" "$lib"
  log "fetched Kafka $version ($(ls "$lib" | wc -l) jars) in $(elapsed "$t0")s"
fi
echo "$lib"
