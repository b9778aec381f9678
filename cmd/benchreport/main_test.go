package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/mcp-jupyter/mcp-jupyter/infra/eventlog
cpu: Some CPU
BenchmarkAppend64Writers-2   	    2000	    500000 ns/op	      4000 events/s	       900.0 p50-µs	        30.00 appends/sync
BenchmarkRawPebbleApplySync64Writers-2   	    2000	    400000 ns/op	      4000 events/s	       800.0 p50-µs
PASS
pkg: github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter
BenchmarkMCPExecuteRoundTrip-2   	mcp-jupyter: created the MCP bearer token (shown once):
  b0d4e796c1051f973c0078a6ffd1605b472a65d4cf0b0a92126f0d38711c4366
      20	  55884786 ns/op	     15744 p50-µs	         2.399 ratio-p50	      6563 raw-p50-µs
pkg: github.com/mcp-jupyter/mcp-jupyter/projections
BenchmarkReplay1M-2   	       1	900000000 ns/op	   1200000 events/s	        80.00 peak-heap-MiB
BenchmarkOther-2   	       5	       100 ns/op	         0.5000 ratio-cache
ok  	github.com/mcp-jupyter/mcp-jupyter/projections	3.0s
`

func TestParseJoinsFiguresPrintedAfterOutput(t *testing.T) {
	parsed, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	rs := parsed.Results
	if len(parsed.Failures) != 0 {
		t.Fatalf("failures in a run that passed: %+v", parsed.Failures)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "BenchmarkAppend64Writers,BenchmarkRawPebbleApplySync64Writers,BenchmarkMCPExecuteRoundTrip,BenchmarkReplay1M,BenchmarkOther" {
		t.Fatalf("benchmarks = %s", got)
	}
	mcp := rs[2]
	if v, _ := mcp.get("ratio-p50"); mcp.N != 20 || v != 2.399 || mcp.Pkg != "github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter" {
		t.Fatalf("mcp result = %+v", mcp)
	}
}

func TestReport(t *testing.T) {
	var out strings.Builder
	e := env{Date: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), GoVersion: "go1.26", CPUs: 2}
	if err := report(&out, strings.NewReader(sample), e); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"ratios",
		"- Date: 2026-11-27 12:00 UTC\n- Go: go1.26\n- CPUs: 2\n",
		"| durable append, 64 writers: throughput vs raw Pebble | BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | 1.000x | ≥ 0.900x | met |",
		"| durable append, 64 writers: p50 vs raw Pebble | BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | 1.125x | ≤ 1.200x | met |",
		"| MCP execute p50 vs raw zmq4 | BenchmarkMCPExecuteRoundTrip | 2.399x | ≤ 1.050x | **NOT MET** |",
		"| actor `1+1` p50 vs raw zmq4 | BenchmarkKernelActorRoundTrip | not run | ≤ 1.050x | not run |",
		"| replay of 1M events | BenchmarkReplay1M | 1200000 events/s | ≥ 1000000 events/s | met |",
		"| replay peak heap | BenchmarkReplay1M | 80 MiB | < 100 MiB | met |",
		"| ratio-cache | BenchmarkOther | 0.500x | — | no target | |",
		"| github.com/mcp-jupyter/mcp-jupyter/infra/eventlog | BenchmarkAppend64Writers | 2000 | 500000 | 4000 events/s, 900 p50-µs, 30 appends/sync |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "## Every benchmark") > strings.Index(got, "## Ratios against baselines") {
		t.Errorf("the table of every benchmark should come before the ratios")
	}
}

// failedRun is `make bench` output where the first package panicked, the
// second called b.Fatal after measuring one benchmark, and the third
// passed with a figure that misses its target and a floor beside it.
const failedRun = `##benchreport begin ./actors/system/ KernelActorRoundTrip
goos: linux
pkg: github.com/mcp-jupyter/mcp-jupyter/actors/system
BenchmarkKernelActorRoundTrip-2   	mcp-jupyter: created the MCP bearer token (shown once):
  b0d4e796c1051f973c0078a6ffd1605b472a65d4cf0b0a92126f0d38711c4366
panic: the kernel went away

