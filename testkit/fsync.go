package testkit

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FsyncFloor measures the floor durability puts under a latency on dir's
// file system: n times, a 200-byte write and an fdatasync of the same file
// (what one durable append costs at the least), each timed. A result's
// acknowledgement waits for one such sync, so beside a round trip this is
// the part no design can remove. The file is removed afterwards.
func FsyncFloor(tb testing.TB, dir string, n int) []time.Duration {
	tb.Helper()
	f, err := os.CreateTemp(dir, "fsync-floor-*")
	if err != nil {
		tb.Fatalf("fsync floor: %v", err)
	}
	defer os.Remove(filepath.Clean(f.Name()))
	defer f.Close()
	buf := make([]byte, 200)
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			tb.Fatalf("fsync floor: write: %v", err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			tb.Fatalf("fsync floor: fdatasync: %v", err)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}
