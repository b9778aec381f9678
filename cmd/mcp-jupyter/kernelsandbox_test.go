package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentCodeCannotReachServerSecrets is issue 13's findings 1 and 2 as
// the attacker did them: an agent's code, sent through the real MCP client
// to a real kernel of the real server, tries every file of the data dir,
// the server's /proc files and environment. Only its own directory and
// connection file are reachable.
func TestAgentCodeCannotReachServerSecrets(t *testing.T) {
	t.Setenv("MCP_CHECKPOINT_SECRET", "checkpoint-secret-0123456789abcdef")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-0123456789abcdef")
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)

	var files []string
	err := filepath.WalkDir(c.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(c.cfg.DataDir, "mcp-token")
	if len(files) < 5 || !contains(files, token) {
		t.Fatalf("the data dir holds too little to test (%d files, token there: %v)", len(files), contains(files, token))
	}
	list, _ := json.Marshal(files)
	code := fmt.Sprintf(`
import os, json
opened = []
for p in json.loads(%q):
    try:
        open(p, "rb").read(1); opened.append(p)
    except Exception:
        pass
def readable(p):
    try:
        open(p, "rb").read(1); return True
    except Exception:
        return False
print(json.dumps({"opened": opened, "environ": readable("/proc/%d/environ"),
    "env": sorted(k for k in os.environ if k.startswith("MCP_") or "SECRET" in k)}))
`, string(list), os.Getpid())
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 60})
	if sc["status"] != "ok" {
		t.Fatalf("execute: %v\n%s", sc, text)
	}
	start := strings.Index(text, `{"opened"`)
	if start < 0 {
		t.Fatalf("no probe output in %q", text)
	}
	var got struct {
		Opened  []string `json:"opened"`
		Environ bool     `json:"environ"`
		Env     []string `json:"env"`
	}
	if err := json.NewDecoder(strings.NewReader(text[start:])).Decode(&got); err != nil {
		t.Fatalf("decode probe output: %v\n%s", err, text)
	}
	for _, p := range got.Opened {
		rel, _ := filepath.Rel(c.cfg.DataDir, p)
		own := strings.HasPrefix(rel, filepath.Join("runtime", "kernels", k)+"/") || rel == filepath.Join("runtime", "kernel-"+k+".json")
		if !own {
			t.Errorf("agent code opened %s", rel)
		}
	}
	if got.Environ {
		t.Error("agent code read /proc/<server pid>/environ")
	}
	if len(got.Env) > 0 {
		t.Errorf("agent code sees the server's secrets in its environment: %v", got.Env)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
