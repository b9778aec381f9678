package jupyter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// ErrProcessGone means the pid no longer belongs to the process we started
// (it exited, or the pid was reused). Nothing was signalled.
var ErrProcessGone = errors.New("jupyter: process gone")

// LaunchOptions tunes Launch.
type LaunchOptions struct {
	// DieWithServer sets JPY_PARENT_PID to this process's pid, which makes
	// ipykernel exit when the server dies. Leave false for kernels that
	// must outlive a server restart.
	DieWithServer bool
	// Env is added after the allow-listed part of the server's environment
	// and spec.Env (see KernelEnv).
	Env map[string]string
	// EnvAllow adds names (or prefixes ending in '*') of the server's
	// environment to pass to the kernel, beyond KernelEnv's built-in list.
	// MCP_* never passes.
	EnvAllow []string
	// Sandbox, when set and not off, starts the kernel through the
	// infra/sandbox launcher.
	Sandbox *Sandbox
	// KernelDir is the kernel's own directory (KernelDir): the sandbox keeps
	// it readable and writable for this kernel alone.
	KernelDir string
	// Dir is the working directory (default: the server's).
	Dir string
	// IOPubHWM, when positive, raises an ipykernel kernel's IOPub send
	// queue to this many messages (see DefaultIOPubHWM).
	IOPubHWM int
}

// Process is a kernel process: its pid and the start time that, together
// with the pid, identifies it across pid reuse.
type Process struct {
	Pid       int
	StartTime uint64 // field 22 of /proc/<pid>/stat, clock ticks since boot

	// Sandbox says how the kernel is confined (sandbox.Report's String:
	// "landlock-v7+mount+caps", "none", ...), "off" when it was not.
	Sandbox string
	// SandboxWarning says what is weaker than it could be ("" if nothing).
	SandboxWarning string
	// Confined reports whether the launcher confined the kernel
	// (sandbox.Report.Protected).
	Confined bool

	watcher *ExitWatcher
	child   bool

	mu     sync.Mutex
	status ExitStatus
}

// ExitStatus is how a process ended. Known is false for a process that is
// not our child (only its parent can read the status) or has not exited.
type ExitStatus struct {
	Known  bool
	Code   int            // exit code when Signal is 0
	Signal syscall.Signal // terminating signal, 0 if it exited normally
}

func (s ExitStatus) String() string {
	switch {
	case !s.Known:
		return "unknown"
	case s.Signal != 0:
		return "killed by " + unix.SignalName(s.Signal)
	default:
		return "exit code " + strconv.Itoa(s.Code)
	}
}

