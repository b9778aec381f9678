package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// jupyterClientBench is the baseline script, from this package's directory.
var jupyterClientBench = filepath.Join("..", "..", "testkit", "outside", "jupyterclient", "execute_bench.py")

// BenchmarkSDKStdioExecute: execute("1+1") through the official MCP
// TypeScript SDK (testkit/outside/mcpsdk/stdio_bench.mjs), which spawns the
// real server binary with the stdio transport as a desktop agent does,
// beside jupyter_client's execute_interactive("1+1") on a kernel of the
// same kernelspec started by jupyter_client itself (/usr/bin/python3,
// testkit/outside/jupyterclient/execute_bench.py), in the same run: each
// iteration times one of each, alternating, each timed inside its client.
// Target: ratio-p50-vs-jupyter-client ≤ 1.0 — an agent pays no more for a
// durable server than for a bare Jupyter client.
func BenchmarkSDKStdioExecute(b *testing.B) {
	node := outsideSDKReady(b)
	bin := buildBinary(b)
	dataDir := testkit.TempDataDir(b)
	specDir := testkit.KernelSpecDir(b)
	b.Cleanup(func() { testkit.KillKernels(b, dataDir) })
	logs := filepath.Join(b.TempDir(), "server.log")
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir, "MCPJ_BIN="+bin, "MCPJ_SERVER_LOG="+logs)

	sdk := startBenchClient(b, "the TypeScript SDK over stdio", outsideSDKDir, env, logs, node, "stdio_bench.mjs")
	raw := startBenchClient(b, "jupyter_client", ".", env, "", testkit.PythonWithIPyKernel(b), jupyterClientBench)

	var sdkLat, rawLat []time.Duration
	b.ResetTimer()
	for range b.N {
		sdkLat = append(sdkLat, sdk.run(b, 1)...)
		rawLat = append(rawLat, raw.run(b, 1)...)
	}
	b.StopTimer()
	sdk.quit(b)
	raw.quit(b)
	p50, rawP50 := testkit.P50(sdkLat), testkit.P50(rawLat)
	b.ReportMetric(p50, "sdk-p50-µs")
	b.ReportMetric(rawP50, "jupyter-client-p50-µs")
	b.ReportMetric(p50/rawP50, "ratio-p50-vs-jupyter-client")
}

// benchClient is a timing script driven over stdin/stdout: "N" runs N
// executes and answers their latencies (µs) as a JSON array.
type benchClient struct {
	what   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	stderr *strings.Builder
	logs   string
}

func startBenchClient(tb testing.TB, what, dir string, env []string, logs string, argv ...string) *benchClient {
	tb.Helper()
	c := &benchClient{what: what, lines: make(chan string, 1), stderr: &strings.Builder{}, logs: logs}
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Dir, c.cmd.Env, c.cmd.Stderr = dir, env, c.stderr
	c.cmd.WaitDelay = 10 * time.Second
	var err error
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", what, err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	tb.Cleanup(func() {
		_ = c.in.Close()
		_ = c.cmd.Process.Kill()
		for range c.lines { // NB: drains until the reader ends
		}
		_ = c.cmd.Wait()
	})
	if line := c.next(tb, 5*time.Minute); line != "ready" {
		tb.Fatalf("%s: want ready, got %q", what, line)
	}
	return c
}

// next is the script's next stdout line, failing with its stderr (and the
// server's log) when it ends or says nothing in time.
func (c *benchClient) next(tb testing.TB, timeout time.Duration) string {
	tb.Helper()
	select {
	case line, ok := <-c.lines:
		if ok {
			return line
		}
		_ = c.cmd.Wait()
		tb.Fatalf("%s ended (%v): %s\n%s", c.what, c.cmd.ProcessState, c.stderr.String(), tail(c.logs))
	case <-time.After(timeout):
		tb.Fatalf("%s said nothing for %s: %s\n%s", c.what, timeout, c.stderr.String(), tail(c.logs))
	}
	return ""
}

// run times n executes.
func (c *benchClient) run(tb testing.TB, n int) []time.Duration {
	tb.Helper()
	if _, err := fmt.Fprintf(c.in, "%d\n", n); err != nil {
		tb.Fatalf("%s: %v", c.what, err)
	}
	var us []float64
	if line := c.next(tb, 5*time.Minute); json.Unmarshal([]byte(line), &us) != nil || len(us) != n {
		tb.Fatalf("%s: want %d latencies, got %q", c.what, n, line)
	}
	lat := make([]time.Duration, n)
	for i, v := range us {
		lat[i] = time.Duration(v * float64(time.Microsecond))
	}
	return lat
}

// quit asks the script to shut its kernel down and end, and waits.
func (c *benchClient) quit(tb testing.TB) {
	tb.Helper()
	_, _ = io.WriteString(c.in, "quit\n")
	for range c.lines {
	}
	if err := c.cmd.Wait(); err != nil {
		tb.Fatalf("%s at quit: %v: %s", c.what, err, c.stderr.String())
	}
}
