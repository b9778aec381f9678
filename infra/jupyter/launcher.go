package jupyter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// Launcher implements the kernel actor's Launcher with real kernel processes.
type Launcher struct {
	// SearchPath is where kernelspecs are found (default DefaultSearchPath).
	SearchPath SearchPath
	// RuntimeDir holds connection files (0600) and kernel logs.
	RuntimeDir string
	// DieWithServer starts kernels with JPY_PARENT_PID (they then do not
	// outlive the server).
	DieWithServer bool
	// AttachTimeout bounds re-attaching to a recorded kernel (default 10 s).
	AttachTimeout time.Duration
	// IOPubHWM is the kernels' IOPub send queue (default DefaultIOPubHWM).
	IOPubHWM int
	// Sandbox confines each kernel (nil: kernels start unconfined).
	Sandbox *Sandbox
	// KernelEnv adds names (or prefixes ending in '*') of the server's
	// environment that kernels receive (see KernelEnv).
	KernelEnv []string
	Client    ClientOptions
	Logger    *slog.Logger
	// Pool, when set, holds kernels started ahead of need: Launch hands
	// over the one claimed under the id it is asked for. Set it before the
	// first Launch and leave it.
	Pool *Pool
	// OrphanGrace (--orphan-grace), when positive, starts a guard process
	// with each kernel (infra/guard): it ends the kernel once no server has
	// held ServerLock for that long. 0: kernels wait for a server for ever.
	OrphanGrace time.Duration
	// ServerLock is the server lock's path (guard.Hold), held by the server.
	ServerLock string
	// GuardSelf runs the guard (default: this binary, guard.Subcommand).
	GuardSelf guard.Self

	guards guards
}

// Specs lists the kernelspecs found.
func (l *Launcher) Specs() (KernelSpecs, error) {
	path := l.SearchPath
	if len(path.Dirs) == 0 {
		path = DefaultSearchPath()
	}
	return FindKernelSpecs(path)
}

// Launch implements the kernel actor's Launcher. A kernel the edge claimed
// from the Pool under this id (Pool.Claim) is handed over at once;
// otherwise a new process is started.
func (l *Launcher) Launch(ctx context.Context, id, specName string) (events.KernelConn, events.KernelLaunched, error) {
	if l.Pool != nil {
		k, err := l.Pool.take(id, specName)
		if err != nil {
			return nil, events.KernelLaunched{}, err
		}
		if k != nil {
			conn, launched := l.handOver(k, true)
			return conn, launched, nil
		}
	}
	k, err := l.start(ctx, id, specName, nil)
	if err != nil {
		return nil, events.KernelLaunched{}, err
	}
	conn, launched := l.handOver(k, false)
	return conn, launched, nil
}

// start starts kernel id from the named kernelspec with the launcher's
// settings and waits until it is ready. onLaunch, if set, sees the process
// as soon as it runs (StartOptions.OnLaunch).
func (l *Launcher) start(ctx context.Context, id, specName string, onLaunch func(*Process) error) (*Kernel, error) {
	specs, err := l.Specs()
	if err != nil {
		return nil, fmt.Errorf("find kernelspecs: %w", err)
	}
	spec, err := specs.Lookup(specName)
	if err != nil {
		return nil, err
	}
	copts := l.Client
	copts.Session = events.NewID(time.Now())
	if copts.Logger == nil && l.Logger != nil {
		copts.Logger = l.Logger.With("kernel_id", id)
	}
	hwm := l.IOPubHWM
	if hwm <= 0 {
		hwm = DefaultIOPubHWM
	}
	// NB: StartKernel creates the kernel's directory with its connection file.
	lopts := LaunchOptions{DieWithServer: l.DieWithServer, IOPubHWM: hwm, Sandbox: l.Sandbox, EnvAllow: l.KernelEnv, KernelDir: KernelDir(l.RuntimeDir, id)}
	k, err := StartKernel(ctx, spec, l.RuntimeDir, id, StartOptions{Launch: lopts, Client: copts, OnLaunch: onLaunch})
	if err == nil {
		l.startGuard(id, k.Process, k.LogPath, k.Dir, false)
	}
	return k, err
}

