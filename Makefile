# mcp-jupyter — the two commands a newcomer needs are `make run` and `make test`.
# Both install what they need first (idempotently).

PY        := /usr/bin/python3
PY_CHECK  := import ipykernel, dill, numpy, matplotlib, pandas, nbformat, jupyter_client
# NB: the package list lives in debian-packages.txt (also read by the Dockerfile).
DEB_PKGS  := $(shell grep -v '^\#' debian-packages.txt)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BENCHTIME ?= 1x

.PHONY: run test deps bench lint build fuzz

## deps: Debian's Python kernel packages, only when /usr/bin/python3 lacks them.
deps:
	@if $(PY) -c '$(PY_CHECK)' 2>/dev/null; then \
		echo "deps: $(PY) has ipykernel, dill, numpy, matplotlib, pandas, nbformat, jupyter_client"; \
	else \
		echo "deps: installing $(DEB_PKGS)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS); \
	fi
	@go mod download

## run: the server on embedded defaults (data dir ./.mcp-jupyter, MCP over HTTP on 127.0.0.1:3000).
run: deps
	go run ./cmd/mcp-jupyter serve

## test: every test, with the race detector, against real kernels.
test: deps
	go test -race -timeout 60m ./...

build:
	go build -o bin/mcp-jupyter ./cmd/mcp-jupyter

## bench: every benchmark beside its baseline in the same run; ratios to docs/benchmarks.md.
bench: deps
	go test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./... | tee /tmp/mcp-jupyter-bench.txt
	go run ./cmd/benchreport < /tmp/mcp-jupyter-bench.txt > docs/benchmarks.md

## lint: go vet and staticcheck.
lint:
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

## fuzz: a short run of every fuzzer (the seed corpora run in `make test`).
fuzz:
	go test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./events/
	go test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./infra/jupyter/
