package jupyter_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
)

func TestConnectionFileRoundTrip(t *testing.T) {
	info, err := jupyter.NewConnectionInfo("python3")
	if err != nil {
		t.Fatal(err)
	}
	// NB: every port 0: the kernel binds its own and writes them back.
	if info.ShellPort != 0 || info.IOPubPort != 0 || info.StdinPort != 0 || info.ControlPort != 0 || info.HBPort != 0 || info.Bound() {
		t.Fatalf("ports chosen by the server: %+v", info)
	}
	if len(info.Key) != 64 || info.SignatureScheme != "hmac-sha256" || info.IP != "127.0.0.1" || info.Transport != "tcp" {
		t.Fatalf("info = %+v", info)
	}
	other, _ := jupyter.NewConnectionInfo("python3")
	if other.Key == info.Key {
		t.Fatal("keys repeat")
	}
	runtime := filepath.Join(t.TempDir(), "runtime")
	dir := jupyter.KernelDir(runtime, "abc")
	path, err := jupyter.WriteConnectionFile(runtime, "abc", info)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "connection.json") || path != jupyter.ConnectionFilePath(runtime, "abc") {
		t.Fatalf("connection file at %s, want it in the kernel's directory %s", path, dir)
	}
	for p, mode := range map[string]os.FileMode{runtime: 0o700, filepath.Dir(dir): 0o700, dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Fatalf("%s mode %v, want %v", p, fi.Mode().Perm(), mode)
		}
	}
	got, err := jupyter.ReadConnectionFile(path)
	if err != nil || got != info {
		t.Fatalf("read back %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	for _, bad := range []string{"../evil", "..", ".", "", "a/b"} {
		if _, err := jupyter.WriteConnectionFile(runtime, bad, info); err == nil {
			t.Fatalf("kernel id %q accepted", bad)
		}
	}
}
