package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// fakeDist writes an installed distribution "mcpjfake" at version into a
// new directory and returns it (to put on the kernel's sys.path).
func fakeDist(t testing.TB, version string) string {
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "mcpjfake"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "mcpjfake", "__init__.py"), []byte("class Thing:\n    def __init__(self): self.v = 7\n"), 0o644))
	di := filepath.Join(dir, "mcpjfake-"+version+".dist-info")
	must(os.MkdirAll(di, 0o755))
	must(os.WriteFile(filepath.Join(di, "METADATA"), []byte("Metadata-Version: 2.1\nName: mcpjfake\nVersion: "+version+"\n"), 0o644))
	must(os.WriteFile(filepath.Join(di, "top_level.txt"), []byte("mcpjfake\n"), 0o644))
	return dir
}

// venvKernel starts a kernel in a new virtualenv that sees the system's
// site-packages (ipykernel, dill) but is not PEP 668 managed.
func venvKernel(t testing.TB, r *rig) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(testkit.SystemPython, "-m", "venv", "--without-pip", "--system-site-packages", dir).CombinedOutput(); err != nil {
		t.Fatalf("make venv: %v\n%s", err, out)
	}
	spec := fmt.Sprintf(`{"argv": [%q, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "venv", "language": "python"}`, filepath.Join(dir, "bin", "python"))
	if err := os.MkdirAll(filepath.Join(r.st.SpecDir, "kernels", "venv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.st.SpecDir, "kernels", "venv", "kernel.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := r.st.System.StartKernel(ctx2m(t), "venv", "venv", "", "admin")
	if err != nil {
		t.Fatalf("start venv kernel: %v", err)
	}
	return k.ID
}

// TestPackagePolicy: versions come from the kernel; refuse restores
// nothing, install says plainly that no index is reachable, warn restores
// and reports.
func TestPackagePolicy(t *testing.T) {
	st := testkit.StartStack(t, "")
	r := newRig(t, st, false)
	k := r.kernel()
	v1 := fakeDist(t, "1.0")
	r.run(k, fmt.Sprintf("import sys\nsys.path.insert(0, %q)\nimport mcpjfake\nthing = mcpjfake.Thing()\nplain = [1, 2]", v1))
	m, err := r.svc.Save(ctx2m(t), SaveRequest{Name: "deps", KernelID: k})
	if err != nil {
		t.Fatal(err)
	}
	if m.Packages["mcpjfake"] != "1.0" {
		t.Fatalf("recorded packages: %v", m.Packages)
	}
	k2 := r.kernel() // a fresh kernel without mcpjfake
	r.run(k2, "sentinel = 'kept'")
	before := r.run(k2, namesCode)
	_, err = r.svc.Load(ctx2m(t), LoadRequest{Name: "deps", KernelID: k2, Policy: PolicyRefuse})
	if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "mcpjfake==1.0") {
		t.Fatalf("refuse: %v", err)
	}
	if after := r.run(k2, namesCode); after != before {
		t.Fatalf("refuse touched the kernel: %s -> %s", before, after)
	}
	res, err := r.svc.Load(ctx2m(t), LoadRequest{Name: "deps", KernelID: k2, Policy: PolicyInstall})
	if len(res.Installs) != 1 || res.Installs[0].OK {
		t.Fatalf("install results: %+v (err %v)", res.Installs, err)
	}
	in := res.Installs[0]
	if !in.NoIndex && !in.ExternallyManaged {
		t.Fatalf("pip's failure is not named plainly: %+v", in)
	}
	t.Logf("install on this machine: no_index=%v externally_managed=%v: %s", in.NoIndex, in.ExternallyManaged, tail(in.Output, 200))
	if err == nil || !strings.Contains(err.Error(), "mcpjfake") {
		t.Fatalf("restoring a Thing without its module must fail naming it: %v", err)
	}
	if after := r.run(k2, namesCode); after != before {
		t.Fatalf("a failed restore left names behind: %s -> %s", before, after)
	}
	// A virtualenv kernel is not externally managed: pip really tries, and
	// no index is reachable from this machine.
	kv := venvKernel(t, r)
	res, _ = r.svc.Load(ctx2m(t), LoadRequest{Name: "deps", KernelID: kv, Policy: PolicyInstall})
	if len(res.Installs) != 1 || res.Installs[0].OK || !res.Installs[0].NoIndex {
		t.Fatalf("install in a venv kernel without an index: %+v", res.Installs)
	}
	t.Logf("venv install: %s", tail(res.Installs[0].Output, 200))
	// warn with another version installed: restore and report.
	r.run(k2, fmt.Sprintf("import sys\nsys.path.insert(0, %q)", fakeDist(t, "2.0")))
	res, err = r.svc.Load(ctx2m(t), LoadRequest{Name: "deps", KernelID: k2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Mismatched) != 1 || !strings.Contains(res.Mismatched[0], "saved with 1.0, kernel has 2.0") {
		t.Fatalf("mismatched: %v", res.Mismatched)
	}
	if got := r.run(k2, "print(thing.v, plain)"); got != "7 [1, 2]" {
		t.Fatalf("after warn load: %q", got)
	}
}
