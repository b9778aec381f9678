package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// OrphanedFile is the marker a guard writes in its kernel's directory
// before it ends the kernel: a server starting later then knows the kernel
// was ended on purpose (not lost with a replaced pod) and does not start it
// again (--auto-restore).
const OrphanedFile = "orphaned"

// Orphaned is a marker's content.
type Orphaned struct {
	Ended time.Time     `json:"ended"`
	Grace time.Duration `json:"grace_ns"`
}

// maxMarker bounds what ReadOrphaned reads.
const maxMarker = 4096

// writeOrphaned writes the marker at path atomically (a temporary file
// renamed over it): a reader sees the whole marker or none.
func writeOrphaned(path string, m Orphaned) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+OrphanedFile+"."+strconv.Itoa(os.Getpid()))
	// NB: O_EXCL|O_NOFOLLOW: the kernel may write in its own directory; a
	// file or link it put at tmp is never followed or reused.
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write orphan marker: %w", err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write orphan marker: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write orphan marker: %w", err)
	}
	return nil
}

// ReadOrphaned reads the marker at path; false if there is none (or it is
// not a regular file or cannot be parsed).
func ReadOrphaned(path string) (Orphaned, bool) {
	var m Orphaned
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return m, false
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return m, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maxMarker))
	if err != nil || json.Unmarshal(data, &m) != nil || m.Grace <= 0 {
		return m, false
	}
	return m, true
}
