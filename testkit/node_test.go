package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOutsideNodeSaysWhatToRun: a Node project whose pinned package is
// missing, or installed at another version, fails with `make deps`; the
// installed mcpsdk2 project (make deps ran) passes.
func TestOutsideNodeSaysWhatToRun(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"dependencies": {"@scope/pkg": "2.4.0"}}`)
	if _, err := outsideNode(dir, "@scope/pkg"); err == nil || !strings.Contains(err.Error(), "is not installed") || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("not installed: %v", err)
	}
	write("node_modules/@scope/pkg/package.json", `{"version": "2.3.0"}`)
	if _, err := outsideNode(dir, "@scope/pkg"); err == nil || !strings.Contains(err.Error(), "holds @scope/pkg 2.3.0, package.json pins 2.4.0: run `make deps`") {
		t.Fatalf("another version: %v", err)
	}
	write("node_modules/@scope/pkg/package.json", `{"version": "2.4.0"}`)
	if node, err := outsideNode(dir, "@scope/pkg"); err != nil || node == "" {
		t.Fatalf("pinned version installed: %q %v", node, err)
	}
}

// TestRunNodeJSON: the handshake runs OnAsk between the script's two steps
// and its answer reaches the script; a script that reports ok=false, exits
// non-zero or prints no JSON is an error quoting its stderr.
func TestRunNodeJSON(t *testing.T) {
	node := OutsideNode(t, filepath.Join("outside", "mcpsdk2"), "@modelcontextprotocol/client")
	dir := t.TempDir()
	script := func(name, body string) string {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	ask := script("ask.mjs", `import { createInterface } from 'node:readline';
process.stderr.write('ask.mjs: act now\n');
let got = '';
for await (const line of createInterface({ input: process.stdin })) { got = line; break; }
process.stdout.write(JSON.stringify({ ok: got === 'acted', got }) + '\n');
process.exit(0);
`)
	acted := 0
	var res struct {
		Got string `json:"got"`
	}
	RunNodeJSON(t, NodeCheck{Node: node, Dir: dir, Script: ask, Env: os.Environ(), Timeout: time.Minute,
		Ask: "ask.mjs: act now", OnAsk: func() string { acted++; return "acted" }}, &res)
	if acted != 1 || res.Got != "acted" {
		t.Fatalf("handshake: acted %d, the script got %q", acted, res.Got)
	}

	for name, body := range map[string]string{
		"notok.mjs":  `process.stderr.write('why: it broke\n'); process.stdout.write(JSON.stringify({ ok: false, failed: 'step 2' }) + '\n'); process.exit(1);`,
		"exit.mjs":   `process.stderr.write('why: it broke\n'); process.stdout.write(JSON.stringify({ ok: true }) + '\n'); process.exit(3);`,
		"nojson.mjs": `process.stderr.write('why: it broke\n'); process.stdout.write('hello\n');`,
	} {
		var res struct{}
		if _, err := runNodeJSON(t.Cleanup, NodeCheck{Node: node, Dir: dir, Script: script(name, body), Env: os.Environ(), Timeout: time.Minute}, &res); err == nil || !strings.Contains(err.Error(), "why: it broke") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
