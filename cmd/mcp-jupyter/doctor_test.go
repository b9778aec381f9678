package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// doctorLines runs `doctor` with args and returns its lines and error.
func doctorLines(t *testing.T, args ...string) ([]string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runDoctor(context.Background(), args, &out)
	return strings.Split(strings.TrimSpace(out.String()), "\n"), err
}

func lineFor(t *testing.T, lines []string, check string) string {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, "  "+check+": ") {
			return l
		}
	}
	t.Fatalf("no %q line in:\n%s", check, strings.Join(lines, "\n"))
	return ""
}

// TestDoctorHealthyDataDir: every check passes on a fresh data dir with a
// real log, a good kernelspec and a free port.
func TestDoctorHealthyDataDir(t *testing.T) {
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	dir := testkit.TempDataDir(t)
	l := testkit.OpenLog(t, filepath.Join(dir, "events"))
	testkit.AppendAll(t, l, testkit.RealisticDrafts(500))
	l.Close()
	lines, err := doctorLines(t, "--data-dir", dir, "--addr", freeAddr(t))
	if err != nil {
		t.Fatalf("doctor on a healthy data dir: %v\n%s", err, strings.Join(lines, "\n"))
	}
	for _, check := range []string{"data dir", "event log", "python", "port", "orphans", "resources"} {
		if l := lineFor(t, lines, check); !strings.HasPrefix(l, "ok") && !strings.HasPrefix(l, "WARN") {
			t.Errorf("healthy %s: %s", check, l)
		}
	}
	if l := lineFor(t, lines, "event log"); !strings.Contains(l, "500 events") {
		t.Errorf("event log line does not count the events: %s", l)
	}
}

// TestDoctorReadOnlyDataDir: a data dir on a read-only mount is one FAIL
// line saying so and what to do.
func TestDoctorReadOnlyDataDir(t *testing.T) {
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY, "size=1m"); err != nil {
		t.Fatalf("mount a read-only tmpfs (tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, 0) })
	lines, err := doctorLines(t, "--data-dir", dir, "--addr", freeAddr(t))
	if !errors.Is(err, errProblems) {
		t.Fatalf("doctor on a read-only data dir: %v", err)
	}
	l := lineFor(t, lines, "data dir")
	for _, want := range []string{"FAIL", dir, "not writable", "read-only file system", "fix:", "--data-dir"} {
		if !strings.Contains(l, want) {
			t.Errorf("read-only data dir line lacks %q: %s", want, l)
		}
	}
	// serve refuses to start with the same line.
	cfg := testConfig(t, dir)
	c := newCore(cfg, discard())
	if err := c.open(context.Background()); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("serve on a read-only data dir: %v", err)
	}
}

