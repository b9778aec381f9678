package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// KernelSpecDir writes a "python3" kernelspec that runs Debian's ipykernel
// and returns the Jupyter data dir holding it (put it on a SearchPath).
func KernelSpecDir(t testing.TB) string {
	t.Helper()
	python := PythonWithIPyKernel(t)
	dir := t.TempDir()
	spec := map[string]any{"argv": []string{python, "-m", "ipykernel_launcher", "-f", "{connection_file}"},
		"display_name": "Python 3 (test)", "language": "python"}
	b, _ := json.Marshal(spec)
	if err := os.MkdirAll(filepath.Join(dir, "kernels", "python3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernels", "python3", "kernel.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Stack is a running core: the event log, the queue read model following
// it, and the actor system with real kernels. Restart closes and reopens it
// on the same data dir, as a server restart would (kernels keep running).
type Stack struct {
	t        testing.TB
	DataDir  string
	SpecDir  string
	Log      *eventlog.Log
	Queue    *queue.Model
	System   *system.System
	Launcher *jupyter.Launcher

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	logOpts eventlog.Options
	hooks   Hooks
}

// Hooks are the actors' test hooks, and the recovery options a test sets
// (see system.Config).
type Hooks struct {
	KernelPanicOn, SchedulerPanicOn func(msg any) bool
	// AutoRestore and RestoreName: system.Config's (--auto-restore).
	AutoRestore bool
	RestoreName func(kernelID string) string
	// Node names a cluster node: the log's Node (stamped on its records)
	// and system.Config.Node ("": a single server).
	Node string
	// Owner: system.Config.Owner (a cluster's ownership leases).
	Owner func(kernelID string) (node string, known bool)
	// Held: system.Config.Held (a cluster's lease check before a start).
	Held func(kernelID string) error
	// AbortReplyTimeout: system.Config's (0: the default).
	AbortReplyTimeout time.Duration
	// ConfirmStarted: system.Config's (a cluster's history gate).
	ConfirmStarted func(ctx context.Context, kernelID string, seq uint64) error
}

// StartStackWithHooks is StartStack with the actors' test hooks set, in
// this run and after every Restart.
func StartStackWithHooks(t testing.TB, hooks Hooks) *Stack {
	t.Helper()
	return StartStackWithHooksIn(t, TempDataDir(t), hooks)
}

// StartStackWithHooksIn is StartStackWithHooks on dataDir (a data dir a
// test prepared: a copy of another node's log, ...).
func StartStackWithHooksIn(t testing.TB, dataDir string, hooks Hooks) *Stack {
	t.Helper()
	s := &Stack{t: t, DataDir: dataDir, SpecDir: KernelSpecDir(t), hooks: hooks}
	s.open()
	t.Cleanup(func() {
		s.Close()
		KillKernels(t, s.DataDir)
	})
	return s
}

// StartStack opens a core on dataDir ("" for a new temp dir). Kernels it
// started are killed at the end of the test.
func StartStack(t testing.TB, dataDir string) *Stack {
	t.Helper()
	return StartStackWith(t, dataDir, eventlog.Options{})
}

// StartStackWith is StartStack with options for the event log (for
// example BeforeCommit, to slow the log down).
func StartStackWith(t testing.TB, dataDir string, opts eventlog.Options) *Stack {
	t.Helper()
	if dataDir == "" {
		dataDir = TempDataDir(t)
	}
	s := &Stack{t: t, DataDir: dataDir, SpecDir: KernelSpecDir(t), logOpts: opts}
	s.open()
	t.Cleanup(func() {
		s.Close()
		KillKernels(t, dataDir)
	})
	return s
}

func (s *Stack) open() {
	t := s.t
	t.Helper()
	opts := s.logOpts
	if s.hooks.Node != "" {
		opts.Node = s.hooks.Node
	}
	l, err := eventlog.Open(filepath.Join(s.DataDir, "events"), opts)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	s.Log = l
	s.Queue = queue.NewModel()
	// Catch the read model up before the system recovers from it.
	if err := l.Read(context.Background(), 0, l.Last(), s.Queue.Apply); err != nil {
		t.Fatalf("replay queue: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := l.Follow(ctx, s.Queue.Seq(), s.Queue.Apply)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, eventlog.ErrClosed) {
			t.Errorf("queue follower: %v", err)
		}
	}()
	s.Launcher = &jupyter.Launcher{SearchPath: jupyter.SearchPath{Dirs: []string{s.SpecDir}}, RuntimeDir: filepath.Join(s.DataDir, "runtime")}
	sys, err := system.Open(context.Background(), system.Config{Log: l, Scanner: l, Launcher: s.Launcher,
		KernelPanicOn: s.hooks.KernelPanicOn, SchedulerPanicOn: s.hooks.SchedulerPanicOn,
		AutoRestore: s.hooks.AutoRestore, RestoreName: s.hooks.RestoreName, Node: s.hooks.Node, Owner: s.hooks.Owner, Held: s.hooks.Held,
		AbortReplyTimeout: s.hooks.AbortReplyTimeout, ConfirmStarted: s.hooks.ConfirmStarted})
	if err != nil {
		t.Fatalf("open system: %v", err)
	}
	s.System = sys
}

// Close stops the actors and closes the log; kernels keep running.
func (s *Stack) Close() {
	if s.System == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.System.Close(ctx); err != nil && ctx.Err() != nil {
		s.t.Errorf("close the actor system: %v", err)
	}
	s.cancel()
	WaitGroup(s.t, &s.wg, 30*time.Second, "the queue follower stops")
	_ = s.Log.Close()
	s.System = nil
}

// Restart closes the core and opens it again on the same data dir.
func (s *Stack) Restart() {
	s.t.Helper()
	s.Close()
	s.open()
}

// WaitExecution waits until the execution reaches a final status.
func (s *Stack) WaitExecution(id string, timeout time.Duration) queue.Execution {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		changed := s.Queue.Changed()
		if x, ok := s.Queue.Get(id); ok && x.Status.Done() {
			return x
		}
		select {
		case <-changed:
		case <-deadline:
			x, _ := s.Queue.Get(id)
			s.t.Fatalf("execution %s not done after %v: %+v", id, timeout, x)
		}
	}
}

// Outputs returns the IOPub messages of an execution, in order.
func (s *Stack) Outputs(id string) []events.IOPubMessageReceived {
	s.t.Helper()
	var out []events.IOPubMessageReceived
	err := s.Log.ReadStream(context.Background(), events.ExecutionStream(id), 0, func(e events.Event) error {
		if p, ok := e.Payload.(events.IOPubMessageReceived); ok {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("read outputs of %s: %v", id, err)
	}
	return out
}

// KillKernels SIGKILLs (with their process groups) every kernel process
// started for dataDir: those the log records, and — found through /proc,
// since a test's server may still hold the log — every process whose
// command line names a connection file under dataDir.
func KillKernels(t testing.TB, dataDir string) {
	t.Helper()
	runtime := filepath.Join(dataDir, "runtime") + string(filepath.Separator)
	if procs, err := os.ReadDir("/proc"); err == nil {
		for _, p := range procs {
			pid, err := strconv.Atoi(p.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
			if err != nil || !strings.Contains(string(cmdline), runtime) {
				continue
			}
			_ = syscall.Kill(-pid, syscall.SIGKILL) // its group (kernels run in their own session)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		return
	}
	defer l.Close()
	launcher := &jupyter.Launcher{}
	_ = l.Scan(context.Background(), 0, 0, func(e events.Event) error {
		switch e.Type {
		case events.TypeKernelStarted:
			if p, err := events.As[events.KernelStarted](&e); err == nil {
				_ = launcher.Kill(p.Process)
			}
		case events.TypeKernelRestarted:
			if p, err := events.As[events.KernelRestarted](&e); err == nil {
				_ = launcher.Kill(p.Process)
			}
		}
		return nil
	})
}

// WriteKernelSpec adds a kernelspec named name with argv to the Jupyter
// data dir dataDir (see KernelSpecDir).
func WriteKernelSpec(t testing.TB, dataDir, name string, argv []string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"argv": argv, "display_name": name, "language": "python"})
	if err := os.MkdirAll(filepath.Join(dataDir, "kernels", name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "kernels", name, "kernel.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
