package jupyter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// StartOptions tunes StartKernel.
type StartOptions struct {
	Launch LaunchOptions
	Client ClientOptions
	// LogPath receives the kernel's stdout and stderr. Default:
	// <runtimeDir>/kernel-<id>.log.
	LogPath string
	// ReadyTimeout bounds launch-to-ready (default 30 s).
	ReadyTimeout time.Duration
	// TailLines is how many log lines a StartError carries (default 20).
	TailLines int
	// Attempts is how many times a kernel is launched when another process
	// turns out to listen on a port the kernel named (default 3). Only
	// then: any other failure is returned at once.
	Attempts int
	// BindGrace bounds how long a port the kernel wrote may stay unbound
	// (default 5 s): ipykernel binds its heartbeat in a thread of its own,
	// possibly after writing the file; a port still unbound after this was
	// given up by the kernel (its heartbeat lost its port to another
	// process and bound another one).
	BindGrace time.Duration
	// OnLaunch, if set, is called with each launched process before the
	// wait for readiness (once per attempt): the kernel pool records the
	// pid there, so a server killed mid-start leaves no unknown process.
	// An error kills that launch and is returned.
	OnLaunch func(*Process) error
}

// Kernel is a running kernel process with a connected client.
type Kernel struct {
	ID       string
	Spec     KernelSpec
	Info     ConnectionInfo
	ConnFile string
	// Dir is the kernel's own directory (KernelDir), removed by Shutdown;
	// empty for a kernel attached through a connection file elsewhere.
	Dir     string
	LogPath string
	Process *Process
	Client  *Client
	// KernelInfo is the kernel_info_reply received when it became ready.
	KernelInfo KernelInfo
	// Pending are messages read while waiting for readiness that belong to
	// someone else (a running execution's output): deliver them before
	// Client.Messages.
	Pending []Received

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// StartError is returned when a kernel did not become ready. It carries the
// end of the kernel's log, which usually says why.
type StartError struct {
	Kernel     string
	Pid        int // 0 if the process never started
	LogPath    string
	StderrTail string
	Exit       ExitStatus // Known if the process exited
	Err        error
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("start kernel %s: %v", e.Kernel, e.Err)
	if e.Exit.Known {
		msg += " (" + e.Exit.String() + ")"
	}
	if e.StderrTail != "" {
		msg += "\n--- kernel log " + e.LogPath + " ---\n" + e.StderrTail
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Err }

// ErrKernelExited means the kernel process exited while we waited for it.
var ErrKernelExited = errors.New("jupyter: kernel process exited")

// StartKernel writes a connection file for id in KernelDir(runtimeDir, id),
// launches the kernel, waits for it to write back the ports it bound, checks
// that it is the one listening on each, dials it and waits until it is
// ready (WaitReady).
//
// The file we write has our key and every port 0: the kernel binds ports of
// its own choosing and rewrites the file, so no other process can take a
// port between its choice and its bind. A port someone else listens on
// (ipykernel picks its heartbeat port by binding and closing a socket, then
// binds it again in a thread) is never dialled: that launch is killed and
// the kernel started again, up to Attempts times.
//
// If the process exits first or ReadyTimeout passes, its process group is
// killed, its directory removed and a *StartError with the log tail is
// returned: no orphan is left behind.
func StartKernel(ctx context.Context, spec KernelSpec, runtimeDir, id string, opts StartOptions) (*Kernel, error) {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	if opts.TailLines <= 0 {
		opts.TailLines = 20
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.BindGrace <= 0 {
		opts.BindGrace = 5 * time.Second
	}
	for attempt := 1; ; attempt++ {
		k, err := startOnce(ctx, spec, runtimeDir, id, opts)
		if err == nil || attempt >= opts.Attempts || !errors.Is(err, ErrPortNotOwned) || ctx.Err() != nil {
			return k, err
		}
	}
}

func startOnce(ctx context.Context, spec KernelSpec, runtimeDir, id string, opts StartOptions) (*Kernel, error) {
	want, err := NewConnectionInfo(spec.Name)
	if err != nil {
		return nil, fmt.Errorf("start kernel %s: %w", spec.Name, err)
	}
	connFile, err := WriteConnectionFile(runtimeDir, id, want)
	if err != nil {
		return nil, fmt.Errorf("start kernel %s: %w", spec.Name, err)
	}
	dir := KernelDir(runtimeDir, id)
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(runtimeDir, "kernel-"+id+".log")
	}
	proc, err := Launch(ctx, spec, connFile, logPath, opts.Launch)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, &StartError{Kernel: spec.Name, LogPath: logPath, StderrTail: StderrTail(logPath, opts.TailLines), Err: err}
	}
	k := &Kernel{ID: id, Spec: spec, ConnFile: connFile, Dir: dir, LogPath: logPath, Process: proc}

	fail := func(err error) (*Kernel, error) {
		if k.Client != nil {
			_ = k.Client.Close()
		}
		_ = proc.Signal(syscall.SIGKILL)
		select {
		case <-proc.Exited():
		case <-time.After(5 * time.Second):
		}
		_ = proc.Close()
		_ = os.RemoveAll(dir)
		return nil, &StartError{Kernel: spec.Name, Pid: proc.Pid, LogPath: logPath,
			StderrTail: StderrTail(logPath, opts.TailLines), Exit: proc.ExitStatus(), Err: err}
	}

	if opts.OnLaunch != nil {
		if err := opts.OnLaunch(proc); err != nil {
			return fail(err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	// Cancel the wait as soon as the process exits: a dead kernel never binds.
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-proc.Exited():
			cancel()
		case <-stop:
		}
	}()
	defer func() { close(stop); watch.Wait() }()

	exitedErr := func(err error) error {
		select {
		case <-proc.Exited():
			return ErrKernelExited
		default:
			return err
		}
	}
	info, err := waitForPorts(rctx, connFile, proc.Exited())
	if err != nil {
		return fail(exitedErr(err))
	}
	if info.Key != want.Key || info.SignatureScheme != want.SignatureScheme {
		return fail(fmt.Errorf("the kernel rewrote its connection file %s with another signing key: refusing it", connFile))
	}
	if err := waitPortsOwned(rctx, proc.Pid, info, opts.BindGrace); err != nil {
		return fail(exitedErr(err))
	}
	k.Info = info
	client, err := Dial(rctx, info, opts.Client)
	if err != nil {
		return fail(exitedErr(err))
	}
	k.Client = client
	ki, err := client.WaitReady(rctx)
	if err != nil {
		return fail(exitedErr(err))
	}
	k.KernelInfo = ki
	return k, nil
}

// waitPortsOwned returns once the kernel pid listens on every port of info,
// or a *PortOwnerError (ErrPortNotOwned) as soon as another process is
// seen listening on one, or when one stays unbound for bindGrace.
func waitPortsOwned(ctx context.Context, pid int, info ConnectionInfo, bindGrace time.Duration) error {
	grace := time.NewTimer(bindGrace)
	defer grace.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	backoff := time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the kernel to bind its ports: %w", ctx.Err())
		case <-grace.C:
			res, err := checkPortsOwned(pid, info)
			if err != nil {
				return err
			}
			if len(res.unbound) > 0 {
				p := res.unbound[0]
				return &PortOwnerError{Channel: p.Name, Port: p.Port, Pid: pid, Unbound: true}
			}
			return nil
		case <-poll.C:
			res, err := checkPortsOwned(pid, info)
			if err != nil {
				return err
			}
			if len(res.unbound) == 0 {
				return nil
			}
			// NB: polling, briefly: the heartbeat thread binds within
			// milliseconds of the file being written, and no event says so.
			backoff = min(2*backoff, 50*time.Millisecond)
			poll.Reset(backoff)
		}
	}
}

