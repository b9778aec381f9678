package system_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func TestExecuteThroughActors(t *testing.T) {
	s := testkit.StartStack(t, "")
	ctx := context.Background()
	k, err := s.System.StartKernel(ctx, "python3", "test", "", "admin")
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}
	x, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: "print('hello')\n1+1"})
	if err != nil {
		t.Fatal(err)
	}
	done := s.WaitExecution(x.ID, 30*time.Second)
	if done.Status != queue.StatusOK || done.ExecutionCount != 1 {
		t.Fatalf("execution: %+v", done)
	}
	var text []string
	for _, o := range s.Outputs(x.ID) {
		text = append(text, o.MsgType+":"+string(o.Content))
	}
	joined := strings.Join(text, "\n")
	if !strings.Contains(joined, `hello`) || !strings.Contains(joined, `"text/plain":"2"`) {
		t.Fatalf("outputs:\n%s", joined)
	}
}

func startKernel(t *testing.T, s *testkit.Stack) string {
	t.Helper()
	k, err := s.System.StartKernel(context.Background(), "python3", "", "", "admin")
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}
	return k.ID
}

func submit(t *testing.T, s *testkit.Stack, kernelID, code string) string {
	t.Helper()
	x, err := s.System.Submit(context.Background(), kernelID, scheduler.Submit{Code: code})
	if err != nil {
		t.Fatalf("submit %q: %v", code, err)
	}
	return x.ID
}

