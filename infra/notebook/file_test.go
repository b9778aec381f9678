package notebook_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

func TestRootConfinesPaths(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.ipynb"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.ipynb"), filepath.Join(root, "link.ipynb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "inner")); err != nil {
		t.Fatal(err)
	}
	r, err := notebook.NewRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../outside/secret.ipynb", "sub/../../outside/x.ipynb", filepath.Join(outside, "secret.ipynb"),
		"link-dir/secret.ipynb", "link.ipynb", "/etc/x.ipynb"} {
		if _, _, err := r.Resolve(p); !errors.Is(err, notebook.ErrOutsideRoot) || !strings.Contains(err.Error(), "notebook root") {
			t.Errorf("%s: want ErrOutsideRoot with a hint, got %v", p, err)
		}
	}
	for _, p := range []string{"", "notes.txt", "missing-dir/a.ipynb"} {
		if _, _, err := r.Resolve(p); err == nil {
			t.Errorf("%q must be refused", p)
		}
	}
	for p, wantRel := range map[string]string{"a.ipynb": "a.ipynb", "sub/b.ipynb": "sub/b.ipynb", "./sub/../c.ipynb": "c.ipynb",
		filepath.Join(root, "sub", "d.ipynb"): "sub/d.ipynb", "inner/e.ipynb": "sub/e.ipynb"} {
		abs, rel, err := r.Resolve(p)
		if err != nil || rel != wantRel || abs != filepath.Join(r.Dir(), wantRel) {
			t.Errorf("%s: got %s %s %v, want rel %s", p, abs, rel, err, wantRel)
		}
	}
}

func TestLockRefusesASecondWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.ipynb")
	unlock, err := notebook.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = notebook.Lock(path)
	if !errors.Is(err, notebook.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second writer: want ErrLocked naming the holder, got %v", err)
	}
	// Another process sees the lock too.
	out, _ := exec.Command("/usr/bin/python3", "-c", `
import fcntl, sys
f = open(sys.argv[1], "a")
try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print("got")
except BlockingIOError:
    print("locked")`, notebook.LockPath(path)).CombinedOutput()
	if strings.TrimSpace(string(out)) != "locked" {
		t.Fatalf("another process must see the lock: %s", out)
	}
	unlock()
	unlock2, err := notebook.Lock(path)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}

func TestAbortedWriteLeavesTheOldBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n.ipynb")
	old := bigNotebook(t, 3, 100)
	if err := notebook.WriteFile(path, old); err != nil {
		t.Fatal(err)
	}
	p, err := notebook.Prepare(path, []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
		t.Fatal("Prepare must not touch the notebook")
	}
	p.Abort()
	if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
		t.Fatal("Abort must leave the old bytes")
	}
	// A write that fails (the directory vanished) leaves nothing behind.
	if _, err := notebook.Prepare(filepath.Join(dir, "gone", "x.ipynb"), old); err == nil {
		t.Fatal("Prepare into a missing directory must fail")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := notebook.WriteFile(path, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("a rewrite keeps the file's permissions, got %v", fi.Mode())
	}
}

// TestCrashMidWriteNeverLeavesAHalfFile kills, with SIGKILL, a child process
// that rewrites a notebook in a loop, at varying moments, and checks the
// file is always one whole version.
func TestCrashMidWriteNeverLeavesAHalfFile(t *testing.T) {
	if os.Getenv("NB_CRASH_CHILD") != "" {
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "n.ipynb")
	a, b := bigNotebook(t, 50, 20<<10), bigNotebook(t, 60, 20<<10)
	if err := notebook.WriteFile(path, a); err != nil {
		t.Fatal(err)
	}
	// NB: the child writes exactly these bytes (cell ids are random, so it
	// must not build its own).
	if err := os.WriteFile(filepath.Join(dir, "version-b"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sawNew, killedMidWrite := 0, 0
	defer func() {
		t.Logf("after 6 kills: new version seen %d times, killed mid-write (temp file left) %d times", sawNew, killedMidWrite)
	}()
	for i := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
		cmd.Env = append(os.Environ(), "NB_CRASH_CHILD="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+i*37) * time.Millisecond) // NB: test-only: vary the moment of the kill
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
			t.Fatalf("after kill %d the file is neither version (%d bytes)", i, len(got))
		}
		if bytes.Equal(got, b) {
			sawNew++
		}
		temps, _ := filepath.Glob(filepath.Join(dir, ".n.ipynb.tmp-*"))
		killedMidWrite = len(temps) // each kill mid-write leaves one
		if _, err := notebook.Parse(got); err != nil {
			t.Fatal(err)
		}
	}
	// The next writer, holding the lock, clears what the crashes left.
	unlock, err := notebook.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	notebook.RemoveStaleTemps(path)
	if temps, _ := filepath.Glob(filepath.Join(dir, ".n.ipynb.tmp-*")); len(temps) != 0 {
		t.Fatalf("stale temp files left: %v", temps)
	}
}

// TestCrashChild is the child of TestCrashMidWriteNeverLeavesAHalfFile.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("NB_CRASH_CHILD")
	if path == "" {
		return
	}
	f, err := notebook.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := f.Bytes
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "version-b"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		v := a
		if i%2 == 0 {
			v = b
		}
		if err := notebook.WriteFile(path, v); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadFileCachedKeysOnTheHash: a cached parse is used only for the very
// bytes it came from; a changed file is parsed again.
func TestReadFileCachedKeysOnTheHash(t *testing.T) {
	path := writeTemp(t, "c.ipynb", bigNotebook(t, 2, 100))
	f, err := notebook.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	cache := func(h string) (*notebook.Notebook, bool) {
		calls++
		if h == f.Hash {
			return f.Notebook, true
		}
		return nil, false
	}
	again, err := notebook.ReadFileCached(path, cache)
	if err != nil || again.Notebook != f.Notebook || calls != 1 {
		t.Fatalf("same bytes: want the cached parse, got %v %v", err, calls)
	}
	if err := notebook.WriteFile(path, bigNotebook(t, 3, 100)); err != nil {
		t.Fatal(err)
	}
	changed, err := notebook.ReadFileCached(path, cache)
	if err != nil || changed.Notebook == f.Notebook || len(changed.Notebook.Cells) != 3 {
		t.Fatalf("changed bytes must be parsed again: %v", err)
	}
}
