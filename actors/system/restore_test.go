package system_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func autoName(id string) string { return "auto-" + id }

// restoreHooks are a server's with --auto-restore on.
var restoreHooks = testkit.Hooks{AutoRestore: true, RestoreName: autoName}

// killPod kills a kernel process and its group with SIGKILL, as a pod
// replacement does, and waits until it is gone (or a zombie: its exit is
// what a new server finds).
func killPod(t *testing.T, p events.KernelProcess) {
	t.Helper()
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	testkit.WaitUntil(t, 30*time.Second, "the kernel process gone", func() (bool, string) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/stat")
		if err != nil {
			return true, ""
		}
		// NB: the state follows the command name in parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		return i > 0 && len(s) > i+2 && s[i+2] == 'Z', s
	})
}

// kernelEvents returns the payloads of type T on kernel id's stream.
func kernelEvents[T events.Payload](t *testing.T, s *testkit.Stack, id string) []T {
	t.Helper()
	var out []T
	err := s.Log.ReadStream(context.Background(), events.KernelStream(id), 0, func(e events.Event) error {
		if p, ok := e.Payload.(T); ok {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func restoring(t *testing.T, s *testkit.Stack) []system.Restoring {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rs, err := s.System.Restoring(ctx)
	if err != nil {
		t.Fatalf("Restoring: %v", err)
	}
	return rs
}

// stillQueued checks that execution id waits, and never ran (the file it
// would append to does not exist).
func stillQueued(t *testing.T, s *testkit.Stack, id, ranFile string) {
	t.Helper()
	if x, ok := s.Queue.Get(id); !ok || x.Status != queue.StatusQueued {
		t.Fatalf("execution %s: %+v, want it queued while the kernel is held", id, x)
	}
	if n := s.Count(id, events.TypeExecutionStarted); n != 0 {
		t.Fatalf("execution %s started %d times while the kernel is held", id, n)
	}
	if b, err := os.ReadFile(ranFile); err == nil {
		t.Fatalf("what ran while the kernel is held: %q", b)
	}
}

// friday is what podReplaced left: kernel k, the execution running in its
// process, the one sent behind it (ipykernel pipelines one), the one
// queued, the file they append to, and the gone process.
type friday struct {
	k, running, pipelined, waiting, ranFile string
	old                                     events.KernelProcess
}

// podReplaced runs the Friday half: kernel k with state, one execution
// running (held by a sentinel), one sent behind it and one queued; the
// server stops and the kernel dies with the pod.
func podReplaced(t *testing.T, s *testkit.Stack) friday {
	t.Helper()
	k := startKernel(t, s)
	if x := s.WaitExecution(submit(t, s, k, "x = 41"), 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("first execution: %+v", x)
	}
	ranFile := filepath.Join(t.TempDir(), "ran")
	hold := testkit.NewSentinel(t)
	running := submit(t, s, k, hold.Code(marks(ranFile, "R")))
	pipelined := submit(t, s, k, marks(ranFile, "P"))
	waiting := submit(t, s, k, marks(ranFile, "Q"))
	s.WaitOutput(k, running, "waiting", 30*time.Second)
	if x, _ := s.Queue.Get(pipelined); x.Behind != running {
		t.Fatalf("the second execution is not pipelined behind the running one: %+v", x)
	}
	old := kernelState(t, s, k).Process
	s.Close()
	killPod(t, old)
	return friday{k: k, running: running, pipelined: pipelined, waiting: waiting, ranFile: ranFile, old: old}
}

// TestAutoRestoreRelaunchesGoneKernelAndHoldsItsQueue is the Monday half
// of a pod replacement at the actors: the new server finds kernel k's
// process gone; with --auto-restore it starts a fresh process under the
// same id (KernelRestarted{Reason, Restore}), records the executions sent
// to the gone process lost with the reason (never run again: the running
// one, and the one pipelined behind it, which that process may have run),
// and holds the queue: the queued execution does not run, an agent's new
// one waits too, while the restore's own load (Submit{Restore}) runs at
// once. FinishRestore records KernelRestored and ends the hold: the queued
// executions run, once each, in order. A second FinishRestore is refused.
func TestAutoRestoreRelaunchesGoneKernelAndHoldsItsQueue(t *testing.T) {
	s := testkit.StartStackWithHooks(t, restoreHooks)
	f := podReplaced(t, s)
	k := f.k

	s.Restart()
	rs := restoring(t, s)
	if len(rs) != 1 || rs[0].KernelID != k || rs[0].Checkpoint != autoName(k) || rs[0].Owner != "admin" || rs[0].Spec != "python3" ||
		!slices.Equal(rs[0].Lost, []string{f.running, f.pipelined}) || rs[0].Seq == 0 {
		t.Fatalf("Restoring: %+v, want kernel %s held for %s with %s and %s lost", rs, k, autoName(k), f.running, f.pipelined)
	}
	st := kernelState(t, s, k)
	if st.Status != kernel.StatusRunning || st.Process.Pid == f.old.Pid || st.Restore != autoName(k) || st.Owner != "admin" {
		t.Fatalf("kernel after the relaunch: %+v (old pid %d)", st, f.old.Pid)
	}
	restarted := kernelEvents[events.KernelRestarted](t, s, k)
	if len(restarted) != 1 || restarted[0].Restore != autoName(k) || !strings.Contains(restarted[0].Reason, "gone when the server started") ||
		restarted[0].Process.Pid != st.Process.Pid {
		t.Fatalf("KernelRestarted: %+v", restarted)
	}
	if n := len(kernelEvents[events.KernelLost](t, s, k)); n != 0 {
		t.Fatalf("%d KernelLost: a relaunched kernel is not lost", n)
	}
	for id, reason := range map[string]string{f.running: kernel.RelaunchLostReason, f.pipelined: kernel.RelaunchLostPipelineReason} {
		x := s.WaitExecution(id, 30*time.Second)
		if lost := lostOf(t, s, id); x.Status != queue.StatusLost || lost.Reason != reason || lost.Ran {
			t.Fatalf("execution %s sent to the gone process: %+v %+v", id, x, lost)
		}
	}
	stillQueued(t, s, f.waiting, f.ranFile)
	// An agent's execution submitted now waits behind the hold too.
	later := submit(t, s, k, marks(f.ranFile, "L"))

	ctx := context.Background()
	load, err := s.System.Submit(ctx, k, scheduler.Submit{Restore: true, Code: "print('fresh', globals().get('x'))\nx = 41"})
	if err != nil {
		t.Fatalf("submit the restore: %v", err)
	}
	if y := s.WaitExecution(load.ID, 30*time.Second); y.Status != queue.StatusOK || !strings.Contains(stdout(s, load.ID), "fresh None") {
		t.Fatalf("the restore's load, ahead of the queue: %+v printed %q", y, stdout(s, load.ID))
	}
	stillQueued(t, s, f.waiting, f.ranFile)
	stillQueued(t, s, later, f.ranFile)

	restored := events.KernelRestored{Checkpoint: autoName(k), Restored: []string{"x"}, Lost: rs[0].Lost}
	if err := s.System.FinishRestore(ctx, k, restored); err != nil {
		t.Fatalf("FinishRestore: %v", err)
	}
	runsExactlyOnce(t, s, []string{f.waiting, later}, []string{"", ""})
	if got, err := os.ReadFile(f.ranFile); err != nil || string(got) != "QL" {
		t.Fatalf("what ran: %q %v, want QL: the queued ones once each, in order, the lost ones never", got, err)
	}
	rec := kernelEvents[events.KernelRestored](t, s, k)
	if len(rec) != 1 || rec[0].KernelID != k || rec[0].Checkpoint != autoName(k) || !slices.Equal(rec[0].Lost, rs[0].Lost) {
		t.Fatalf("KernelRestored: %+v", rec)
	}
	if y := s.WaitExecution(submit(t, s, k, "print(x + 1)"), 30*time.Second); y.Status != queue.StatusOK {
		t.Fatalf("after the restore: %+v", y)
	}
	if err := s.System.FinishRestore(ctx, k, restored); !errors.Is(err, system.ErrNotHeld) {
		t.Fatalf("a second FinishRestore: %v, want ErrNotHeld", err)
	}
	if rs := restoring(t, s); len(rs) != 0 {
		t.Fatalf("Restoring after the restore: %+v", rs)
	}
}

// TestHeldKernelStaysHeldAcrossCrashAndRestart: the hold is in the log.
// The kernel actor crashes mid-restore (supervision rebuilds it; it
// re-attaches to the fresh process), then the scheduler crashes (rebuilt
// from the log), then the whole server stops and starts again: the kernel is still held, Restoring returns it again (with
// the executions the first relaunch recorded lost), and its queue runs
// once, only after FinishRestore.
func TestHeldKernelStaysHeldAcrossCrashAndRestart(t *testing.T) {
	hooks := restoreHooks
	hooks.KernelPanicOn, hooks.SchedulerPanicOn = isCrash, isCrash
	s := testkit.StartStackWithHooks(t, hooks)
	f := podReplaced(t, s)
	k := f.k
	s.Restart()
	first := restoring(t, s)
	if len(first) != 1 || first[0].KernelID != k {
		t.Fatalf("Restoring: %+v", first)
	}

	kpid, _, err := s.System.PIDs(k)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Log.Last()
	s.System.Actors().Root.Send(kpid, crash{})
	s.WaitEvent(k, before, func(e events.Event) bool { return e.Type == events.TypeKernelReattached }, 60*time.Second)
	if st := kernelState(t, s, k); st.Restore != autoName(k) {
		t.Fatalf("kernel actor rebuilt mid-restore: %+v, want it still held", st)
	}
	_, spid, err := s.System.PIDs(k)
	if err != nil {
		t.Fatal(err)
	}
	s.System.Actors().Root.Send(spid, crash{})
	// NB: after the crash in the scheduler's mailbox, and dispatched, if at
	// all, once the re-attach's reconcile is done: it runs only if the
	// rebuilt scheduler lost the hold.
	later := submit(t, s, k, marks(f.ranFile, "L"))
	// The rebuilt scheduler dispatches the restore's load, and only it.
	early, err := s.System.Submit(context.Background(), k, scheduler.Submit{Restore: true, Code: "x = 40"})
	if err != nil {
		t.Fatal(err)
	}
	if y := s.WaitExecution(early.ID, 60*time.Second); y.Status != queue.StatusOK {
		t.Fatalf("the restore's load after the crashes: %+v", y)
	}
	stillQueued(t, s, f.waiting, f.ranFile)
	stillQueued(t, s, later, f.ranFile)

	s.Restart()
	again := restoring(t, s)
	if len(again) != 1 || again[0].KernelID != k || again[0].Checkpoint != autoName(k) || again[0].Seq != first[0].Seq ||
		!slices.Equal(again[0].Lost, first[0].Lost) {
		t.Fatalf("Restoring after a restart mid-restore: %+v, want %+v again", again, first)
	}
	if n := len(kernelEvents[events.KernelRestarted](t, s, k)); n != 1 {
		t.Fatalf("%d KernelRestarted: the fresh process was re-attached, not relaunched again", n)
	}
	load, err := s.System.Submit(context.Background(), k, scheduler.Submit{Restore: true, Code: "x = 41"})
	if err != nil {
		t.Fatal(err)
	}
	if y := s.WaitExecution(load.ID, 60*time.Second); y.Status != queue.StatusOK {
		t.Fatalf("the restore's load: %+v", y)
	}
	stillQueued(t, s, f.waiting, f.ranFile)
	stillQueued(t, s, later, f.ranFile)
	if err := s.System.FinishRestore(context.Background(), k, events.KernelRestored{Checkpoint: autoName(k)}); err != nil {
		t.Fatal(err)
	}
	runsExactlyOnce(t, s, []string{f.waiting, later}, []string{"", ""})
	if got, err := os.ReadFile(f.ranFile); err != nil || string(got) != "QL" {
		t.Fatalf("what ran: %q %v, want QL", got, err)
	}
}

// TestAutoRestoreOffRecordsKernelLost: without --auto-restore a kernel
// found gone at start is lost, as before: KernelLost, the executions sent
// to it lost, the queued one lost without running; nothing is held.
func TestAutoRestoreOffRecordsKernelLost(t *testing.T) {
	s := testkit.StartStack(t, "")
	f := podReplaced(t, s)
	k := f.k
	s.Restart()
	if rs := restoring(t, s); len(rs) != 0 {
		t.Fatalf("Restoring without --auto-restore: %+v", rs)
	}
	if lost := kernelEvents[events.KernelLost](t, s, k); len(lost) != 1 {
		t.Fatalf("KernelLost: %+v", lost)
	}
	if n := len(kernelEvents[events.KernelRestarted](t, s, k)); n != 0 {
		t.Fatalf("%d KernelRestarted without --auto-restore", n)
	}
	for _, id := range []string{f.running, f.pipelined, f.waiting} {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusLost {
			t.Fatalf("execution %s: %+v", id, x)
		}
	}
	if _, err := os.Stat(f.ranFile); err == nil {
		t.Fatal("an execution of the lost kernel ran")
	}
	if err := s.System.FinishRestore(context.Background(), k, events.KernelRestored{}); !errors.Is(err, system.ErrNotHeld) {
		t.Fatalf("FinishRestore on a lost kernel: %v, want ErrNotHeld", err)
	}
}

// TestRelaunchThatFailsRecordsKernelLostWithBothReasons: the kernelspec
// is gone too, so no fresh process can start: the kernel is lost, and the
// reason says both why it could not be re-attached and why the relaunch
// failed; its queue is lost, nothing is held.
func TestRelaunchThatFailsRecordsKernelLostWithBothReasons(t *testing.T) {
	s := testkit.StartStackWithHooks(t, restoreHooks)
	f := podReplaced(t, s)
	if err := os.RemoveAll(filepath.Join(s.SpecDir, "kernels", "python3")); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if rs := restoring(t, s); len(rs) != 0 {
		t.Fatalf("Restoring: %+v", rs)
	}
	lost := kernelEvents[events.KernelLost](t, s, f.k)
	if len(lost) != 1 || !strings.Contains(lost[0].Reason, "attach kernel pid") || !strings.Contains(lost[0].Reason, "starting a fresh process under the same id failed") ||
		!strings.Contains(lost[0].Reason, "no kernelspec") {
		t.Fatalf("KernelLost: %+v", lost)
	}
	if x := s.WaitExecution(f.waiting, 30*time.Second); x.Status != queue.StatusLost {
		t.Fatalf("queued on a lost kernel: %+v", x)
	}
}

// TestFinishRestoreOnAKernelNotHeldIsRefused: a kernel started (or
// re-attached) normally has no restore under way; a restore submit on it
// runs like any other execution.
func TestFinishRestoreOnAKernelNotHeldIsRefused(t *testing.T) {
	s := testkit.StartStackWithHooks(t, restoreHooks)
	k := startKernel(t, s)
	err := s.System.FinishRestore(context.Background(), k, events.KernelRestored{Checkpoint: autoName(k)})
	if !errors.Is(err, system.ErrNotHeld) || !strings.Contains(err.Error(), k) {
		t.Fatalf("FinishRestore on a kernel not held: %v", err)
	}
	x, err := s.System.Submit(context.Background(), k, scheduler.Submit{Restore: true, Code: "print('plain')"})
	if err != nil {
		t.Fatal(err)
	}
	if y := s.WaitExecution(x.ID, 30*time.Second); y.Status != queue.StatusOK {
		t.Fatalf("a restore submit on a kernel not held: %+v", y)
	}
	if n := len(kernelEvents[events.KernelRestored](t, s, k)); n != 0 {
		t.Fatalf("%d KernelRestored after a refused FinishRestore", n)
	}
}

// TestRelaunchWithoutACheckpointNameHoldsNothing: with --auto-restore but
// no checkpoint to restore from (RestoreName nil), the kernel is relaunched
// all the same and its queued execution runs at once, exactly once; the
// executions sent to the gone process are lost; Restoring returns nothing.
func TestRelaunchWithoutACheckpointNameHoldsNothing(t *testing.T) {
	s := testkit.StartStackWithHooks(t, testkit.Hooks{AutoRestore: true})
	f := podReplaced(t, s)
	s.Restart()
	if rs := restoring(t, s); len(rs) != 0 {
		t.Fatalf("Restoring: %+v", rs)
	}
	restarted := kernelEvents[events.KernelRestarted](t, s, f.k)
	if len(restarted) != 1 || restarted[0].Restore != "" || restarted[0].Reason == "" {
		t.Fatalf("KernelRestarted: %+v", restarted)
	}
	runsExactlyOnce(t, s, []string{f.waiting}, []string{""})
	for _, id := range []string{f.running, f.pipelined} {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusLost {
			t.Fatalf("execution %s sent to the gone process: %+v", id, x)
		}
	}
	if got, err := os.ReadFile(f.ranFile); err != nil || string(got) != "Q" {
		t.Fatalf("what ran: %q %v, want Q", got, err)
	}
}

// TestRestoringHonoursItsContext: a caller whose context has ended is
// answered at once with its error, not after the recovered kernels'
// outcomes.
func TestRestoringHonoursItsContext(t *testing.T) {
	s := testkit.StartStackWithHooks(t, restoreHooks)
	startKernel(t, s)
	s.Restart()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.System.Restoring(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Restoring with an ended context: %v", err)
	}
}

// liveKernelProcesses counts the processes (zombies aside) whose command
// line names kernel id's directory under dataDir.
func liveKernelProcesses(t *testing.T, dataDir, id string) int {
	t.Helper()
	dir := filepath.Join(dataDir, "runtime", "kernels", id) + string(filepath.Separator)
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if i := strings.LastIndexByte(string(stat), ')'); err != nil || i < 0 || len(stat) <= i+2 || stat[i+2] == 'Z' {
			continue
		}
		n++
	}
	return n
}

// TestKernelActorCrashMidRelaunchLeavesOneProcess: the kernel actor
// crashes while its relaunch starts the fresh process. The rebuilt actor
// waits for that launch to end, stops the process it started (it was
// never recorded), and relaunches once more: one KernelRestarted, one live
// process for the kernel id, held for its restore, and the queue runs once
// after FinishRestore.
func TestKernelActorCrashMidRelaunchLeavesOneProcess(t *testing.T) {
	var attaching atomic.Bool
	hooks := restoreHooks
	hooks.KernelPanicOn = func(m any) bool {
		if fmt.Sprintf("%T", m) == "kernel.attachDone" {
			attaching.Store(true) // NB: an observer only: never panics here
		}
		return isCrash(m)
	}
	s := testkit.StartStackWithHooks(t, hooks)
	f := podReplaced(t, s)
	attaching.Store(false)
	s.Restart()
	testkit.WaitUntil(t, 60*time.Second, "the kernel actor's attach failed", func() (bool, string) { return attaching.Load(), "" })
	kpid, _, err := s.System.PIDs(f.k)
	if err != nil {
		t.Fatal(err)
	}
	// NB: behind the attach's outcome in the mailbox: the relaunch is under way.
	s.System.Actors().Root.Send(kpid, crash{})

	rs := restoring(t, s)
	if len(rs) != 1 || rs[0].KernelID != f.k || !slices.Equal(rs[0].Lost, []string{f.running, f.pipelined}) {
		t.Fatalf("Restoring: %+v", rs)
	}
	if n := len(kernelEvents[events.KernelRestarted](t, s, f.k)); n != 1 {
		t.Fatalf("%d KernelRestarted, want 1", n)
	}
	testkit.WaitUntil(t, 30*time.Second, "one live process for the kernel", func() (bool, string) {
		n := liveKernelProcesses(t, s.DataDir, f.k)
		return n == 1, fmt.Sprintf("%d processes", n)
	})
	if err := s.System.FinishRestore(context.Background(), f.k, events.KernelRestored{Checkpoint: autoName(f.k)}); err != nil {
		t.Fatal(err)
	}
	runsExactlyOnce(t, s, []string{f.waiting}, []string{""})
}
