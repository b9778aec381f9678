package checkpoint

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// recordingRunner runs the real code and keeps every piece of it.
type recordingRunner struct {
	Runner
	mu    sync.Mutex
	codes []string
}

func (r *recordingRunner) Run(ctx context.Context, k, code string) (string, error) {
	r.mu.Lock()
	r.codes = append(r.codes, code)
	r.mu.Unlock()
	return r.Runner.Run(ctx, k, code)
}

// TestKernelNeverNamesACheckpointPath: saves and loads (plain and
// encrypted) round-trip the variables while no code sent to the kernel
// names anything under checkpoints/: the kernel gets descriptors (a
// confined kernel cannot open that directory at all), and no socket or
// temp file is left behind.
func TestKernelNeverNamesACheckpointPath(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[encrypt], func(t *testing.T) {
			st := testkit.StartStack(t, "")
			rec := &recordingRunner{Runner: st}
			r := newRigWith(t, st, rigConfig{encrypt: encrypt, runner: rec})
			k := r.kernel()
			r.run(k, "import numpy as np\nv = {'arr': np.arange(300000), 'text': 'hello'}\nw = v")
			if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "paths", KernelID: k}); err != nil {
				t.Fatal(err)
			}
			r.run(k, "del v, w")
			if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "paths", KernelID: k}); err != nil {
				t.Fatal(err)
			}
			if got := r.run(k, "print(int(v['arr'].sum()), v['text'], v is w)"); got != "44999850000 hello True" {
				t.Fatalf("after load: %q", got)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.codes) < 3 {
				t.Fatalf("only %d executions recorded", len(rec.codes))
			}
			for _, c := range rec.codes {
				if strings.Contains(c, r.files.Dir()) {
					t.Fatalf("code sent to the kernel names the checkpoint directory %s", r.files.Dir())
				}
			}
			ents, _ := os.ReadDir(r.files.TempDir())
			socks, _ := filepath.Glob(filepath.Join(r.kernelDir(k), "*.sock"))
			if len(ents)+len(socks) != 0 {
				t.Fatalf("left behind: temp %v, sockets %v", ents, socks)
			}
		})
	}
}

// TestEncryptedSwapRace (issue 13, finding 3, encrypted mode): a goroutine
// keeps renaming a malicious file over an encrypted checkpoint while 40
// loads run; every load restores the genuine variables or is refused, and
// the malicious pickle never runs.
func TestEncryptedSwapRace(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, true)
	k := r.kernel()
	r.run(k, "victim = 'genuine'")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "victim", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(r.files.Path("victim"))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "pwned")
	evil := []byte("cbuiltins\nexec\n(Vopen('" + marker + "', 'w').write('pwned')\ntR0N.")
	evil = append(evil, make([]byte, max(0, len(good)-len(evil)))...)
	goodSrc, evilSrc := filepath.Join(st.DataDir, "good.src"), filepath.Join(st.DataDir, "evil.src")
	if err := os.WriteFile(goodSrc, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evilSrc, evil, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var swaps atomic.Int64
	go func() {
		defer close(done)
		tmp := filepath.Join(r.files.Dir(), "swap.tmp")
		defer os.Remove(tmp)
		for {
			for _, src := range []string{evilSrc, goodSrc} {
				select {
				case <-stop:
					return
				default:
				}
				_ = os.Remove(tmp)
				if os.Link(src, tmp) == nil && os.Rename(tmp, r.files.Path("victim")) == nil {
					swaps.Add(1)
				}
			}
		}
	}()
	var refused int
	for i := 0; i < 40; i++ {
		_, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "victim", KernelID: k})
		if errors.Is(err, ErrRejected) {
			refused++
		} else if err != nil {
			t.Errorf("load %d: neither restored nor refused: %v", i, err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("the malicious pickle ran (try %d)", i+1)
		}
	}
	close(stop)
	<-done
	if refused == 0 || swaps.Load() < 40 {
		t.Fatalf("%d refusals, %d swaps: the race was not exercised", refused, swaps.Load())
	}
	if got := r.run(k, "print(victim)"); got != "genuine" {
		t.Fatalf("victim = %q", got)
	}
}

