package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// SmallFS mounts a tmpfs of size bytes on a fresh directory and returns it:
// a real file system that fills up, for disk-full tests. It unmounts at
// cleanup. Without the right to mount (not root, or a container without
// CAP_SYS_ADMIN) the test fails, saying why: a skipped disk-full test would
// prove nothing.
func SmallFS(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "smallfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("cannot mount a %d-byte tmpfs at %s to fill up (%v); this test needs root or CAP_SYS_ADMIN, as make test has here", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			out, _ := exec.Command("umount", "-l", dir).CombinedOutput()
			t.Logf("unmount %s: %v %s", dir, err, strings.TrimSpace(string(out)))
		}
	})
	return dir
}

// FillFS writes a file at path until the file system has about leave bytes
// available, and returns its size. Removing the file frees the space.
func FillFS(t testing.TB, path string, leave uint64) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
			t.Fatal(err)
		}
		free := st.Bavail * uint64(st.Bsize)
		if free <= leave {
			break
		}
		n := min(uint64(len(chunk)), free-leave)
		if _, err := f.Write(chunk[:n]); err != nil {
			break
		}
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// FreeBytes returns the bytes available on dir's file system.
func FreeBytes(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}
