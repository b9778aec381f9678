package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The cluster mode's figures (issue 20, `make bench`): each is reported,
// a missed target is marked NOT MET by cmd/benchreport, never failed here.

// BenchmarkClusterRoutedExecute: execute `1+1` through a node that is not
// the kernel's owner (routed over NATS) vs through the owner, alternated
// so both see the same machine. overhead-ms is the difference of the p50s
// (target ≤ 1 ms). Three processes over real loopback routes, without the
// harness's proxies (BenchmarkRoutedExecute measures it in one process).
func BenchmarkClusterRoutedExecute(b *testing.B) {
	c := testkit.StartCluster(b, 3, testkit.ClusterOptions{DirectRoutes: true})
	k := startKernelTool(b, c.Client(1))
	o := clusterOwner(b, c, 1, k)
	owner, routed := c.Client(o), c.Client(1+o%c.N())
	args := map[string]any{"kernel": k, "code": "1+1"}
	for _, cl := range []*client.Client{owner, routed, owner, routed} { // warm up both paths
		if sc, text := callTool(b, cl, "execute", args); sc["status"] != "ok" {
			b.Fatalf("warm-up execute: %v %s", sc, text)
		}
	}
	run := func(cl *client.Client) time.Duration {
		start := time.Now()
		sc, text, err := tryTool(cl, "execute", args)
		d := time.Since(start)
		if err != nil || sc["status"] != "ok" {
			b.Fatalf("execute: %v %v %s", err, sc, text)
		}
		return d
	}
	var onOwner, viaOther []time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			onOwner, viaOther = append(onOwner, run(owner)), append(viaOther, run(routed))
		} else {
			viaOther, onOwner = append(viaOther, run(routed)), append(onOwner, run(owner))
		}
	}
	b.StopTimer()
	p50, rp50 := testkit.P50(onOwner)/1000, testkit.P50(viaOther)/1000
	b.ReportMetric(p50, "owner-p50-ms")
	b.ReportMetric(rp50, "routed-p50-ms")
	b.ReportMetric(rp50-p50, "overhead-ms")
}

// BenchmarkClusterFailover: from the kill -9 of a kernel's owner to the
// first execution answered for it on another node, against the budget
// lease + restore (from the adopting node's KernelAdopted to its
// KernelRestored) + 2 s (target failover-vs-budget-x ≤ 1).
func BenchmarkClusterFailover(b *testing.B) {
	var failover, budget, restore []float64
	for range b.N {
		b.StopTimer()
		// NB: the default 10 s lease, as TestClusterFailover (why there).
		c := testkit.StartCluster(b, 3, testkit.ClusterOptions{DirectRoutes: true, Lease: 10 * time.Second})
		k := startKernelTool(b, c.Client(1))
		o := clusterOwner(b, c, 1, k)
		via := 1 + o%c.N()
		clv := c.Client(via)
		if sc, text := executeToEnd(b, clv, map[string]any{"kernel": k, "code": "x = 41", "execution_id": "bf-set"}); sc["status"] != "ok" {
			b.Fatalf("x = 41: %v %s", sc, text)
		}
		waitAutoCheckpoint(b, c, o, k, "bf-set")
		b.StartTimer()
		killed := time.Now()
		c.Kill9(o)
		for try := 0; ; try++ {
			sc, _, err := tryTool(clv, "execute", map[string]any{"kernel": k, "code": "x", "execution_id": fmt.Sprintf("bf-probe-%d", try), "timeout_s": 30})
			if err == nil && sc["status"] == "ok" {
				break
			}
			if time.Since(killed) > 3*c.Lease()+120*time.Second {
				b.Fatalf("kernel %s not served again %s after the kill\n%s", k, time.Since(killed), c.LogsTail(4000))
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(killed)
		b.StopTimer()
		adopted, restored := adoption(b, nodeEvents(b, c, via), k)
		r := restored.Time.Sub(adopted.Time)
		failover = append(failover, took.Seconds())
		restore = append(restore, r.Seconds())
		budget = append(budget, (c.Lease() + r + 2*time.Second).Seconds())
	}
	f, bu, r := medianMs(failover), medianMs(budget), medianMs(restore)
	b.ReportMetric(f, "failover-s")
	b.ReportMetric(r, "restore-s")
	b.ReportMetric(bu, "budget-s")
	b.ReportMetric(f/bu, "failover-vs-budget-x")
}

// BenchmarkClusterThroughput: executions/s of three kernels run at once,
// on one node vs spread over three nodes (each kernel driven through its
// owner), and each node's resident memory (/proc/<pid>/status VmRSS) after.
// On a machine of 2 cores three nodes cannot go 3x: the figure is
// reported, no target.
func BenchmarkClusterThroughput(b *testing.B) {
	const kernels, perKernel = 3, 100
	measure := func(n int) (float64, []float64) {
		c := testkit.StartCluster(b, n, testkit.ClusterOptions{DirectRoutes: true})
		type job struct {
			cl *client.Client
			k  string
		}
		var jobs []job
		for range kernels {
			k := startKernelTool(b, c.Client(1))
			cl := c.Client(1) // NB: one node is a single server: no owner to find
			if n > 1 {
				cl = c.Client(clusterOwner(b, c, 1, k))
			}
			jobs = append(jobs, job{cl, k})
		}
		for _, j := range jobs {
			if sc, text := callTool(b, j.cl, "execute", map[string]any{"kernel": j.k, "code": "1+1"}); sc["status"] != "ok" {
				b.Fatalf("warm-up: %v %s", sc, text)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, kernels)
		start := time.Now()
		for _, j := range jobs {
			wg.Go(func() {
				for range perKernel {
					if sc, text, err := tryTool(j.cl, "execute", map[string]any{"kernel": j.k, "code": "1+1"}); err != nil || sc["status"] != "ok" {
						errs <- fmt.Errorf("execute on %s: %v %v %s", j.k, err, sc, text)
						return
					}
				}
			})
		}
		wg.Wait()
		rate := float64(kernels*perKernel) / time.Since(start).Seconds()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		var rss []float64
		for i := 1; i <= n; i++ {
			rss = append(rss, rssMiB(b, c.Pid(i)))
		}
		return rate, rss
	}
	for range b.N {
		one, _ := measure(1)
		three, rss := measure(3)
		b.ReportMetric(one, "1-node-execs/s")
		b.ReportMetric(three, "3-node-execs/s")
		b.ReportMetric(three/one, "3-vs-1-x")
		for i, m := range rss {
			b.ReportMetric(m, "rss-node"+strconv.Itoa(i+1)+"-MiB")
		}
	}
}

// rssMiB is process pid's resident memory, from /proc/<pid>/status.
func rssMiB(t testing.TB, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb / 1024
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
