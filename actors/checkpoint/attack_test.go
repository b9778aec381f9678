package checkpoint

import (
	"bytes"
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

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
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
			if len(rec.codes) < 2 { // the save and the load (which checks the packages first)
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

// TestDamagedChunkNeverUnpickled (issue 15, format 2): a load streams the
// checkpoint to the kernel chunk by chunk, each checked before it is
// handed over. Three variables: one whose unpickling writes file A (chunk
// 0), 3 MiB of filler, one whose unpickling writes file B (chunk 3, of 5). The
// genuine file runs both (the probe works). Then, with the file damaged —
// a flipped filler byte in B's chunk, chunks reordered, a chunk of another
// checkpoint put in its place, the tag list cut short — the load is
// refused, B is never written (nothing of the bad chunk reached the
// unpickler), and the kernel's variables are untouched.
func TestDamagedChunkNeverUnpickled(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	dir := t.TempDir()
	fileA, fileB := filepath.Join(dir, "A-ran"), filepath.Join(dir, "B-ran")
	r.run(k, `import builtins
class Touch:
    def __init__(self, path):
        self.path = path
    def __reduce__(self):
        return (builtins.exec, ("open(%r, 'w').write('ran')" % self.path,))
first = Touch(`+jsonQuote(fileA)+`)
filler = b"x" * (3 << 20)
second = Touch(`+jsonQuote(fileB)+`)
tail = b"y" * (3 << 19)`)
	vars := []string{"first", "filler", "second", "tail"}
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "probe", KernelID: k, Variables: vars}); err != nil {
		t.Fatal(err)
	}
	// Another checkpoint whose chunk 3 differs only in its filler bytes
	// (unpickled, it would run B just the same).
	r.run(k, `filler = b"z" * (3 << 20)`)
	if _, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "other", KernelID: k, Variables: vars}); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(r.files.Path("probe"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(r.files.Path("other"))
	if err != nil {
		t.Fatal(err)
	}
	h, hlen, err := checkpointfile.ParseHeader(good)
	if err != nil || h.Version != 2 {
		t.Fatalf("saved file: format %d, %v", h.Version, err)
	}
	const cs, es = checkpointfile.ChunkSize, checkpointfile.EntrySize
	foot, err := checkpointfile.ParseFooter(good[len(good)-checkpointfile.FooterSize:])
	if err != nil {
		t.Fatal(err)
	}
	tags := hlen + int(foot.PayloadLen)
	at := bytes.Index(good, []byte(fileB))
	kB := (at - hlen) / cs
	chunkB := hlen + kB*cs
	if kB != 3 || good[chunkB+1] != 'x' || other[chunkB+1] != 'z' || at-chunkB < 8 || !bytes.Equal(good[at:tags], other[at:tags]) {
		t.Fatalf("layout: B's path at %d, in chunk %d, chunk starts with %q", at, kB, good[chunkB:chunkB+8])
	}
	ran := func() (a, b bool) {
		_, ea := os.Stat(fileA)
		_, eb := os.Stat(fileB)
		return ea == nil, eb == nil
	}
	// The probe works: the genuine file runs both.
	if _, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "probe", KernelID: k}); err != nil {
		t.Fatal(err)
	}
	if a, b := ran(); !a || !b {
		t.Fatalf("genuine load: A ran %v, B ran %v", a, b)
	}
	r.run(k, "first = second = filler = tail = 'untouched'")
	cases := []struct {
		name, reason string
		aRuns        bool // chunks before B's were handed over
		damage       func(b []byte) []byte
	}{
		{"flipped-byte-in-chunk-3", "chunk 3 of 5 fails authentication", true, func(b []byte) []byte { b[chunkB+1] ^= 1; return b }},
		{"chunks-2-and-3-swapped", "chunk 2 of 5 fails authentication", true, func(b []byte) []byte {
			c2 := append([]byte(nil), b[chunkB-cs:chunkB]...)
			copy(b[chunkB-cs:], b[chunkB:chunkB+cs])
			copy(b[chunkB:], c2)
			return b
		}},
		{"chunk-3-of-another-file", "chunk 3 of 5 fails authentication", true, func(b []byte) []byte {
			copy(b[chunkB:chunkB+cs], other[chunkB:chunkB+cs])
			return b
		}},
		{"tag-list-cut-short", "truncated", false, func(b []byte) []byte {
			return append(b[:tags+3*es], b[tags+4*es:]...)
		}},
		{"tag-list-reordered", "signature mismatch", false, func(b []byte) []byte {
			t2 := append([]byte(nil), b[tags+2*es:tags+3*es]...)
			copy(b[tags+2*es:], b[tags+3*es:tags+4*es])
			copy(b[tags+3*es:], t2)
			return b
		}},
	}
	for _, c := range cases {
		_ = os.Remove(fileA)
		_ = os.Remove(fileB)
		if err := os.WriteFile(r.files.Path("probe"), c.damage(append([]byte(nil), good...)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "probe", KernelID: k})
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: %v, want a refusal with %q", c.name, err, c.reason)
		}
		a, b := ran()
		if b {
			t.Errorf("%s: B's unpickling ran: bytes of the refused chunk reached the unpickler", c.name)
		}
		if a != c.aRuns {
			t.Errorf("%s: A ran %v, want %v (chunks before the bad one are handed over as they are checked; none when the list is bad)", c.name, a, c.aRuns)
		}
		if got := r.run(k, "print([v == 'untouched' for v in (first, second, filler, tail)])"); got != "[True, True, True, True]" {
			t.Errorf("%s: the kernel's variables changed: %s", c.name, got)
		}
	}
}
