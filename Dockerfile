# syntax=docker/dockerfile:1
#
# augur: one static binary on distroless. `docker build -t augur .`
# docker-compose.yml builds it; deploy/kubernetes/augur runs it.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/augur ./cmd/augur \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/augur /usr/local/bin/augur
# data_dir of `augur run`: owned by the nonroot user, so a named volume
# mounted here starts out writable.
COPY --from=build --chown=65532:65532 /out/data /var/lib/augur
USER 65532:65532
# 9201: remote-write, /metrics, /healthz, /readyz (run, ingest)
# 9464: /metrics of `augur stream`; 9465: /metrics of `augur act`
EXPOSE 9201 9464 9465
ENTRYPOINT ["/usr/local/bin/augur"]
CMD ["run", "-config", "/etc/augur/config.yaml"]