// handOver wraps a ready kernel for the kernel actor: its connection and
// what KernelStarted records. pooled says it was started ahead of need.
func (l *Launcher) handOver(k *Kernel, pooled bool) (events.KernelConn, events.KernelLaunched) {
	id := k.ID
	if l.Logger != nil {
		// NB: operators read here (and in KernelStarted's process.sandbox)
		// whether agent code in this kernel can reach the data dir.
		if l.Sandbox != nil && l.Sandbox.Mode != sandbox.ModeOff && !k.Process.Confined {
			l.Logger.Warn("kernel started UNCONFINED: its code can read the data dir (MCP token, checkpoint keys, event log)",
				"component", "kernel", "kernel_id", id, "pid", k.Process.Pid, "sandbox", k.Process.Sandbox, "why", k.Process.SandboxWarning, "prestarted", pooled)
		} else if k.Process.SandboxWarning != "" {
			l.Logger.Warn("kernel started", "component", "kernel", "kernel_id", id, "pid", k.Process.Pid, "sandbox", k.Process.Sandbox,
				"warning", k.Process.SandboxWarning, "prestarted", pooled)
		} else {
			l.Logger.Info("kernel started", "component", "kernel", "kernel_id", id, "pid", k.Process.Pid, "sandbox", k.Process.Sandbox, "prestarted", pooled)
		}
	}
	mode := k.Spec.InterruptMode
	if mode == "" {
		mode = "signal"
	}
	launched := events.KernelLaunched{Language: k.KernelInfo.LanguageInfo.Name, InterruptMode: mode, DiesWithServer: l.DieWithServer,
		Process: events.KernelProcess{Pid: k.Process.Pid, StartTime: k.Process.StartTime, ConnFile: k.ConnFile, LogFile: k.LogPath,
			IP: k.Info.IP, ShellPort: k.Info.ShellPort, IOPubPort: k.Info.IOPubPort, Session: k.Client.Session(), Sandbox: k.Process.Sandbox}}
	if launched.Language == "" {
		launched.Language = k.Spec.Language
	}
	return newConn(k), launched
}

// Attach implements the kernel actor's Launcher: it dials a kernel recorded in the log
// with the recorded session (so replies to requests sent before the server
// restarted still reach us) and confirms it with kernel_info.
func (l *Launcher) Attach(ctx context.Context, id string, p events.KernelProcess) (events.KernelConn, error) {
	info, err := ReadConnectionFile(p.ConnFile)
	if err != nil {
		return nil, fmt.Errorf("read connection file of kernel %s: %w", id, err)
	}
	copts := l.Client
	copts.Session = p.Session
	if copts.Logger == nil && l.Logger != nil {
		copts.Logger = l.Logger.With("kernel_id", id)
	}
	k, err := Attach(ctx, info, p.Pid, p.StartTime, l.AttachTimeout, copts)
	if err != nil {
		return nil, err
	}
	k.ID, k.ConnFile, k.LogPath = id, p.ConnFile, p.LogFile
	if l.RuntimeDir != "" && p.ConnFile == ConnectionFilePath(l.RuntimeDir, id) {
		k.Dir = KernelDir(l.RuntimeDir, id) // older servers wrote kernel-<id>.json, with no directory
	}
	if k.LogPath == "" {
		k.LogPath = filepath.Join(l.RuntimeDir, "kernel-"+id+".log")
	}
	l.startGuard(id, k.Process, k.LogPath, k.Dir, true)
	return newConn(k), nil
}

// Kill implements the kernel actor's Launcher: SIGKILL to the recorded process group,
// only if the pid still belongs to the recorded process.
func (l *Launcher) Kill(p events.KernelProcess) error {
	if p.Pid == 0 {
		return nil
	}
	err := SignalGroup(p.Pid, p.StartTime, syscall.SIGKILL)
	if err != nil && !errors.Is(err, ErrProcessGone) {
		return err
	}
	if err == nil {
		reapChild(p.Pid, killReap)
	}
	return l.removeKernelFiles(p.ConnFile)
}

// killReap bounds Kill's wait for its killed child to exit.
const killReap = 2 * time.Second

// reapChild collects pid once it exited if it is this server's child: a
// killed kernel whose connection (and its exit watcher, which reaps) was
// already closed would otherwise stay a zombie holding its pid for as
// long as the server runs. A watcher that reaps first leaves it nothing
// to do (ECHILD).
func reapChild(pid int, within time.Duration) {
	st, err := readProcStat(pid)
	if err != nil || st.ppid != os.Getpid() {
		return
	}
	deadline := time.Now().Add(within)
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || err != nil || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeKernelFiles removes the directory of the kernel whose connection
// file is connFile (or, for a kernel of an older server, that file). A path
// outside the runtime dir is left alone: it comes from the log.
func (l *Launcher) removeKernelFiles(connFile string) error {
	if l.RuntimeDir == "" || connFile == "" {
		return nil
	}
	dir, base := filepath.Split(filepath.Clean(connFile))
	dir = filepath.Clean(dir)
	switch {
	case base == ConnectionFileName && filepath.Dir(dir) == kernelsDir(l.RuntimeDir):
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove kernel dir: %w", err)
		}
	case dir == filepath.Clean(l.RuntimeDir) && strings.HasPrefix(base, "kernel-") && strings.HasSuffix(base, ".json"):
		if err := os.Remove(connFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove connection file: %w", err)
		}
	}
	return nil
}

