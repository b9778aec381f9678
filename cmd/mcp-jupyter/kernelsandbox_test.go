package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
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

// nobody is the uid/gid the same-uid tests run as.
const nobody = 65534

// TestServerProcFilesHiddenFromSameUser is finding 1's /proc half for a
// non-root server: another process of the server's own uid (a kernel
// without Landlock) cannot read /proc/<server pid>/environ, which holds
// MCP_TOKEN. The control, an ordinary process of that uid with the same
// environment, is readable, so the test fails if PR_SET_DUMPABLE goes.
func TestServerProcFilesHiddenFromSameUser(t *testing.T) {
	base, err := os.MkdirTemp("", "dumpable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	bin := filepath.Join(base, "mcp-jupyter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Chown(base, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	const secret = "MCP_TOKEN=dumpable-test-0123456789abcdef"
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + base, secret}
	asNobody := func(c *exec.Cmd) *exec.Cmd {
		c.Env, c.Dir = env, base
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		return c
	}
	server := asNobody(exec.Command(bin, "serve", "--data-dir", filepath.Join(base, "data"), "--addr", "127.0.0.1:0", "--kernel-sandbox", "off"))
	control := asNobody(exec.Command("/bin/sleep", "60"))
	for _, c := range []*exec.Cmd{server, control} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	read := func(pid int) (string, error) {
		out, err := asNobody(exec.Command("/bin/cat", fmt.Sprintf("/proc/%d/environ", pid))).CombinedOutput()
		return string(out), err
	}
	testkit.WaitUntil(t, 30*time.Second, "the control's environ readable by its own uid", func() (bool, string) {
		out, err := read(control.Process.Pid)
		return err == nil && strings.Contains(out, secret), fmt.Sprintf("%v %q", err, out)
	})
	// The server calls prctl first thing, before it opens the event log.
	testkit.WaitUntil(t, 30*time.Second, "the server to open its event log", func() (bool, string) {
		_, err := os.Stat(filepath.Join(base, "data", "events"))
		return err == nil, fmt.Sprint(err)
	})
	if out, err := read(server.Process.Pid); err == nil || strings.Contains(out, secret) {
		t.Fatalf("a process of the server's uid read /proc/<server pid>/environ (%v): %q", err, out)
	}
}

// TestCheckSandboxSaysWhatKernelsGet: the start-up and doctor finding for
// each machine and mode — refused, loud, or the layout to fix.
func TestCheckSandboxSaysWhatKernelsGet(t *testing.T) {
	root := t.TempDir()
	inside := config{DataDir: filepath.Join(root, ".mcp-jupyter"), NotebookRoot: root}
	outside := config{DataDir: filepath.Join(t.TempDir(), "data"), NotebookRoot: root}
	landlock, none := sandbox.Availability{LandlockABI: 7}, sandbox.Availability{}
	rootLandlock := sandbox.Availability{LandlockABI: 7, Mount: true, Root: true}
	cases := []struct {
		name     string
		cfg      config
		mode     sandbox.Mode
		a        sandbox.Availability
		ok, warn bool
		says     string
	}{
		{"required without Landlock refuses", outside, sandbox.ModeRequired, none, false, false, "required"},
		{"auto without Landlock warns loudly", outside, sandbox.ModeAuto, none, true, true, "UNCONFINED"},
		{"off warns", outside, sandbox.ModeOff, landlock, true, true, "off"},
		{"Landlock alone with the data dir in the notebook root", inside, sandbox.ModeAuto, landlock, true, true, "move --data-dir"},
		{"Landlock alone with the data dir elsewhere", outside, sandbox.ModeAuto, landlock, true, false, "Landlock ABI 7"},
		{"root with a mount namespace", inside, sandbox.ModeRequired, rootLandlock, true, false, "mount namespace"},
	}
	for _, tc := range cases {
		tc.cfg.KernelSandbox = tc.mode
		f := checkSandboxOn(tc.cfg, tc.a)
		if f.OK != tc.ok || f.Warn != tc.warn || !strings.Contains(f.String(), tc.says) {
			t.Errorf("%s: %s (ok %v warn %v), want ok %v warn %v saying %q", tc.name, f, f.OK, f.Warn, tc.ok, tc.warn, tc.says)
		}
	}
}

// TestKernelEnvFlagRefusesServerSecrets: listing one of the server's own
// variables for kernels is a start-up error that says why.
func TestKernelEnvFlagRefusesServerSecrets(t *testing.T) {
	for _, name := range []string{"MCP_TOKEN", "MCP_CHECKPOINT_SECRET", "MCP_NATS_TOKEN"} {
		_, err := parseConfig("serve", []string{"--kernel-env", "HTTPS_PROXY," + name})
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "never given to kernels") {
			t.Errorf("--kernel-env %s: %v, want a refusal naming it", name, err)
		}
	}
	t.Setenv("MCP_KERNEL_ENV", "AWS_*,MCP_TOKEN")
	if _, err := parseConfig("serve", nil); err == nil {
		t.Error("MCP_KERNEL_ENV with MCP_TOKEN accepted")
	}
	t.Setenv("MCP_KERNEL_ENV", "AWS_*,HTTPS_PROXY")
	cfg, err := parseConfig("serve", []string{"--kernel-sandbox", "required"})
	if err != nil || cfg.KernelSandbox != sandbox.ModeRequired || strings.Join(cfg.KernelEnv, ",") != "AWS_*,HTTPS_PROXY" {
		t.Errorf("parseConfig = %+v, %v", cfg, err)
	}
	if _, err := parseConfig("serve", []string{"--kernel-sandbox", "on"}); err == nil {
		t.Error("--kernel-sandbox on accepted")
	}
}
