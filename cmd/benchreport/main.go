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
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// A target is one promise about speed: a metric of a benchmark, divided by
// the same metric of a baseline benchmark when Baseline is set, compared
// with Limit.
type target struct {
	What     string
	Bench    string
	Metric   string
	Baseline string // "" for an absolute target
	AtLeast  bool   // ≥ Limit when true, ≤ Limit (< for Strict) otherwise
	Strict   bool
	Limit    float64
	Unit     string // shown after absolute values
}

// targets are the figures the issues promise.
var targets = []target{
	{What: "append throughput vs raw Pebble", Bench: "BenchmarkAppend64Writers", Metric: "events/s",
		Baseline: "BenchmarkRawPebbleApplySync64Writers", AtLeast: true, Limit: 0.8},
	{What: "append p50 vs raw Pebble", Bench: "BenchmarkAppend64Writers", Metric: "p50-µs",
		Baseline: "BenchmarkRawPebbleApplySync64Writers", Limit: 1.25},
	{What: "append throughput with a principal in the envelope vs without", Bench: "BenchmarkAppendWithPrincipal64Writers", Metric: "events/s",
		Baseline: "BenchmarkAppend64Writers", AtLeast: true, Limit: 0.9},
	{What: "actor `1+1` p50 vs raw zmq4", Bench: "BenchmarkKernelActorRoundTrip", Metric: "ratio-p50", Limit: 1.10},
	{What: "actor `1+1` p50 vs jupyter_client execute_interactive", Bench: "BenchmarkKernelActorRoundTrip", Metric: "ratio-p50-vs-jupyter-client", Limit: 1.0},
	{What: "MCP execute p50 vs raw zmq4", Bench: "BenchmarkMCPExecuteRoundTrip", Metric: "ratio-p50", Limit: 1.15},
	{What: "1,000 queued throughput vs raw one by one", Bench: "BenchmarkQueue1000", Metric: "ratio-throughput",
		AtLeast: true, Limit: 0.8},
	{What: "replay of 1M events", Bench: "BenchmarkReplay1M", Metric: "events/s", AtLeast: true, Limit: 1_000_000, Unit: "events/s"},
	{What: "replay peak heap", Bench: "BenchmarkReplay1M", Metric: "peak-heap-MiB", Strict: true, Limit: 100, Unit: "MiB"},
	{What: "restart to ready (1M events)", Bench: "BenchmarkRestartToReady1M", Metric: "ms/restart", Limit: 200, Unit: "ms"},
	{What: "read_notebook of 1,000 cells / 20 MB", Bench: "BenchmarkReadNotebookTool20MB", Metric: "p50-ms", Limit: 100, Unit: "ms"},
	{What: "run_cell p50 vs execute", Bench: "BenchmarkRunCellVsExecute", Metric: "ratio-p50", Limit: 1.05},
	{What: "replay of 1M events into the read models vs bare scan and decode", Bench: "BenchmarkReplay1M", Metric: "ratio-vs-scan",
		AtLeast: true, Limit: 0.7},
	{What: "restart to ready with snapshots vs full replay (1M events)", Bench: "BenchmarkRestartToReady1M", Metric: "ratio-restart-vs-replay", Limit: 0.2},
	{What: "`events tail --json` over 1M events to /dev/null", Bench: "BenchmarkEventsTail1M", Metric: "events/s", AtLeast: true, Limit: 500_000, Unit: "events/s"},
	{What: "`events replay --until` the middle of 1M events", Bench: "BenchmarkEventsReplayMiddle1M", Metric: "ms/replay", Limit: 2000, Unit: "ms"},
	{What: "100,000-line cell wall time vs raw zmq4", Bench: "BenchmarkPrint100kLines", Metric: "ratio-wall", Limit: 1.2},
	{What: "20,000 display_data with a slowed log: captured in order", Bench: "BenchmarkDisplayFlood20k", Metric: "ratio-captured", AtLeast: true, Limit: 1.0},
	{What: "server heap with 20 idle kernels", Bench: "BenchmarkIdleKernelsHeap", Metric: "heap-MiB", Limit: 50, Unit: "MiB"},
	{What: "100 WebSocket clients, one stalled: throughput vs none stalled", Bench: "BenchmarkFanOut100", Metric: "ratio-stalled-throughput", AtLeast: true, Limit: 0.9},
	{What: "WebSocket p99 delivery at 1,000 events/s", Bench: "BenchmarkFanOut100", Metric: "p99-ms", Strict: true, Limit: 20, Unit: "ms"},
	{What: "heap with a stalled client and a huge cell", Bench: "BenchmarkMemoryBigCell", Metric: "heap-MiB-256", Strict: true, Limit: 200, Unit: "MiB"},
	{What: "GC over 100,000 assets, 10% leased", Bench: "BenchmarkGC100k", Metric: "gc-s", Strict: true, Limit: 5, Unit: "s"},
	{What: "checkpoint save of 250 MB vs raw dill.dump", Bench: "BenchmarkSaveLoad250MB", Metric: "ratio-save", Limit: 1.15},
	{What: "checkpoint load of 250 MB vs raw dill.load", Bench: "BenchmarkSaveLoad250MB", Metric: "ratio-load", Limit: 1.15},
	{What: "checkpoint load's private copy of 250 MB: verify and copy vs verify in place", Bench: "BenchmarkLoadPrivateCopy250MB", Metric: "ratio-copy", Limit: 1.3},
	{What: "/metrics scrape, 100 kernels and 10,000 executions", Bench: "BenchmarkScrape100Kernels10kExecutions", Metric: "ms/scrape", Limit: 50, Unit: "ms"},
	{What: "/health p99 while 64 executions stream output", Bench: "BenchmarkHealthWhileStreaming", Metric: "p99-ms", Limit: 5, Unit: "ms"},
	{What: "server RSS while one execution prints 200 MB (read to the end through MCP)", Bench: "BenchmarkOutput200MBRSS", Metric: "peak-rss-MiB", Limit: 150, Unit: "MiB"},
	{What: "get_execution(since=end) p50, 20,000 outputs vs 10", Bench: "BenchmarkGetExecutionSinceEnd", Metric: "ratio-p50", Limit: 1.5},
	{What: "64 waiters on 64 executions: wake-ups per append (its own only)", Bench: "BenchmarkWake64Waiters", Metric: "wakes/append", Limit: 1, Unit: "wakes"},
	{What: "64 waiters: wake-ups of another execution's waiter", Bench: "BenchmarkWake64Waiters", Metric: "stray-wakes", Strict: true, Limit: 1, Unit: "wakes"},
	{What: "NATS subscriber p99 after durable", Bench: "BenchmarkDeliveryAfterDurable", Metric: "p99-µs", Limit: 5000, Unit: "µs"},
	{What: "token check with 1,000 principals vs 1 (flat)", Bench: "BenchmarkAuthenticate1000Principals", Metric: "ratio-1000-vs-1", Limit: 1.5},
	{What: "OAuth JWT check per request (RS256, keys cached)", Bench: "BenchmarkOIDCAuthenticate", Metric: "µs/check", Limit: 500, Unit: "µs"},
	{What: "issuer key set fetches caused by 1,000 forged JWTs", Bench: "BenchmarkOIDCAuthenticate", Metric: "fetches-per-1000-forged", Limit: 1, Unit: "fetches"},
	{What: "kernel start: sandbox overhead (beside an unsandboxed start)", Bench: "BenchmarkKernelStartSandbox", Metric: "overhead-ms", Limit: 50, Unit: "ms"},
	{What: "server peak RSS with eight 50 MB /mcp request bodies refused", Bench: "BenchmarkRefusedBodies8x50MB", Metric: "peak-rss-MiB", Limit: 100, Unit: "MiB"},
	{What: "system.Open from the kernel registry snapshot vs a scan from seq 0 (200k events)", Bench: "BenchmarkSystemOpen", Metric: "ratio-snapshot-vs-full", Limit: 0.2},
	{What: "scheduler recovery (100k outputs) vs decoding the kernel's whole index", Bench: "BenchmarkSchedulerRecover", Metric: "ratio-recover-vs-decoded", Limit: 0.3},
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
	nameLine   = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?(?:\s|$)`)
	figureLine = regexp.MustCompile(`^\s*(\d+)\s+(\S+\s+\S+(?:\s+\S+\s+\S+)*)\s*$`)
)

// parse reads `go test -bench` output. A benchmark that printed while it ran
// has its name and its figures on different lines; the figures go to the
// last name seen.
func parse(in io.Reader) ([]result, error) {
	var out []result
	var pkg, pending string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		rest := line
		if m := nameLine.FindStringSubmatch(line); m != nil {
			pending = m[1]
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
		out = append(out, r)
		pending = ""
	}
	return out, sc.Err()
}

// env is what the report says about the run.
type env struct {
	Date      time.Time
	GoVersion string
	CPUs      int
}

func main() {
	if err := report(os.Stdout, os.Stdin, env{Date: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU()}); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func report(w io.Writer, in io.Reader, e env) error {
	results, err := parse(in)
	if err != nil {
		return err
	}
	byName := map[string]result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmarks\n\n")
	p("Generated by `make bench` (`go run ./cmd/benchreport`); do not edit by hand.\n\n")
	p("Absolute times on a shared or loaded machine are noise: they move with whatever else runs. ")
	p("What counts are the **ratios**: each benchmark runs beside its baseline (raw zmq4, raw Pebble) ")
	p("in the same run, so both see the same machine.\n\n")
	p("- Date: %s\n- Go: %s\n- CPUs: %d\n\n", e.Date.Format("2006-01-02 15:04 MST"), e.GoVersion, e.CPUs)

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
	p("| What | Benchmark | Measured | Target | Met |\n|---|---|---|---|---|\n")
	covered := map[string]bool{}
	for _, t := range targets {
		covered[t.Bench+"\x00"+t.Metric] = true
		p("| %s | %s | %s | %s | %s |\n", t.What, benchCell(t), t.measured(byName), t.limitText(), t.met(byName))
	}
	for _, r := range results {
		for _, m := range r.Metrics {
			if strings.HasPrefix(m.Unit, "ratio-") && !covered[r.Name+"\x00"+m.Unit] {
				p("| %s | %s | %s | — | no target |\n", m.Unit, r.Name, ratio(m.Value))
			}
		}
	}

	return nil
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

func (t target) measured(by map[string]result) string {
	v, ok := t.value(by)
	if !ok {
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

func (t target) met(by map[string]result) string {
	if t.Limit == 0 {
		return "no target"
	}
	v, ok := t.value(by)
	switch {
	case !ok:
		return "not measured"
	case t.AtLeast && v >= t.Limit, t.Strict && v < t.Limit, !t.AtLeast && !t.Strict && v <= t.Limit:
		return "met"
	}
	return "**NOT MET**"
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