goroutine 7 [running]:
github.com/mcp-jupyter/mcp-jupyter/actors/system.BenchmarkKernelActorRoundTrip(0xc000)
exit status 2
FAIL	github.com/mcp-jupyter/mcp-jupyter/actors/system	3.1s
##benchreport end ./actors/system/ KernelActorRoundTrip 1
##benchreport begin ./infra/eventlog/ .
pkg: github.com/mcp-jupyter/mcp-jupyter/infra/eventlog
BenchmarkRawPebbleApplySync64Writers-2   	    2000	    400000 ns/op	      4000 events/s	       800.0 p50-µs
BenchmarkAppend64Writers-2   	--- FAIL: BenchmarkAppend64Writers-2
    bench_test.go:40: open log: no space left on device
FAIL
exit status 1
FAIL	github.com/mcp-jupyter/mcp-jupyter/infra/eventlog	2.0s
##benchreport end ./infra/eventlog/ . 1
##benchreport begin ./cmd/mcp-jupyter/ MCPExecuteRoundTrip
pkg: github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter
BenchmarkMCPExecuteRoundTrip-2   	      50	   7000000 ns/op	      7000 p50-µs	         1.094 ratio-p50	      6400 raw-p50-µs	       700.0 fsync-p50-µs	         1.109 floor-ratio
PASS
ok  	github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter	9.0s
##benchreport end ./cmd/mcp-jupyter/ MCPExecuteRoundTrip 0
##benchreport begin ./actors/checkpoint/ .
pkg: github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint
BenchmarkSaveLoad250MB-2   	       1	   9000000 ns/op	         1.300 ratio-save	         1.050 ratio-load	         2.100 mac-GBps
`

func TestReportListsFailedRunsAndGoesOn(t *testing.T) {
	parsed, err := parse(strings.NewReader(failedRun))
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed.Failures) != 3 {
		t.Fatalf("failures = %+v, want the panic, the b.Fatal and the run cut short", parsed.Failures)
	}
	var out strings.Builder
	if err := report(&out, strings.NewReader(failedRun), env{Date: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), GoVersion: "go1.26", CPUs: 2}); err != nil {
		t.Fatalf("a failed run made the report fail: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		// The panicked package: its row is FAILED, not "not run", and its tail is shown.
		"| actor `1+1` p50 vs raw zmq4 | BenchmarkKernelActorRoundTrip | FAILED | ≤ 1.050x | **FAILED** (./actors/system/) |  |",
		"### FAILED: ./actors/system/ -bench 'KernelActorRoundTrip' (exit status 1)",
		"panic: the kernel went away",
		// b.Fatal after its baseline measured: the pair is FAILED.
		"| durable append, 64 writers: throughput vs raw Pebble | BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | FAILED | ≥ 0.900x | **FAILED** (./infra/eventlog/) |  |",
		"Benchmarks without figures: BenchmarkAppend64Writers.",
		"open log: no space left on device",
		"| github.com/mcp-jupyter/mcp-jupyter/infra/eventlog | BenchmarkRawPebbleApplySync64Writers | 2000 | 400000 |",
		// A missed target with its floor beside it, which alone misses it.
		"| MCP execute p50 vs raw zmq4 | BenchmarkMCPExecuteRoundTrip | 1.094x | ≤ 1.050x | **NOT MET** | fsync floor p50 700 µs; (raw+fsync)/raw 1.109x — this floor alone misses the target |",
		// A run cut short (no end marker) still keeps what it measured.
		"| checkpoint save of 250 MB vs raw dill.dump | BenchmarkSaveLoad250MB | 1.300x | ≤ 1.100x | **NOT MET** | MAC throughput floor 2.100 GB/s |",
		"| checkpoint load of 250 MB vs raw dill.load | BenchmarkSaveLoad250MB | 1.050x | ≤ 1.100x | met | MAC throughput floor 2.100 GB/s |",
		"### FAILED: ./actors/checkpoint/ -bench '.' (no exit status: the run was cut short)",
		// Benchmarks absent from the run (other packages not built yet).
		"| start_kernel (MCP) p50 with a pool of pre-started kernels | BenchmarkStartKernelPooled | not run | ≤ 50 ms | not run |  |",
		"| MCP `execute(\"1+1\")` p50, official TypeScript SDK over stdio, vs jupyter_client execute_interactive | BenchmarkSDKStdioExecute | not run | ≤ 1.000x | not run |  |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "b0d4e796c1051f973c0078a6ffd1605b472a65d4cf0b0a92126f0d38711c4366") {
		t.Errorf("the report carries a bearer token from a failed run's output")
	}
}