// Attach connects to a kernel started earlier (possibly by another server
// process) whose pid and start time were recorded. It fails with
// ErrProcessGone if the process is no longer there, and otherwise waits up
// to timeout for a kernel_info_reply.
func Attach(ctx context.Context, info ConnectionInfo, pid int, startTime uint64, timeout time.Duration, copts ClientOptions) (*Kernel, error) {
	proc, err := AttachProcess(pid, startTime)
	if err != nil {
		return nil, fmt.Errorf("attach kernel pid %d: %w", pid, err)
	}
	select {
	case <-proc.Exited():
		_ = proc.Close()
		return nil, fmt.Errorf("attach kernel pid %d: %w", pid, ErrProcessGone)
	default:
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// NB: the kernel bound its ports long ago; one check is enough, and a
	// port someone else now holds (the kernel gave it up) is never dialled.
	if res, err := checkPortsOwned(pid, info); err != nil || len(res.unbound) > 0 {
		_ = proc.Close()
		if err == nil {
			p := res.unbound[0]
			err = &PortOwnerError{Channel: p.Name, Port: p.Port, Pid: pid, Unbound: true}
		}
		return nil, fmt.Errorf("attach kernel pid %d: %w", pid, err)
	}
	client, err := Dial(rctx, info, copts)
	if err != nil {
		_ = proc.Close()
		return nil, fmt.Errorf("attach kernel pid %d: %w", pid, err)
	}
	// NB: on control, so that a kernel busy with a long execution still
	// answers; that execution's messages read meanwhile are kept in Pending.
	ki, pending, err := client.WaitReadyOn(rctx, Control)
	if err != nil {
		_ = client.Close()
		_ = proc.Close()
		return nil, fmt.Errorf("attach kernel pid %d: %w", pid, err)
	}
	return &Kernel{Spec: KernelSpec{Name: info.KernelName, InterruptMode: "signal"}, Info: info,
		Process: proc, Client: client, KernelInfo: ki, Pending: pending}, nil
}

// Interrupt interrupts the running execution: SIGINT to the kernel's process
// group, or an interrupt_request on control when the spec's interrupt_mode
// is "message".
func (k *Kernel) Interrupt() error {
	if k.Spec.InterruptMode == "message" {
		if _, err := k.Client.Send(Control, "interrupt_request", nil); err != nil {
			return fmt.Errorf("interrupt kernel: %w", err)
		}
		return nil
	}
	if err := k.Process.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("interrupt kernel: %w", err)
	}
	return nil
}

