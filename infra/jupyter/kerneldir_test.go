package jupyter_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestKernelDirLifecycle: a kernel's connection file lives in its own 0700
// directory, holds the ports the kernel bound and our key; a later server
// re-attaches through it; shutting the kernel down removes the directory.
func TestKernelDirLifecycle(t *testing.T) {
	runtime := filepath.Join(t.TempDir(), "runtime")
	l := &jupyter.Launcher{SearchPath: jupyter.SearchPath{Dirs: []string{testkit.KernelSpecDir(t)}}, RuntimeDir: runtime, DieWithServer: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := jupyter.NewID()
	conn, launched, err := l.Launch(ctx, id, "python3")
	if err != nil {
		t.Fatal(err)
	}
	p := launched.Process
	t.Cleanup(func() { _ = l.Kill(p) })
	dir := jupyter.KernelDir(runtime, id)
	if p.ConnFile != filepath.Join(dir, "connection.json") {
		t.Fatalf("connection file recorded at %s, want it in %s", p.ConnFile, dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("kernel dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	info, err := jupyter.ReadConnectionFile(p.ConnFile)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Bound() || info.ShellPort != p.ShellPort || info.IOPubPort != p.IOPubPort || len(info.Key) != 64 {
		t.Fatalf("connection file %+v does not hold the ports the kernel bound (recorded %+v)", info, p)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

	// A later server: attach through the recorded file, then shut down.
	conn2, err := l.Attach(ctx, id, p)
	if err != nil {
		t.Fatalf("re-attach: %v", err)
	}
	if _, err := conn2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	conn2.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("kernel dir after shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(runtime, "kernel-"+id+".log")); err != nil {
		t.Fatalf("the kernel log must stay: %v", err)
	}
}

// TestAttachLegacyConnectionFile: logs of older servers record connection
// files at <runtime>/kernel-<id>.json; such a kernel is still attached to,
// and killing it removes that file.
func TestAttachLegacyConnectionFile(t *testing.T) {
	runtime := filepath.Join(t.TempDir(), "runtime")
	l := &jupyter.Launcher{SearchPath: jupyter.SearchPath{Dirs: []string{testkit.KernelSpecDir(t)}}, RuntimeDir: runtime, DieWithServer: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := jupyter.NewID()
	conn, launched, err := l.Launch(ctx, id, "python3")
	if err != nil {
		t.Fatal(err)
	}
	p := launched.Process
	t.Cleanup(func() { _ = l.Kill(p) })
	conn.Close()
	// Lay the files out as an older server did.
	legacy := filepath.Join(runtime, jupyter.LegacyConnectionFileName(id))
	if err := os.Rename(p.ConnFile, legacy); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(jupyter.KernelDir(runtime, id)); err != nil {
		t.Fatal(err)
	}
	p.ConnFile = legacy
	conn2, err := l.Attach(ctx, id, p)
	if err != nil {
		t.Fatalf("attach through the legacy connection file: %v", err)
	}
	conn2.Close()
	if err := l.Kill(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("legacy connection file after kill: %v", err)
	}
}

// TestRemoveStale: at start, the directories and legacy connection files of
// kernels the log no longer holds are removed; those of live kernels, kernel
// logs and anything outside the runtime dir stay. A Kill whose recorded
// connection file lies outside the runtime dir removes nothing.
func TestRemoveStale(t *testing.T) {
	root := t.TempDir()
	runtime := filepath.Join(root, "runtime")
	files := map[string]bool{ // path → kept
		filepath.Join(runtime, "kernels", "live", "connection.json"):  true,
		filepath.Join(runtime, "kernels", "ghost", "connection.json"): false,
		filepath.Join(runtime, "kernels", "ghost", "checkpoint.sock"): false,
		filepath.Join(runtime, "kernel-live.json"):                    true,
		filepath.Join(runtime, "kernel-old.json"):                     false,
		filepath.Join(runtime, "kernel-old.log"):                      true,
		filepath.Join(root, "elsewhere", "connection.json"):           true,
	}
	for path := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l := &jupyter.Launcher{RuntimeDir: runtime}
	if err := l.RemoveStale([]string{"live"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Kill(events.KernelProcess{Pid: 999999999, ConnFile: filepath.Join(root, "elsewhere", "connection.json")}); err != nil {
		t.Fatal(err)
	}
	for path, kept := range files {
		_, err := os.Stat(path)
		if kept && err != nil {
			t.Errorf("%s removed: %v", path, err)
		}
		if !kept && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s kept: %v", path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(runtime, "kernels", "ghost")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale kernel dir kept: %v", err)
	}
	if err := (&jupyter.Launcher{RuntimeDir: filepath.Join(root, "none")}).RemoveStale(nil); err != nil {
		t.Errorf("a runtime dir not made yet: %v", err)
	}
}
