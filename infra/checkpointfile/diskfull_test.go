package checkpointfile

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// diskFullStore is a store whose directory is a real 4 MiB file system.
func diskFullStore(t *testing.T) *Store {
	t.Helper()
	keys, err := OpenKeyring(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(testkit.SmallFS(t, 4<<20), keys, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kernelWrites writes n frames of 1 MiB into f as the kernel does, then the
// end mark; it returns the first write error.
func kernelWrites(f *os.File, n int) error {
	chunk := make([]byte, 1<<20)
	for i := 0; i < n; i++ {
		hdr := binary.BigEndian.AppendUint32([]byte{frameData}, uint32(len(chunk)))
		if _, err := f.Write(append(hdr, chunk...)); err != nil {
			return err
		}
	}
	_, err := f.Write(endFrame)
	return err
}

// A save that fills the disk: the server's write of a chunk fails
// (ENOSPC). The kernel, still writing 40 MiB into the pipe, must get an
// error at once (EPIPE) instead of blocking on a pipe nobody reads, and
// Save must report the disk's error, not the kernel's broken pipe.
func TestDiskFullSaveUnblocksKernel(t *testing.T) {
	s := diskFullStore(t)
	var kernelErr error
	saved := make(chan error, 1)
	go func() {
		_, err := s.Save("full", 0, func(stage *os.File) error {
			kfd, err := dupFile(stage)
			if err != nil {
				return err
			}
			defer kfd.Close()
			kernelErr = kernelWrites(kfd, 40)
			return kernelErr
		}, func(string, bool, int64, string) ([]byte, error) { return []byte(`{}`), nil })
		saved <- err
	}()
	var err error
	select {
	case err = <-saved:
	case <-time.After(30 * time.Second):
		t.Fatal("the kernel's writes into the save's pipe still block 30 s after the disk filled up")
	}
	if !errors.Is(kernelErr, syscall.EPIPE) {
		t.Errorf("kernel's write error = %v, want EPIPE", kernelErr)
	}
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("Save error = %v, want the disk's ENOSPC", err)
	}
	if left, _ := os.ReadDir(s.TempDir()); len(left) != 0 {
		t.Errorf("temp files left after the failed save: %v", left)
	}
}

// A save's staging file is bounded: by the caller's maxBytes (an owner's
// quota left) and by the free space above KeepFree. Past either, the save
// fails naming the limit, and the kernel's writes fail at once.
func TestStageBounded(t *testing.T) {
	save := func(s *Store, maxBytes int64) (kernelErr, err error) {
		saved := make(chan error, 1)
		go func() {
			_, err := s.Save("big", maxBytes, func(stage *os.File) error {
				kfd, err := dupFile(stage)
				if err != nil {
					return err
				}
				defer kfd.Close()
				kernelErr = kernelWrites(kfd, 40)
				return kernelErr
			}, func(string, bool, int64, string) ([]byte, error) { return []byte(`{}`), nil })
			saved <- err
		}()
		select {
		case err = <-saved:
		case <-time.After(30 * time.Second):
			t.Fatal("the kernel's writes still block 30 s after the save passed its limit")
		}
		return kernelErr, err
	}
	t.Run("quota", func(t *testing.T) {
		s := newStore(t, false)
		kernelErr, err := save(s, 3<<20)
		var tl *TooLargeError
		if !errors.As(err, &tl) || !tl.Quota || tl.Limit != 3<<20 || !strings.Contains(err.Error(), "quota") {
			t.Fatalf("Save of 40 MiB bounded by 3 MiB = %v, want a TooLargeError naming the quota", err)
		}
		if !errors.Is(kernelErr, syscall.EPIPE) {
			t.Errorf("kernel's write error = %v, want EPIPE", kernelErr)
		}
		if s.Exists("big") {
			t.Error("a save past its limit was committed")
		}
	})
	t.Run("disk", func(t *testing.T) {
		keys, err := OpenKeyring(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		dir := testkit.SmallFS(t, 24<<20)
		s, err := Open(dir, keys, false)
		if err != nil {
			t.Fatal(err)
		}
		s.KeepFree(16<<20, "--min-free-disk")
		low := testkit.FreeBytes(t, dir)
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() { // the lowest free space seen while the save runs
			defer close(watched)
			for {
				select {
				case <-stop:
					return
				default:
				}
				low = min(low, testkit.FreeBytes(t, dir))
			}
		}()
		kernelErr, err := save(s, 0)
		close(stop)
		<-watched
		var tl *TooLargeError
		if !errors.As(err, &tl) || tl.Quota || !strings.Contains(err.Error(), "--min-free-disk") {
			t.Fatalf("Save of 40 MiB on 24 MiB keeping 16 MiB free = %v, want a TooLargeError naming --min-free-disk", err)
		}
		if !errors.Is(kernelErr, syscall.EPIPE) {
			t.Errorf("kernel's write error = %v, want EPIPE", kernelErr)
		}
		if low < 16<<20 {
			t.Errorf("the save left %d bytes free, under the %d kept", low, 16<<20)
		}
	})
}
