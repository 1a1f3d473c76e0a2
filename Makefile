# augur: `make run` starts the whole pipeline on an embedded broker,
# `make test` runs every test. See README.md.
GO ?= go
GOLANGCI_LINT_VERSION ?= v2.6.2
BIN := bin

.PHONY: run demo build test test-short lint bench proto fuzz chaos

build:
	$(GO) build -o $(BIN)/augur ./cmd/augur

run: build
	$(BIN)/augur run

# augur run on a built-in workload, with decisions on the console at once.
demo: build
	$(BIN)/augur demo

# The one test command: installs what the tests need (Debian's prometheus,
# the Kubernetes control-plane binaries) and runs every test with -race.
test:
	bash .ci/setup.sh
	$(GO) test -race -count=1 -timeout 40m ./...
	$(MAKE) test-kafka

# The Kafka tests again, against a real Apache Kafka broker instead of kfake:
# .ci/kafka/start.sh fetches Kafka from Maven Central (cached in ~/.m2) and
# starts one KRaft node on 127.0.0.1:19092; the packages whose tests read
# AUGUR_KAFKA_BROKERS run against it; the broker is stopped however they end.
# Then TestRealKafkaSecure (cmd/augur) starts its own broker with TLS, SCRAM
# and an authorizer. See .ci/kafka/README.md.
KAFKA_TEST_PKGS = $(addprefix ./,$(sort $(dir $(shell grep -rl --include='*_test.go' AUGUR_KAFKA_BROKERS ingest stream actuators))))
.PHONY: test-kafka
test-kafka:
	@trap 'bash .ci/kafka/stop.sh' EXIT; trap 'exit 130' INT TERM; \
	brokers=$$(bash .ci/kafka/start.sh) || { rc=$$?; [ $$rc = 2 ] && exit 0; exit $$rc; }; \
	echo "AUGUR_KAFKA_BROKERS=$$brokers $(GO) test -race -count=1 -timeout 20m $(KAFKA_TEST_PKGS)"; \
	AUGUR_KAFKA_BROKERS=$$brokers $(GO) test -race -count=1 -timeout 20m $(KAFKA_TEST_PKGS)
	@# TLS, SASL/SCRAM and ACLs on a second broker the test starts itself,
	@# with a SASL_SSL listener, a CA it makes and Kafka's authorizer.
	AUGUR_KAFKA_SECURE_TESTS=1 $(GO) test -race -count=1 -timeout 20m -run TestRealKafkaSecure -v ./cmd/augur

test-short:
	$(GO) test -short -count=1 ./...

lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# augur as separate processes (2 ingest, 3 stream, 2 act with leader
# election in enforce mode) on a three-node Apache Kafka cluster and a real
# kube-apiserver with kwok, faults on a schedule, and an independent checker
# (bench/chaos, bench/RESULTS-reliability.md). CHAOS_PROFILE=short (about
# 20 minutes), long (the 30-minute soak at half the capacity) or capacity
# (the rate raised in steps until writes fail or the stream falls behind).
# The last line is the summary.
CHAOS_OUT ?= $(or $(TMPDIR),/tmp)/augur-chaos-out
chaos:
	bash .ci/kube/build.sh >/dev/null
	$(GO) run ./bench/chaos -out $(CHAOS_OUT)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

proto:
	protoc --go_out=. --go_opt=paths=source_relative proto/augur.proto

# Runs every fuzz target for a short while (FUZZTIME=30s by default).
# Minimising each new input is capped at 5s: with arrow-go's code in the
# binary the default of 60s per input stalls the proto fuzzer.
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done
