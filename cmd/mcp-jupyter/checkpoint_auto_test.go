package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// autoCore opens a core with auto-checkpoints configured by change, its
// log into buf (nil: discarded).
func autoCore(t testing.TB, buf *syncBuffer, change func(*config)) (*core, *client.Client) {
	t.Helper()
	cfg := testConfig(t, testkit.TempDataDir(t))
	change(&cfg)
	logger := slog.New(slog.DiscardHandler)
	if buf != nil {
		logger = slog.New(slog.NewTextHandler(buf, nil))
	}
	c, err := openCore(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	cl := mcpClient(t, inProcessClient(t, c))
	t.Cleanup(func() { _ = cl.Close() })
	return c, cl
}

// autoEntry is what the checkpoint actor records of kernel id's
// auto-checkpoint (owner: the admin, as the tests' calls are).
func autoEntry(t testing.TB, c *core, id string) (checkpoint.Entry, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.ckpt.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := st.Checkpoints[checkpoint.Stored(auth.AdminName, autoCheckpointName(id))]
	return e, ok
}

func mustExecute(t testing.TB, cl *client.Client, k, code string) map[string]any {
	t.Helper()
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 120})
	if sc["status"] != "ok" {
		t.Fatalf("execute %q: %s", code, text)
	}
	return sc
}

// TestAutoCheckpointShutdownPass: the pass a SIGTERM runs after the drain
// saves the idle kernels whose variables changed (as their owner's
// auto-<id>), skips a busy one (its execution is still running), one that
// never ran anything, and — at the next pass — one that did not change;
// the saved file loads into a fresh kernel with the variables, and the
// server's saves leave the agent's execution count alone.
func TestAutoCheckpointShutdownPass(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	changed, unchanged, busy, empty := startKernelTool(t, cl), startKernelTool(t, cl), startKernelTool(t, cl), startKernelTool(t, cl)
	mustExecute(t, cl, changed, "x = 41\nname = 'friday'")
	mustExecute(t, cl, unchanged, "y = [1, 2, 3]")
	mustExecute(t, cl, busy, "z = 1")
	hold := testkit.NewSentinel(t)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": busy, "code": hold.Code("z = 2"), "timeout_s": 1}); sc["status"] != "running" {
		t.Fatalf("held execution: %s", text)
	}
	t.Cleanup(hold.Release)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := c.autoCheckpointAll(ctx)
	if want := sorted(changed, unchanged); !slices.Equal(r.Saved, want) {
		t.Fatalf("first pass saved %v, want %v (skipped %v, failed %v)", r.Saved, want, r.Skipped, r.Failed)
	}
	if r.Skipped[busy] != skipBusy || r.Skipped[empty] != skipNoState {
		t.Fatalf("first pass skipped %v", r.Skipped)
	}
	if r.Duration <= 0 {
		t.Fatalf("the report's duration: %s", r.Duration)
	}
	busyBefore, hadBusy := autoEntry(t, c, busy)
	if hadBusy {
		t.Fatalf("a busy kernel was saved: %+v", busyBefore)
	}
	keep, _ := autoEntry(t, c, unchanged)

	sc := mustExecute(t, cl, changed, "x += 1")
	count := sc["execution_count"]
	r = c.autoCheckpointAll(ctx)
	if !slices.Equal(r.Saved, []string{changed}) || r.Skipped[unchanged] != skipUnchanged || r.Skipped[busy] != skipBusy {
		t.Fatalf("second pass: saved %v skipped %v failed %v", r.Saved, r.Skipped, r.Failed)
	}
	if after, _ := autoEntry(t, c, unchanged); after.SHA256 != keep.SHA256 || after.SavedSeq != keep.SavedSeq {
		t.Fatalf("the unchanged kernel's auto-checkpoint was rewritten: %+v -> %+v", keep, after)
	}
	if sc := mustExecute(t, cl, changed, "x"); fmt.Sprint(sc["execution_count"]) != fmt.Sprint(count.(float64)+1) {
		t.Fatalf("execution_count after the server's saves: %v, want %v (the saves must not count)", sc["execution_count"], count.(float64)+1)
	}

	if _, text := callTool(t, cl, "list_checkpoints", nil); !strings.Contains(text, autoCheckpointName(changed)) {
		t.Fatalf("list_checkpoints does not show the owner's auto-checkpoint: %s", text)
	}
	fresh := startKernelTool(t, cl)
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(changed)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load the auto-checkpoint: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": fresh, "code": "print(x, name)"}); !strings.Contains(text, "42 friday") {
		t.Fatalf("the auto-checkpoint's variables: %s", text)
	}
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

