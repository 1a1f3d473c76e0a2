#!/usr/bin/env bash
# Builds the real Kubernetes control plane the actuator integration tests run
# against: kube-apiserver, etcd, kube-controller-manager and kube-scheduler
# from k8s.io/kubernetes v1.37.2 (this directory's own module, whose replaces
# pin every k8s.io staging module to v0.37.2), plus kwok for fake nodes.
# Output: .ci/kube/bin (gitignored). Cold: ~10+ minutes on 2 cores; warm:
# seconds. Tests find the binaries through AUGUR_KUBE_BIN (default: this bin).
set -euo pipefail
cd "$(dirname "$0")"
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
mkdir -p bin
go build -trimpath -o bin/ ./cmd/kube-apiserver ./cmd/etcd ./cmd/kube-controller-manager ./cmd/kube-scheduler
GOBIN="$PWD/bin" GOFLAGS= go install "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
ls -l bin
