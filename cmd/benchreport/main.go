// Command benchreport turns `go test -bench` output into docs/benchmarks.md.
//
// It reads the benchmark output on stdin and writes markdown on stdout: the
// run's date, Go version and CPU count; a table of every benchmark with its
// ns/op and custom metrics; and the ratios against baselines, each beside
// its target with whether it was met. Ratios come from two places: metrics
// a benchmark reports itself (named ratio-*, measured beside its baseline in
// the same function), and the pairs table below, for benchmarks whose
// baseline is a separate benchmark of the same run.
//
// Usage:
//
//	go test -run '^$' -bench . ./... | tee bench.txt
//	go run ./cmd/benchreport < bench.txt > docs/benchmarks.md
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A target is one promise about speed: a metric of a benchmark, divided by
// the same metric of a baseline benchmark when Baseline is set, compared
// with Limit.
type target struct {
	What string
	// Pkg is the directory of Bench (and of Baseline), from the module's
	// root: a failed run of that package with the pattern "." covers it.
	Pkg      string
	Bench    string
	Metric   string
	Baseline string // "" for an absolute target
	AtLeast  bool   // ≥ Limit when true, ≤ Limit (< for Strict) otherwise
	Strict   bool
	Limit    float64
	Unit     string // shown after absolute values
	// Notes are figures of the same benchmark printed beside the measured
	// one, so that a miss is explained: the floor the machine sets (the
	// fsync latency, the MAC throughput) or the baseline it was taken
	// against.
	Notes []note
}

// A note is one figure printed in a target's Note column.
type note struct {
	Label  string
	Metric string
	Unit   string // "" prints the bare number
	// Floor marks a ratio that nothing above the machine can beat (e.g.
	// (raw round trip + one fsync) / raw round trip): when it alone misses
	// the target, the note says so.
	Floor bool
	// Ratio prints the figure as a ratio (1.000x).
	Ratio bool
}

