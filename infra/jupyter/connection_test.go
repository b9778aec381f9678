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
	ports := map[int]bool{info.ShellPort: true, info.IOPubPort: true, info.StdinPort: true, info.ControlPort: true, info.HBPort: true}
	if len(ports) != 5 || ports[0] {
		t.Fatalf("ports not distinct: %+v", info)
	}
	if len(info.Key) != 64 || info.SignatureScheme != "hmac-sha256" || info.IP != "127.0.0.1" || info.Transport != "tcp" {
		t.Fatalf("info = %+v", info)
	}
	other, _ := jupyter.NewConnectionInfo("python3")
	if other.Key == info.Key {
		t.Fatal("keys repeat")
	}
	dir := filepath.Join(t.TempDir(), "runtime")
	path, err := jupyter.WriteConnectionFile(dir, "abc", info)
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
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
	if _, err := jupyter.WriteConnectionFile(dir, "../evil", info); err == nil {
		t.Fatal("path traversal in id accepted")
	}
}
