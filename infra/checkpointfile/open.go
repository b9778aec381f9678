package checkpointfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// NotRegularError: something that is not a regular file (a named pipe, a
// socket, a device, a symbolic link, a directory) sits where a checkpoint,
// a key or a metadata file should be. It is never opened for reading (a
// named pipe would block the reader for good). It is a refusal: the server
// writes only regular files there, so someone else put it there.
type NotRegularError struct {
	Path string
	Kind string // "named pipe", "socket", "symbolic link", "directory", ...
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("checkpoint rejected: %s is a %s, not a regular file (this server writes only regular files there: remove it)",
		filepath.Base(e.Path), e.Kind)
}

func (e *NotRegularError) Is(target error) bool { return target == ErrRejected }

// Rejected marks the error as a refusal (see RejectError.Rejected).
func (e *NotRegularError) Rejected() bool { return true }

// NotRegular tells callers that do not import this package that the entry
// was skipped without being opened.
func (e *NotRegularError) NotRegular() bool { return true }

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeDir != 0:
		return "directory"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}

// openRegular opens path for reading only if it is a regular file: with
// O_NOFOLLOW (a symbolic link is refused, not followed) and O_NONBLOCK (a
// named pipe swapped in after a directory listing cannot block the open),
// then fstat on the descriptor decides. A missing file wraps
// fs.ErrNotExist.
func openRegular(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("no checkpoint file %s: %w", filepath.Base(path), fs.ErrNotExist)
	case errors.Is(err, unix.ELOOP):
		return nil, &NotRegularError{Path: path, Kind: "symbolic link"}
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", filepath.Base(path), err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, Kind: kindOf(fi.Mode())}
	}
	// NB: O_NONBLOCK means nothing for a regular file's reads; clear it
	// anyway so the descriptor behaves as any other file's.
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	return f, nil
}

// readRegularFile reads a small file (a key, the current key's id) that
// must be a regular file, refusing anything else without blocking.
func readRegularFile(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d it may hold", filepath.Base(path), fi.Size(), limit)
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return nil, err
	}
	return b[:n], nil
}

// privateFile creates a read-write file with no name in dir (O_TMPFILE):
// nothing can open it by path, and it is gone when its last descriptor
// closes, whatever way the process ends. Where the filesystem lacks
// O_TMPFILE, a 0600 temp file is created and unlinked at once.
func privateFile(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(private)")), nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("create private file in %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".private-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// reopenReadOnly opens a second, read-only descriptor of f (through
// /proc/self/fd, which also works for a file with no name), so a kernel
// given it cannot write. Without /proc it returns f itself: the kernel is
// then able to write only its own private copy.
func reopenReadOnly(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return f, nil
	}
	var ro *os.File
	_ = sc.Control(func(fd uintptr) {
		p := "/proc/self/fd/" + strconv.Itoa(int(fd))
		if r, err := os.OpenFile(p, os.O_RDONLY, 0); err == nil {
			ro = r
		}
	})
	if ro == nil {
		return f, nil
	}
	return ro, nil
}
