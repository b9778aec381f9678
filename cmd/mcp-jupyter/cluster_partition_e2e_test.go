package main

import (
	"context"
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

// The partition end to end (docs/cluster.md), beside the other cluster
// e2e tests (cluster_e2e_test.go); its helpers are prefixed part so both
// files build together.

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
	o := partOwner(t, c, 1, k)
	clo := c.Client(o)
	if sc, text := executeToEnd(t, clo, map[string]any{"kernel": k, "code": "x = 7", "execution_id": "pt-set"}); sc["status"] != "ok" {
		t.Fatalf("x = 7: %v %s", sc, text)
	}
	partWaitAutoCheckpoint(t, c, o, k, "pt-set")
	oldPid := partKernelPid(t, partNodeEvents(t, c, o), k)

	c.Cut(o)
	cut := time.Now()
	refusal := ""
	for try := 0; refusal == ""; try++ {
		id := fmt.Sprintf("pt-cut-%d", try)
		sc, text, err := partTryTool(clo, "execute", map[string]any{"kernel": k, "code": "print('cut', x)", "execution_id": id, "timeout_s": 5})
		switch {
		case err == nil && strings.Contains(text, "cannot prove it owns"):
			refusal = text
		case time.Since(cut) > c.Lease()+2*time.Second:
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
		sc, text, err := partTryTool(clx, "execute", map[string]any{"kernel": k, "code": "print('moved', x)", "execution_id": "pt-moved-" + strconv.FormatInt(time.Now().UnixNano(), 36), "timeout_s": 30})
		if err == nil && sc["status"] == "ok" && !strings.Contains(text, "moved 7") {
			t.Fatalf("the new owner's kernel lacks x = 7 (restored from the auto-checkpoint): %s", text)
		}
		return err == nil && sc["status"] == "ok", fmt.Sprintf("%v %v %s", err, sc, text)
	})
	adopted, _ := partAdoption(t, partNodeEvents(t, c, other), k)
	if adopted.Node == c.Node(o).Name {
		t.Fatalf("the cut-off node %s adopted its own kernel", adopted.Node)
	}

	c.Heal(o)
	testkit.WaitUntil(t, 60*time.Second, c.Node(o).Name+" learns it lost the kernel and kills its process", func() (bool, string) {
		alive := syscall.Kill(oldPid, 0) == nil
		for _, e := range partNodeEvents(t, c, o) {
			if e.Type == events.TypeKernelAdopted && e.Kernel == k {
				return !alive, fmt.Sprintf("adoption imported; old kernel pid %d alive %v", oldPid, alive)
			}
		}
		return false, "no KernelAdopted imported yet"
	})
	testkit.WaitUntil(t, 30*time.Second, c.Node(o).Name+" routes the kernel to its new owner", func() (bool, string) {
		sc, text, err := partTryTool(clo, "execute", map[string]any{"kernel": k, "code": "print('back', x)", "execution_id": "pt-back-" + strconv.FormatInt(time.Now().UnixNano(), 36), "timeout_s": 30})
		if err == nil && sc["status"] == "ok" && !strings.Contains(text, "back 7") {
			t.Fatalf("through the healed node: %s", text)
		}
		return err == nil && sc["status"] == "ok", fmt.Sprintf("%v %v %s", err, sc, text)
	})
	// NB: every node's log ends every execution once; the last ones may
	// still be on their way from the owner (the import follows it).
	for i := 1; i <= c.N(); i++ {
		testkit.WaitUntil(t, 30*time.Second, c.Node(i).Name+"'s log ends every execution", func() (bool, string) {
			for id, n := range partFinalCounts(partNodeEvents(t, c, i)) {
				if n > 1 {
					t.Fatalf("%s's log ends execution %s %d times, want exactly once", c.Node(i).Name, id, n)
				}
				if n == 0 {
					return false, "execution " + id + " not ended yet"
				}
			}
			return true, ""
		})
	}
	partVerifyEveryNode(t, c)
}

// partTryTool is callTool for a call that may fail (a node down, a lease
// lapsing): the transport's error is returned, not fatal.
func partTryTool(c *client.Client, name string, args map[string]any) (map[string]any, string, error) {
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

// partNodeEvents is node i's whole log (fatal when it cannot be read).
func partNodeEvents(t testing.TB, c *testkit.Cluster, i int) []events.Event {
	t.Helper()
	evs, err := c.Events(i, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// partOwner is the node (1-based) that runs kernel k, from node via's
// log: the writer of its latest KernelStarted or KernelAdopted.
func partOwner(t testing.TB, c *testkit.Cluster, via int, k string) int {
	t.Helper()
	owner := ""
	testkit.WaitUntil(t, 30*time.Second, "the start of "+k+" in "+c.Node(via).Name+"'s log", func() (bool, string) {
		for _, e := range partNodeEvents(t, c, via) {
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

// partWaitAutoCheckpoint waits until owner o saved k's auto-checkpoint after
// execution after finished, then 2 s more: the copy to the object store
// follows the CheckpointSaved, and has no event of its own.
func partWaitAutoCheckpoint(t testing.TB, c *testkit.Cluster, o int, k, after string) {
	t.Helper()
	testkit.WaitUntil(t, 60*time.Second, "the auto-checkpoint of "+k+" after "+after, func() (bool, string) {
		done := false
		for _, e := range partNodeEvents(t, c, o) {
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
func partAdoption(t testing.TB, evs []events.Event, k string) (adopted, restored events.Event) {
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

// partKernelPid is the pid of k's process as its latest start records.
func partKernelPid(t testing.TB, evs []events.Event, k string) int {
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

// partFinalCounts counts, per execution id, the events that end an execution.
func partFinalCounts(evs []events.Event) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		switch e.Type {
		case events.TypeExecutionFinished, events.TypeExecutionInterrupted, events.TypeExecutionCancelled, events.TypeExecutionLost:
			n[strings.TrimPrefix(e.Stream, "execution/")]++
		case events.TypeExecutionQueued:
			n[strings.TrimPrefix(e.Stream, "execution/")] += 0
		}
	}
	return n
}

// partVerifyEveryNode stops every node cleanly and runs `mcp-jupyter events
// verify` on each data dir.
func partVerifyEveryNode(t *testing.T, c *testkit.Cluster) {
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
