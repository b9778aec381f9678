# mcp-jupyter — see README.md.
#   make run    install what is missing, then run the server
#   make test   install what is missing, then run every test with -race
#   make bench  run the benchmarks and write docs/benchmarks.md
#   make lint   go vet + staticcheck

GO        ?= go
PY        := /usr/bin/python3
PY_IMPORT := import ipykernel, dill, matplotlib, pandas, nbformat, jupyter_client
APT_PKGS  := python3-ipykernel python3-dill python3-matplotlib python3-pandas python3-nbformat python3-jupyter-client
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BENCHTIME ?= 3x
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test deps bench lint build

run: deps
	$(GO) run ./cmd/mcp-jupyter serve

test: deps
	$(GO) test -race -timeout 60m ./...

build:
	$(GO) build -o bin/mcp-jupyter ./cmd/mcp-jupyter

# deps installs the kernel's Python packages from Debian, only when missing,
# and runs apt-get update only when the install needs it.
deps:
	@if $(PY) -c '$(PY_IMPORT)' 2>/dev/null; then \
		echo "deps: python packages present"; \
	else \
		echo "deps: installing $(APT_PKGS)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get install -y --no-install-recommends $(APT_PKGS) || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(APT_PKGS); }; \
		$(PY) -c '$(PY_IMPORT)'; \
	fi

bench:
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./... | tee bench.out
	$(GO) run ./cmd/benchreport -o docs/benchmarks.md < bench.out

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