// TestAutoCheckpointIdleTimer: a kernel idle for --auto-checkpoint-idle
// after a change is saved once; idle passes without a change save nothing
// more; the next change is saved again.
func TestAutoCheckpointIdleTimer(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 300 * time.Millisecond })
	k := startKernelTool(t, cl)
	mustExecute(t, cl, k, "v = 'first'")
	var first checkpoint.Entry
	testkit.WaitUntil(t, 60*time.Second, "the idle auto-checkpoint", func() (bool, string) {
		e, ok := autoEntry(t, c, k)
		first = e
		return ok, "none yet"
	})
	passes := func() uint64 { c.auto.mu.Lock(); defer c.auto.mu.Unlock(); return c.auto.idlePasses }
	from := passes()
	testkit.WaitUntil(t, 30*time.Second, "five idle passes", func() (bool, string) { return passes() >= from+5, fmt.Sprint(passes()) })
	if e, _ := autoEntry(t, c, k); e.SavedSeq != first.SavedSeq {
		t.Fatalf("saved again without a change: seq %d -> %d", first.SavedSeq, e.SavedSeq)
	}
	mustExecute(t, cl, k, "v = 'second'")
	testkit.WaitUntil(t, 60*time.Second, "the auto-checkpoint after the second change", func() (bool, string) {
		e, _ := autoEntry(t, c, k)
		return e.SavedSeq > first.SavedSeq, fmt.Sprint(e.SavedSeq)
	})
	fresh := startKernelTool(t, cl)
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(k)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": fresh, "code": "print(v)"}); !strings.Contains(text, "second") {
		t.Fatalf("the idle auto-checkpoint holds: %s", text)
	}
}

// TestAgentsCannotSaveAutoNames: save_environment under the auto- prefix
// is refused with what the names are; the agent's own other names work.
func TestAgentsCannotSaveAutoNames(t *testing.T) {
	_, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	k := startKernelTool(t, cl)
	mustExecute(t, cl, k, "a = 1")
	for _, name := range []string{autoCheckpointName(k), "auto-mine", "admin/auto-x"} {
		_, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": name, "overwrite": true})
		if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "server's auto-checkpoints") {
			t.Errorf("save_environment %q: %s", name, text)
		}
	}
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "automatic"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("a name that merely starts with auto: %s", text)
	}
}

// TestAutoCheckpointDeadline: a pass whose deadline is too short for a
// kernel's save (by its previous auto-checkpoint's size) does not start it;
// a save still running at the deadline is interrupted in the kernel and
// commits nothing. Either way the previous auto-checkpoint stays and loads.
func TestAutoCheckpointDeadline(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	big, small := startKernelTool(t, cl), startKernelTool(t, cl)
	mustExecute(t, cl, big, "blob = bytes(64 << 20)\ntag = 'big-1'")
	mustExecute(t, cl, small, "tag = 'small-1'")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if r := c.autoCheckpointAll(ctx); len(r.Saved) != 2 {
		t.Fatalf("first pass: %+v", r)
	}
	bigBefore, _ := autoEntry(t, c, big)
	smallBefore, _ := autoEntry(t, c, small)

	// Too short for 64 MB: not started.
	mustExecute(t, cl, big, "tag = 'big-2'")
	short, cancelShort := context.WithTimeout(context.Background(), c.autoSaveEstimate(autoCandidate{PrevBytes: bigBefore.Size})/2)
	r := c.autoCheckpointAll(short)
	cancelShort()
	if r.Skipped[big] != skipNoTime || len(r.Saved) != 0 {
		t.Fatalf("short pass: %+v", r)
	}
	// NB: big is saved now, so the cut pass below has only small to do: a
	// fast machine could otherwise fit big's 64 MB inside its deadline.
	if r := c.autoCheckpointAll(ctx); len(r.Saved) != 1 || r.Saved[0] != big {
		t.Fatalf("pass after the short one: %+v", r)
	}
	bigBefore, _ = autoEntry(t, c, big)

	// Started (its previous file is small) but cut: 5 million strings
	// take dill seconds.
	mustExecute(t, cl, small, "tag = 'small-2'\nmany = [str(i) for i in range(5_000_000)]")
	cut, cancelCut := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	r = c.autoCheckpointAll(cut)
	cancelCut()
	if _, failed := r.Failed[small]; !failed || !strings.Contains(r.Failed[small], "shutdown deadline") {
		t.Fatalf("cut pass: %+v", r)
	}
	testkit.WaitUntil(t, 30*time.Second, "the interrupted save's execution ends", func() (bool, string) {
		_, active := c.queue.Active(small)
		return !active, "still running"
	})
	for id, before := range map[string]checkpoint.Entry{big: bigBefore, small: smallBefore} {
		if after, _ := autoEntry(t, c, id); after.SHA256 != before.SHA256 {
			t.Fatalf("kernel %s: the previous auto-checkpoint was replaced: %+v -> %+v", id, before, after)
		}
	}
	fresh := startKernelTool(t, cl)
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(small)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load the previous auto-checkpoint: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": fresh, "code": "print(tag)"}); !strings.Contains(text, "small-1") {
		t.Fatalf("previous auto-checkpoint holds: %s", text)
	}
	// The kernel whose save was cut still works and still holds its state.
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": small, "code": "print(tag, len(many))"}); !strings.Contains(text, "small-2 5000000") {
		t.Fatalf("the kernel after its cut save: %s", text)
	}
}

