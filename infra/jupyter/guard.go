package jupyter

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
)

// guards are the guard processes a Launcher started (Launcher.OrphanGrace):
// each is reaped when it exits; Close stops watching them (they keep
// running: they outlive the server, which is their point).
type guards struct {
	mu       sync.Mutex
	watching map[int]*ExitWatcher // by guard pid
	closed   bool
}

// startGuard starts the orphan guard of kernel id's process (see
// infra/guard), unless OrphanGrace is 0 or attached says one may already
// run and one does. A guard that cannot start is logged: the kernel runs
// without one. The guard marks dir (the kernel's directory; "": none) when
// it ends the kernel (see Orphaned).
func (l *Launcher) startGuard(id string, p *Process, logPath, dir string, attached bool) {
	if l.OrphanGrace <= 0 || l.ServerLock == "" || p == nil {
		return
	}
	if attached && guard.Running(l.GuardSelf, p.Pid, p.StartTime, l.ServerLock) {
		return // NB: its guard from the server that started it still runs
	}
	var log *os.File
	if logPath != "" {
		if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			log = f
			defer f.Close() // the guard holds its own copy
		}
	}
	marker := ""
	if dir != "" {
		marker = filepath.Join(dir, guard.OrphanedFile)
	}
	pid, err := guard.Start(l.GuardSelf, guard.Options{Kernel: id, Pid: p.Pid, StartTime: p.StartTime, Lock: l.ServerLock,
		Grace: l.OrphanGrace, Marker: marker}, log)
	if err != nil {
		l.warnGuard(id, p.Pid, err)
		return
	}
	st, err := ProcessStartTime(pid)
	if err == nil {
		var w *ExitWatcher
		w, err = watchExit(pid, st, func() { l.reapGuard(pid) })
		if err == nil {
			l.guards.mu.Lock()
			if l.guards.closed {
				l.guards.mu.Unlock()
				_ = w.Close()
				return
			}
			if l.guards.watching == nil {
				l.guards.watching = map[int]*ExitWatcher{}
			}
			l.guards.watching[pid] = w
			l.guards.mu.Unlock()
		}
	}
	if err != nil {
		l.warnGuard(id, p.Pid, err) // NB: it runs; only its reaping is lost (init reaps it after the server)
	}
	if l.Logger != nil {
		l.Logger.Debug("kernel guard started", "component", "kernel", "kernel_id", id, "pid", p.Pid, "guard_pid", pid,
			"orphan_grace", l.OrphanGrace.String())
	}
}

func (l *Launcher) warnGuard(id string, pid int, err error) {
	if l.Logger != nil {
		l.Logger.Warn("kernel guard", "component", "kernel", "kernel_id", id, "pid", pid, "err", err,
			"effect", "this kernel is not ended if no server comes back (--orphan-grace)")
	}
}

// reapGuard collects an exited guard (in its watcher's goroutine).
func (l *Launcher) reapGuard(pid int) {
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	l.guards.mu.Lock()
	delete(l.guards.watching, pid)
	l.guards.mu.Unlock()
}

// Close stops watching the guards (they keep running, guarding their
// kernels). Call it when the server closes. Idempotent.
func (l *Launcher) Close() error {
	l.guards.mu.Lock()
	l.guards.closed = true
	ws := make([]*ExitWatcher, 0, len(l.guards.watching))
	for _, w := range l.guards.watching {
		ws = append(ws, w)
	}
	l.guards.mu.Unlock()
	// NB: outside the lock: a watcher's goroutine may be in reapGuard.
	for _, w := range ws {
		_ = w.Close()
	}
	return nil
}

// Orphaned implements the kernel actor's Launcher: whether kernel id's
// guard ended it after --orphan-grace without a server (its marker in the
// kernel's directory), and that grace.
func (l *Launcher) Orphaned(id string) (time.Duration, bool) {
	if l.RuntimeDir == "" {
		return 0, false
	}
	m, ok := guard.ReadOrphaned(filepath.Join(KernelDir(l.RuntimeDir, id), guard.OrphanedFile))
	return m.Grace, ok
}
