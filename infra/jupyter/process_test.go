package jupyter_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// groupGone reports whether no process is left in process group pgid.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func TestStartKernelBadArgv(t *testing.T) {
	spec := jupyter.KernelSpec{Name: "bad", Argv: []string{"/nonexistent/python3", "-f", "{connection_file}"}}
	_, err := jupyter.StartKernel(context.Background(), spec, t.TempDir(), "k1", jupyter.StartOptions{})
	var se *jupyter.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "/nonexistent/python3") {
		t.Fatalf("err = %v, want StartError naming the executable", err)
	}
}

func TestStartKernelExitsEarlyCarriesStderrTail(t *testing.T) {
	python := testkit.PythonWithIPyKernel(t)
	spec := jupyter.KernelSpec{Name: "crash", Argv: []string{python, "-c",
		"import sys; print('line one', file=sys.stderr); print('boom-marker', file=sys.stderr); sys.exit(3)"}}
	start := time.Now()
	_, err := jupyter.StartKernel(context.Background(), spec, t.TempDir(), "k1", jupyter.StartOptions{ReadyTimeout: 30 * time.Second})
	var se *jupyter.StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want StartError", err)
	}
	if !errors.Is(err, jupyter.ErrKernelExited) || !strings.Contains(se.StderrTail, "boom-marker") || se.Exit.Code != 3 {
		t.Fatalf("err = %v (exit %v)", err, se.Exit)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v to notice the exit", d)
	}
	if !groupGone(se.Pid) {
		t.Fatalf("process group %d still has processes", se.Pid)
	}
}

func TestStartKernelTimeoutKillsGroup(t *testing.T) {
	// A "kernel" that never binds, with a grandchild in its group.
	spec := jupyter.KernelSpec{Name: "hang", Argv: []string{"/bin/sh", "-c", "sleep 300 & echo waiting >&2; wait"}}
	_, err := jupyter.StartKernel(context.Background(), spec, t.TempDir(), "k1", jupyter.StartOptions{ReadyTimeout: 2 * time.Second})
	var se *jupyter.StartError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(se.StderrTail, "waiting") {
		t.Fatalf("err = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !groupGone(se.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("orphans left in process group %d", se.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startSleeper starts `sleep 60` in its own process group and kills it at cleanup.
func startSleeper(t *testing.T) (pid int, startTime uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	st, err := jupyter.ProcessStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, st
}

func TestSignalGroupRefusesStartTimeMismatch(t *testing.T) {
	pid, st := startSleeper(t)
	if err := jupyter.SignalGroup(pid, st+1, syscall.SIGKILL); !errors.Is(err, jupyter.ErrProcessGone) {
		t.Fatalf("err = %v, want ErrProcessGone", err)
	}
	// Still alive: signal 0 checks without harm.
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("process was signalled: %v", err)
	}
	if err := jupyter.SignalGroup(pid, st, syscall.SIGKILL); err != nil {
		t.Fatalf("matching start time: %v", err)
	}
}

func TestSignalGroupGonePid(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := jupyter.SignalGroup(cmd.Process.Pid, 1, syscall.SIGTERM); !errors.Is(err, jupyter.ErrProcessGone) {
		t.Fatalf("err = %v, want ErrProcessGone", err)
	}
}

// WatchExit works for a process that is not our child (as after a server
// restart): the shell starts sleep in the background and exits, so sleep is
// re-parented away from us.
func TestWatchExitNonChild(t *testing.T) {
	out, err := exec.Command("/bin/sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	st, err := jupyter.ProcessStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jupyter.WatchExit(pid, st+7); !errors.Is(err, jupyter.ErrProcessGone) {
		t.Fatalf("mismatched start time: err = %v", err)
	}
	w, err := jupyter.WatchExit(pid, st)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	select {
	case <-w.Done():
		t.Fatal("done before exit")
	case <-time.After(100 * time.Millisecond):
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("exit of a non-child not detected")
	}
}

func TestExitWatcherCloseStopsGoroutine(t *testing.T) {
	pid, st := startSleeper(t)
	w, err := jupyter.WatchExit(pid, st)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = w.Close(); _ = w.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return")
	}
}

func TestLaunchLogsToFileNotStdout(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "k.log")
	spec := jupyter.KernelSpec{Name: "echo", Argv: []string{"/bin/sh", "-c", "echo out-$FOO; echo err >&2; read x; echo read=$? $JPY_PARENT_PID"},
		Env: map[string]string{"FOO": "bar"}}
	p, err := jupyter.Launch(context.Background(), spec, "", logPath, jupyter.LaunchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	select {
	case <-p.Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("no exit")
	}
	if st := p.ExitStatus(); !st.Known || st.Code != 0 {
		t.Fatalf("status %v", st)
	}
	data, _ := os.ReadFile(logPath)
	// stdin is /dev/null (read fails at EOF), JPY_PARENT_PID not set.
	if got := string(data); got != "out-bar\nerr\nread=1\n" {
		t.Fatalf("log = %q", got)
	}
	if tail := jupyter.StderrTail(logPath, 2); tail != "err\nread=1" {
		t.Fatalf("tail = %q", tail)
	}
}