// TestAutoCheckpointCollected: the auto-checkpoint of a kernel shut down on
// an agent's request is deleted; one shut down by the server is kept.
func TestAutoCheckpointCollected(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	asked, byServer := startKernelTool(t, cl), startKernelTool(t, cl)
	mustExecute(t, cl, asked, "a = 1")
	mustExecute(t, cl, byServer, "b = 2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r := c.autoCheckpointAll(ctx); len(r.Saved) != 2 {
		t.Fatalf("pass: %+v", r)
	}
	if _, text := callTool(t, cl, "shutdown_kernel", map[string]any{"kernel": asked}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("shutdown_kernel: %s", text)
	}
	if err := c.sys.ShutdownKernel(ctx, byServer, ""); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "both kernels shown shut down", func() (bool, string) {
		a, _ := c.kernels.Get(asked)
		b, _ := c.kernels.Get(byServer)
		return a.State == "shut down" && b.State == "shut down", string(a.State) + " " + string(b.State)
	})
	c.collectAutoCheckpoints(ctx)
	if _, ok := autoEntry(t, c, asked); ok {
		t.Fatalf("the auto-checkpoint of a kernel shut down on request was kept")
	}
	if _, ok := autoEntry(t, c, byServer); !ok {
		t.Fatalf("the auto-checkpoint of a kernel the server shut down was deleted")
	}
}