// Every row of the issue's table is in the report, with the issue's target.
func TestReportHasEveryFigureOfTheIssue(t *testing.T) {
	var out strings.Builder
	if err := report(&out, strings.NewReader(""), env{}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| BenchmarkMCPExecuteRoundTrip | not run | ≤ 1.050x |",
		"| BenchmarkSDKStdioExecute | not run | ≤ 1.000x |",
		"| BenchmarkQueue1000 | not run | ≥ 0.950x |",
		"| BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | not run | ≥ 0.900x |",
		"| BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | not run | ≤ 1.200x |",
		"| checkpoint save of 250 MB vs raw dill.dump | BenchmarkSaveLoad250MB | not run | ≤ 1.100x |",
		"| checkpoint load of 250 MB vs raw dill.load | BenchmarkSaveLoad250MB | not run | ≤ 1.100x |",
		"| BenchmarkHealthWhileStreaming | not run | ≤ 5 ms |",
		"| BenchmarkFanOut100 | not run | ≥ 0.950x |",
		"| BenchmarkStartKernelPooled | not run | ≤ 50 ms |",
		"| actor `1+1` p50 vs raw zmq4 | BenchmarkKernelActorRoundTrip | not run | ≤ 1.050x |",
		"| BenchmarkChannelsExecute | not run | ≤ 1.000x |",
		"| BenchmarkFrontends10 | not run | ≥ 0.950x |",
		"| BenchmarkConsoleIOPubToText | not run | ≤ 50 ms |",
		"| BenchmarkConsoleIOPubToText | not run | ≤ 200 ms |",
		"| BenchmarkConsole100kLines | not run | ≤ 100 ms |",
		"| BenchmarkConsole100kLines | not run | ≤ 5 x |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestMakeBenchGoesOn runs the Makefile's bench loop on two packages: the
// first panics, the second measures a figure that misses its target. The
// loop must go on past the panic, exit 0 and write a report that lists the
// panic as FAILED and the figure as NOT MET.
func TestMakeBenchGoesOn(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to run the bench loop (the README's commands use it): %v", err)
	}
	dir := t.TempDir()
	reportPath := filepath.Join(dir, "benchmarks.md")
	cmd := exec.Command("make", "--no-print-directory", "-C", "../..", "bench-run",
		"BENCHES=./cmd/benchreport/testdata/panics/:.:1x ./cmd/benchreport/testdata/misses/:.:1x",
		"BENCH_OUT="+filepath.Join(dir, "bench.txt"), "BENCH_REPORT="+reportPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make bench-run failed (%v); it must finish and exit 0:\n%s", err, out)
	}
	for _, want := range []string{"FAILED (exit 1): listed in the report; going on", "bench: FAILED runs", "wrote " + reportPath} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make output lacks %q:\n%s", want, out)
		}
	}
	md, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatalf("no report written: %v\n%s", err, out)
	}
	for _, want := range []string{
		"| actor `1+1` p50 vs raw zmq4 | BenchmarkKernelActorRoundTrip | FAILED | ≤ 1.050x | **FAILED** (./cmd/benchreport/testdata/panics/) |",
		"panic: the kernel went away",
		"| 100 WebSocket clients, one stalled: throughput vs none stalled | BenchmarkFanOut100 | 0.500x | ≥ 0.950x | **NOT MET** |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// BENCH_STRICT=1: the report is still written, then the exit says a run failed.
	strict := exec.Command("make", "--no-print-directory", "-C", "../..", "bench-run", "BENCH_STRICT=1",
		"BENCHES=./cmd/benchreport/testdata/panics/:.:1x",
		"BENCH_OUT="+filepath.Join(dir, "bench2.txt"), "BENCH_REPORT="+filepath.Join(dir, "strict.md"))
	if out, err := strict.CombinedOutput(); err == nil {
		t.Errorf("BENCH_STRICT=1 exited 0 with a failed package:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "strict.md")); err != nil {
		t.Errorf("BENCH_STRICT=1 wrote no report: %v", err)
	}
}

// A package run with the pattern "." that fails before printing any
// benchmark (a build error, a panic in TestMain): every target of that
// package is FAILED, not "not run"; targets of other packages are not.
func TestFailedDotRunCoversItsPackage(t *testing.T) {
	in := `##benchreport begin ./infra/ws/ .
# github.com/mcp-jupyter/mcp-jupyter/infra/ws [github.com/mcp-jupyter/mcp-jupyter/infra/ws.test]
infra/ws/bench_test.go:12:2: undefined: nope
FAIL	github.com/mcp-jupyter/mcp-jupyter/infra/ws [build failed]
##benchreport end ./infra/ws/ . 1
`
	var out strings.Builder
	if err := report(&out, strings.NewReader(in), env{}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| 100 WebSocket clients, one stalled: throughput vs none stalled | BenchmarkFanOut100 | FAILED | ≥ 0.950x | **FAILED** (./infra/ws/) |",
		"| WebSocket p99 delivery at 1,000 events/s | BenchmarkFanOut100 | FAILED |",
		"| heap with a stalled client and a huge cell | BenchmarkMemoryBigCell | FAILED |",
		"| actor `1+1` p50 vs raw zmq4 | BenchmarkKernelActorRoundTrip | not run |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

// Every target names the package that declares its benchmarks (covers
// relies on it).
func TestTargetsNameTheirPackage(t *testing.T) {
	for _, tg := range targets {
		for _, b := range []string{tg.Bench, tg.Baseline} {
			if b == "" {
				continue
			}
			files, _ := filepath.Glob(filepath.Join("..", "..", tg.Pkg, "*_test.go"))
			found := false
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				found = found || strings.Contains(string(src), "\nfunc "+b+"(")
			}
			if !found {
				t.Errorf("target %q: package %q declares no %s", tg.What, tg.Pkg, b)
			}
		}
	}
}

// A line longer than any buffer (a benchmark printing a huge cell) is cut,
// and the figures after it are still in the report.
func TestParseSurvivesAHugeLine(t *testing.T) {
	huge := strings.Repeat("x", 3<<20)
	in := "pkg: github.com/mcp-jupyter/mcp-jupyter/projections\n" + huge + "\n" +
		"BenchmarkReplay1M-2   \t       1\t900000000 ns/op\t   1200000 events/s\t        80.00 peak-heap-MiB\n"
	parsed, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatalf("a %d-byte line made parse fail: %v", len(huge), err)
	}
	if len(parsed.Results) != 1 || parsed.Results[0].Name != "BenchmarkReplay1M" {
		t.Fatalf("results after a huge line = %+v", parsed.Results)
	}
	// A failed run's tail shows the cut line, bounded.
	parsed, err = parse(strings.NewReader("##benchreport begin ./projections/ .\n" + huge + "\n##benchreport end ./projections/ . 1\n"))
	if err != nil || len(parsed.Failures) != 1 {
		t.Fatalf("parse = %+v, %v", parsed.Failures, err)
	}
	tail := parsed.Failures[0].Tail
	if len(tail) != 1 || len(tail[0]) > maxLine+100 || !strings.Contains(tail[0], "cut]") {
		t.Fatalf("tail of the failed run: %d lines, first %d bytes", len(tail), len(tail[0]))
	}
}

// The issue 16 figures, as their benchmarks print them: the frontend's
// `1+1` ratio against a real jupyter_server (met here) and against one with
// TCP_NODELAY (missed here), and the stalled frontend's throughput ratio
// (missed here), each with its notes.
func TestReportFrontendFigures(t *testing.T) {
	in := `pkg: github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter
BenchmarkChannelsExecute-2   	     300	   2000000 ns/op	      1800 p50-µs	      2000 jupyter-server-p50-µs	      1500 jupyter-server-nodelay-p50-µs	         0.9000 ratio-p50-vs-jupyter-server	         1.200 ratio-p50-vs-jupyter-server-nodelay
BenchmarkFrontends10-2   	       1	9000000000 ns/op	      5000 lines/s-base	      4500 lines/s-stalled	         0.9000 ratio-stalled-throughput	         5.000 rounds	         1.010 ratio-stalled-cpu	         0 stalled-closed
`
	var out strings.Builder
	if err := report(&out, strings.NewReader(in), env{}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| `1+1` through the channels WebSocket (a frontend, v1 subprotocol) p50 vs the same through a real jupyter_server | BenchmarkChannelsExecute | 0.900x | ≤ 1.000x | met | ours p50 1800 µs; jupyter_server p50 (Nagle on: waits for delayed ACKs) 2000 µs |",
		"| the same vs a jupyter_server with TCP_NODELAY on its kernel WebSockets (the stricter baseline) | BenchmarkChannelsExecute | 1.200x | ≤ 1.000x | **NOT MET** | its p50 1500 µs |",
		"| 10 frontends on one kernel while an agent streams 10,000 lines: one stalled frontend vs none, throughput | BenchmarkFrontends10 | 0.900x | ≥ 0.950x | **NOT MET** | lines/s without a stalled frontend 5000; wall clock, median of 5; CPU cost per line (blind to waiting) 1.010x; stalled frontend closed by the server per stalled run 0 |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
