# tally's build, test, lint, benchmark and fuzz entry points.
# `make test` is what CI runs (.ci/run); `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export PATH := /usr/local/go/bin:$(PATH):$(shell PATH=/usr/local/go/bin:$$PATH go env GOPATH 2>/dev/null)/bin
GOFLAGS ?= -buildvcs=false
export GOFLAGS

# go test flags for `make test`: -count=1 because interop tests depend on
# installed tools that the test cache does not see.
TESTFLAGS ?= -count=1 -timeout 30m
# Per-benchmark time; 1s keeps a full run short on 2 cores. Raise it (or
# add -count=5 to BENCHFLAGS) for numbers worth comparing with benchstat.
BENCHTIME ?= 1s
BENCHFLAGS ?=
# Time per fuzz target for `make fuzz`.
FUZZTIME ?= 10s

# Pinned linters, built with the Go in use (golangci-lint v2 embeds
# staticcheck; LINTER=staticcheck uses staticcheck alone).
GOLANGCI_LINT_VERSION := v2.15.0
STATICCHECK_VERSION := v0.8.2
LINTER ?= golangci-lint

.PHONY: help build test soak lint bench demo fuzz tidy-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

build: ## build bin/tally
	go build -o bin/tally ./cmd/tally

# go test -json through scripts/testsummary: go test's usual lines plus every
# skipped test with its reason (a skipped interop test must be seen) and a
# closing "tests: N passed, N failed, N skipped".
test: ## run every test with the race detector (interop tests included)
	go build -o bin/testsummary ./scripts/testsummary
	go test -race -json $(TESTFLAGS) ./... 2>&1 | bin/testsummary

# The crash harness with every occurrence of every fault point and ten
# times the timed kills (make test runs a bounded set).
SOAK ?= 10
soak: ## the crash harness at length: kills at every write step, many timed kills
	TALLY_CRASH_SOAK=$(SOAK) go test -count=1 -timeout 2h -run 'TestCrash|TestGitMaintenance|TestTwoTallies' -v ./gitstore/ ./cmd/tally/ 2>&1 | grep -E '^(---|ok|FAIL|PASS)|kills survived|SIGKILL,|rounds'

lint: ## gofmt, go vet, then golangci-lint (or LINTER=staticcheck)
	@files=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './bin/*')); \
	if [[ -n $$files ]]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$files"; exit 1; fi
	go vet ./...
ifeq ($(LINTER),staticcheck)
	@$(MAKE) --no-print-directory bin/staticcheck
	bin/staticcheck ./...
else
	@$(MAKE) --no-print-directory bin/golangci-lint
	bin/golangci-lint run ./...
endif

# Reinstalled when this Makefile changes (a version bump).
bin/staticcheck: Makefile
	GOBIN=$(CURDIR)/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

bin/golangci-lint: Makefile
	GOBIN=$(CURDIR)/bin go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@touch $@

bench: ## run benchmarks one package at a time into bench.out, then print ratios
	status=0; \
	go test -p 1 -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(BENCHFLAGS) ./... 2>&1 | tee bench.out || status=$$?; \
	go run ./scripts/benchreport bench.out; \
	exit $$status

demo: ## show the signing story (scripts/demo.sh)
	scripts/demo.sh

fuzz: ## run every Fuzz target for FUZZTIME each, one at a time
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# go mod tidy -diff prints what tidy would change and fails, without
# touching go.mod or go.sum: safe in a tree that others are editing.
tidy-check: ## fail if go mod tidy would change go.mod or go.sum
	go mod tidy -diff

# The benchmarks keep their generated fixtures in $TMPDIR (default /tmp)
# between runs, named tally-bench-*, tally-hooks-bench-* and
# tally-gitstore-bench*; clean removes them too.
BENCH_FIXTURES = $(wildcard $(or $(TMPDIR),/tmp)/tally-bench-* $(or $(TMPDIR),/tmp)/tally-hooks-bench-* $(or $(TMPDIR),/tmp)/tally-gitstore-bench*)

clean: ## remove build, benchmark (and their fixtures in $TMPDIR) and demo output
	rm -rf bin bench.out .demo $(BENCH_FIXTURES)