func stdout(s *testkit.Stack, id string) string {
	var b strings.Builder
	for _, o := range s.Outputs(id) {
		if o.MsgType == "stream" {
			var c struct{ Text string }
			_ = json.Unmarshal(o.Content, &c)
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

func TestQueueRunsInOrderAndIsIdempotent(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, submit(t, s, k, fmt.Sprintf("import time; time.sleep(0.01); print(%d)", i)))
	}
	for i, id := range ids {
		x := s.WaitExecution(id, 60*time.Second)
		if x.Status != queue.StatusOK || x.ExecutionCount != i+1 || strings.TrimSpace(stdout(s, id)) != fmt.Sprint(i) {
			t.Fatalf("execution %d: %+v out %q", i, x, stdout(s, id))
		}
	}
	again, err := s.System.Submit(context.Background(), k, scheduler.Submit{ExecutionID: ids[3], Code: "different"})
	if err != nil || again.ID != ids[3] || !strings.Contains(again.Code, "print(3)") {
		t.Fatalf("resubmitting an id must return the same execution: %+v %v", again, err)
	}
}

// TestServerRestartKeepsKernelQueueAndVariables: three executions queued and
// one running when the server stops; after the restart the kernel is
// reattached with its variables, the running one — held by a sentinel until
// the new connection is up, so certainly still running — is re-adopted and
// ends ok with its output, and the queued ones run in order exactly once.
func TestServerRestartKeepsKernelQueueAndVariables(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	first := submit(t, s, k, "x = 41")
	s.WaitExecution(first, 30*time.Second)
	hold := testkit.NewSentinel(t)
	running := submit(t, s, k, hold.Code("x += 1\nprint('slept')"))
	var queued []string
	for i := 0; i < 3; i++ {
		queued = append(queued, submit(t, s, k, fmt.Sprintf("print('q%d', x)", i)))
	}
	s.WaitOutput(k, running, "waiting", 30*time.Second)
	s.Restart()
	s.WaitEvent(k, s.Log.Last(), func(e events.Event) bool { return e.Type == events.TypeKernelReattached }, 60*time.Second)
	hold.Release()
	x := s.WaitExecution(running, 60*time.Second)
	if x.Status != queue.StatusOK || !strings.Contains(stdout(s, running), "waiting\nslept") {
		t.Fatalf("the re-adopted execution must end ok with all its output: %+v %q", x, stdout(s, running))
	}
	if n := s.Count(running, events.TypeExecutionFinished); n != 1 {
		t.Fatalf("re-adopted execution finished %d times", n)
	}
	if n := s.Count(running, events.TypeExecutionOutputLost); n != 0 {
		t.Fatalf("a re-adopted execution that printed nothing while the server was down recorded %d output gaps", n)
	}
	for i, id := range queued {
		q := s.WaitExecution(id, 60*time.Second)
		if q.Status != queue.StatusOK {
			t.Fatalf("queued %d: %+v", i, q)
		}
		if got, want := strings.TrimSpace(stdout(s, id)), fmt.Sprintf("q%d 42", i); got != want {
			t.Fatalf("queued %d printed %q, want %q (variables must survive the restart)", i, got, want)
		}
	}
	var started int
	for _, id := range queued {
		_ = s.Log.ReadStream(context.Background(), "execution/"+id, 0, func(e events.Event) error {
			if e.Type == events.TypeExecutionStarted {
				started++
			}
			return nil
		})
	}
	if started != 3 {
		t.Fatalf("queued executions started %d times, want exactly 3", started)
	}
	st, err := s.System.Kernel(context.Background(), k)
	if err != nil || st.Status != kernel.StatusRunning {
		t.Fatalf("kernel after restart: %+v %v", st, err)
	}
}

func TestKernelKilledIsDeadWithin3sAndWorkIsLost(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	st := kernelState(t, s, k)
	hold := testkit.NewSentinel(t)
	running := submit(t, s, k, hold.Code(""))
	waiting := submit(t, s, k, "1+1")
	s.WaitOutput(k, running, "waiting", 30*time.Second)
	killed := time.Now()
	if err := syscall.Kill(st.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	x := s.WaitExecution(running, 10*time.Second)
	if took := time.Since(killed); took > 3*time.Second {
		t.Fatalf("death noticed after %v", took)
	}
	if x.Status != queue.StatusLost || !strings.Contains(x.Reason, "died") {
		t.Fatalf("running execution: %+v", x)
	}
	if w := s.WaitExecution(waiting, 10*time.Second); w.Status != queue.StatusLost || !w.StartedAt.IsZero() {
		t.Fatalf("a queued execution on a dead kernel is lost without being started: %+v", w)
	}
	if st = kernelState(t, s, k); st.Status != kernel.StatusDead {
		t.Fatalf("kernel: %+v", st)
	}
	if _, err := s.System.Submit(context.Background(), k, scheduler.Submit{Code: "1"}); err == nil || !strings.Contains(err.Error(), "dead") {
		t.Fatalf("submit to a dead kernel: %v", err)
	}
	// restart brings it back
	if err := s.System.RestartKernel(context.Background(), k, "admin"); err != nil {
		t.Fatalf("restart dead kernel: %v", err)
	}
	if x := s.WaitExecution(submit(t, s, k, "1+1"), 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("after restart: %+v", x)
	}
}

func TestInterruptAndShutdown(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	hold := testkit.NewSentinel(t)
	id := submit(t, s, k, hold.Code(""))
	s.WaitOutput(k, id, "waiting", 30*time.Second)
	asked := time.Now()
	if err := s.System.InterruptKernel(context.Background(), k, "admin"); err != nil {
		t.Fatal(err)
	}
	x := s.WaitExecution(id, 10*time.Second)
	if time.Since(asked) > 2*time.Second || x.Status != queue.StatusInterrupted {
		t.Fatalf("interrupt: %+v after %v", x, time.Since(asked))
	}
	if y := s.WaitExecution(submit(t, s, k, "input('name?')"), 10*time.Second); y.Status != queue.StatusError || y.ErrorName == "" {
		t.Fatalf("input() without stdin must raise at once: %+v", y)
	}
	st := kernelState(t, s, k)
	if err := s.System.ShutdownKernel(context.Background(), k, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.Process.Pid, 0); err == nil {
		t.Fatalf("kernel pid %d still alive after shutdown", st.Process.Pid)
	}
	s.Restart()
	if ids := s.System.KernelIDs(); len(ids) != 0 {
		t.Fatalf("a shut-down kernel must not be resurrected: %v", ids)
	}
}

// kernelState returns a kernel's state; a kernel without a live process
// (pid 0) fails the test, so that nothing ever signals pid 0 (the test's
// own process group).
func kernelState(t *testing.T, s *testkit.Stack, id string) kernel.State {
	t.Helper()
	st, err := s.System.Kernel(context.Background(), id)
	if err != nil {
		t.Fatalf("kernel %s: %v", id, err)
	}
	if st.Process.Pid <= 0 {
		t.Fatalf("kernel %s has no process: %+v", id, st)
	}
	return st
}
