# mcp-jupyter — the two commands a newcomer needs are `make run` and `make test`.
# Both install what they need first (idempotently).

PY        := /usr/bin/python3
PY_CHECK  := import ipykernel, dill, numpy, matplotlib, pandas, nbformat, jupyter_client, plotly
# NB: the package list lives in infra/jupyter/debian-packages.txt (also read by the Dockerfile).
DEB_PKGS  := $(shell grep -v '^\#' infra/jupyter/debian-packages.txt)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Node projects of the tests that drive the server with clients no one here
# wrote (TestOutsideSDK, BenchmarkSDKStdioExecute, TestOutsideJupyterLab) and
# the web console's browser driver (testkit.StartBrowser: playwright-core,
# pinned to 1.61.1, the last that runs on Node 18): `npm ci` from their committed lock, again only when
# the lock changed (its hash is kept in node_modules/$(NPM_STAMP)). testkit/outside/mcpsdk2 holds
# the TypeScript client of MCP 2026-07-28 (@modelcontextprotocol/client, Node >= 20) for the
# revision matrix (TestRevisionMatrix). Debian's
# nodejs (18) is enough; npm comes with it only when missing.
NPM_DIRS  := testkit/outside/mcpsdk testkit/outside/mcpsdk2 testkit/outside/jupyterlab testkit/outside/console
NPM_STAMP := .package-lock.sha256
NODE_PKGS := nodejs npm
# The web console's browser tests drive Debian's chromium (playwright-core
# downloads no browser).
CHROMIUM  := /usr/bin/chromium

.PHONY: run test deps bench bench-run lint build fuzz image image-test

