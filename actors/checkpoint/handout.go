package checkpoint

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A handout gives one open file to one kernel, so that no kernel ever
// names a path under checkpoints/ (a confined kernel cannot open one, and
// a path can be swapped between a check and an open; a descriptor cannot).
//
// The server binds a unix socket with a random name in the kernel's own
// directory (the only one a confined kernel may open) and sends the
// kernel, with the checkpoint code, the socket's name and a one-time
// nonce. The kernel connects, writes the nonce and a newline, and receives
// the descriptor (SCM_RIGHTS; Python's socket.recv_fds). The first
// connection with the right nonce gets it; then the socket is closed and
// unlinked. Wrong nonces are answered with nothing and counted: after
// maxHandoutAttempts the handout gives up.
//
// NB: the socket is bound through /proc/self/fd/<dir fd>/<name>: a unix
// socket path is limited to 107 bytes, and a data dir nested in a test's
// temp dir plus runtime/kernels/<uuid>/ is longer than that.
type handout struct {
	dir, name, nonce string
	dirFD            int
	ln               *net.UnixListener
	file             *os.File
	done             chan struct{}
	closeOnce        sync.Once
	mu               sync.Mutex
	given            bool
}

const (
	maxHandoutAttempts = 8
	// handoutConnDeadline bounds one connection: a peer that connects and
	// says nothing cannot hold the handout open.
	handoutConnDeadline = 10 * time.Second
	// handoutCloseWait bounds Close's wait for the serving goroutine (it
	// ends at the latest with the connection it is serving).
	handoutCloseWait = handoutConnDeadline + 5*time.Second
)

// offer binds the socket in dir (created 0700 if missing) and serves f to
// the first peer that presents the nonce. The caller must Close it.
func offer(dir string, f *os.File) (*handout, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create kernel directory %s: %w", dir, err)
	}
	dirFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open kernel directory %s: %w", dir, err)
	}
	h := &handout{dir: dir, dirFD: dirFD, file: f, done: make(chan struct{})}
	rnd := make([]byte, 24)
	if _, err := rand.Read(rnd); err != nil {
		unix.Close(dirFD)
		return nil, fmt.Errorf("make handout nonce: %w", err)
	}
	h.name = "ckpt-" + hex.EncodeToString(rnd[:8]) + ".sock"
	h.nonce = hex.EncodeToString(rnd[8:])
	addr := "/proc/self/fd/" + strconv.Itoa(dirFD) + "/" + h.name
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		unix.Close(dirFD)
		return nil, fmt.Errorf("bind checkpoint socket in %s: %w", dir, err)
	}
	ln.SetUnlinkOnClose(false) // NB: unlinked by name relative to dirFD in Close
	h.ln = ln
	_ = unix.Fchmodat(dirFD, h.name, 0o600, 0)
	// A kernel run as another user owns its directory: give it the socket.
	var st unix.Stat_t
	if unix.Fstat(dirFD, &st) == nil && int(st.Uid) != os.Geteuid() {
		_ = unix.Fchownat(dirFD, h.name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	go h.serve()
	return h, nil
}

// params are what the kernel code needs to fetch the descriptor.
func (h *handout) params() map[string]any {
	return map[string]any{"sock_dir": h.dir, "sock_name": h.name, "nonce": h.nonce}
}

func (h *handout) serve() {
	defer close(h.done)
	for tries := 0; tries < maxHandoutAttempts; tries++ {
		c, err := h.ln.AcceptUnix()
		if err != nil {
			return // closed
		}
		ok := h.serveConn(c)
		c.Close()
		if ok {
			// NB: stop listening at once: a second taker (one that read the
			// nonce too) is refused the connection instead of waiting.
			_ = h.ln.Close()
			return
		}
	}
}

// serveConn reads one nonce line and, when it is the nonce, sends the
// descriptor with a one-byte message.
func (h *handout) serveConn(c *net.UnixConn) bool {
	_ = c.SetDeadline(time.Now().Add(handoutConnDeadline))
	line, err := bufio.NewReaderSize(io.LimitReader(c, 128), 128).ReadString('\n')
	if err != nil {
		return false
	}
	got := strings.TrimSuffix(line, "\n")
	if subtle.ConstantTimeCompare([]byte(got), []byte(h.nonce)) != 1 {
		return false
	}
	sc, err := h.file.SyscallConn()
	if err != nil {
		return false
	}
	var werr error
	if cerr := sc.Control(func(fd uintptr) {
		_, _, werr = c.WriteMsgUnix([]byte{'1'}, unix.UnixRights(int(fd)), nil)
	}); cerr != nil || werr != nil {
		return false
	}
	h.mu.Lock()
	h.given = true
	h.mu.Unlock()
	return true
}

// taken reports whether a peer received the descriptor.
func (h *handout) taken() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.given
}

// Close stops serving, waits (bounded) for the serving goroutine, and
// unlinks the socket. Idempotent; safe on every path (error, cancel, a
// kernel that died before connecting).
func (h *handout) Close() error {
	var err error
	h.closeOnce.Do(func() {
		_ = h.ln.Close()
		select {
		case <-h.done:
		case <-time.After(handoutCloseWait):
			err = errors.New("checkpoint handout: serving goroutine did not stop")
		}
		if uerr := unix.Unlinkat(h.dirFD, h.name, 0); uerr != nil && !errors.Is(uerr, unix.ENOENT) && err == nil {
			err = fmt.Errorf("remove checkpoint socket %s: %w", h.name, uerr)
		}
		unix.Close(h.dirFD)
	})
	return err
}