// Launch starts the kernel of spec with connFile, in its own session and
// process group (so signals reach its children), stdin from /dev/null and
// stdout and stderr appended to logPath — never to the server's stdout,
// which is the MCP channel in stdio mode. Its environment is KernelEnv's
// allow-list, never the server's whole environment; with opts.Sandbox it
// starts through the infra/sandbox launcher, and Process.Sandbox says what
// confines it.
//
// The returned Process reaps the child when it exits; Close the Process to
// stop watching without stopping the kernel. ctx bounds only the start.
func Launch(ctx context.Context, spec KernelSpec, connFile, logPath string, opts LaunchOptions) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("launch kernel %s: %w", spec.Name, err)
	}
	argv := withIOPubHWM(spec.ArgvFor(connFile), opts.IOPubHWM)
	if len(argv) == 0 {
		return nil, fmt.Errorf("launch kernel %s: empty argv", spec.Name)
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open kernel log: %w", err)
	}
	defer logFile.Close() // the child holds its own copy

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil // /dev/null
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = opts.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	set := map[string]string{}
	for k, v := range opts.Env {
		set[k] = v
	}
	if opts.DieWithServer {
		set["JPY_PARENT_PID"] = strconv.Itoa(os.Getpid())
	} else {
		set["JPY_PARENT_PID"] = "" // do not inherit one
	}
	cmd.Env = KernelEnv(os.Environ(), opts.EnvAllow, spec.Env, set)
	confinement, warning, confined := "off", "", false
	if opts.Sandbox != nil && opts.Sandbox.Mode != sandbox.ModeOff {
		plan, err := opts.Sandbox.plan(connFile, opts.KernelDir)
		if err != nil {
			return nil, fmt.Errorf("launch kernel %s: %w", spec.Name, err)
		}
		rep, err := sandbox.Start(ctx, cmd, opts.Sandbox.Self, plan)
		if err != nil {
			return nil, fmt.Errorf("launch kernel %s (%s): %w", spec.Name, argv[0], err)
		}
		confinement, warning, confined = rep.String(), rep.Warning, rep.Protected()
	} else if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch kernel %s (%s): %w", spec.Name, argv[0], err)
	}
	pid := cmd.Process.Pid
	// We reap the child ourselves (wait4 after the pidfd says it exited), so
	// release os.Process's handle rather than calling cmd.Wait.
	_ = cmd.Process.Release()

	p := &Process{Pid: pid, child: true, Sandbox: confinement, SandboxWarning: warning, Confined: confined}
	st, err := ProcessStartTime(pid)
	if err != nil {
		// Not reaped yet, so /proc/<pid> must exist.
		_ = unix.Kill(-pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		return nil, fmt.Errorf("launch kernel %s: %w", spec.Name, err)
	}
	p.StartTime = st
	w, err := watchExit(pid, st, p.reap)
	if err != nil {
		_ = unix.Kill(-pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		return nil, fmt.Errorf("watch kernel %s: %w", spec.Name, err)
	}
	p.watcher = w
	return p, nil
}

// AttachProcess watches a process started elsewhere (e.g. by a previous
// server). It returns ErrProcessGone if pid no longer has startTime. If the
// process happens to be our child it is reaped on exit, as Launch does.
func AttachProcess(pid int, startTime uint64) (*Process, error) {
	p := &Process{Pid: pid, StartTime: startTime}
	if st, err := readProcStat(pid); err == nil && st.ppid == os.Getpid() {
		p.child = true
	}
	var onExit func()
	if p.child {
		onExit = p.reap
	}
	w, err := watchExit(pid, startTime, onExit)
	if err != nil {
		return nil, err
	}
	p.watcher = w
	return p, nil
}

func (p *Process) reap() {
	var ws unix.WaitStatus
	pid, err := unix.Wait4(p.Pid, &ws, 0, nil) // exited, so this does not block
	if err != nil || pid != p.Pid {
		return
	}
	st := ExitStatus{Known: true}
	if ws.Signaled() {
		st.Signal = ws.Signal()
	} else {
		st.Code = ws.ExitStatus()
	}
	p.mu.Lock()
	p.status = st
	p.mu.Unlock()
}

// Exited is closed when the process has exited (and, for our child, been
// reaped). It is never closed after Close.
func (p *Process) Exited() <-chan struct{} { return p.watcher.Done() }

// ExitStatus returns how the process ended; Known is false until it exited,
// or forever for a process that is not our child.
func (p *Process) ExitStatus() ExitStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Signal sends sig to the process group, if the process is still the one
// started (see SignalGroup).
func (p *Process) Signal(sig syscall.Signal) error { return SignalGroup(p.Pid, p.StartTime, sig) }

// Close stops watching the process; it does not signal it. Idempotent.
func (p *Process) Close() error { return p.watcher.Close() }

// procStat holds the fields of /proc/<pid>/stat we use.
type procStat struct {
	state     byte
	ppid      int
	pgrp      int
	startTime uint64
}

func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if os.IsNotExist(err) {
			return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, ErrProcessGone)
		}
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return parseProcStat(data)
}

// parseProcStat parses /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat: no command name")
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); field n is fields[n-3].
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields", len(fields)+2)
	}
	ppid, err := strconv.Atoi(fields[4-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat ppid: %w", err)
	}
	pgrp, err := strconv.Atoi(fields[5-3])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat pgrp: %w", err)
	}
	start, err := strconv.ParseUint(fields[22-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat starttime: %w", err)
	}
	return procStat{state: fields[0][0], ppid: ppid, pgrp: pgrp, startTime: start}, nil
}

// ProcessStartTime returns field 22 of /proc/<pid>/stat: when the process
// started, in clock ticks since boot. With the pid it names a process
// uniquely across pid reuse.
func ProcessStartTime(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return st.startTime, nil
}

// SignalGroup sends sig to the process group led by pid, after checking that
// pid is still the process that started at startTime. A pid that now
// belongs to another process is never signalled:
// ErrProcessGone. If pid does not lead its own group, only pid is signalled.
func SignalGroup(pid int, startTime uint64, sig syscall.Signal) error {
	if pid <= 1 {
		return fmt.Errorf("signal pid %d: refusing", pid)
	}
	st, err := readProcStat(pid)
	if err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	if st.startTime != startTime {
		return fmt.Errorf("signal pid %d: %w (start time %d, want %d)", pid, ErrProcessGone, st.startTime, startTime)
	}
	target := pid
	if st.pgrp == pid {
		target = -pid
	}
	if err := unix.Kill(target, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal pid %d: %w", pid, ErrProcessGone)
		}
		return fmt.Errorf("signal pid %d with %s: %w", pid, sig, err)
	}
	return nil
}

// StderrTail returns the last lines lines of the kernel log at logPath
// (stdout and stderr are both there), or "" if it cannot be read.
func StderrTail(logPath string, lines int) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxTail = 64 << 10
	info, err := f.Stat()
	if err != nil {
		return ""
	}
	off := info.Size() - maxTail
	if off < 0 {
		off = 0
	}
	buf := make([]byte, info.Size()-off)
	n, _ := f.ReadAt(buf, off)
	text := strings.TrimRight(string(buf[:n]), "\n")
	if text == "" {
		return ""
	}
	all := strings.Split(text, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
