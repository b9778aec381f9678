package jupyter

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ExitWatcher reports when a process exits, without polling and without
// needing to be its parent: it waits on a pidfd (Linux 5.3+) in a goroutine
// it owns, and Close wakes that goroutine through an eventfd.
type ExitWatcher struct {
	done      chan struct{}
	stopped   chan struct{}
	evfd      int
	closeOnce sync.Once
}

// WatchExit watches the process pid whose /proc start time is startTime.
// If that process has already exited, Done is closed at once. If pid now
// belongs to another process (start time differs), it returns ErrProcessGone.
func WatchExit(pid int, startTime uint64) (*ExitWatcher, error) {
	return watchExit(pid, startTime, nil)
}

// watchExit calls onExit (if not nil) in the watcher goroutine before
// closing Done; Process uses it to reap its children.
func watchExit(pid int, startTime uint64, onExit func()) (*ExitWatcher, error) {
	w := &ExitWatcher{done: make(chan struct{}), stopped: make(chan struct{}), evfd: -1}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		// Already gone (and reaped) before we could look.
		close(w.done)
		close(w.stopped)
		return w, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open pidfd %d: %w", pid, err)
	}
	// NB: check the start time after opening the pidfd, so the fd is known
	// to refer to the process we mean and not to a later owner of the pid.
	st, err := ProcessStartTime(pid)
	if err == nil && st != startTime {
		_ = unix.Close(pidfd)
		return nil, fmt.Errorf("watch pid %d: %w (start time %d, want %d)", pid, ErrProcessGone, st, startTime)
	}
	// err != nil: /proc entry vanished between the two calls: the process
	// exited; the pidfd is readable and the watcher finishes at once.
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(pidfd)
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	w.evfd = evfd
	go w.run(pidfd, onExit)
	return w, nil
}

func (w *ExitWatcher) run(pidfd int, onExit func()) {
	defer close(w.stopped)
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(w.evfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || fds[0].Revents != 0 {
			// Poll errors cannot happen with valid fds; treat as exit
			// rather than spin.
			if onExit != nil {
				onExit()
			}
			close(w.done)
			return
		}
		if fds[1].Revents != 0 {
			return // Close
		}
	}
}

// Done is closed when the process has exited. It is never closed if the
// watcher is closed first.
func (w *ExitWatcher) Done() <-chan struct{} { return w.done }

// Close stops watching and waits for the watcher goroutine. Idempotent.
func (w *ExitWatcher) Close() error {
	w.closeOnce.Do(func() {
		if w.evfd >= 0 {
			var one = [8]byte{1}
			_, _ = unix.Write(w.evfd, one[:]) // little-endian 1
			<-w.stopped
			_ = unix.Close(w.evfd)
		}
	})
	return nil
}