## deps: Debian's Python kernel packages, only when /usr/bin/python3 lacks them; Go modules; Debian's
## jupyter_server unpacked (apt-get download + dpkg -x, nothing installed) into
## testkit/outside/jupyterserver/.cache for the reference and gateway tests; the
## outside check's npm packages (Node.js and npm from Debian when npm is missing).
deps:
	@if $(PY) -c '$(PY_CHECK)' 2>/dev/null; then \
		echo "deps: $(PY) has ipykernel, dill, numpy, matplotlib, pandas, nbformat, jupyter_client, plotly"; \
	else \
		echo "deps: installing $(DEB_PKGS)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS); \
	fi
	@go mod download
	@sh testkit/outside/jupyterserver/fetch.sh
	@command -v npm >/dev/null 2>&1 || { \
		echo "deps: installing $(NODE_PKGS) (npm, for the outside check's pinned MCP TypeScript SDK)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(NODE_PKGS); }
	@test -x $(CHROMIUM) || { \
		echo "deps: installing chromium (the web console's browser tests)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	@for d in $(NPM_DIRS); do \
		lock=$$(sha256sum $$d/package-lock.json | cut -d' ' -f1); \
		if [ "$$(cat $$d/node_modules/$(NPM_STAMP) 2>/dev/null)" = "$$lock" ]; then \
			echo "deps: $$d/node_modules matches its package-lock.json"; \
		else \
			echo "deps: npm ci in $$d"; \
			npm ci --prefix $$d --no-audit --no-fund --loglevel=error >/dev/null || exit 1; \
			echo "$$lock" > $$d/node_modules/$(NPM_STAMP); \
		fi; \
	done

## run: the server on embedded defaults (data dir ./.mcp-jupyter, MCP over HTTP on 127.0.0.1:3000).
run: deps
	go run ./cmd/mcp-jupyter serve

## test: every test, with the race detector, against real kernels.
test: deps
	go test -race -timeout 60m ./...

build:
	go build -o bin/mcp-jupyter ./cmd/mcp-jupyter

## image: the container image (localhost/mcp-jupyter:dev; IMAGE=... to tag it otherwise): docker build
## where a Docker engine runs, otherwise buildah (root, vfs, chroot) on Debian bookworm bases made once
## with mmdebstrap (docs/deploy.d/image.md).
image:
	infra/image/build.sh

## image-test: runs the built image and checks inside it: numeric non-root uid, doctor, /health, an MCP
## execute over stdio, SIGTERM drain within the grace, the volume across a container restart; prints
## PASS/FAIL per check and the image's size. Minutes: not part of `make test`.
image-test:
	infra/image/test.sh

## bench: every benchmark beside its baseline in the same run; ratios to docs/benchmarks.md.
## Each entry: package:benchmarks (comma-separated):iterations (latency figures need many samples, whole-system ones few).
BENCH_OUT := $(or $(TMPDIR),/tmp)/mcp-jupyter-bench.txt
BENCHES := \
	./infra/eventlog/:.:3000x \
	./projections/:.:1x \
	./projections/executions/:.:2000x \
	./infra/jupyter/:RawRoundTrip:50x \
	./infra/jupyter/:KernelStartSandbox:10x \
	./actors/system/:KernelActorRoundTrip:300x \
	./actors/system/:Queue1000,Print100kLines,IdleKernelsHeap,DisplayFlood20k,SystemOpen:1x \
	./actors/scheduler/:SchedulerRecover:1x \
	./cmd/mcp-jupyter/:MCPExecuteRoundTrip:300x \
	./cmd/mcp-jupyter/:SDKStdioExecute:200x \
	./cmd/mcp-jupyter/:ExecuteRevisionHTTP,ExecuteRevisionStdio:300x \
	./cmd/mcp-jupyter/:ExecuteAsPrincipal:300x \
	./cmd/mcp-jupyter/:Events:1x \
	./cmd/mcp-jupyter/:ReadNotebookTool20MB,RunCellVsExecute:30x \
	./cmd/mcp-jupyter/:HealthWhileStreaming:1x \
	./cmd/mcp-jupyter/:GetExecutionSinceEnd:1x \
	./cmd/mcp-jupyter/:Output200MBRSS:1x \
	./cmd/mcp-jupyter/:RefusedBodies8x50MB:1x \
	./cmd/mcp-jupyter/:StartKernelPooled:10x \
	./cmd/mcp-jupyter/:ChannelsExecute:300x \
	./cmd/mcp-jupyter/:Frontends10:1x \
	./cmd/mcp-jupyter/:ConsoleIOPubToText,Console100kLines:1x \
	./cmd/mcp-jupyter/:ConsoleAtSeq:30x \
	./cmd/mcp-jupyter/:AutoCheckpointShutdown:1x \
	./cmd/mcp-jupyter/:RestoreAfterReplacement:1x \
	./cmd/mcp-jupyter/:^BenchmarkRoutedExecute$$:300x \
	./cmd/mcp-jupyter/:ClusterRoutedExecute:300x \
	./cmd/mcp-jupyter/:ClusterFailover,ClusterThroughput:1x \
	./infra/notebook/:.:10x \
	./infra/mcpserver/:RenderDataFrame:2000x \
	./infra/mcpserver/:PolicyCheck:20x \
	./infra/natsbus/:.:300x \
	./infra/natsbus/:HistoryImport:20000x \
	./infra/auth/:Authenticate1000Principals:1x \
	./infra/auth/:OIDCAuthenticate:1x \
	./infra/ws/:.:1x \
	./infra/metrics/:.:5x \
	./actors/lease/:.:1x \
	./infra/checkpointfile/:LoadPrivateCopy250MB,Save250MB:3x \
	./actors/checkpoint/:.:1x
bench: deps
	@$(MAKE) --no-print-directory bench-run

## bench-run: `make bench` without deps. A package that fails or panics is
## recorded (its exit status, between ##benchreport markers) and the loop goes
## on; the report lists it as FAILED with its output's tail. A missed target is
## NOT MET in the report, never a failed run. BENCH_STRICT=1 exits non-zero
## after writing the report when a package failed.
BENCH_REPORT := docs/benchmarks.md
bench-run:
	@: > $(BENCH_OUT)
	@failed=""; for b in $(BENCHES); do \
		pkg=$${b%%:*}; rest=$${b#*:}; pat=$$(echo "$${rest%:*}" | tr , '|'); n=$${rest##*:}; \
		echo "== $$pkg -bench '$$pat' -benchtime $$n"; \
		echo "##benchreport begin $$pkg $$pat" >> $(BENCH_OUT); \
		go test -run '^$$' -bench "$$pat" -benchtime $$n -timeout 60m $$pkg > $(BENCH_OUT).part 2>&1; rc=$$?; \
		cat $(BENCH_OUT).part; cat $(BENCH_OUT).part >> $(BENCH_OUT); \
		echo "##benchreport end $$pkg $$pat $$rc" >> $(BENCH_OUT); \
		if [ $$rc != 0 ]; then failed="$$failed $$pkg"; echo "== $$pkg FAILED (exit $$rc): listed in the report; going on"; fi; \
	done; \
	rm -f $(BENCH_OUT).part; \
	go run ./cmd/benchreport < $(BENCH_OUT) > $(BENCH_REPORT).tmp && mv $(BENCH_REPORT).tmp $(BENCH_REPORT) || exit 1; \
	echo "wrote $(BENCH_REPORT)"; \
	if [ -n "$$failed" ]; then \
		echo "bench: FAILED runs (see the end of $(BENCH_REPORT)):$$failed"; \
		[ -z "$(BENCH_STRICT)" ] || exit 1; \
	fi

## lint: go vet and staticcheck.
lint:
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

## fuzz: a short run of every fuzzer (the seed corpora run in `make test`).
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for n in $$(grep -h '^func Fuzz' $$f/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$f $$n"; go test -run '^$$' -fuzz "^$$n$$" -fuzztime 20s $$f || exit 1; \
		done; \
	done
