package eventlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// InUseError: another process owns the data dir.
type InUseError struct {
	Dir string
	Pid int
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("data dir %s in use by pid %d: stop that server first, or give this one another --data-dir", e.Dir, e.Pid)
}

// dirLock is an flock on <dir>/owner.lock holding the owner's pid. The kernel
// releases it when the process dies, kill -9 included.
type dirLock struct{ f *os.File }

func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, "owner.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, Pid: ownerPid(dir)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("write pid to lock file: %w", err)
		}
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing drops the flock
	l.f = nil
	return err
}

// ownerPid reads the pid the owner wrote into its lock file (0 if unknown:
// the owner may not have written it yet).
func ownerPid(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "owner.lock"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
