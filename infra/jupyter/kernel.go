package jupyter

import (
	"context"
	"errors"
	"fmt"
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
	// Ports, when set, allocates the kernel's ports so that kernels started
	// at the same time never share one.
	Ports *Ports
}

// Kernel is a running kernel process with a connected client.
type Kernel struct {
	ID       string
	Spec     KernelSpec
	Info     ConnectionInfo
	ConnFile string
	LogPath  string
	Process  *Process
	Client   *Client
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

// StartKernel writes a connection file for id in runtimeDir, launches the
// kernel, dials it and waits until it is ready (WaitReady). If the process
// exits first or ReadyTimeout passes, its process group is killed and a
// *StartError with the log tail is returned: no orphan is left behind.
func StartKernel(ctx context.Context, spec KernelSpec, runtimeDir, id string, opts StartOptions) (*Kernel, error) {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	if opts.TailLines <= 0 {
		opts.TailLines = 20
	}
	info, err := newConnectionInfo(spec.Name, opts.Ports.allocate)
	if err != nil {
		return nil, fmt.Errorf("start kernel %s: %w", spec.Name, err)
	}
	connFile, err := WriteConnectionFile(runtimeDir, id, info)
	if err != nil {
		return nil, fmt.Errorf("start kernel %s: %w", spec.Name, err)
	}
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(runtimeDir, "kernel-"+id+".log")
	}
	proc, err := Launch(ctx, spec, connFile, logPath, opts.Launch)
	if err != nil {
		return nil, &StartError{Kernel: spec.Name, LogPath: logPath, StderrTail: StderrTail(logPath, opts.TailLines), Err: err}
	}
	k := &Kernel{ID: id, Spec: spec, Info: info, ConnFile: connFile, LogPath: logPath, Process: proc}

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
		return nil, &StartError{Kernel: spec.Name, Pid: proc.Pid, LogPath: logPath,
			StderrTail: StderrTail(logPath, opts.TailLines), Exit: proc.ExitStatus(), Err: err}
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
// watcher are released. It returns nil once the process has exited.
func (k *Kernel) Shutdown(ctx context.Context, restart bool) error {
	if k.closed.Load() {
		return ErrClosed
	}
	defer k.Close()
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
