package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// output200MB prints 200 MB from one execution: 190,000 lines of 1,000
// bytes in a tight loop (ipykernel batches them into stream messages of
// many MB) and then five single writes of 2 MB.
const output200MB = "import sys\n" +
	"for i in range(190_000):\n    print('x'*999)\n" +
	"for i in range(5):\n    sys.stdout.write('y'*2_000_000)\n    sys.stdout.flush()\n"

// rssSampler records the peak VmRSS of this process while it runs.
type rssSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak int64 // KiB
}

func startRSSSampler() *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, ok := procStatusKiB("VmRSS"); ok {
				s.mu.Lock()
				s.peak = max(s.peak, kb)
				s.mu.Unlock()
			}
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak in MiB.
func (s *rssSampler) Stop() float64 {
	close(s.stop)
	s.wg.Wait()
	return float64(s.peak) / 1024
}

// procStatusKiB reads one "kB" field of /proc/self/status.
func procStatusKiB(field string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// outputMemoryLimit is the Go soft memory limit docs/operations.md gives
// for a server that must stay within 150 MB (GOMEMLIMIT=80MiB).
const outputMemoryLimit = 80 << 20

// BenchmarkOutput200MBRSS: the peak RSS of the whole in-process server (log,
// actors, read models, MCP edge) while one execution prints 200 MB and an
// agent reads it all through the real MCP client: execute, then
// get_execution from each reply's cursor until it is finished and nothing
// more follows. Every byte is durable; the test process's RSS is sampled
// every 5 ms. It runs twice: with Go's default GC (peak-rss-MiB-default)
// and with the soft memory limit docs/operations.md recommends
// (GOMEMLIMIT=80MiB: peak-rss-MiB). Target: peak-rss-MiB ≤ 150.
func BenchmarkOutput200MBRSS(b *testing.B) {
	c, connect := inProcess(b)
	cl := connect()
	k := startKernelTool(b, cl)
	var peakDefault, peakLimited float64
	b.ResetTimer()
	for range b.N {
		for _, limited := range []bool{true, false} {
			limit := int64(math.MaxInt64)
			if limited {
				limit = outputMemoryLimit
			}
			old := debug.SetMemoryLimit(limit)
			debug.FreeOSMemory()
			s := startRSSSampler()
			id, replies := readWholeExecution(b, cl, k, output200MB)
			peak := s.Stop()
			debug.SetMemoryLimit(old)
			b.StopTimer()
			if limited {
				peakLimited = max(peakLimited, peak)
			} else {
				peakDefault = max(peakDefault, peak)
			}
			b.ReportMetric(float64(replies), "replies")
			if n := streamBytes(b, c, id); n < 200_000_000 {
				b.Fatalf("%d bytes of stream output recorded, want 200 MB", n)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(peakLimited, "peak-rss-MiB")
	b.ReportMetric(peakDefault, "peak-rss-MiB-default")
}

// readWholeExecution runs code through execute and reads every output with
// get_execution, as an agent pages a long result, until the execution is
// finished and no output is left to read; it returns the execution's id
// and how many replies that took.
func readWholeExecution(tb testing.TB, cl *client.Client, kernel, code string) (string, int) {
	tb.Helper()
	sc, text := callTool(tb, cl, "execute", map[string]any{"kernel": kernel, "code": code, "timeout_s": 600})
	id, _ := sc["execution_id"].(string)
	replies := 1
	for sc["more_output"] == true || !queue.Status(fmt.Sprint(sc["status"])).Done() {
		cursor, _ := sc["cursor"].(float64)
		sc, text = callTool(tb, cl, "get_execution", map[string]any{"execution_id": id, "since": uint64(cursor), "wait_s": 30})
		replies++
	}
	if sc["status"] != "ok" || sc["outputs_incomplete"] != nil {
		tb.Fatalf("execution %s: %v\n%.300s", id, sc, text)
	}
	return id, replies
}

// streamBytes pages the execution's stored outputs from the read model.
func streamBytes(tb testing.TB, c *core, id string) int {
	tb.Helper()
	n := 0
	for since, more := uint64(0), true; more; {
		v, err := c.execs.Read(context.Background(), id, since)
		if err != nil {
			tb.Fatal(err)
		}
		for _, o := range v.Outputs {
			if o.MsgType == "stream" {
				n += len(o.Content)
			}
		}
		since, more = v.Cursor, v.More
	}
	return n
}