// TestRollbackAndRenameRefused: the actor's own API: an older copy of a
// name is refused (ErrRollback) and loads with AllowRollback; a copy under
// another name is refused (ErrRenamed) even with it; both are rejections
// counted as signature failures.
func TestRollbackAndRenameRefused(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	r.run(k, "v = 1")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "x", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(r.files.Path("x"))
	r.run(k, "v = 2")
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "x", KernelID: k, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.files.Path("x"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.files.Path("y"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	r.run(k, "v = 3")
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "x", KernelID: k}); !errors.Is(err, ErrRollback) || !errors.Is(err, ErrRejected) {
		t.Fatalf("older copy: %v", err)
	}
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "y", KernelID: k, AllowRollback: true}); !errors.Is(err, ErrRenamed) || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("renamed copy: %v", err)
	}
	if got := r.run(k, "print(v)"); got != "3" {
		t.Fatalf("refused loads touched the kernel: v = %s", got)
	}
	if got := r.sigFailures(); got != 2 {
		t.Fatalf("signature failures %d, want 2", got)
	}
	res, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "x", KernelID: k, AllowRollback: true})
	if err != nil || !res.RolledBack {
		t.Fatalf("allow rollback: %+v %v", res, err)
	}
	if got := r.run(k, "print(v)"); got != "1" {
		t.Fatalf("after rollback v = %s", got)
	}
}

// dialHandout connects as a kernel would and presents nonce; it returns
// the descriptor received, or -1.
func dialHandout(t *testing.T, h *handout, nonce string) int {
	t.Helper()
	d, err := unix.Open(h.dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(d)
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: "/proc/self/fd/" + itoa(d) + "/" + h.name, Net: "unix"})
	if err != nil {
		return -1 // nobody listens any more
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(nonce + "\n")); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil || n == 0 || oobn == 0 {
		return -1
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1
	}
	return fds[0]
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestHandout: in a directory deeper than a unix socket path allows, a
// wrong nonce gets nothing, the right one gets the file, a second taker
// gets nothing, and Close removes the socket; a handout nobody takes
// closes at once.
func TestHandout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60), "kernel")
	f, err := os.CreateTemp(t.TempDir(), "payload")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("verified bytes"); err != nil {
		t.Fatal(err)
	}
	h, err := offer(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("kernel dir: %v %v", fi, err)
	}
	if fd := dialHandout(t, h, strings.Repeat("0", len(h.nonce))); fd >= 0 {
		unix.Close(fd)
		t.Fatal("a wrong nonce got the descriptor")
	}
	fd := dialHandout(t, h, h.nonce)
	if fd < 0 {
		t.Fatal("the right nonce got no descriptor")
	}
	got := os.NewFile(uintptr(fd), "received")
	b := make([]byte, 64)
	n, _ := got.ReadAt(b, 0)
	got.Close()
	select {
	case <-h.done: // the server stops serving once it handed the file over
	case <-time.After(10 * time.Second):
		t.Fatal("the handout kept serving after it handed the file over")
	}
	if string(b[:n]) != "verified bytes" || !h.taken() {
		t.Fatalf("received %q (taken %v)", b[:n], h.taken())
	}
	if fd := dialHandout(t, h, h.nonce); fd >= 0 {
		unix.Close(fd)
		t.Fatal("a second taker with the nonce got the descriptor too")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left in the kernel dir: %v", ents)
	}
	idle, err := offer(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := idle.Close(); err != nil || time.Since(t0) > 2*time.Second {
		t.Fatalf("close of an untaken handout: %v after %s", err, time.Since(t0))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left in the kernel dir: %v", ents)
	}
}

// TestKernelDiesMidSave: the kernel dies while it writes through the
// descriptor it was handed (pickling a variable exits the process): the
// save fails, nothing is committed, and neither the socket nor a staging
// file is left behind.
func TestKernelDiesMidSave(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	r.run(k, "class Boom:\n    def __reduce__(self):\n        import os\n        os._exit(1)\nfirst = list(range(1000))\nboom = Boom()")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := r.svc.Save(ctx, SaveRequest{Name: "dies", KernelID: k}); err == nil {
		t.Fatal("a save whose kernel died succeeded")
	}
	if r.files.Exists("dies") {
		t.Fatal("a save whose kernel died was committed")
	}
	ents, _ := os.ReadDir(r.files.TempDir())
	socks, _ := filepath.Glob(filepath.Join(r.kernelDir(k), "*.sock"))
	if len(ents)+len(socks) != 0 {
		t.Fatalf("left behind: temp %v, sockets %v", ents, socks)
	}
}