// TestDoctorBusyPortNamesTheHolder: a port held by a listener of this test
// process is reported with this process's pid and name, and the listener
// survives.
func TestDoctorBusyPortNamesTheHolder(t *testing.T) {
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines, err := doctorLines(t, "--data-dir", testkit.TempDataDir(t), "--addr", ln.Addr().String())
	if !errors.Is(err, errProblems) {
		t.Fatalf("doctor with a busy port: %v", err)
	}
	l := lineFor(t, lines, "port")
	for _, want := range []string{"FAIL", "in use by", fmt.Sprintf("pid %d", os.Getpid()), "--addr", "never kills"} {
		if !strings.Contains(l, want) {
			t.Errorf("busy port line lacks %q: %s", want, l)
		}
	}
	// The holder was not touched: the listener still accepts.
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	if c, err := ln.Accept(); err != nil {
		t.Fatalf("the holder's listener stopped working: %v", err)
	} else {
		c.Close()
	}
	// serve says the same instead of a bare EADDRINUSE.
	err = runServe(context.Background(), []string{"--data-dir", testkit.TempDataDir(t), "--addr", ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("serve on a busy port: %v", err)
	}
}

// TestDoctorMissingIPyKernel: a kernelspec whose interpreter cannot import
// ipykernel (a real Python run without its site-packages) is a FAIL line
// naming the interpreter and the packages to install.
func TestDoctorMissingIPyKernel(t *testing.T) {
	specs := t.TempDir()
	bare := filepath.Join(t.TempDir(), "python-bare")
	if err := os.WriteFile(bare, []byte("#!/bin/sh\nexec "+testkit.SystemPython+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kdir := filepath.Join(specs, "kernels", "python3")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := `{"argv": ["` + bare + `", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "bare", "language": "python"}`
	if err := os.WriteFile(filepath.Join(kdir, "kernel.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JUPYTER_PATH", specs)
	lines, err := doctorLines(t, "--data-dir", testkit.TempDataDir(t), "--addr", freeAddr(t))
	if !errors.Is(err, errProblems) {
		t.Fatalf("doctor with a Python lacking ipykernel: %v", err)
	}
	l := lineFor(t, lines, "python")
	for _, want := range []string{"FAIL", bare, "cannot import ipykernel, dill", "ModuleNotFoundError", "python3-ipykernel"} {
		if !strings.Contains(l, want) {
			t.Errorf("missing ipykernel line lacks %q: %s", want, l)
		}
	}
	// A missing interpreter is named too.
	if err := os.WriteFile(filepath.Join(kdir, "kernel.json"), []byte(`{"argv": ["no-such-python3"], "display_name": "x", "language": "python"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, _ = doctorLines(t, "--data-dir", testkit.TempDataDir(t), "--addr", freeAddr(t))
	if l := lineFor(t, lines, "python"); !strings.Contains(l, `"no-such-python3", which is not found`) {
		t.Errorf("missing interpreter line: %s", l)
	}
}

// sleeping is a real process in its own session, as kernels are; one
// goroutine waits for it.
type sleeping struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// sleeper starts a real process and returns it with its recorded identity.
func sleeper(t *testing.T) (*sleeping, events.KernelProcess) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sleeping{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.done })
	st, err := jupyter.ProcessStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return s, events.KernelProcess{Pid: cmd.Process.Pid, StartTime: st}
}

// exited reports whether s exits within timeout.
func exited(s *sleeping, timeout time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// orphanLog writes a log in which a kernel's process was retired (the
// kernel was lost) while the process still runs.
func orphanLog(t *testing.T, p events.KernelProcess) string {
	dir := testkit.TempDataDir(t)
	l := testkit.OpenLog(t, filepath.Join(dir, "events"))
	testkit.AppendAll(t, l, []events.Draft{
		{Stream: events.KernelStream("k1"), Kernel: "k1", Payload: events.KernelStarted{KernelID: "k1", Spec: "python3", Process: p}},
		{Stream: events.KernelStream("k1"), Kernel: "k1", Payload: events.KernelLost{KernelID: "k1", Reason: "connection file gone"}},
	})
	l.Close()
	return dir
}

// TestDoctorFindsAndReapsAnOrphan: a real sleeping process recorded in the
// log as a retired kernel process is reported, then reaped with --reap.
// A pid whose start time does not match is never touched.
func TestDoctorFindsAndReapsAnOrphan(t *testing.T) {
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))
	cmd, p := sleeper(t)
	dir := orphanLog(t, p)
	lines, _ := doctorLines(t, "--data-dir", dir, "--addr", freeAddr(t))
	l := lineFor(t, lines, "orphans")
	if !strings.HasPrefix(l, "WARN") || !strings.Contains(l, fmt.Sprintf("pid %d", p.Pid)) || !strings.Contains(l, "--reap") {
		t.Fatalf("orphan line: %s", l)
	}
	// Same pid, another start time: a reused pid. Not touched.
	other, q := sleeper(t)
	q.StartTime++
	lines, _ = doctorLines(t, "--data-dir", orphanLog(t, q), "--addr", freeAddr(t), "--reap")
	if l := lineFor(t, lines, "orphans"); !strings.Contains(l, "no orphaned kernel process") {
		t.Fatalf("a pid with another start time was taken for an orphan: %s", l)
	}
	if exited(other, 300*time.Millisecond) {
		t.Fatal("doctor killed a process whose start time did not match the log")
	}
	lines, _ = doctorLines(t, "--data-dir", dir, "--addr", freeAddr(t), "--reap")
	if l := lineFor(t, lines, "orphans"); !strings.Contains(l, "reaped 1 of 1") {
		t.Fatalf("reap line: %s", l)
	}
	if !exited(cmd, 10*time.Second) {
		t.Fatal("the orphan still runs after doctor --reap")
	}
}

// TestServeReapsOrphansAtStart: serve reaps the orphan before recovering
// kernels and counts it in zombie_process_cleanup_count.
func TestServeReapsOrphansAtStart(t *testing.T) {
	cmd, p := sleeper(t)
	dir := orphanLog(t, p)
	c, err := openCore(context.Background(), testConfig(t, dir), discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	if !exited(cmd, 10*time.Second) {
		t.Fatal("the orphan still runs after serve started")
	}
	if got := gauge(t, c, "zombie_process_cleanup_count"); got != 1 {
		t.Fatalf("zombie_process_cleanup_count = %v, want 1", got)
	}
}

// TestProcTableBound: the retired processes remembered stay under
// maxRetired however many kernels came and went.
func TestProcTableBound(t *testing.T) {
	pt := newProcTable()
	for i := range maxRetired + 100 {
		k := fmt.Sprintf("k%d", i)
		_ = pt.Apply(events.Event{Type: events.TypeKernelStarted, Kernel: k,
			Payload: events.KernelStarted{KernelID: k, Process: events.KernelProcess{Pid: 1000 + i, StartTime: 1}}})
		_ = pt.Apply(events.Event{Type: events.TypeKernelShutDown, Kernel: k})
	}
	if n := len(pt.retired); n != maxRetired {
		t.Fatalf("retired = %d, want the bound %d", n, maxRetired)
	}
	if pt.retired[0].Kernel != "k100" {
		t.Fatalf("oldest kept = %s, want k100 (the oldest are forgotten first)", pt.retired[0].Kernel)
	}
	data, _ := pt.Snapshot()
	back := newProcTable()
	if err := back.Restore(data); err != nil || len(back.retired) != maxRetired {
		t.Fatalf("snapshot round trip: %v, %d", err, len(back.retired))
	}
}
