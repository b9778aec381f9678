package eventlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The ballast is a file of MinFree/8 bytes the log keeps allocated beside
// Pebble's. The levels in space.go refuse appends long before the disk is
// full, but another writer (assets, checkpoints, a kernel's own files) can
// take the last bytes between two looks. Pebble would then fail a WAL
// rotation or a flush, and its fatal path crashes the process. Instead
// Pebble's ENOSPC hook (vfs.OnDiskFull) deletes the ballast and the write is
// retried into the space it freed, while the log drops to the reserve level
// and refuses appends. The monitor re-creates the ballast once space is back.
//
// NB: the file name is on disk; it must not change.
const ballastFile = "BALLAST"

type ballast struct {
	path string
	size int64

	mu      sync.Mutex
	present bool
}

func newBallast(dir string, size int64) *ballast {
	return &ballast{path: filepath.Join(dir, ballastFile), size: size}
}

// ensure allocates the ballast if it is missing. It fails (leaving none)
// when there is not enough space for it.
func (b *ballast) ensure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.present {
		return nil
	}
	if fi, err := os.Stat(b.path); err == nil && fi.Size() == b.size {
		b.present = true
		return nil
	}
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create ballast: %w", err)
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, b.size)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		err = writeZeros(f, b.size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(b.path)
		return fmt.Errorf("allocate a %d-byte ballast: %w", b.size, err)
	}
	b.present = true
	return nil
}

// release deletes the ballast, freeing its space at once. Called from
// Pebble's ENOSPC hook: it must be quick.
func (b *ballast) release() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.present {
		return false
	}
	b.present = false
	return os.Remove(b.path) == nil
}

func (b *ballast) isPresent() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.present
}

func writeZeros(f *os.File, n int64) error {
	buf := make([]byte, 64<<10)
	for n > 0 {
		w, err := f.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return err
		}
		n -= int64(w)
	}
	return nil
}