// TestAutoCheckpointCollectedOnlyTheOwners: when alice shuts down her
// kernel K, only her auto-K goes: bob's own checkpoint named auto-K (saved
// by hand before the prefix was reserved) stays, and still loads.
func TestAutoCheckpointCollectedOnlyTheOwners(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	alice, bob := agent("alice", 0), agent("bob", 0)
	_, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
	k := kernelIDPattern.FindString(text)
	if sc, text := callAs(cl, alice, "execute", map[string]any{"kernel": k, "code": "mine = 'alice'"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	_, text = callAs(cl, bob, "start_kernel", map[string]any{"kernelspec": "python3"})
	bobs := kernelIDPattern.FindString(text)
	if sc, text := callAs(cl, bob, "execute", map[string]any{"kernel": bobs, "code": "mine = 'bob'"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// NB: the save as the tool made it before auto- was reserved: bob's
	// checkpoint, in bob's names, of his own kernel.
	if _, err := c.ckpt.Save(ctx, checkpoint.SaveRequest{Name: autoCheckpointName(k), Owner: "bob", By: "bob", KernelID: bobs}); err != nil {
		t.Fatal(err)
	}
	if r := c.autoCheckpointAll(ctx); !slices.Contains(r.Saved, k) {
		t.Fatalf("pass: %+v", r)
	}
	if _, text := callAs(cl, alice, "shutdown_kernel", map[string]any{"kernel": k}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("shutdown_kernel: %s", text)
	}
	testkit.WaitUntil(t, 30*time.Second, "alice's kernel shown shut down", func() (bool, string) {
		a, _ := c.kernels.Get(k)
		return a.State == kernels.StateShutDown, string(a.State)
	})
	c.collectAutoCheckpoints(ctx)
	st, err := c.ckpt.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Checkpoints[checkpoint.Stored("alice", autoCheckpointName(k))]; ok {
		t.Fatal("alice's auto-checkpoint of the kernel she shut down was kept")
	}
	if _, ok := st.Checkpoints[checkpoint.Stored("bob", autoCheckpointName(k))]; !ok {
		t.Fatal("bob's checkpoint named after alice's kernel was deleted when she shut it down")
	}
	_, text = callAs(cl, bob, "start_kernel", map[string]any{"kernelspec": "python3"})
	fresh := kernelIDPattern.FindString(text)
	if _, text := callAs(cl, bob, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(k)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("bob loads his checkpoint: %s", text)
	}
	if _, text := callAs(cl, bob, "execute", map[string]any{"kernel": fresh, "code": "print(mine)"}); !strings.Contains(text, "bob") {
		t.Fatalf("loaded: %s", text)
	}
}

// TestAutoCheckpointQuota: a save refused for the owner's checkpoint quota
// is skipped, logged with what to do, and leaves nothing.
func TestAutoCheckpointQuota(t *testing.T) {
	var logs syncBuffer
	c, cl := autoCore(t, &logs, func(cfg *config) { cfg.AutoCheckpointIdle, cfg.MaxCheckpointBytes = 0, 1<<20 })
	k := startKernelTool(t, cl)
	mustExecute(t, cl, k, "blob = bytes(4 << 20)")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := c.autoCheckpointAll(ctx)
	if r.Skipped[k] != skipQuota {
		t.Fatalf("pass over quota: %+v", r)
	}
	if _, ok := autoEntry(t, c, k); ok {
		t.Fatal("a save over quota was recorded")
	}
	if l := logs.String(); !strings.Contains(l, "Raise --max-checkpoint-bytes") || !strings.Contains(l, k) {
		t.Fatalf("the log does not say what to do:\n%s", l)
	}
}

// TestAutoCheckpointInTheOwnersNames: alice's kernel's auto-checkpoint is
// alice's: she lists it and loads it by its plain name; bob naming it is
// told it does not exist.
func TestAutoCheckpointInTheOwnersNames(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	alice, bob := agent("alice", 0), agent("bob", 0)
	_, text := callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
	k := kernelIDPattern.FindString(text)
	if sc, text := callAs(cl, alice, "execute", map[string]any{"kernel": k, "code": "mine = 'alice'"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r := c.autoCheckpointAll(ctx); !slices.Equal(r.Saved, []string{k}) {
		t.Fatalf("pass: %+v", r)
	}
	sc, text := callAs(cl, alice, "list_checkpoints", map[string]any{})
	list, _ := sc["checkpoints"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != autoCheckpointName(k) || list[0].(map[string]any)["owner"] != "alice" {
		t.Fatalf("alice's list: %s", text)
	}
	_, text = callAs(cl, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
	fresh := kernelIDPattern.FindString(text)
	if _, text := callAs(cl, alice, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(k)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("alice loads her auto-checkpoint: %s", text)
	}
	if _, text := callAs(cl, alice, "execute", map[string]any{"kernel": fresh, "code": "print(mine)"}); !strings.Contains(text, "alice") {
		t.Fatalf("loaded: %s", text)
	}
	_, text = callAs(cl, bob, "start_kernel", map[string]any{"kernelspec": "python3"})
	bobs := kernelIDPattern.FindString(text)
	if _, text := callAs(cl, bob, "load_environment", map[string]any{"kernel": bobs, "name": "alice/" + autoCheckpointName(k)}); !strings.Contains(text, "list_checkpoints") {
		t.Fatalf("bob loads alice's auto-checkpoint: %s", text)
	}
}

// TestSIGTERMSavesAutoCheckpoints: the real binary, SIGTERMed, saves after
// its drain the auto-checkpoint of the idle kernel that changed and not of
// the one whose execution still runs; a new server on the same data dir
// loads the saved one into a fresh kernel with the variables.
func TestSIGTERMSavesAutoCheckpoints(t *testing.T) {
	e := newOpsEnv(t)
	s := startServer(t, e.bin, e.env, "--shutdown-grace", "12s", "--auto-checkpoint-idle", "0")
	waitReady(t, s.addr, 90*time.Second)
	cl := httpMCP(t, s.addr, e.dataDir)
	idle, busy := startKernelTool(t, cl), startKernelTool(t, cl)
	mustExecute(t, cl, idle, "import numpy as np\narr = np.arange(1_000_000)\nnote = 'friday'")
	mustExecute(t, cl, busy, "b = 1")
	hold := testkit.NewSentinel(t)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": busy, "code": hold.Code("b = 2"), "timeout_s": 1}); sc["status"] != "running" {
		t.Fatalf("held: %s", text)
	}
	t.Cleanup(hold.Release)
	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t, 20*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.Logs())
	}
	if took := time.Since(sent); took > 12*time.Second {
		t.Fatalf("shutdown took %s with a 12s grace", took)
	}
	saved := map[string]bool{}
	for _, ev := range readLog(t, e.dataDir) {
		if p, ok := ev.Payload.(events.CheckpointSaved); ok {
			saved[p.Name] = true
		}
	}
	if !saved[autoCheckpointName(idle)] || saved[autoCheckpointName(busy)] {
		t.Fatalf("saved %v: want %s only\n%s", saved, autoCheckpointName(idle), s.Logs())
	}
	if !strings.Contains(s.Logs(), "auto-checkpoints saved") {
		t.Fatalf("the shutdown does not report its auto-checkpoints:\n%s", s.Logs())
	}
	s2 := startServer(t, e.bin, e.env)
	waitReady(t, s2.addr, 90*time.Second)
	cl2 := httpMCP(t, s2.addr, e.dataDir)
	fresh := startKernelTool(t, cl2)
	if _, text := callTool(t, cl2, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(idle)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load after the restart: %s", text)
	}
	if _, text := callTool(t, cl2, "execute", map[string]any{"kernel": fresh, "code": "print(note, int(arr.sum()))"}); !strings.Contains(text, "friday 499999500000") {
		t.Fatalf("the variables after the restart: %s", text)
	}
}

// TestAutoCheckpointKeptAfterAFailedRestore: when the restore of a
// relaunched kernel's auto-checkpoint failed (KernelRestored with an
// error, as the restore records it), the new work in the fresh process does
// not replace that file — it is the only copy of the variables from
// before — until the agent loads it; then the next pass saves both.
func TestAutoCheckpointKeptAfterAFailedRestore(t *testing.T) {
	c, cl := autoCore(t, nil, func(cfg *config) { cfg.AutoCheckpointIdle = 0 })
	k := startKernelTool(t, cl)
	mustExecute(t, cl, k, "before = 'friday'")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r := c.autoCheckpointAll(ctx); len(r.Saved) != 1 {
		t.Fatalf("pass: %+v", r)
	}
	kept, _ := autoEntry(t, c, k)
	if _, text := callTool(t, cl, "restart_kernel", map[string]any{"kernel": k}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("restart_kernel: %s", text)
	}
	// NB: what the restore records when its load fails (actors/system FinishRestore).
	if _, err := c.log.Append(ctx, events.Draft{Stream: events.KernelStream(k), Kernel: k, Payload: events.KernelRestored{KernelID: k,
		Checkpoint: autoCheckpointName(k), Error: "load failed: No module named 'numpy'"}}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 30*time.Second, "the restart shown", func() (bool, string) {
		kk, _ := c.kernels.Get(k)
		return kk.Restarts == 1 && kk.State == "running", fmt.Sprint(kk.Restarts, kk.State)
	})
	mustExecute(t, cl, k, "after = 'monday'")
	r := c.autoCheckpointAll(ctx)
	if r.Skipped[k] != skipRestoreFailed {
		t.Fatalf("pass after a failed restore: %+v", r)
	}
	if e, _ := autoEntry(t, c, k); e.SHA256 != kept.SHA256 {
		t.Fatal("the auto-checkpoint a restore failed to load was replaced")
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": autoCheckpointName(k)}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load: %s", text)
	}
	if r := c.autoCheckpointAll(ctx); !slices.Equal(r.Saved, []string{k}) {
		t.Fatalf("pass after the agent loaded it: %+v", r)
	}
	fresh := startKernelTool(t, cl)
	callTool(t, cl, "load_environment", map[string]any{"kernel": fresh, "name": autoCheckpointName(k)})
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": fresh, "code": "print(before, after)"}); !strings.Contains(text, "friday monday") {
		t.Fatalf("the new auto-checkpoint: %s", text)
	}
}
