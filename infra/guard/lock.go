package guard

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// LockFile is the server lock's name in the runtime dir.
const LockFile = "server.lock"

// ErrHeld: another open file description holds the server lock (another
// server on this data dir).
var ErrHeld = errors.New("guard: the server lock is held by another server")

// Lock is the server lock, held while it is open.
type Lock struct {
	f *os.File
}

// wholeFile is a write lock on the whole file.
func wholeFile() unix.Flock_t {
	return unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0}
}

// Hold takes the server lock at path (created 0600 if missing; never
// truncated or removed, so a guard's probe always finds the file a server
// locks). NB: an OFD lock (F_OFD_SETLK), not a classic POSIX one: it
// belongs to this open file description, not to the process, so no other
// close in the process drops it, and a child never inherits it (O_CLOEXEC,
// and an OFD lock would be shared, not copied, by an inherited fd).
func Hold(path string) (*Lock, error) {
	f, err := openLock(path, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return nil, err
	}
	lk := wholeFile()
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%w (%s): stop the other server first", ErrHeld, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Close releases the lock. Idempotent.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Held reports whether a server holds the lock at path. It only asks
// (F_OFD_GETLK) and never takes it; a missing file is not held. It opens
// the path each time, so a lock file made anew (a data dir restored from a
// backup) is the one probed.
func Held(path string) (bool, error) {
	f, err := openLock(path, unix.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := wholeFile()
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("probe server lock %s: %w", path, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// openLock opens the lock file at path. NB: never through a symlink (the
// server would create or lock its target) and never blocking (a FIFO put
// there would hang the server, or every guard, in open); anything but a
// regular file is refused.
func openLock(path string, flags int) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("open server lock %s: it is a symbolic link: remove it (the server makes the file itself)", path)
		}
		return nil, fmt.Errorf("open server lock: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open server lock: %w", err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("open server lock %s: not a regular file (%s): remove it (the server makes the file itself)", path, st.Mode().Type())
	}
	return f, nil
}
