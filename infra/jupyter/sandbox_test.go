package jupyter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// secretLayout is a data dir laid out as the server lays it out, with what
// issue 13's attacker read from inside a kernel.
type secretLayout struct {
	root     string // the notebook root: the kernel's working directory
	data     string // the data dir
	runtime  string
	secrets  map[string]string // name -> path the kernel must not open
	otherDir string            // another kernel's KernelDir
}

func layOut(t *testing.T, dataInsideRoot bool) secretLayout {
	t.Helper()
	return layOutIn(t, "", dataInsideRoot)
}

// layOutIn lays out under a new directory in parent ("" for os.TempDir).
func layOutIn(t *testing.T, parent string, dataInsideRoot bool) secretLayout {
	t.Helper()
	// NB: short paths: a unix socket path has at most 107 bytes, and the
	// hand-off socket sits in runtime/kernels/<uuid>/.
	base, err := os.MkdirTemp(parent, "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	root := filepath.Join(base, "nb")
	data := filepath.Join(root, ".mcp-jupyter")
	if !dataInsideRoot {
		data = filepath.Join(base, "data")
	}
	l := secretLayout{root: root, data: data, runtime: filepath.Join(data, "runtime"), secrets: map[string]string{
		"token":            filepath.Join(data, "mcp-token"),
		"checkpoint key":   filepath.Join(data, "checkpoint-keys", "k1.key"),
		"checkpoint":       filepath.Join(data, "checkpoints", "saved.ckpt"),
		"event log":        filepath.Join(data, "events", "000002.log"),
		"event manifest":   filepath.Join(data, "events", "MANIFEST-000001"),
		"nats store":       filepath.Join(data, "nats", "jetstream", "meta.inf"),
		"asset":            filepath.Join(data, "assets", "ab", "abcdef"),
		"other conn file":  filepath.Join(data, "runtime", "kernel-other.json"),
		"other kernel dir": filepath.Join(jupyter.KernelDir(filepath.Join(data, "runtime"), "other"), "kernel-other.json"),
	}}
	l.otherDir = jupyter.KernelDir(l.runtime, "other")
	for _, p := range l.secrets {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("SECRET"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return l
}

// startIn starts a real ipykernel the way jupyter.Launcher does: its own
// KernelDir, cwd in the notebook root, sandbox as given.
func startIn(t *testing.T, l secretLayout, sb *jupyter.Sandbox) *jupyter.Kernel {
	t.Helper()
	id := jupyter.NewID()
	kdir := jupyter.KernelDir(l.runtime, id)
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k, err := jupyter.StartKernel(ctx, testkit.PythonKernelSpec(t), l.runtime, id, jupyter.StartOptions{
		Launch: jupyter.LaunchOptions{Dir: l.root, Sandbox: sb, KernelDir: kdir, DieWithServer: true}})
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := k.Shutdown(ctx, false); err != nil && !errors.Is(err, jupyter.ErrClosed) {
			t.Errorf("shutdown kernel: %v", err)
		}
	})
	return k
}

// probe runs the attacker's code of issue 13 in the kernel and returns what
// each attempt got: "ok" or the Python exception's name.
func probe(t *testing.T, k *jupyter.Kernel, l secretLayout, sock string) map[string]string {
	t.Helper()
	secrets, _ := json.Marshal(l.secrets)
	code := fmt.Sprintf(`
import os, json, socket
SERVER = %d
res = {}
def attempt(name, f):
    try:
        f(); res[name] = "ok"
    except Exception as e:
        res[name] = type(e).__name__
for name, path in json.loads(%q).items():
    attempt(name, lambda p=path: open(p, "rb").read())
attempt("server environ", lambda: open("/proc/%%d/environ" %% SERVER, "rb").read())
attempt("server mem", lambda: open("/proc/%%d/mem" %% SERVER, "rb").read(1))
attempt("signal server", lambda: os.kill(SERVER, 0))
attempt("list other kernel dir", lambda: os.listdir(%q))
def core_pattern():
    # writes back the value it read: harmless even if the sandbox failed
    cur = open("/proc/sys/kernel/core_pattern").read()
    with open("/proc/sys/kernel/core_pattern", "w") as f: f.write(cur)
attempt("write /proc/sys", core_pattern)
blocks = [os.path.join("/dev", n) for n in sorted(os.listdir("/dev")) if __import__("stat").S_ISBLK(os.stat(os.path.join("/dev", n)).st_mode)]
if blocks:
    attempt("read block device", lambda: open(blocks[0], "rb").read(512))
res["mcp env"] = ",".join(sorted(k for k in os.environ if k.startswith("MCP_") or "SECRET" in k)) or "none"
def own_dir():
    p = os.path.join(%q, "scratch.txt")
    open(p, "w").write("x"); os.remove(p)
attempt("own kernel dir", own_dir)
def handoff():
    s = socket.socket(socket.AF_UNIX); s.connect(%q); s.sendall(b"hi"); s.close()
attempt("unix socket in own dir", handoff)
def cwd():
    open("made-by-kernel.txt", "w").write("x")
    os.makedirs("subdir/deeper", exist_ok=True)
attempt("write cwd", cwd)
def tmp():
    import tempfile
    with tempfile.NamedTemporaryFile(dir="/tmp") as f: f.write(b"x")
attempt("write /tmp", tmp)
def sci():
    import numpy, pandas
    pandas.DataFrame({"a": numpy.arange(3)}).sum()
attempt("numpy pandas", sci)
print(json.dumps(res))
`, os.Getpid(), string(secrets), l.otherDir, filepath.Dir(sock), sock)
	res := execute(t, k.Client, code, 60*time.Second)
	if res.Reply["status"] != "ok" {
		t.Fatalf("probe failed: %v", res.Reply)
	}
	var out map[string]string
	for _, m := range res.Outputs {
		if m.Header.MsgType == "stream" {
			text, _ := content(t, m)["text"].(string)
			if err := json.Unmarshal([]byte(strings.TrimSpace(text)), &out); err == nil {
				return out
			}
		}
	}
	t.Fatalf("probe printed nothing usable: %+v", res.Outputs)
	return nil
}

// listenInKernelDir stands in for the checkpoint hand-off: a pathname unix
// socket in the kernel's own directory, accepted by the server.
func listenInKernelDir(t *testing.T, kdir string) (string, <-chan []byte) {
	t.Helper()
	sock := filepath.Join(kdir, "handoff.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 2)
		n, _ := c.Read(b)
		got <- b[:n]
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return sock, got
}

func setServerSecrets(t *testing.T) {
	t.Setenv("MCP_TOKEN", "tok-0123456789abcdef")
	t.Setenv("MCP_CHECKPOINT_SECRET", "ckpt-0123456789abcdef")
	t.Setenv("MCP_NATS_TOKEN", "nats-0123456789abcdef")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-0123456789abcdef")
}

// TestSandboxedKernelCannotReachServerSecrets is issue 13's findings 1 and
// 2 replayed from inside a real kernel started through the real launcher,
// in each confinement this machine can give: every attempt fails, and
// the kernel can still work in its notebook root, /tmp and its own dir.
func TestSandboxedKernelCannotReachServerSecrets(t *testing.T) {
	if !sandbox.Probe().Protected() {
		t.Fatalf("this machine has no Landlock (%s); the sandbox cannot be tested here", sandbox.Probe())
	}
	cases := []struct {
		name           string
		parent         string
		dataInsideRoot bool
		without        []string
		want           string
		// listable: sibling rules let the directories on the way to the
		// data dir, and so the data dir's names, be listed (never read).
		listable bool
		// frozen: /proc/sys is read-only (mount namespace only).
		frozen bool
	}{
		// Root with a mount namespace: the default layout, data dir inside
		// the notebook root, keeps the root writable.
		{name: "mount namespace, data dir in the notebook root", dataInsideRoot: true, want: "landlock-v", frozen: true},
		// Landlock alone (non-root or no CAP_SYS_ADMIN): sibling rules.
		// NB: under /var/tmp, so that /tmp is a sibling and stays writable
		// (a data dir under /tmp would make /tmp take no new files).
		{name: "landlock siblings, data dir outside the notebook root", parent: "/var/tmp", without: []string{"mount"}, want: "landlock-v", listable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setServerSecrets(t)
			l := layOutIn(t, tc.parent, tc.dataInsideRoot)
			k := startIn(t, l, &jupyter.Sandbox{Mode: sandbox.ModeRequired, Hide: []string{l.data}, Without: tc.without})
			if !strings.HasPrefix(k.Process.Sandbox, tc.want) {
				t.Fatalf("kernel confined by %q, want %s...", k.Process.Sandbox, tc.want)
			}
			sock, got := listenInKernelDir(t, jupyter.KernelDir(l.runtime, k.ID))
			res := probe(t, k, l, sock)
			for name := range l.secrets {
				if res[name] == "ok" {
					t.Errorf("kernel code read the %s", name)
				}
			}
			for _, name := range []string{"server environ", "server mem", "signal server", "list other kernel dir"} {
				if res[name] == "ok" && !(tc.listable && name == "list other kernel dir") {
					t.Errorf("kernel code could %s", name)
				}
			}
			if res["mcp env"] != "none" {
				t.Errorf("kernel environment has the server's secrets: %s", res["mcp env"])
			}
			if res["read block device"] == "ok" {
				t.Error("kernel code read a block device (the data dir's blocks)")
			}
			if tc.frozen && res["write /proc/sys"] == "ok" {
				t.Error("kernel code wrote /proc/sys/kernel/core_pattern (a way out of every sandbox)")
			}
			for _, name := range []string{"own kernel dir", "unix socket in own dir", "write cwd", "write /tmp", "numpy pandas"} {
				if res[name] != "ok" {
					t.Errorf("%s: %s, want ok (the sandbox must not get in the kernel's way)", name, res[name])
				}
			}
			select {
			case b := <-got:
				if string(b) != "hi" {
					t.Errorf("hand-off socket got %q", b)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("nothing arrived on the hand-off socket")
			}
			if _, err := os.Stat(filepath.Join(l.root, "subdir", "deeper")); err != nil {
				t.Errorf("the kernel's files in the notebook root are not visible to the server: %v", err)
			}
		})
	}
}

// TestUnconfinedKernelReadsTheToken is the control: the same probe in a
// kernel started without the sandbox reads the data dir, so the test above
// would fail if the launcher were taken out.
func TestUnconfinedKernelReadsTheToken(t *testing.T) {
	setServerSecrets(t)
	l := layOut(t, true)
	k := startIn(t, l, nil)
	sock, _ := listenInKernelDir(t, jupyter.KernelDir(l.runtime, k.ID))
	res := probe(t, k, l, sock)
	if res["token"] != "ok" || res["checkpoint key"] != "ok" || res["server environ"] != "ok" {
		t.Fatalf("unconfined kernel: token %s, key %s, environ %s; want all ok (control)", res["token"], res["checkpoint key"], res["server environ"])
	}
	if b, ok := res["read block device"]; ok && b != "ok" {
		t.Errorf("unconfined root kernel: read block device %s, want ok (control)", b)
	}
	// The environment is an allow-list even without the sandbox.
	if res["mcp env"] != "none" {
		t.Errorf("kernel environment has the server's secrets: %s", res["mcp env"])
	}
	if k.Process.Sandbox != "off" {
		t.Errorf("Process.Sandbox = %q, want off", k.Process.Sandbox)
	}
}

// TestSandboxRequiredRefusesWithoutLandlock: where no protection is
// available, required refuses with a clear error and starts nothing.
func TestSandboxRequiredRefusesWithoutLandlock(t *testing.T) {
	l := layOut(t, false)
	spec := testkit.PythonKernelSpec(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	id := jupyter.NewID()
	if err := os.MkdirAll(jupyter.KernelDir(l.runtime, id), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := jupyter.StartKernel(ctx, spec, l.runtime, id, jupyter.StartOptions{Launch: jupyter.LaunchOptions{Dir: l.root,
		KernelDir: jupyter.KernelDir(l.runtime, id),
		Sandbox:   &jupyter.Sandbox{Mode: sandbox.ModeRequired, Hide: []string{l.data}, Without: []string{"landlock", "mount"}}}})
	var refused *sandbox.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "required") || !strings.Contains(err.Error(), "Landlock") {
		t.Fatalf("StartKernel = %v, want a sandbox refusal naming --kernel-sandbox=required and Landlock", err)
	}
}

// TestSandboxAutoDegradesLoudly: auto starts the kernel anyway, and the
// launcher says so in its log and in what it records.
func TestSandboxAutoDegradesLoudly(t *testing.T) {
	l := layOut(t, false)
	var logs bytes.Buffer
	launcher := &jupyter.Launcher{SearchPath: jupyter.SearchPath{Dirs: []string{t.TempDir()}}, RuntimeDir: l.runtime, DieWithServer: true,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Sandbox: &jupyter.Sandbox{Mode: sandbox.ModeAuto, Hide: []string{l.data}, Without: []string{"landlock", "mount"}}}
	argv, _ := json.Marshal(testkit.PythonKernelSpec(t).Argv)
	writeSpec(t, launcher.SearchPath.Dirs[0], "python3", `{"argv": `+string(argv)+`, "display_name": "Python 3", "language": "python"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, launched, err := launcher.Launch(ctx, jupyter.NewID(), "python3")
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, _ = conn.Shutdown(ctx)
		_ = conn.Close()
	})
	if strings.HasPrefix(launched.Process.Sandbox, "landlock") || launched.Process.Sandbox == "" || launched.Process.Sandbox == "off" {
		t.Errorf("recorded sandbox %q, want the degraded mechanisms (none, or caps as root)", launched.Process.Sandbox)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "UNCONFINED") {
		t.Errorf("no loud warning in the log:\n%s", logs.String())
	}
}
