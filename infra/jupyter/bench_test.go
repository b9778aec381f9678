package jupyter_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// BenchmarkRawRoundTrip is the baseline later benchmarks compare to: one
// `1+1` execute_request until both execute_reply and idle arrived, with the
// raw client against one kernel. Compare with
// testdata/jupyter_client_roundtrip.py (jupyter_client's execute_interactive).
func BenchmarkRawRoundTrip(b *testing.B) {
	k := testkit.StartKernel(b)
	execute(b, k.Client, "1+1", 30*time.Second) // warm up
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		res := execute(b, k.Client, "1+1", 30*time.Second)
		lat = append(lat, time.Since(start))
		if res.Reply["status"] != "ok" {
			b.Fatalf("reply = %v", res.Reply)
		}
	}
	b.StopTimer()
	reportP50(b, lat)
}

func reportP50(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	for i := 1; i < len(lat); i++ { // insertion sort: b.N is small
		for j := i; j > 0 && lat[j] < lat[j-1]; j-- {
			lat[j], lat[j-1] = lat[j-1], lat[j]
		}
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkRawPrint100kLines: a cell printing 100,000 lines; every line must
// be captured, in order.
func BenchmarkRawPrint100kLines(b *testing.B) {
	k := testkit.StartKernel(b)
	const lines = 100_000
	b.ResetTimer()
	for range b.N {
		h, err := k.Client.Send(jupyter.Shell, "execute_request", jupyter.NewExecuteRequest("for i in range(100000): print(i)"))
		if err != nil {
			b.Fatal(err)
		}
		next, partial := 0, ""
		res := collect(b, k.Client, h.MsgID, 5*time.Minute, func(m jupyter.Message) {
			if m.Header.MsgType != "stream" {
				return
			}
			var c struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(m.Content, &c); err != nil {
				b.Fatal(err)
			}
			text := partial + c.Text
			start := 0
			for i := 0; i < len(text); i++ {
				if text[i] != '\n' {
					continue
				}
				if got := text[start:i]; got != strconv.Itoa(next) {
					b.Fatalf("line %d: got %q", next, got)
				}
				next++
				start = i + 1
			}
			partial = text[start:]
		})
		if next != lines || partial != "" || res.Gaps != 0 {
			b.Fatalf("captured %d lines (partial %q, %d dropped), want %d", next, partial, res.Gaps, lines)
		}
	}
}

// BenchmarkKernelStartSandbox: a kernel start to ready (StartKernel) through
// the sandbox launcher, beside an unsandboxed start in the same run, turn
// about so both see the same machine. overhead-ms is the difference of the
// medians, the figure of issue 13 (≤ 50 ms).
func BenchmarkKernelStartSandbox(b *testing.B) {
	spec := testkit.PythonKernelSpec(b)
	data := filepath.Join(b.TempDir(), "data")
	runtime := filepath.Join(data, "runtime")
	sb := &jupyter.Sandbox{Mode: sandbox.ModeRequired, Hide: []string{data}}
	startOne := func(confined bool) time.Duration {
		id := jupyter.NewID()
		kdir := jupyter.KernelDir(runtime, id)
		if err := os.MkdirAll(kdir, 0o700); err != nil {
			b.Fatal(err)
		}
		opts := jupyter.StartOptions{Launch: jupyter.LaunchOptions{DieWithServer: true, KernelDir: kdir}}
		if confined {
			opts.Launch.Sandbox = sb
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		start := time.Now()
		k, err := jupyter.StartKernel(ctx, spec, runtime, id, opts)
		took := time.Since(start)
		if err != nil {
			b.Fatalf("start kernel (sandbox %t): %v", confined, err)
		}
		if confined && !strings.HasPrefix(k.Process.Sandbox, "landlock") {
			b.Fatalf("kernel confined by %q", k.Process.Sandbox)
		}
		_ = k.Process.Signal(syscall.SIGKILL)
		select {
		case <-k.Process.Exited():
		case <-ctx.Done():
			b.Fatalf("kernel did not die")
		}
		_ = k.Close()
		return took
	}
	startOne(true) // warm up the page cache for both
	startOne(false)
	var with, without []time.Duration
	b.ResetTimer()
	for range b.N {
		with = append(with, startOne(true))
		without = append(without, startOne(false))
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[len(s)/2]
	}
	b.ReportMetric(float64(med(with).Microseconds())/1000, "sandboxed-ms")
	b.ReportMetric(float64(med(without).Microseconds())/1000, "unsandboxed-ms")
	b.ReportMetric(float64((med(with)-med(without)).Microseconds())/1000, "overhead-ms")
}
