package system_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// nodeHooks are a cluster node's (restoring from auto-<id>).
func nodeHooks(node string) testkit.Hooks { return testkit.Hooks{Node: node, RestoreName: autoName} }

// copyLog copies the stopped node's event log into a new data dir: what
// another node's log holds once it imported every record (the records keep
// their Node).
func copyLog(t *testing.T, from string) string {
	t.Helper()
	to := testkit.TempDataDir(t)
	src := filepath.Join(from, "events")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(to, "events", rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy the event log: %v", err)
	}
	return to
}

// streamOf returns kernel id's records (envelope and payload).
func streamOf(t *testing.T, s *testkit.Stack, id string) []events.Event {
	t.Helper()
	var out []events.Event
	if err := s.Log.ReadStream(context.Background(), events.KernelStream(id), 0, func(e events.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// processRuns: pid runs (not a zombie) with its recorded start time.
func processRuns(p events.KernelProcess) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || len(s) <= i+2 || s[i+2] == 'Z' {
		return false
	}
	f := strings.Fields(s[i+2:])
	return len(f) > 19 && f[19] == strconv.FormatUint(p.StartTime, 10)
}

// nodeLost runs node a's half: kernel k with state, one execution running
// (held by a sentinel), one sent behind it (ipykernel pipelines one) and
// one queued; then node a stops recording (its log is closed). Its kernel
// process stays up: it is another machine's as far as node b knows.
func nodeLost(t *testing.T) (a *testkit.Stack, f friday) {
	t.Helper()
	a = testkit.StartStackWithHooks(t, nodeHooks("a"))
	k := startKernel(t, a)
	if x := a.WaitExecution(submit(t, a, k, "x = 41"), 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("first execution: %+v", x)
	}
	ranFile := filepath.Join(t.TempDir(), "ran")
	hold := testkit.NewSentinel(t)
	running := submit(t, a, k, hold.Code(marks(ranFile, "R")))
	pipelined := submit(t, a, k, marks(ranFile, "P"))
	waiting := submit(t, a, k, marks(ranFile, "Q")+"\nprint('queued ran', flush=True)")
	a.WaitOutput(k, running, "waiting", 30*time.Second)
	if x, _ := a.Queue.Get(pipelined); x.Behind != running {
		t.Fatalf("the second execution is not pipelined behind the running one: %+v", x)
	}
	old := kernelState(t, a, k).Process
	a.Close()
	return a, friday{k: k, running: running, pipelined: pipelined, waiting: waiting, ranFile: ranFile, old: old}
}

// TestAdoptTakesOverAnotherNodesKernel: node b holds node a's records of
// kernel k (a lost node). b's registry does not recover a's kernel; Adopt
// appends KernelAdopted then KernelRestarted{Restore: auto-<id>} (b's
// records), starts a fresh process without touching a's, records the
// executions a had started lost naming node a, holds the queued one until
// FinishRestore and then runs it exactly once. A restart of b recovers the
// kernel as its own.
func TestAdoptTakesOverAnotherNodesKernel(t *testing.T) {
	a, f := nodeLost(t)
	k := f.k
	b := testkit.StartStackWithHooksIn(t, copyLog(t, a.DataDir), nodeHooks("b"))
	if ids := b.System.KernelIDs(); len(ids) != 0 {
		t.Fatalf("node b recovered %v: node a's kernels are not b's", ids)
	}
	before := len(streamOf(t, b, k))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const why = "node a stopped renewing its ownership lease 12s ago"
	if err := b.System.Adopt(ctx, k, kernel.AdoptFrom{From: "a", Reason: why}); err != nil {
		t.Fatalf("Adopt: %v", err)
	}

	after := streamOf(t, b, k)[before:]
	if len(after) < 2 || after[0].Type != events.TypeKernelAdopted || after[1].Type != events.TypeKernelRestarted {
		t.Fatalf("kernel stream after the takeover: %v, want KernelAdopted then KernelRestarted first", types(after))
	}
	for _, e := range after {
		if e.Node != "b" {
			t.Fatalf("%s written by node %q after the takeover, want b", e.Type, e.Node)
		}
	}
	adopted, restarted := after[0].Payload.(events.KernelAdopted), after[1].Payload.(events.KernelRestarted)
	if adopted.KernelID != k || adopted.From != "a" || adopted.Reason != why || adopted.Restore != autoName(k) {
		t.Fatalf("KernelAdopted: %+v", adopted)
	}
	if restarted.Restore != autoName(k) || restarted.Process.Pid == f.old.Pid || !strings.Contains(restarted.Reason, "node a") {
		t.Fatalf("KernelRestarted: %+v (a's pid %d)", restarted, f.old.Pid)
	}
	st := kernelState(t, b, k)
	if st.Status != kernel.StatusRunning || st.ProcessNode != "b" || st.Restore != autoName(k) || st.Owner != "admin" {
		t.Fatalf("kernel on node b: %+v", st)
	}

	r, held, err := b.System.Held(ctx, k)
	if err != nil || !held || r.Checkpoint != autoName(k) || r.Owner != "admin" || !slices.Equal(r.Lost, []string{f.running, f.pipelined}) {
		t.Fatalf("Held: %+v %v %v, want %s held with %s and %s lost", r, held, err, autoName(k), f.running, f.pipelined)
	}
	for id, reason := range map[string]string{f.running: kernel.AdoptedLostReason("a", why), f.pipelined: kernel.AdoptedLostPipelineReason("a", why)} {
		x := b.WaitExecution(id, 30*time.Second)
		if lost := lostOf(t, b, id); x.Status != queue.StatusLost || lost.Reason != reason || lost.Ran {
			t.Fatalf("execution %s node a had started: %+v %+v", id, x, lost)
		}
	}
	stillQueued(t, b, f.waiting, f.ranFile)

	if err := b.System.FinishRestore(ctx, k, events.KernelRestored{Checkpoint: r.Checkpoint, Lost: r.Lost}); err != nil {
		t.Fatalf("FinishRestore: %v", err)
	}
	runsExactlyOnce(t, b, []string{f.waiting}, []string{"queued ran"})
	if got, err := os.ReadFile(f.ranFile); err != nil || string(got) != "Q" {
		t.Fatalf("what ran: %q %v, want Q: the queued one once, the lost ones never", got, err)
	}
	if !processRuns(f.old) {
		t.Fatalf("node a's process (pid %d) is gone: a takeover never signals another node's process", f.old.Pid)
	}
	if err := b.System.Adopt(ctx, k, kernel.AdoptFrom{From: "a", Reason: why}); err == nil || !strings.Contains(err.Error(), "already runs it") {
		t.Fatalf("a second Adopt: %v, want a refusal", err)
	}

	// b restarts: the kernel is b's own now; it re-attaches to b's process.
	b.Restart()
	if ids := b.System.KernelIDs(); !slices.Equal(ids, []string{k}) {
		t.Fatalf("node b after its restart runs %v, want [%s]", ids, k)
	}
	if rs := restoring(t, b); len(rs) != 0 {
		t.Fatalf("held after the restart: %+v", rs)
	}
	if st := kernelState(t, b, k); st.Status != kernel.StatusRunning || st.Process.Pid != restarted.Process.Pid {
		t.Fatalf("kernel after b's restart: %+v, want b's process %d re-attached", st, restarted.Process.Pid)
	}
	if y := b.WaitExecution(submit(t, b, k, "print('after', x)"), 30*time.Second); y.Status != queue.StatusError {
		// NB: no checkpoint was loaded: x is gone with node a's process.
		t.Fatalf("after the takeover without a checkpoint: %+v, want a NameError", y)
	}
}

// TestAdoptRefusals: a single server adopts nothing; a kernel this node's
// log has no record of, or that was shut down, is not adopted, and no
// record is written for it.
func TestAdoptRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	single := testkit.StartStack(t, "")
	if err := single.System.Adopt(ctx, events.NewID(time.Now()), kernel.AdoptFrom{From: "a", Reason: "lost"}); !errors.Is(err, system.ErrNotCluster) {
		t.Fatalf("Adopt on a single server: %v, want ErrNotCluster", err)
	}

	a := testkit.StartStackWithHooks(t, nodeHooks("a"))
	k := startKernel(t, a)
	if err := a.System.ShutdownKernel(ctx, k, "admin"); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := testkit.StartStackWithHooksIn(t, copyLog(t, a.DataDir), nodeHooks("b"))
	last := b.Log.Last()
	unknown := events.NewID(time.Now())
	for id, want := range map[string]string{unknown: "no record of it", k: "shut_down"} {
		if err := b.System.Adopt(ctx, id, kernel.AdoptFrom{From: "a", Reason: "lost"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Adopt of %s: %v, want %q", id, err, want)
		}
		if b.System.HasKernel(id) {
			t.Fatalf("kernel %s runs on b after a refused Adopt", id)
		}
	}
	if b.Log.Last() != last {
		t.Fatalf("a refused Adopt wrote %d records", b.Log.Last()-last)
	}
}

// TestDisownStopsTakenKernelWithoutRecording: node b runs kernel k (it
// adopted it); node c takes it over while b is cut off. b's Disown stops
// k's actors without appending and kills b's process of it; once b's log
// holds c's KernelAdopted, b's restart does not recover k.
func TestDisownStopsTakenKernelWithoutRecording(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := testkit.StartStackWithHooks(t, nodeHooks("a"))
	k := startKernel(t, a)
	a.Close()
	b := testkit.StartStackWithHooksIn(t, copyLog(t, a.DataDir), nodeHooks("b"))
	if err := b.System.Adopt(ctx, k, kernel.AdoptFrom{From: "a", Reason: "lost"}); err != nil {
		t.Fatalf("Adopt on b: %v", err)
	}
	bProc := kernelState(t, b, k).Process
	b.Close()
	// c imports b's records and takes k over; b, cut off, still runs it.
	c := testkit.StartStackWithHooksIn(t, copyLog(t, b.DataDir), nodeHooks("c"))
	if err := c.System.Adopt(ctx, k, kernel.AdoptFrom{From: "b", Reason: "node b stopped renewing its ownership lease"}); err != nil {
		t.Fatalf("Adopt on c: %v", err)
	}
	if !processRuns(bProc) {
		t.Fatalf("c's takeover killed b's process (pid %d)", bProc.Pid)
	}
	c.Close()

	b.Restart()
	if !b.System.HasKernel(k) {
		t.Fatalf("b does not run %s before it learns of c's takeover", k)
	}
	last := b.Log.Last()
	if err := b.System.Disown(ctx, k, "c", 0); err != nil {
		t.Fatalf("Disown: %v", err)
	}
	if b.Log.Last() != last {
		t.Fatalf("Disown appended %d records: the kernel's stream is c's", b.Log.Last()-last)
	}
	if b.System.HasKernel(k) {
		t.Fatalf("b still runs %s after Disown", k)
	}
	testkit.WaitUntil(t, 30*time.Second, "b's process of the kernel killed", func() (bool, string) {
		return !processRuns(bProc), "pid " + strconv.Itoa(bProc.Pid)
	})
	if b.Log.Last() != last {
		t.Fatalf("%d records appended after Disown (the re-attach begun before it must not record)", b.Log.Last()-last)
	}

	// b's log now holds c's records (as its importer would bring them).
	b.Close()
	b = testkit.StartStackWithHooksIn(t, copyLog(t, c.DataDir), nodeHooks("b"))
	if b.System.HasKernel(k) {
		t.Fatalf("b recovers %s although c adopted it", k)
	}
	c = testkit.StartStackWithHooksIn(t, copyLog(t, c.DataDir), nodeHooks("c"))
	if !c.System.HasKernel(k) {
		t.Fatalf("c does not recover %s, which it adopted", k)
	}
}

func types(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// TestOpenSkipsKernelLeasedToAnotherNode: a node restarting after another
// took its kernel over, before it imported that node's KernelAdopted, does
// not recover the kernel its lease gives to the other node (nothing is
// written on its stream); with the lease its own it does.
func TestOpenSkipsKernelLeasedToAnotherNode(t *testing.T) {
	a := testkit.StartStackWithHooks(t, nodeHooks("a"))
	k := startKernel(t, a)
	a.Close()
	leased := "b"
	hooks := nodeHooks("a")
	hooks.Owner = func(id string) (string, bool) { return leased, id == k }
	a2 := testkit.StartStackWithHooksIn(t, a.DataDir, hooks)
	if a2.System.HasKernel(k) {
		t.Fatalf("node a recovered %s, which node b holds the lease of", k)
	}
	last := a2.Log.Last()
	a2.Close()
	leased = "a"
	a3 := testkit.StartStackWithHooksIn(t, a.DataDir, hooks)
	if !a3.System.HasKernel(k) {
		t.Fatalf("node a does not recover %s, whose lease is its own", k)
	}
	testkit.WaitUntil(t, 30*time.Second, "node a re-attaches its kernel", func() (bool, string) {
		evs := streamOf(t, a3, k)
		var re []events.Event
		for _, e := range evs {
			if e.Type == events.TypeKernelReattached {
				re = append(re, e)
			}
		}
		return len(re) == 1 && re[0].Seq > last && re[0].Node == "a", strings.Join(types(evs), " ")
	})
}
