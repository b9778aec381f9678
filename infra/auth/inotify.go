package auth

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchDir returns an inotify descriptor watching dir for files written,
// renamed in or out, created and deleted. NB: the directory, not the file:
// the store replaces the file by rename, which a watch on the file's old
// inode would never report. The descriptor is non-blocking, so os.File
// reads it through the runtime poller and Close ends a pending Read.
func watchDir(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	const mask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CREATE | unix.IN_DELETE |
		unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify_add_watch %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), "inotify:"+dir), nil
}

// readInotify reads f until it is closed, signalling changed (without
// blocking: one pending signal is enough) for each event about name, for
// an overflow of the kernel's queue, and for the directory itself going.
func readInotify(f *os.File, name string, changed chan<- struct{}, log *slog.Logger) {
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				log.Warn("principals: inotify read failed; relying on the periodic re-read", "err", err)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			end := off + unix.SizeofInotifyEvent + int(ev.Len)
			if end > n {
				break
			}
			got := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:end], "\x00"))
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				// NB: the watch dies with its directory; the periodic
				// re-read is all that is left, so say so.
				log.Warn("principals: the data directory was moved or deleted; changes to the principals file are now noticed only by the periodic re-read")
			}
			if got == name || ev.Mask&(unix.IN_Q_OVERFLOW|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				signal()
			}
			off = end
		}
	}
}
