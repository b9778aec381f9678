package jupyter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrPortsNotWritten means the kernel never wrote the ports it bound into
// its connection file, so there is nothing the server may dial.
var ErrPortsNotWritten = errors.New("jupyter: the kernel did not write its ports into its connection file")

// connFileRecheck is how often the connection file is re-read even without
// an inotify event (inotify may be unavailable: its per-user instance limit
// is shared with every other program).
const (
	connFileRecheck         = time.Second
	connFileRecheckNoNotify = 20 * time.Millisecond
)

// waitForPorts waits until the kernel has rewritten the connection file at
// path with the ports it bound (all non-zero) and returns what it wrote.
// It returns ErrKernelExited if exited closes first, and ctx's error
// (wrapped with ErrPortsNotWritten) when ctx ends. The file is read when
// inotify reports a write or rename in its directory, and every
// connFileRecheck in any case.
func waitForPorts(ctx context.Context, path string, exited <-chan struct{}) (ConnectionInfo, error) {
	changed, stop := watchDir(filepath.Dir(path))
	defer stop()
	recheck := connFileRecheck
	if changed == nil {
		recheck = connFileRecheckNoNotify
	}
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	last := fmt.Errorf("%s holds no ports yet", path)
	for {
		// NB: read after the watch is set up, so a write just before it is
		// not missed.
		info, err := ReadConnectionFile(path)
		switch {
		case err == nil && info.Bound():
			return info, nil
		case err != nil:
			last = err // mid-write (ipykernel truncates, then writes) or gone
		}
		select {
		case <-ctx.Done():
			return ConnectionInfo{}, fmt.Errorf("%w (%v): %w", ErrPortsNotWritten, last, ctx.Err())
		case <-exited:
			return ConnectionInfo{}, ErrKernelExited
		case <-changed:
		case <-tick.C:
		}
	}
}

// watchDir reports changes to files in dir on the returned channel
// (coalesced: at most one pending). It returns a nil channel if inotify is
// unavailable. stop closes the watch and waits for its reader.
func watchDir(dir string) (changed <-chan struct{}, stop func()) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MODIFY); err != nil {
		_ = unix.Close(fd)
		return nil, func() {}
	}
	// A non-blocking fd in an *os.File goes through the runtime poller, so
	// Close wakes the blocked Read.
	f := os.NewFile(uintptr(fd), "inotify")
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, func() {
		_ = f.Close()
		<-done
	}
}