// RemoveStale removes the directories (and older servers' connection files)
// of kernels not in keep: those left by kernels that were shut down or
// reaped while no server ran, or whose start failed mid-way. Call it once at
// start, after recovery, before any kernel is started. Kernel logs stay.
func (l *Launcher) RemoveStale(keep []string) error {
	if l.RuntimeDir == "" {
		return nil
	}
	live := map[string]bool{}
	for _, id := range keep {
		live[id] = true
	}
	var errs []error
	dirs, err := os.ReadDir(kernelsDir(l.RuntimeDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("list kernel dirs: %w", err))
	}
	for _, d := range dirs {
		if !live[d.Name()] {
			if err := os.RemoveAll(KernelDir(l.RuntimeDir, d.Name())); err != nil {
				errs = append(errs, fmt.Errorf("remove stale kernel dir: %w", err))
			}
		}
	}
	files, err := os.ReadDir(l.RuntimeDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("list runtime dir: %w", err))
	}
	for _, f := range files {
		id, ok := strings.CutPrefix(f.Name(), "kernel-")
		if id, ok2 := strings.CutSuffix(id, ".json"); ok && ok2 && !f.IsDir() && !live[id] {
			if err := os.Remove(filepath.Join(l.RuntimeDir, f.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove stale connection file: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// conn adapts a Kernel to events.KernelConn.
type conn struct {
	k    *Kernel
	out  chan events.KernelMessage
	dead chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	death events.KernelDeath

	closeOnce sync.Once
}

func newConn(k *Kernel) *conn {
	// NB: a short relay: the client's queue is where messages wait, bounded
	// in bytes; this channel only adds a few messages to it.
	c := &conn{k: k, out: make(chan events.KernelMessage, 8), dead: make(chan struct{}), stop: make(chan struct{})}
	c.wg.Add(2)
	go c.convert()
	go c.watch()
	return c
}

var channelNames = map[Channel]string{Shell: events.ChannelShell, Control: events.ChannelControl, Stdin: events.ChannelStdin, IOPub: events.ChannelIOPub}

// convert turns the client's messages into events.KernelMessage until the
// client closes: first those read while attaching, then the live ones.
func (c *conn) convert() {
	defer c.wg.Done()
	defer close(c.out)
	for _, r := range c.k.Pending {
		c.deliver(r)
	}
	for r := range c.k.Client.Messages() {
		c.deliver(r)
	}
}

func (c *conn) deliver(r Received) {
	in := events.KernelMessage{Channel: channelNames[r.Channel], Dropped: r.Dropped}
	if r.Consumed {
		// NB: counted only (see events.KernelMessage.Consumed)
		in = events.KernelMessage{MsgID: r.Msg.Header.MsgID, MsgType: r.Msg.Header.MsgType, Consumed: true}
	}
	if r.Dropped == 0 && !r.Consumed {
		in.MsgID, in.ParentMsgID, in.MsgType, in.Content = r.Msg.Header.MsgID, r.Msg.Parent.MsgID, r.Msg.Header.MsgType, r.Msg.Content
	}
	select {
	case c.out <- in:
	case <-c.stop:
		// keep draining so the client's pump can finish
	}
}

// watch closes dead when the process exits or stops answering heartbeats.
func (c *conn) watch() {
	defer c.wg.Done()
	var d events.KernelDeath
	select {
	case <-c.k.Process.Exited():
		st := c.k.Process.ExitStatus()
		d.Reason = "the kernel process exited"
		if st.Known {
			d.Reason += " (" + st.String() + ")"
			if st.Signal != 0 {
				d.Signal = st.Signal.String()
			} else {
				code := st.Code
				d.ExitCode = &code
			}
		}
	case <-c.k.Client.HeartbeatLost():
		d.Reason = "the kernel stopped answering heartbeats"
	case <-c.stop:
		return
	}
	d.StderrTail = StderrTail(c.k.LogPath, 20)
	c.mu.Lock()
	c.death = d
	c.mu.Unlock()
	close(c.dead)
}

func (c *conn) Send(channel, msgType, msgID string, content any) error {
	ch := Shell
	switch channel {
	case events.ChannelControl:
		ch = Control
	case events.ChannelStdin:
		ch = Stdin
	}
	_, err := c.k.Client.Send(ch, msgType, content, func(m *Message) {
		if msgID != "" {
			m.Header.MsgID = msgID
		}
	})
	return err
}

func (c *conn) Messages() <-chan events.KernelMessage { return c.out }
func (c *conn) Dead() <-chan struct{}                 { return c.dead }
func (c *conn) Death() events.KernelDeath {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.death
}
func (c *conn) Interrupt() error { return c.k.Interrupt() }

func (c *conn) Shutdown(ctx context.Context) (bool, error) {
	start := time.Now()
	err := c.k.Shutdown(ctx, false)
	return time.Since(start) > ShutdownGrace, err
}

// Implementation is the kernel_info implementation ("ipython" for
// ipykernel): the kernel actor pipelines executions only to kernels that
// honour abort_request.
func (c *conn) Implementation() string { return c.k.KernelInfo.Implementation }

// Close releases the connection; the kernel keeps running.
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.stop)
		err = c.k.Close()
		c.wg.Wait()
	})
	return err
}