// ShutdownGrace is how long Shutdown waits after each step (request,
// SIGTERM) before escalating.
const ShutdownGrace = 3 * time.Second

// Shutdown stops the kernel: shutdown_request on control, then SIGTERM, then
// SIGKILL to the process group, each after ShutdownGrace (or sooner if ctx
// ends). restart is passed to the kernel in the request; the process exits
// either way and a restart is the caller's new StartKernel. The client and
// watcher are released. It returns nil once the process has exited, and
// then removes the kernel's directory (its connection file with it).
func (k *Kernel) Shutdown(ctx context.Context, restart bool) error {
	if k.closed.Load() {
		return ErrClosed
	}
	defer k.Close()
	if err := k.stop(ctx, restart); err != nil {
		return err
	}
	if k.Dir != "" {
		if err := os.RemoveAll(k.Dir); err != nil {
			return fmt.Errorf("remove kernel dir: %w", err)
		}
	}
	return nil
}

func (k *Kernel) stop(ctx context.Context, restart bool) error {
	exited := k.Process.Exited()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-exited:
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	_, _ = k.Client.Send(Control, "shutdown_request", map[string]bool{"restart": restart})
	if wait(ShutdownGrace) {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if err := k.Process.Signal(sig); err != nil {
			if errors.Is(err, ErrProcessGone) {
				return nil
			}
			return fmt.Errorf("shutdown kernel: %w", err)
		}
		if sig == syscall.SIGKILL {
			// SIGKILL cannot be refused; give the kernel time to be reaped
			// even if ctx already ended.
			ctx = context.Background()
		}
		if wait(ShutdownGrace) {
			return nil
		}
	}
	return fmt.Errorf("shutdown kernel pid %d: still running after SIGKILL", k.Process.Pid)
}

// Close releases the client and the exit watcher without stopping the
// kernel: kernels outlive the server. Idempotent.
func (k *Kernel) Close() error {
	k.closeOnce.Do(func() {
		k.closed.Store(true)
		if k.Client != nil {
			k.closeErr = k.Client.Close()
		}
		if err := k.Process.Close(); err != nil && k.closeErr == nil {
			k.closeErr = err
		}
	})
	return k.closeErr
}
