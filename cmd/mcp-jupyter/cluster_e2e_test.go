package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The cluster mode end to end (docs/cluster.md): three real server
// processes on loopback ports (testkit.StartCluster), every route through
// a proxy of the harness, a 3 s lease and auto-checkpoints after 1 s idle.

// TestClusterForms: three nodes form one cluster: each is ready with its
// cluster check ok, has routes to the two others (its metric), none of
// them bypassing the harness's proxies; each node's MCP endpoint answers.
func TestClusterForms(t *testing.T) {
	c := testkit.StartCluster(t, 3, testkit.ClusterOptions{})
	if by := c.Bypasses(); len(by) > 0 {
		t.Errorf("routes bypass the harness's proxies: %v", by)
	}
	for i := 1; i <= c.N(); i++ {
		code, body := httpGet(t, c.Node(i).Addr, pathMetrics, c.Token)
		if code != 200 || !strings.Contains(body, "\nmcp_jupyter_cluster_routes 2\n") {
			t.Errorf("%s /metrics: %d, want mcp_jupyter_cluster_routes 2; got lines %q", c.Node(i).Name, code, metricLines(body, "mcp_jupyter_cluster"))
		}
		rd, err := c.Ready(i)
		if err != nil || rd.Code != 200 {
			t.Fatalf("%s /readyz: %+v %v", c.Node(i).Name, rd, err)
		}
		if rd.Checks["cluster"] != "ok" {
			t.Errorf("%s /readyz checks: %v: want cluster ok", c.Node(i).Name, rd.Checks)
		}
		if _, text := callTool(t, c.Client(i), "list_kernels", nil); strings.HasPrefix(text, "ERROR") {
			t.Errorf("%s list_kernels: %s", c.Node(i).Name, text)
		}
	}
}

// TestClusterOneEndpoint: a kernel started through node 1 is used through
// node 2, node 3's /ws streams what it does, and every node lists its
// executions: the agent never needs to know which node it reached.
func TestClusterOneEndpoint(t *testing.T) {
	c := testkit.StartCluster(t, 3, testkit.ClusterOptions{})
	k := startKernelTool(t, c.Client(1))
	ws := dialWS(t, c.Node(3).Addr, "kernel="+k, c.Token)

	cl2 := c.Client(2)
	if sc, text := executeToEnd(t, cl2, map[string]any{"kernel": k, "code": "x = 41", "execution_id": "one-set"}); sc["status"] != "ok" {
		t.Fatalf("x = 41 through node2: %v %s", sc, text)
	}
	sc, text := executeToEnd(t, cl2, map[string]any{"kernel": k, "code": "x + 1", "execution_id": "one-add"})
	if sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("x + 1 through node2: want ok with 42, got %v %s", sc, text)
	}
	ws.until("node3's /ws: the ExecutionFinished of one-add", finished("one-add"))
	var result bool
	for _, e := range ws.got {
		if e.Type == events.TypeIOPubMessageReceived && strings.Contains(string(e.Payload), `"execution_id":"one-add"`) && strings.Contains(string(e.Payload), "42") {
			result = true
		}
	}
	if !result {
		t.Errorf("node3's /ws carried no output of one-add holding 42; got %v", ws.got)
	}
	for i := 1; i <= c.N(); i++ {
		cl := c.Client(i)
		testkit.WaitUntil(t, 30*time.Second, c.Node(i).Name+" lists both executions", func() (bool, string) {
			sc, text := callTool(t, cl, "list_executions", map[string]any{"kernel": k})
			b, _ := json.Marshal(sc)
			return strings.Contains(string(b), `"one-set"`) && strings.Contains(string(b), `"one-add"`), text
		})
		sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": "one-add"})
		if sc["status"] != "ok" || !strings.Contains(text, "42") {
			t.Errorf("%s get_execution one-add: %v %s", c.Node(i).Name, sc, text)
		}
	}
}

