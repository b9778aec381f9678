package checkpoint

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// landlockChildEnv carries, to the re-executed test binary, the directory
// the confined process may use and the Python it then runs.
const landlockChildEnv = "MCPJ_CKPT_LANDLOCK_CHILD"

type landlockChild struct {
	KernelDir  string         `json:"kernel_dir"`
	Forbidden  string         `json:"forbidden"`
	Params     map[string]any `json:"params"`      // the load's read-only file
	SaveParams map[string]any `json:"save_params"` // the save's staging file
}

// TestHandoutReachesALandlockedProcess: a process confined as kernels are
// being confined (Landlock: it may open only its own directory, besides
// the system's read-only files) cannot open the checkpoint file by path,
// yet receives it through the handout in its directory, with kernel.py's
// own code; and it appends to, seeks in and truncates a save's staging
// file handed over the same way, as kernel.py's save does. This is what
// lets a confined kernel save and load at all.
func TestHandoutReachesALandlockedProcess(t *testing.T) {
	if abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION); errno != 0 || abi < 1 {
		// NB: these machines have Landlock (ABI 7, docs/security.md); a
		// kernel without it must fail here, not pass by skipping.
		t.Fatalf("Landlock is not available on this kernel (%v): run on Linux 5.13+ with Landlock enabled", errno)
	}
	root := t.TempDir()
	ckdir := filepath.Join(root, "data", "checkpoints")
	kdir := filepath.Join(root, "data", "runtime", "kernels", "k1")
	if err := os.MkdirAll(ckdir, 0o700); err != nil {
		t.Fatal(err)
	}
	secretPath := filepath.Join(ckdir, "x.ckpt")
	if err := os.WriteFile(secretPath, []byte("verified bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := offer(kdir, f)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stage, err := os.CreateTemp(ckdir, "x.*.part")
	if err != nil {
		t.Fatal(err)
	}
	defer stage.Close()
	if _, err := stage.WriteString("HEADER"); err != nil {
		t.Fatal(err)
	}
	h2, err := offer(kdir, stage)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	spec, _ := json.Marshal(landlockChild{KernelDir: kdir, Forbidden: secretPath, Params: h.params(), SaveParams: h2.params()})
	cmd := exec.Command(os.Args[0], "-test.run=^TestLandlockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), landlockChildEnv+"="+string(spec))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("confined child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "path: denied") || !strings.Contains(string(out), "descriptor: verified bytes") {
		t.Fatalf("confined child said:\n%s", out)
	}
	if !h.taken() || !h2.taken() {
		t.Fatal("a handout says nothing was taken")
	}
	if b, _ := os.ReadFile(stage.Name()); string(b) != "HEADERdill" {
		t.Fatalf("the staging file holds %q, want the confined process's append, cut back", b)
	}
}

// TestLandlockChild is the confined side of the test above; it does
// nothing unless run by it.
func TestLandlockChild(t *testing.T) {
	raw := os.Getenv(landlockChildEnv)
	if raw == "" {
		return
	}
	var c landlockChild
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	// NB: Landlock confines the calling thread and what it executes: lock
	// the thread, restrict it, exec Python from it.
	runtime.LockOSThread()
	const all = (1 << 13) - 1 // every filesystem right of ABI 1
	attr := unix.LandlockRulesetAttr{Handled_access_fs: all}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), 24, 0)
	if errno != 0 {
		t.Fatalf("create ruleset: %v", errno)
	}
	allow := func(path string, access uint64) {
		d, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return // not on this system
		}
		defer unix.Close(d)
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(d)}
		if _, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&rule)), 0, 0, 0); errno != 0 {
			t.Fatalf("add rule %s: %v", path, errno)
		}
	}
	read := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR)
	for _, p := range []string{"/usr", "/lib", "/lib64", "/bin", "/etc", "/proc", "/dev"} {
		allow(p, read)
	}
	allow(c.KernelDir, all)
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		t.Fatalf("restrict self: %v", errno)
	}
	params, _ := json.Marshal(c.Params)
	saveParams, _ := json.Marshal(c.SaveParams)
	script := kernelPy + `
import os
try:
    open(` + jsonQuote(c.Forbidden) + `, "rb").read()
    print("path: OPENED")
except PermissionError:
    print("path: denied")
fd = _receive_fd(json.loads(` + jsonQuote(string(params)) + `))
print("descriptor: " + os.pread(fd, 100, 0).decode())
with open(_receive_fd(json.loads(` + jsonQuote(string(saveParams)) + `)), "ab") as f:
    f.write(b"dill stream")
    f.seek(len("HEADERdill"))
    f.truncate()
`
	err := syscall.Exec(testkit.SystemPython, []string{"python3", "-c", script}, os.Environ())
	t.Fatalf("exec python: %v", err)
}

func jsonQuote(s string) string { b, _ := json.Marshal(s); return string(b) }