// targets are the figures the issues promise.
var targets = []target{
	{What: "cluster: execute routed through another node, p50 overhead vs on the owner (issue 20)", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkRoutedExecute",
		Metric: "overhead-p50-ms", Limit: 1, Unit: "ms",
		Notes: []note{{Label: "on the owner, p50", Metric: "owner-p50-ms", Unit: "ms"}, {Label: "routed, p50", Metric: "routed-p50-ms", Unit: "ms"}}},
	{What: "durable append, 64 writers: throughput vs raw Pebble", Pkg: "infra/eventlog", Bench: "BenchmarkAppend64Writers", Metric: "events/s",
		Baseline: "BenchmarkRawPebbleApplySync64Writers", AtLeast: true, Limit: 0.9},
	{What: "durable append, 64 writers: p50 vs raw Pebble", Pkg: "infra/eventlog", Bench: "BenchmarkAppend64Writers", Metric: "p50-µs",
		Baseline: "BenchmarkRawPebbleApplySync64Writers", Limit: 1.2},
	{What: "append throughput with a principal in the envelope vs without", Pkg: "infra/eventlog", Bench: "BenchmarkAppendWithPrincipal64Writers", Metric: "events/s",
		Baseline: "BenchmarkAppend64Writers", AtLeast: true, Limit: 0.9},
	{What: "actor `1+1` p50 vs raw zmq4", Pkg: "actors/system", Bench: "BenchmarkKernelActorRoundTrip", Metric: "ratio-p50", Limit: 1.05},
	{What: "actor `1+1` p50 vs jupyter_client execute_interactive", Pkg: "actors/system", Bench: "BenchmarkKernelActorRoundTrip", Metric: "ratio-p50-vs-jupyter-client", Limit: 1.0},
	{What: "MCP execute p50 vs raw zmq4", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkMCPExecuteRoundTrip", Metric: "ratio-p50", Limit: 1.05,
		Notes: []note{{Label: "fsync floor p50", Metric: "fsync-p50-µs", Unit: "µs"}, {Label: "(raw+fsync)/raw", Metric: "floor-ratio", Floor: true}}},
	{What: "MCP `execute(\"1+1\")` p50, official TypeScript SDK over stdio, vs jupyter_client execute_interactive", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkSDKStdioExecute",
		Metric: "ratio-p50-vs-jupyter-client", Limit: 1.0},
	{What: "MCP `execute(\"1+1\")` p50 on 2026-07-28 vs 2025-11-25, mcp-go client, Streamable HTTP", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkExecuteRevisionHTTP",
		Metric: "ratio-p50-modern-vs-legacy", Limit: 1.0,
		Notes: []note{{Label: "2025-11-25 p50", Metric: "legacy-p50-ms", Unit: "ms"}, {Label: "2026-07-28 p50", Metric: "modern-p50-ms", Unit: "ms"}}},
	{What: "MCP `execute(\"1+1\")` p50 on 2026-07-28 vs 2025-11-25, mcp-go client, stdio (real binary)", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkExecuteRevisionStdio",
		Metric: "ratio-p50-modern-vs-legacy", Limit: 1.0,
		Notes: []note{{Label: "2025-11-25 p50", Metric: "legacy-p50-ms", Unit: "ms"}, {Label: "2026-07-28 p50", Metric: "modern-p50-ms", Unit: "ms"}}},
	{What: "MCP execute p50 as a principal (checks, 100 other principals and kernels) vs the admin token", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkExecuteAsPrincipal", Metric: "ratio-p50", Limit: 1.02},
	{What: "1,000 queued throughput vs raw one by one", Pkg: "actors/system", Bench: "BenchmarkQueue1000", Metric: "ratio-throughput",
		AtLeast: true, Limit: 0.95},
	{What: "replay of 1M events", Pkg: "projections", Bench: "BenchmarkReplay1M", Metric: "events/s", AtLeast: true, Limit: 1_000_000, Unit: "events/s"},
	{What: "replay peak heap", Pkg: "projections", Bench: "BenchmarkReplay1M", Metric: "peak-heap-MiB", Strict: true, Limit: 100, Unit: "MiB"},
	{What: "restart to ready (1M events)", Pkg: "projections", Bench: "BenchmarkRestartToReady1M", Metric: "ms/restart", Limit: 200, Unit: "ms"},
	{What: "read_notebook of 1,000 cells / 20 MB", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkReadNotebookTool20MB", Metric: "p50-ms", Limit: 100, Unit: "ms"},
	{What: "run_cell p50 vs execute", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkRunCellVsExecute", Metric: "ratio-p50", Limit: 1.05},
	{What: "replay of 1M events into the read models vs bare scan and decode", Pkg: "projections", Bench: "BenchmarkReplay1M", Metric: "ratio-vs-scan",
		AtLeast: true, Limit: 0.7},
	{What: "restart to ready with snapshots vs full replay (1M events)", Pkg: "projections", Bench: "BenchmarkRestartToReady1M", Metric: "ratio-restart-vs-replay", Limit: 0.2},
	{What: "`events tail --json` over 1M events to /dev/null", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkEventsTail1M", Metric: "events/s", AtLeast: true, Limit: 500_000, Unit: "events/s"},
	{What: "`events replay --until` the middle of 1M events", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkEventsReplayMiddle1M", Metric: "ms/replay", Limit: 2000, Unit: "ms"},
	{What: "console: the state at a seq near the end of 100k events vs near the start (the cost does not grow with the log)", Pkg: "cmd/mcp-jupyter",
		Bench: "BenchmarkConsoleAtSeq", Metric: "at-end/at-start", Limit: 5, Unit: "x",
		Notes: []note{{Label: "near the end, ns", Metric: "at-end-ns"}, {Label: "near the start, ns", Metric: "at-start-ns"}}},
	{What: "console: the state at a seq near the end of 100k events vs a full refold (replayModels from the start)", Pkg: "cmd/mcp-jupyter",
		Bench: "BenchmarkConsoleAtSeq", Metric: "at-end/refold", Limit: 0.2, Unit: "x",
		Notes: []note{{Label: "full refold, ns", Metric: "refold-ns"}}},
	{What: "100,000-line cell wall time vs raw zmq4", Pkg: "actors/system", Bench: "BenchmarkPrint100kLines", Metric: "ratio-wall", Limit: 1.2},
	{What: "20,000 display_data with a slowed log: captured in order", Pkg: "actors/system", Bench: "BenchmarkDisplayFlood20k", Metric: "ratio-captured", AtLeast: true, Limit: 1.0},
	{What: "server heap with 20 idle kernels", Pkg: "actors/system", Bench: "BenchmarkIdleKernelsHeap", Metric: "heap-MiB", Limit: 50, Unit: "MiB"},
	{What: "100 WebSocket clients, one stalled: throughput vs none stalled", Pkg: "infra/ws", Bench: "BenchmarkFanOut100", Metric: "ratio-stalled-throughput", AtLeast: true, Limit: 0.95,
		Notes: []note{{Label: "wall clock, median of", Metric: "rounds"}, {Label: "CPU cost per event (blind to waiting)", Metric: "ratio-stalled-cpu", Ratio: true},
			{Label: "slow clients closed per stalled run", Metric: "stalled-kicked"}, {Label: "first closed at this fraction of the run (1: never)", Metric: "stalled-kicked-at-fraction"}}},
	{What: "WebSocket p99 delivery at 1,000 events/s", Pkg: "infra/ws", Bench: "BenchmarkFanOut100", Metric: "p99-ms", Strict: true, Limit: 20, Unit: "ms"},
	{What: "/ws routing per event, 100 principals vs 1 (each reads its own kernel)", Pkg: "infra/ws", Bench: "BenchmarkFanOutPrincipals", Metric: "ratio-100-vs-1", Limit: 1.5},
	{What: "heap with a stalled client and a huge cell", Pkg: "infra/ws", Bench: "BenchmarkMemoryBigCell", Metric: "heap-MiB-256", Strict: true, Limit: 200, Unit: "MiB"},
	{What: "GC over 100,000 assets, 10% leased", Pkg: "actors/lease", Bench: "BenchmarkGC100k", Metric: "gc-s", Strict: true, Limit: 5, Unit: "s"},
	{What: "checkpoint save of 250 MB vs raw dill.dump", Pkg: "actors/checkpoint", Bench: "BenchmarkSaveLoad250MB", Metric: "ratio-save", Limit: 1.10,
		Notes: []note{{Label: "MAC throughput floor", Metric: "mac-GBps", Unit: "GB/s"}}},
	{What: "checkpoint load of 250 MB vs raw dill.load", Pkg: "actors/checkpoint", Bench: "BenchmarkSaveLoad250MB", Metric: "ratio-load", Limit: 1.10,
		Notes: []note{{Label: "MAC throughput floor", Metric: "mac-GBps", Unit: "GB/s"}}},
	{What: "checkpoint load's private copy of 250 MB: verify and copy vs verify in place", Pkg: "infra/checkpointfile", Bench: "BenchmarkLoadPrivateCopy250MB", Metric: "ratio-copy", Limit: 1.3},
	{What: "/metrics scrape, 100 kernels and 10,000 executions", Pkg: "infra/metrics", Bench: "BenchmarkScrape100Kernels10kExecutions", Metric: "ms/scrape", Limit: 50, Unit: "ms"},
	{What: "/health p99 while 64 executions stream output", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkHealthWhileStreaming", Metric: "p99-ms", Limit: 5, Unit: "ms",
		Notes: []note{{Label: "floor: a bare net/http server in the same process, same load, p99", Metric: "bare-p99-ms", Unit: "ms"},
			{Label: "idle p99", Metric: "idle-p99-ms", Unit: "ms"}, {Label: "samples", Metric: "samples"}, {Label: "kernels streaming at once", Metric: "kernels"}}},
	{What: "start_kernel (MCP) p50 with a pool of pre-started kernels", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkStartKernelPooled", Metric: "pooled-p50-ms", Limit: 50, Unit: "ms",
		Notes: []note{{Label: "fresh start p50", Metric: "fresh-p50-ms", Unit: "ms"}, {Label: "idle RSS per pooled kernel", Metric: "idle-rss-MiB-per-kernel", Unit: "MiB"}}},
	{What: "server RSS while one execution prints 200 MB (read to the end through MCP)", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkOutput200MBRSS", Metric: "peak-rss-MiB", Limit: 150, Unit: "MiB"},
	{What: "get_execution(since=end) p50, 20,000 outputs vs 10", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkGetExecutionSinceEnd", Metric: "ratio-p50", Limit: 1.5},
	{What: "64 waiters on 64 executions: wake-ups per append (its own only)", Pkg: "projections/executions", Bench: "BenchmarkWake64Waiters", Metric: "wakes/append", Limit: 1, Unit: "wakes"},
	{What: "64 waiters: wake-ups of another execution's waiter", Pkg: "projections/executions", Bench: "BenchmarkWake64Waiters", Metric: "stray-wakes", Strict: true, Limit: 1, Unit: "wakes"},
	{What: "NATS subscriber p99 after durable", Pkg: "infra/natsbus", Bench: "BenchmarkDeliveryAfterDurable", Metric: "p99-µs", Limit: 5000, Unit: "µs"},
	{What: "token check with 1,000 principals vs 1 (flat)", Pkg: "infra/auth", Bench: "BenchmarkAuthenticate1000Principals", Metric: "ratio-1000-vs-1", Limit: 1.5},
	{What: "OAuth JWT check per request (RS256, keys cached)", Pkg: "infra/auth", Bench: "BenchmarkOIDCAuthenticate", Metric: "µs/check", Limit: 500, Unit: "µs"},
	{What: "issuer key set fetches caused by 1,000 forged JWTs", Pkg: "infra/auth", Bench: "BenchmarkOIDCAuthenticate", Metric: "fetches-per-1000-forged", Limit: 1, Unit: "fetches"},
	{What: "kernel start: sandbox overhead (beside an unsandboxed start)", Pkg: "infra/jupyter", Bench: "BenchmarkKernelStartSandbox", Metric: "overhead-ms", Limit: 50, Unit: "ms"},
	{What: "server peak RSS with eight 50 MB /mcp request bodies refused", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkRefusedBodies8x50MB", Metric: "peak-rss-MiB", Limit: 100, Unit: "MiB"},
	{What: "system.Open from the kernel registry snapshot vs a scan from seq 0 (200k events)", Pkg: "actors/system", Bench: "BenchmarkSystemOpen", Metric: "ratio-snapshot-vs-full", Limit: 0.2},
	{What: "scheduler recovery (100k outputs) vs decoding the kernel's whole index", Pkg: "actors/scheduler", Bench: "BenchmarkSchedulerRecover", Metric: "ratio-recover-vs-decoded", Limit: 0.3},
	{What: "`1+1` through the channels WebSocket (a frontend, v1 subprotocol) p50 vs the same through a real jupyter_server", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkChannelsExecute",
		Metric: "ratio-p50-vs-jupyter-server", Limit: 1.0,
		Notes: []note{{Label: "ours p50", Metric: "p50-µs", Unit: "µs"}, {Label: "jupyter_server p50 (Nagle on: waits for delayed ACKs)", Metric: "jupyter-server-p50-µs", Unit: "µs"}}},
	{What: "the same vs a jupyter_server with TCP_NODELAY on its kernel WebSockets (the stricter baseline)", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkChannelsExecute",
		Metric: "ratio-p50-vs-jupyter-server-nodelay", Limit: 1.0,
		Notes: []note{{Label: "its p50", Metric: "jupyter-server-nodelay-p50-µs", Unit: "µs"}}},
	{What: "10 frontends on one kernel while an agent streams 10,000 lines: one stalled frontend vs none, throughput", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkFrontends10",
		Metric: "ratio-stalled-throughput", AtLeast: true, Limit: 0.95,
		Notes: []note{{Label: "lines/s without a stalled frontend", Metric: "lines/s-base"}, {Label: "wall clock, median of", Metric: "rounds"},
			{Label: "CPU cost per line (blind to waiting)", Metric: "ratio-stalled-cpu", Ratio: true},
			{Label: "stalled frontend closed by the server per stalled run", Metric: "stalled-closed"}}},
	{What: "web console: a printed line to the frame painting its text on an open page (4 pages, each at the execution view of one execution; every line their feeds received, unpainted ones counted at the run's end), 64 executions streaming, p50", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkConsoleIOPubToText",
		Metric: "p50-ms", Limit: 50, Unit: "ms",
		Notes: []note{{Label: "baseline: a raw /ws client, same run, p50", Metric: "ws-p50-ms", Unit: "ms"}, {Label: "page/ws", Metric: "ratio-p50-vs-ws", Ratio: true},
			{Label: "of which printed → appended to the log, p50", Metric: "logged-p50-ms", Unit: "ms"},
			{Label: "printed → the page's feed received it, p50", Metric: "feed-p50-ms", Unit: "ms"},
			{Label: "lines fed to the pages", Metric: "samples"}, {Label: "share of them painted", Metric: "shown-fraction"},
			{Label: "lines/s (all 64)", Metric: "lines/s"}, {Label: "executions lost to missed heartbeats", Metric: "lost-executions"}}},
	{What: "web console: the same, p99", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkConsoleIOPubToText",
		Metric: "p99-ms", Limit: 200, Unit: "ms",
		Notes: []note{{Label: "baseline: a raw /ws client, same run, p99", Metric: "ws-p99-ms", Unit: "ms"}, {Label: "page/ws", Metric: "ratio-p99-vs-ws", Ratio: true},
			{Label: "printed → the page's feed received it, p99", Metric: "feed-p99-ms", Unit: "ms"}, {Label: "share of lines painted", Metric: "shown-fraction"}}},
	{What: "web console: a click answered (click event to the frame showing it) after 100,000 printed lines, slowest of 10", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkConsole100kLines",
		Metric: "click-ms", Limit: 100, Unit: "ms",
		Notes: []note{{Label: "median click", Metric: "click-p50-ms", Unit: "ms"}, {Label: "Playwright's slowest click call", Metric: "playwright-click-ms", Unit: "ms"}}},
	{What: "web console: page JS heap after GC, 100,000 lines vs 10,000 (bounded: at most the 5x of the lines kept, maxLines 50,000; far below the 10x printed)", Pkg: "cmd/mcp-jupyter", Bench: "BenchmarkConsole100kLines",
		Metric: "heap-100k/10k", Limit: 5, Unit: "x",
		Notes: []note{{Label: "heap at 100k", Metric: "heap-MiB", Unit: "MiB"}, {Label: "DOM nodes at 100k", Metric: "dom-nodes"}, {Label: "DOM nodes 100k/10k", Metric: "dom-nodes-100k/10k", Ratio: true}}},
	{What: "auto-checkpoint of 20 kernels holding 50 MB each at SIGTERM (must fit the 25 s grace; the limit is what is left after a drain that used all of its budget: 25 − 5 s close reserve − 10 s drain)", Pkg: "cmd/mcp-jupyter",
		Bench: "BenchmarkAutoCheckpointShutdown", Metric: "pass-s", Limit: 10, Unit: "s",
		Notes: []note{{Label: "one kernel's 50 MB save alone, s", Metric: "save-one-s"}, {Label: "pass vs 20 serial saves", Metric: "ratio-vs-serial", Ratio: true},
			{Label: "an agent's 1+1 queued behind an idle save, s", Metric: "agent-wait-s"}}},
	{What: "restore after a pod replacement (server start → first execution answered on the restored kernel, 50 MB) vs the load of its checkpoint alone", Pkg: "cmd/mcp-jupyter",
		Bench: "BenchmarkRestoreAfterReplacement", Metric: "restore-vs-load-x", Limit: 2, Unit: "x",
		Notes: []note{{Label: "floor: (a fresh kernel's start + the load) / the load", Metric: "floor-x", Ratio: true, Floor: true}, {Label: "kernel start, ms", Metric: "start-kernel-ms", Unit: "ms"},
			{Label: "restore vs (kernel start + load)", Metric: "restore-vs-start-and-load-x", Ratio: true},
			{Label: "the same at 400 MB", Metric: "restore-vs-load-x-400MB", Ratio: true}}},
	{What: "cluster of three server processes (real routes): execute `1+1` routed through another node vs on the kernel's owner, p50 overhead", Pkg: "cmd/mcp-jupyter",
		Bench: "BenchmarkClusterRoutedExecute", Metric: "overhead-ms", Limit: 1, Unit: "ms",
		Notes: []note{{Label: "on the owner, p50 ms", Metric: "owner-p50-ms"}, {Label: "routed, p50 ms", Metric: "routed-p50-ms"}}},
	{What: "cluster failover: kill -9 of the owner → first execution answered on the new owner, vs lease + restore + 2 s", Pkg: "cmd/mcp-jupyter",
		Bench: "BenchmarkClusterFailover", Metric: "failover-vs-budget-x", Limit: 1, Unit: "x",
		Notes: []note{{Label: "failover, s", Metric: "failover-s"}, {Label: "restore, s", Metric: "restore-s"}, {Label: "budget (lease 10 s + restore + 2 s), s", Metric: "budget-s"}}},
}

// result is one benchmark line.
type result struct {
	Pkg     string
	Name    string // without the -GOMAXPROCS suffix
	N       int64
	Metrics []metric // in the order printed, ns/op first
}

type metric struct {
	Unit  string
	Value float64
}

func (r result) get(unit string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

var (
	nameLine = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?(?:\s|$)`)
	failLine = regexp.MustCompile(`^\s*--- FAIL: (Benchmark\S*?)(?:-\d+)?(?:\s|$)`)
	// stackLine is a benchmark function in a panic's stack trace (a panic
	// in the first run of a benchmark comes before its name is printed): the
	// frame itself, a closure of it, or the goroutine it started.
	stackLine  = regexp.MustCompile(`\.(Benchmark[A-Za-z0-9_]+)(?:\.func[0-9.]+)?(?:\(| in goroutine )`)
	figureLine = regexp.MustCompile(`^\s*(\d+)\s+(\S+\s+\S+(?:\s+\S+\s+\S+)*)\s*$`)
	// secretLike is what a failure's output tail must not carry into the
	// committed report: bearer tokens (64 hex digits) a benchmark's server
	// printed at its start.
	secretLike = regexp.MustCompile(`\b[0-9a-fA-F]{64}\b`)
)

// Lines `make bench` writes around each `go test` run, so that the report
// knows which package ran, with which pattern, and how it ended:
//
//	##benchreport begin ./infra/ws/ .
//	##benchreport end ./infra/ws/ . 1
const (
	markBegin = "##benchreport begin "
	markEnd   = "##benchreport end "
)

// tailLines is how much of a failed run's output the report shows.
const tailLines = 30

// A failure is one `go test` run that did not exit 0: a benchmark that
// called b.Fatal (a broken setup), a panic, a timeout, a build error.
type failure struct {
	Pkg     string
	Pattern string
	Exit    string   // the exit status, or why there is none
	Benches []string // benchmarks named in its output that produced no figures
	Tail    []string // the last lines of its output
}

// covers reports whether bench of package pkg (a directory from the
// module's root) was (or would have been) run by f: named in its output,
// or matched by its -bench pattern; the pattern "." (or none, a FAIL line
// without markers) runs every benchmark of f's package.
func (f failure) covers(pkg, bench string) bool {
	if slices.Contains(f.Benches, bench) {
		return true
	}
	if f.Pattern == "" || f.Pattern == "." {
		return pkg != "" && samePackage(f.Pkg, pkg)
	}
	re, err := regexp.Compile(f.Pattern)
	return err == nil && re.MatchString(bench)
}

// samePackage reports whether run (as make bench names it, "./infra/ws/",
// or as go test does, "github.com/.../infra/ws") is the directory dir.
func samePackage(run, dir string) bool {
	run = strings.TrimSuffix(strings.TrimPrefix(run, "./"), "/")
	return run == dir || strings.HasSuffix(run, "/"+dir)
}

// run is what parse found: the figures and the runs that failed.
type run struct {
	Results  []result
	Failures []failure
}

// parse reads `go test -bench` output, with or without the markers of
// `make bench`. A benchmark that printed while it ran has its name and its
// figures on different lines; the figures go to the last name seen.
// Without markers, a `FAIL <pkg>` line marks its package failed.
func parse(in io.Reader) (run, error) {
	var out run
	var pkg, pending string
	var block []string // the current run's output (between markers, or since the last pkg line)
	var blockPkg, blockPattern string
	inBlock := false
	named := map[string]bool{}    // benchmark names seen in the current block
	measured := map[string]bool{} // benchmarks with figures
	fail := func(p, pattern, exit string) {
		f := failure{Pkg: p, Pattern: pattern, Exit: exit}
		for n := range named {
			if !measured[n] {
				f.Benches = append(f.Benches, n)
			}
		}
		slices.Sort(f.Benches)
		f.Tail = block[max(0, len(block)-tailLines):]
		for i, l := range f.Tail {
			f.Tail[i] = secretLike.ReplaceAllString(l, "<redacted>")
		}
		out.Failures = append(out.Failures, f)
	}
	reset := func() {
		block, named, pending = nil, map[string]bool{}, ""
	}
	lines := lineReader{r: bufio.NewReaderSize(in, 64<<10)}
	for lines.next() {
		line := lines.text
		if rest, ok := strings.CutPrefix(line, markBegin); ok {
			if inBlock {
				fail(blockPkg, blockPattern, "no exit status: the run was cut short")
			}
			reset()
			inBlock = true
			blockPkg, blockPattern, _ = strings.Cut(strings.TrimSpace(rest), " ")
			continue
		}
		if rest, ok := strings.CutPrefix(line, markEnd); ok {
			f := strings.Fields(rest)
			if len(f) >= 3 && f[len(f)-1] != "0" {
				fail(blockPkg, blockPattern, "exit status "+f[len(f)-1])
			}
			reset()
			inBlock = false
			continue
		}
		block = append(block, line)
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			if !inBlock {
				block = block[:0]
				named = map[string]bool{}
			}
			continue
		}
		if p, ok := strings.CutPrefix(line, "FAIL\t"); ok && !inBlock {
			p, _, _ = strings.Cut(p, "\t")
			fail(strings.TrimSpace(p), "", "FAIL")
			reset()
			continue
		}
		if strings.HasPrefix(line, "ok  \t") && !inBlock {
			reset()
			continue
		}
		if m := failLine.FindStringSubmatch(line); m != nil {
			named[m[1]] = true
			continue
		}
		if m := stackLine.FindStringSubmatch(line); m != nil {
			named[m[1]] = true
			continue
		}
		rest := line
		if m := nameLine.FindStringSubmatch(line); m != nil {
			pending = m[1]
			named[pending] = true
			rest = strings.TrimSpace(line[len(m[0]):])
			if rest == "" {
				continue
			}
		}
		if pending == "" {
			continue
		}
		m := figureLine.FindStringSubmatch(rest)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		fields := strings.Fields(m[2])
		r := result{Pkg: pkg, Name: pending, N: n}
		ok := true
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				ok = false
				break
			}
			r.Metrics = append(r.Metrics, metric{Unit: fields[i+1], Value: v})
		}
		if !ok || len(r.Metrics) == 0 || r.Metrics[0].Unit != "ns/op" {
			continue
		}
		out.Results = append(out.Results, r)
		measured[pending] = true
		pending = ""
	}
	if inBlock {
		fail(blockPkg, blockPattern, "no exit status: the run was cut short")
	}
	return out, lines.err
}

// maxLine is how much of one output line parse keeps: a benchmark may
// print a huge line (a cell's output, a dump); the rest is dropped.
const maxLine = 64 << 10

// lineReader reads lines of any length, keeping the first maxLine bytes
// of each (a bufio.Scanner stops at its limit and the report would lose
// all that follows).
type lineReader struct {
	r    *bufio.Reader
	text string
	err  error // the read error other than io.EOF
}

func (l *lineReader) next() bool {
	var b []byte
	read, cut := 0, false
	for {
		frag, err := l.r.ReadSlice('\n')
		read += len(frag)
		if keep := min(len(frag), maxLine+1-len(b)); keep > 0 {
			b = append(b, frag[:keep]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil && err != io.EOF {
			l.err = err
			return false
		}
		if read == 0 {
			return false
		}
		break
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) > maxLine {
		b, cut = b[:maxLine], true
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	l.text = string(b)
	if cut {
		l.text += fmt.Sprintf(" …[line of %d bytes cut]", read)
	}
	return true
}

// env is what the report says about the run.
type env struct {
	Date      time.Time
	GoVersion string
	CPUs      int
	Load      string // /proc/loadavg's first three fields; "" when unknown
}

// main exits non-zero only when it cannot read its input: a missed target or
// a failed run is in the report, not in the exit status.
func main() {
	e := env{Date: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			e.Load = strings.Join(f[:3], " ")
		}
	}
	if err := report(os.Stdout, os.Stdin, e); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// report writes the markdown. A missed target is a row marked NOT MET,
// a run that failed is a row marked FAILED and a section with its output's
// tail: neither is an error, so that `make bench` always writes the report.
func report(w io.Writer, in io.Reader, e env) error {
	parsed, err := parse(in)
	if err != nil {
		return err
	}
	results := parsed.Results
	byName := map[string]result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmarks\n\n")
	p("Generated by `make bench` (`go run ./cmd/benchreport`); do not edit by hand. ")
	p("How to read it: docs/durability.md (\"Reading the benchmark report\").\n\n")
	p("Absolute times on a shared or loaded machine are noise: they move with whatever else runs. ")
	p("What counts are the **ratios**: each benchmark runs beside its baseline (raw zmq4, raw Pebble) ")
	p("in the same run, so both see the same machine. **NOT MET** marks a figure that missed its target ")
	p("(the Note column shows the floor the machine sets, where there is one); **FAILED** marks a ")
	p("benchmark whose package failed or panicked (its output's tail is at the end); \"not run\" marks a ")
	p("benchmark absent from this run.\n\n")
	p("- Date: %s\n- Go: %s\n- CPUs: %d\n", e.Date.Format("2006-01-02 15:04 MST"), e.GoVersion, e.CPUs)
	if e.Load != "" {
		p("- Load average at the report: %s\n", e.Load)
	}
	p("\n")

	p("## Every benchmark\n\n")
	p("| Package | Benchmark | Runs | ns/op | Metrics |\n|---|---|---:|---:|---|\n")
	for _, r := range results {
		var extra []string
		for _, m := range r.Metrics[1:] {
			extra = append(extra, format(m.Value)+" "+m.Unit)
		}
		p("| %s | %s | %d | %s | %s |\n", r.Pkg, r.Name, r.N, format(r.Metrics[0].Value), strings.Join(extra, ", "))
	}
	if len(results) == 0 {
		p("No benchmark lines in the input.\n")
	}
	p("\n## Ratios against baselines\n\n")
	p("| What | Benchmark | Measured | Target | Met | Note |\n|---|---|---|---|---|---|\n")
	covered := map[string]bool{}
	for _, t := range targets {
		covered[t.Bench+"\x00"+t.Metric] = true
		failed := t.failedIn(parsed.Failures)
		p("| %s | %s | %s | %s | %s | %s |\n", t.What, benchCell(t), t.measured(byName, failed), t.limitText(), t.met(byName, failed), t.note(byName))
	}
	for _, r := range results {
		for _, m := range r.Metrics {
			if strings.HasPrefix(m.Unit, "ratio-") && !covered[r.Name+"\x00"+m.Unit] {
				p("| %s | %s | %s | — | no target | |\n", m.Unit, r.Name, ratio(m.Value))
			}
		}
	}

	if len(parsed.Failures) > 0 {
		p("\n## Failed runs\n\n")
		p("Each of these `go test` runs failed (a broken setup, a panic, a timeout or a build error); ")
		p("the benchmarks it did not finish have no figures above. `make bench` went on with the next.\n")
		for _, f := range parsed.Failures {
			pattern := ""
			if f.Pattern != "" {
				pattern = " -bench '" + f.Pattern + "'"
			}
			p("\n### FAILED: %s%s (%s)\n\n", f.Pkg, pattern, f.Exit)
			if len(f.Benches) > 0 {
				p("Benchmarks without figures: %s.\n\n", strings.Join(f.Benches, ", "))
			}
			p("Last %d lines of its output:\n\n```text\n%s\n```\n", len(f.Tail), strings.Join(f.Tail, "\n"))
		}
	}
	return nil
}

// failedIn returns the failed run that should have measured t, if any.
func (t target) failedIn(fs []failure) *failure {
	for i := range fs {
		if fs[i].covers(t.Pkg, t.Bench) || (t.Baseline != "" && fs[i].covers(t.Pkg, t.Baseline)) {
			return &fs[i]
		}
	}
	return nil
}

// note prints t's notes that the run measured.
func (t target) note(by map[string]result) string {
	r, ok := by[t.Bench]
	if !ok {
		return ""
	}
	var parts []string
	for _, n := range t.Notes {
		v, ok := r.get(n.Metric)
		if !ok {
			continue
		}
		switch {
		case n.Floor:
			s := n.Label + " " + ratio(v)
			if t.misses(v) {
				s += " — this floor alone misses the target"
			}
			parts = append(parts, s)
		case n.Ratio:
			parts = append(parts, n.Label+" "+ratio(v))
		case n.Unit != "":
			parts = append(parts, n.Label+" "+format(v)+" "+n.Unit)
		default:
			parts = append(parts, n.Label+" "+format(v))
		}
	}
	return strings.Join(parts, "; ")
}

// misses reports whether v misses t's target.
func (t target) misses(v float64) bool {
	switch {
	case t.AtLeast:
		return v < t.Limit
	case t.Strict:
		return v >= t.Limit
	}
	return v > t.Limit
}

func benchCell(t target) string {
	if t.Baseline == "" {
		return t.Bench
	}
	return t.Bench + " / " + t.Baseline
}

// value is the measured figure: the metric, or its ratio to the baseline's.
func (t target) value(by map[string]result) (float64, bool) {
	r, ok := by[t.Bench]
	if !ok {
		return 0, false
	}
	v, ok := r.get(t.Metric)
	if !ok || t.Baseline == "" {
		return v, ok
	}
	base, ok := by[t.Baseline]
	if !ok {
		return 0, false
	}
	bv, ok := base.get(t.Metric)
	if !ok || bv == 0 {
		return 0, false
	}
	return v / bv, true
}

func (t target) absolute() bool { return t.Baseline == "" && !strings.HasPrefix(t.Metric, "ratio-") }

func (t target) measured(by map[string]result, failed *failure) string {
	v, ok := t.value(by)
	if !ok {
		if failed != nil {
			return "FAILED"
		}
		return "not run"
	}
	if t.absolute() {
		return format(v) + " " + t.Unit
	}
	return ratio(v)
}

func (t target) limitText() string {
	if t.Limit == 0 {
		return "—"
	}
	op := "≤"
	switch {
	case t.AtLeast:
		op = "≥"
	case t.Strict:
		op = "<"
	}
	if t.absolute() {
		return op + " " + format(t.Limit) + " " + t.Unit
	}
	return op + " " + ratio(t.Limit)
}

func (t target) met(by map[string]result, failed *failure) string {
	if t.Limit == 0 {
		return "no target"
	}
	v, ok := t.value(by)
	switch {
	case !ok && failed != nil:
		return "**FAILED** (" + failed.Pkg + ")"
	case !ok:
		return "not run"
	case t.misses(v):
		return "**NOT MET**"
	}
	return "met"
}

// ratio prints a ratio with three decimals.
func ratio(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + "x" }

// format prints v with three significant decimals at most, without
// exponent notation.
func format(v float64) string {
	switch {
	case v == math.Trunc(v) || v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