// TestClusterFailover: the owner of a kernel is killed with SIGKILL (and
// its kernel with it, as when a machine is lost) while one execution runs
// and one waits. Within the lease + the restore + 2 s another node answers
// for the same kernel id with its variables restored from the
// auto-checkpoint; the running execution is lost (its reason names the
// node), the queued one ran exactly once; every node's history (the dead
// one's too, once restarted) ends every execution exactly once, and
// `events verify` passes on every data dir.
//
// NB: the lease is 10 s (the default) here, not the harness's 3 s: the
// killed node often led the Raft groups of the owners bucket, the history
// and the object store, which JetStream answers again only after electing
// new leaders, 4 to 9 s after the node's last heartbeat (nats-server's
// election timeout). A lease shorter than that cannot make a takeover
// faster, and the budget below would measure JetStream's election.
func TestClusterFailover(t *testing.T) {
	c := testkit.StartCluster(t, 3, testkit.ClusterOptions{Lease: 10 * time.Second})
	k := startKernelTool(t, c.Client(1))
	o := clusterOwner(t, c, 1, k)
	via := 1 + o%c.N() // another node: every call below is routed
	clv := c.Client(via)
	if sc, text := executeToEnd(t, clv, map[string]any{"kernel": k, "code": "x = 41", "execution_id": "fo-set"}); sc["status"] != "ok" {
		t.Fatalf("x = 41: %v %s", sc, text)
	}
	waitAutoCheckpoint(t, c, o, k, "fo-set")

	if _, text := callTool(t, clv, "execute", map[string]any{"kernel": k, "code": "import time\ntime.sleep(120)", "execution_id": "fo-running", "timeout_s": 0.001}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("execute fo-running: %s", text)
	}
	testkit.WaitUntil(t, 30*time.Second, "fo-running runs", func() (bool, string) {
		sc, text := callTool(t, clv, "get_execution", map[string]any{"execution_id": "fo-running"})
		return sc["status"] == "running", text
	})
	// NB: the scheduler hands the next execution to the kernel behind the
	// running one (pipelined: ExecutionStarted with Behind); it dies with
	// the kernel and is lost like the running one. fo-queued, behind it,
	// was only queued: it runs once after the restore.
	for _, id := range []string{"fo-piped", "fo-queued"} {
		if _, text := callTool(t, clv, "execute", map[string]any{"kernel": k, "code": "x += 1\nprint('x is', x)", "execution_id": id, "timeout_s": 0.001}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("execute %s: %s", id, text)
		}
	}

	killed := time.Now()
	c.Kill9(o)
	var answered time.Duration
	var last string
	for try := 0; ; try++ {
		sc, text, err := tryTool(clv, "execute", map[string]any{"kernel": k, "code": "print('now', x)", "execution_id": fmt.Sprintf("fo-probe-%d", try), "timeout_s": 30})
		last = fmt.Sprintf("%v %v %s", err, sc, text)
		if err == nil && sc["status"] == "ok" {
			answered = time.Since(killed)
			if !strings.Contains(text, "now 42") {
				t.Fatalf("after the failover x is not 42 (41 restored from the auto-checkpoint, +1 by fo-queued once): %s", text)
			}
			break
		}
		if time.Since(killed) > 3*c.Lease()+90*time.Second {
			t.Fatalf("kernel %s not served again %s after the kill of node%d; last answer: %s\n%s", k, time.Since(killed), o, last, c.LogsTail(6000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	evs := nodeEvents(t, c, via)
	adopted, restored := adoption(t, evs, k)
	if adopted.Node == c.Node(o).Name || adopted.Node == "" {
		t.Fatalf("KernelAdopted of %s written by %q, want another node than %s", k, adopted.Node, c.Node(o).Name)
	}
	if p, _ := events.As[events.KernelAdopted](&adopted); p.From != c.Node(o).Name {
		t.Errorf("KernelAdopted from %q, want %s", p.From, c.Node(o).Name)
	}
	restore := restored.Time.Sub(adopted.Time)
	budget := c.Lease() + restore + 2*time.Second
	t.Logf("failover: kill -9 of node%d -> first execution answered on %s after %s (lease %s + restore %s + 2 s = %s)",
		o, adopted.Node, answered.Round(time.Millisecond), c.Lease(), restore.Round(time.Millisecond), budget)
	// NB: the figure (≤ lease + restore + 2 s) is measured by
	// BenchmarkClusterFailover and reported by make bench; on a loaded
	// 2-core machine a test asserting it fails on timing alone. The test
	// asserts what must hold whatever the load: the kernel is served
	// again by another node within a bound far beyond the figure.
	if limit := 3*c.Lease() + restore + 30*time.Second; answered > limit {
		t.Errorf("failover took %s, more than 3 leases + restore + 30 s = %s\n%s", answered, limit, c.LogsTail(12000))
	}

	sc, text := callTool(t, clv, "get_execution", map[string]any{"execution_id": "fo-queued"})
	if sc["status"] != "ok" || !strings.Contains(text, "x is 42") {
		t.Errorf("fo-queued (queued at the kill) must run once after the restore: %v %s", sc, text)
	}
	for _, id := range []string{"fo-running", "fo-piped"} {
		sc, text = callTool(t, clv, "get_execution", map[string]any{"execution_id": id})
		if sc["status"] != "lost" || !strings.Contains(text, c.Node(o).Name) {
			t.Errorf("%s (running or handed to the kernel at the kill) must be lost with a reason naming %s: %v %s", id, c.Node(o).Name, sc, text)
		}
	}

	// The dead node comes back: it imports what happened and runs nothing
	// of the kernel it lost.
	c.Restart(o)
	testkit.WaitUntil(t, 60*time.Second, c.Node(o).Name+" imports the adoption", func() (bool, string) {
		for _, e := range nodeEvents(t, c, o) {
			if e.Type == events.TypeKernelAdopted && e.Kernel == k {
				return true, ""
			}
		}
		return false, "no KernelAdopted yet"
	})
	ids := []string{"fo-set", "fo-running", "fo-piped", "fo-queued"}
	for i := 1; i <= c.N(); i++ {
		testkit.WaitUntil(t, 60*time.Second, c.Node(i).Name+" holds every execution's end", func() (bool, string) {
			n := finalCounts(nodeEvents(t, c, i))
			return n["fo-queued"] >= 1 && n["fo-running"] >= 1, fmt.Sprint(n)
		})
		n := finalCounts(nodeEvents(t, c, i))
		for _, id := range ids {
			if n[id] != 1 {
				t.Errorf("%s's log ends execution %s %d times, want exactly once", c.Node(i).Name, id, n[id])
			}
		}
		for id, times := range n {
			if times != 1 {
				t.Errorf("%s's log ends execution %s %d times, want exactly once", c.Node(i).Name, id, times)
			}
		}
	}
	verifyEveryNode(t, c)
}

// TestClusterPartition: the owner of a kernel is cut off from the others
// (its routes closed by the harness's proxies; its process and HTTP port
// stay up). Within the lease it refuses work for the kernel with the
// "cannot prove it owns" error and runs nothing; another node takes the
// kernel over with its variables; healed, the cut-off node learns it lost
// the kernel, kills its old process and routes to the new owner.
func TestClusterPartition(t *testing.T) {
	c := testkit.StartCluster(t, 3, testkit.ClusterOptions{})
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.LogsTail(3000))
			if dir := os.Getenv("MCP_TEST_LOG_DIR"); dir != "" {
				for i := 1; i <= c.N(); i++ {
					_ = os.WriteFile(filepath.Join(dir, c.Node(i).Name+".log"), []byte(c.Logs(i)), 0o600)
				}
			}
		}
	})
	k := startKernelTool(t, c.Client(1))
	o := clusterOwner(t, c, 1, k)
	clo := c.Client(o)
	if sc, text := executeToEnd(t, clo, map[string]any{"kernel": k, "code": "x = 7", "execution_id": "pt-set"}); sc["status"] != "ok" {
		t.Fatalf("x = 7: %v %s", sc, text)
	}
	waitAutoCheckpoint(t, c, o, k, "pt-set")
	oldPid := kernelPid(t, nodeEvents(t, c, o), k)

	c.Cut(o)
	cut := time.Now()
	// Work sent in the first lease − lease/4 after the cut is still
	// accepted (the node cannot know yet: its lease was renewed less than
	// lease/3 ago) and waits for the history stream it cannot reach; the
	// new owner never learns of it, so the cut-off node ends it lost when
	// it lets the kernel go (docs/cluster.md, "The node that comes back").
	if sc, text, err := tryTool(clo, "execute", map[string]any{"kernel": k, "code": "print('window', x)", "execution_id": "pt-window", "timeout_s": 1}); err != nil ||
		strings.Contains(text, "cannot prove it owns") || sc["status"] != "running" {
		t.Fatalf("%s refused or ran work %s after the cut, while its lease was still fresh: %v %v %s", c.Node(o).Name, time.Since(cut), err, sc, text)
	}
	// NB: from lease − lease/4 on the node refuses: the test sends the
	// rest once a whole lease has passed.
	time.Sleep(c.Lease())
	refusal := ""
	for try := 0; refusal == ""; try++ {
		id := fmt.Sprintf("pt-cut-%d", try)
		sc, text, err := tryTool(clo, "execute", map[string]any{"kernel": k, "code": "print('cut', x)", "execution_id": id, "timeout_s": 1})
		switch {
		case err == nil && strings.Contains(text, "cannot prove it owns"):
			refusal = text
		case time.Since(cut) > 3*c.Lease()+10*time.Second:
			t.Fatalf("%s still not refusing %s after it was cut off; last answer: %v %v %s\n%s", c.Node(o).Name, time.Since(cut), err, sc, text, c.LogsTail(6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"node " + c.Node(o).Name + " cannot prove it owns kernel " + k, "nothing was run"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("the refusal lacks %q: %s", want, refusal)
		}
	}

	other := 1 + o%c.N()
	clx := c.Client(other)
	testkit.WaitUntil(t, 3*c.Lease()+90*time.Second, "another node serves the kernel", func() (bool, string) {
		sc, text, err := tryTool(clx, "execute", map[string]any{"kernel": k, "code": "print('moved', x)", "execution_id": "pt-moved-" + strconv.FormatInt(time.Now().UnixNano(), 36), "timeout_s": 30})
		if err == nil && sc["status"] == "ok" && !strings.Contains(text, "moved 7") {
			t.Fatalf("the new owner's kernel lacks x = 7 (restored from the auto-checkpoint): %s", text)
		}
		return err == nil && sc["status"] == "ok", fmt.Sprintf("%v %v %s", err, sc, text)
	})
	// NB: the node that adopted it may be the third one, whose records
	// reach this node's log through the history import a moment later.
	testkit.WaitUntil(t, 30*time.Second, c.Node(other).Name+" holds the kernel's adoption and restore", func() (bool, string) {
		var adopted, restored bool
		for _, e := range nodeEvents(t, c, other) {
			if e.Kernel == k && e.Type == events.TypeKernelAdopted {
				adopted, restored = true, false
			} else if e.Kernel == k && e.Type == events.TypeKernelRestored && adopted {
				restored = true
			}
		}
		return adopted && restored, fmt.Sprintf("adopted %v, restored after it %v", adopted, restored)
	})
	adopted, _ := adoption(t, nodeEvents(t, c, other), k)
	if adopted.Node == c.Node(o).Name {
		t.Fatalf("the cut-off node %s adopted its own kernel", adopted.Node)
	}

	c.Heal(o)
	testkit.WaitUntil(t, 60*time.Second, c.Node(o).Name+" learns it lost the kernel and kills its process", func() (bool, string) {
		alive := syscall.Kill(oldPid, 0) == nil
		for _, e := range nodeEvents(t, c, o) {
			if e.Type == events.TypeKernelAdopted && e.Kernel == k {
				return !alive, fmt.Sprintf("adoption imported; old kernel pid %d alive %v", oldPid, alive)
			}
		}
		return false, "no KernelAdopted imported yet"
	})
	testkit.WaitUntil(t, 30*time.Second, c.Node(o).Name+" routes the kernel to its new owner", func() (bool, string) {
		sc, text, err := tryTool(clo, "execute", map[string]any{"kernel": k, "code": "print('back', x)", "execution_id": "pt-back-" + strconv.FormatInt(time.Now().UnixNano(), 36), "timeout_s": 30})
		if err == nil && sc["status"] == "ok" && !strings.Contains(text, "back 7") {
			t.Fatalf("through the healed node: %s", text)
		}
		return err == nil && sc["status"] == "ok", fmt.Sprintf("%v %v %s", err, sc, text)
	})
	// NB: every node's log ends every execution once; the last ones may
	// still be on their way from the owner (the import follows it).
	for i := 1; i <= c.N(); i++ {
		testkit.WaitUntil(t, 30*time.Second, c.Node(i).Name+"'s log ends every execution", func() (bool, string) {
			evs := nodeEvents(t, c, i)
			if _, ok := finalEvent(evs, "pt-window"); !ok {
				return false, "pt-window not ended yet"
			}
			for id, n := range finalCounts(evs) {
				if n > 1 {
					t.Fatalf("%s's log ends execution %s %d times, want exactly once", c.Node(i).Name, id, n)
				}
				if n == 0 {
					return false, "execution " + id + " not ended yet"
				}
			}
			return true, ""
		})
		e, _ := finalEvent(nodeEvents(t, c, i), "pt-window")
		if p, ok := e.Payload.(events.ExecutionLost); !ok || e.Node != c.Node(o).Name || !strings.Contains(p.Reason, "never learned of it") {
			t.Fatalf("%s's log ends pt-window (accepted by %s just after its cut) with %+v, want ExecutionLost written by %s saying the new owner never learned of it",
				c.Node(i).Name, c.Node(o).Name, e, c.Node(o).Name)
		}
	}
	verifyEveryNode(t, c)
}

// finalEvent is the record that ended execution id in evs.
func finalEvent(evs []events.Event, id string) (events.Event, bool) {
	for _, e := range evs {
		if e.Stream == events.ExecutionStream(id) && endsExecution(e.Type) {
			return e, true
		}
	}
	return events.Event{}, false
}

// endsExecution reports whether a record of type typ ends an execution.
func endsExecution(typ string) bool {
	switch typ {
	case events.TypeExecutionFinished, events.TypeExecutionInterrupted, events.TypeExecutionCancelled, events.TypeExecutionLost:
		return true
	}
	return false
}

// tryTool is callTool for a call that may fail (a node down, a lease
// lapsing): the transport's error is returned, not fatal.
func tryTool(c *client.Client, name string, args map[string]any) (map[string]any, string, error) {
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, "", err
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text = append(text, tc.Text)
		}
	}
	joined := strings.Join(text, "\n")
	if res.IsError {
		return nil, "ERROR: " + joined, nil
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return sc, joined, nil
}

// nodeEvents is node i's whole log (fatal when it cannot be read).
func nodeEvents(t testing.TB, c *testkit.Cluster, i int) []events.Event {
	t.Helper()
	evs, err := c.Events(i, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// clusterOwner is the node (1-based) that runs kernel k, from node via's
// log: the writer of its latest KernelStarted or KernelAdopted.
func clusterOwner(t testing.TB, c *testkit.Cluster, via int, k string) int {
	t.Helper()
	owner := ""
	testkit.WaitUntil(t, 30*time.Second, "the start of "+k+" in "+c.Node(via).Name+"'s log", func() (bool, string) {
		for _, e := range nodeEvents(t, c, via) {
			if e.Kernel == k && (e.Type == events.TypeKernelStarted || e.Type == events.TypeKernelAdopted) {
				owner = e.Node
			}
		}
		return owner != "", "none"
	})
	for i := 1; i <= c.N(); i++ {
		if c.Node(i).Name == owner {
			return i
		}
	}
	t.Fatalf("kernel %s started by %q, no node of the cluster", k, owner)
	return 0
}

// waitAutoCheckpoint waits until owner o saved k's auto-checkpoint after
// execution after finished, then 2 s more: the copy to the object store
// follows the CheckpointSaved, and has no event of its own.
func waitAutoCheckpoint(t testing.TB, c *testkit.Cluster, o int, k, after string) {
	t.Helper()
	testkit.WaitUntil(t, 60*time.Second, "the auto-checkpoint of "+k+" after "+after, func() (bool, string) {
		done := false
		for _, e := range nodeEvents(t, c, o) {
			if e.Type == events.TypeExecutionFinished && strings.Contains(string(e.Raw), `"`+after+`"`) {
				done = true
			}
			if done && e.Type == events.TypeCheckpointSaved {
				if p, err := events.As[events.CheckpointSaved](&e); err == nil && p.Name == autoCheckpointName(k) {
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("finished %v, no CheckpointSaved %s after", done, autoCheckpointName(k))
	})
	time.Sleep(2 * time.Second) // NB: the object store put after the save; nothing signals it
}

// adoption returns k's last KernelAdopted and the KernelRestored after it.
func adoption(t testing.TB, evs []events.Event, k string) (adopted, restored events.Event) {
	t.Helper()
	for _, e := range evs {
		if e.Kernel != k {
			continue
		}
		switch e.Type {
		case events.TypeKernelAdopted:
			adopted, restored = e, events.Event{}
		case events.TypeKernelRestored:
			if adopted.Type != "" {
				restored = e
			}
		}
	}
	if adopted.Type == "" || restored.Type == "" {
		t.Fatalf("kernel %s: KernelAdopted %v, KernelRestored after it %v: want both", k, adopted.Type != "", restored.Type != "")
	}
	return adopted, restored
}

// kernelPid is the pid of k's process as its latest start records.
func kernelPid(t testing.TB, evs []events.Event, k string) int {
	t.Helper()
	pid := 0
	for _, e := range evs {
		if e.Kernel != k || e.Type != events.TypeKernelStarted {
			continue
		}
		if p, err := events.As[events.KernelStarted](&e); err == nil {
			pid = p.Process.Pid
		}
	}
	if pid == 0 {
		t.Fatalf("no KernelStarted with a pid for %s", k)
	}
	return pid
}

// finalCounts counts, per execution id, the events that end an execution.
func finalCounts(evs []events.Event) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		switch {
		case endsExecution(e.Type):
			n[strings.TrimPrefix(e.Stream, "execution/")]++
		case e.Type == events.TypeExecutionQueued:
			n[strings.TrimPrefix(e.Stream, "execution/")] += 0
		}
	}
	return n
}

// verifyEveryNode stops every node cleanly and runs `mcp-jupyter events
// verify` on each data dir.
func verifyEveryNode(t *testing.T, c *testkit.Cluster) {
	t.Helper()
	for i := 1; i <= c.N(); i++ {
		c.Stop(i)
	}
	bin := testkit.BuildServer(t)
	for i := 1; i <= c.N(); i++ {
		out, err := exec.Command(bin, "events", "verify", "--data-dir", c.Node(i).DataDir).CombinedOutput()
		if err != nil {
			t.Errorf("events verify on %s: %v\n%s", c.Node(i).Name, err, out)
		}
	}
}

// metricLines are the lines of a /metrics body starting with prefix.
func metricLines(body, prefix string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
