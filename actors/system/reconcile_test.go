package system_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// marks returns code that appends name to the file at path: what ran, and
// how often, can be read back whatever the log says.
func marks(path, name string) string {
	return fmt.Sprintf("with open(%q, 'a') as f:\n    f.write(%q)", path, name)
}

// crashLeft writes to the stopped server's log what a kill -9 would have
// left durable: drafts, appended directly.
func crashLeft(t *testing.T, dataDir string, drafts ...events.Draft) {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(context.Background(), drafts...); err != nil {
		t.Fatal(err)
	}
}

// sendBehindTheServersBack runs codes on the kernel from a second client
// on its connection file with the recorded session — what the server's own
// sends look like to the kernel when the log never recorded them — and
// waits until each ran.
func sendBehindTheServersBack(t *testing.T, p events.KernelProcess, codes ...string) {
	t.Helper()
	info, err := jupyter.ReadConnectionFile(p.ConnFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := jupyter.Attach(ctx, info, p.Pid, p.StartTime, 30*time.Second, jupyter.ClientOptions{Session: p.Session})
	if err != nil {
		t.Fatalf("attach a second client: %v", err)
	}
	defer k.Close()
	for _, code := range codes {
		if r := testkit.RawExecute(t, k.Client, code, 30*time.Second); r["status"] != "ok" {
			t.Fatalf("second client: %v", r)
		}
	}
}

func queuedDraft(kernelID, id, code string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(id), Kernel: kernelID, Principal: "admin",
		Payload: events.ExecutionQueued{ExecutionID: id, KernelID: kernelID, Code: code}}
}

func startedDraft(kernelID, id string) events.Draft {
	return events.Draft{Stream: events.ExecutionStream(id), Kernel: kernelID, Principal: "admin",
		Payload: events.ExecutionStarted{ExecutionID: id, KernelID: kernelID, MsgID: "msg-" + id}}
}

func lostOf(t *testing.T, s *testkit.Stack, id string) events.ExecutionLost {
	t.Helper()
	var lost []events.ExecutionLost
	_ = s.Log.ReadStream(context.Background(), events.ExecutionStream(id), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.ExecutionLost); ok {
			lost = append(lost, p)
		}
		return nil
	})
	if len(lost) != 1 {
		t.Fatalf("execution %s: %d ExecutionLost, want 1", id, len(lost))
	}
	return lost[0]
}

// TestRecoveryRecordsWhatRanWhileDownAndRunsNothingTwice: the server sends
// an execute_request before its ExecutionStarted (or even its
// ExecutionQueued) is durable, so a crash can leave the log behind the
// kernel. Here the log holds, as a kill -9 left it: A started, B and C
// queued; the kernel ran A and B — sent with the recorded session, as the
// server's own sends are. After the restart, the count probe accounts for
// each: A and B are recorded as ran-but-unrecorded with their execution
// counts, and only C runs. A second crash leaves D queued, and the kernel
// ran D and then E, whose queueing never became durable: D is recorded
// ran, E as a KernelRanUnrecorded on the kernel's stream. Every one ran
// exactly once (the file they append to says so).
func TestRecoveryRecordsWhatRanWhileDownAndRunsNothingTwice(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	if x := s.WaitExecution(submit(t, s, k, "x = 1"), 30*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 1 {
		t.Fatalf("first execution: %+v", x)
	}
	proc := kernelState(t, s, k).Process
	ran := filepath.Join(t.TempDir(), "ran")
	s.Close()

	a, b, c := events.NewID(time.Now()), events.NewID(time.Now()), events.NewID(time.Now())
	crashLeft(t, s.DataDir, queuedDraft(k, a, marks(ran, "A")), queuedDraft(k, b, marks(ran, "B")),
		queuedDraft(k, c, marks(ran, "C")), startedDraft(k, a))
	sendBehindTheServersBack(t, proc, marks(ran, "A"), marks(ran, "B"))

	s = testkit.StartStack(t, s.DataDir)
	if x := s.WaitExecution(c, 60*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 4 {
		t.Fatalf("C, never sent, runs once after the others (count 4): %+v", x)
	}
	for i, id := range []string{a, b} {
		x := s.WaitExecution(id, 30*time.Second)
		lost := lostOf(t, s, id)
		if x.Status != queue.StatusLost || !lost.Ran || lost.ExecutionCount != 2+i || !strings.Contains(lost.Reason, "ran while the server was down") {
			t.Fatalf("execution %d: %+v %+v", i, x, lost)
		}
		if n := s.Count(id, events.TypeExecutionFinished); n != 0 {
			t.Fatalf("execution %d finished %d times: it never ran under the server", i, n)
		}
	}

	s.Close()
	d := events.NewID(time.Now())
	crashLeft(t, s.DataDir, queuedDraft(k, d, marks(ran, "D")))
	sendBehindTheServersBack(t, proc, marks(ran, "D"), marks(ran, "E"))
	s = testkit.StartStack(t, s.DataDir)
	x := s.WaitExecution(d, 60*time.Second)
	if lost := lostOf(t, s, d); x.Status != queue.StatusLost || !lost.Ran || lost.ExecutionCount != 5 {
		t.Fatalf("D: %+v %+v", x, lost)
	}
	var unrecorded []events.KernelRanUnrecorded
	_ = s.Log.ReadStream(context.Background(), events.KernelStream(k), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.KernelRanUnrecorded); ok {
			unrecorded = append(unrecorded, p)
		}
		return nil
	})
	if len(unrecorded) != 1 || unrecorded[0].Count != 1 || unrecorded[0].ExecutionCount != 6 {
		t.Fatalf("KernelRanUnrecorded: %+v, want one of count 1 at execution count 6", unrecorded)
	}
	if x := s.WaitExecution(submit(t, s, k, marks(ran, "F")), 30*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 7 {
		t.Fatalf("the kernel takes work after: %+v", x)
	}
	if got, err := os.ReadFile(ran); err != nil || string(got) != "ABCDEF" {
		t.Fatalf("what ran: %q %v, want ABCDEF (each once)", got, err)
	}
}

// TestRecoveryRecordsAStartNeverSentAsNotRun: the log holds A started (its
// start durable) but the crash came before the send, and B queued. The
// probe's count shows nothing ran: A is recorded lost as never having
// reached the kernel (not run, and not run now), B runs once.
func TestRecoveryRecordsAStartNeverSentAsNotRun(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	if x := s.WaitExecution(submit(t, s, k, "x = 1"), 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("first execution: %+v", x)
	}
	ran := filepath.Join(t.TempDir(), "ran")
	s.Close()
	a, b := events.NewID(time.Now()), events.NewID(time.Now())
	crashLeft(t, s.DataDir, queuedDraft(k, a, marks(ran, "A")), startedDraft(k, a), queuedDraft(k, b, marks(ran, "B")))

	s = testkit.StartStack(t, s.DataDir)
	if x := s.WaitExecution(b, 60*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 2 {
		t.Fatalf("B: %+v", x)
	}
	x := s.WaitExecution(a, 30*time.Second)
	if lost := lostOf(t, s, a); x.Status != queue.StatusLost || lost.Ran || !strings.Contains(lost.Reason, "never reached the kernel") {
		t.Fatalf("A: %+v %+v", x, lost)
	}
	if got, err := os.ReadFile(ran); err != nil || string(got) != "B" {
		t.Fatalf("what ran: %q %v, want B only", got, err)
	}
}

// TestRecoveryTellsAForeignRunFromAQueuedOne: the log holds A queued (its
// start never became durable); while the server was down another client
// ran other code on the kernel, and A never reached it. The count alone
// would say "one run, A is the next queued": the kernel's input history
// says the run was not A's code. So the run is recorded unrecorded
// (KernelRanUnrecorded) and A runs, once.
func TestRecoveryTellsAForeignRunFromAQueuedOne(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	if x := s.WaitExecution(submit(t, s, k, "x = 1"), 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("first execution: %+v", x)
	}
	proc := kernelState(t, s, k).Process
	ran := filepath.Join(t.TempDir(), "ran")
	s.Close()
	a := events.NewID(time.Now())
	crashLeft(t, s.DataDir, queuedDraft(k, a, marks(ran, "A")))
	sendBehindTheServersBack(t, proc, marks(ran, "F"))

	s = testkit.StartStack(t, s.DataDir)
	if x := s.WaitExecution(a, 60*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 3 {
		t.Fatalf("A never ran before: it runs now, once: %+v", x)
	}
	var unrecorded []events.KernelRanUnrecorded
	_ = s.Log.ReadStream(context.Background(), events.KernelStream(k), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.KernelRanUnrecorded); ok {
			unrecorded = append(unrecorded, p)
		}
		return nil
	})
	if len(unrecorded) != 1 || unrecorded[0].Count != 1 || unrecorded[0].ExecutionCount != 2 {
		t.Fatalf("KernelRanUnrecorded: %+v, want one of count 1 at execution count 2", unrecorded)
	}
	if got, err := os.ReadFile(ran); err != nil || string(got) != "FA" {
		t.Fatalf("what ran: %q %v, want FA", got, err)
	}
}

// TestUnrecordedRunIsNotRecordedTwice: a foreign run while the server was
// down is recorded once (KernelRanUnrecorded); a later re-attach of the
// same live scheduler (the kernel actor crashes) must not record it again:
// the scheduler's count takes the one the probe read.
func TestUnrecordedRunIsNotRecordedTwice(t *testing.T) {
	s := testkit.StartStackWithHooks(t, testkit.Hooks{KernelPanicOn: isCrash})
	k := startKernel(t, s)
	if x := s.WaitExecution(submit(t, s, k, "x = 1"), 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("first execution: %+v", x)
	}
	proc := kernelState(t, s, k).Process
	s.Close()
	sendBehindTheServersBack(t, proc, "y = 2")
	s.Restart()
	unrecorded := func() []events.KernelRanUnrecorded {
		var out []events.KernelRanUnrecorded
		_ = s.Log.ReadStream(context.Background(), events.KernelStream(k), 0, func(e events.Event) error {
			if p, ok := e.Payload.(events.KernelRanUnrecorded); ok {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	testkit.WaitUntil(t, 60*time.Second, "the foreign run recorded", func() (bool, string) {
		return len(unrecorded()) == 1, fmt.Sprint(unrecorded())
	})
	kpid, _, err := s.System.PIDs(k)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Log.Last()
	s.System.Actors().Root.Send(kpid, crash{})
	s.WaitEvent(k, before, func(e events.Event) bool { return e.Type == events.TypeKernelReattached }, 60*time.Second)
	// NB: dispatched only once the second reconcile is done.
	if x := s.WaitExecution(submit(t, s, k, "z = 3"), 60*time.Second); x.Status != queue.StatusOK || x.ExecutionCount != 3 {
		t.Fatalf("after the second re-attach: %+v", x)
	}
	if got := unrecorded(); len(got) != 1 {
		t.Fatalf("KernelRanUnrecorded: %+v, want the one foreign run recorded once", got)
	}
}
