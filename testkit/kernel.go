// Package testkit holds test helpers shared across packages. Helpers take
// testing.TB, call t.Helper and register their own cleanup.
package testkit

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
)

// SystemPython is Debian's interpreter, which has ipykernel. The python3
// first on PATH may be another interpreter without it.
const SystemPython = "/usr/bin/python3"

// PythonWithIPyKernel returns the path of a Python that can import
// ipykernel, or fails the test with the install hint.
func PythonWithIPyKernel(t testing.TB) string {
	t.Helper()
	if hasIPyKernel(SystemPython) {
		return SystemPython
	}
	t.Fatalf("%s cannot import ipykernel: install it with `apt-get install python3-ipykernel` "+
		"(tests need a real kernel; they are never skipped)", SystemPython)
	return ""
}

func hasIPyKernel(python string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, python, "-c", "import ipykernel").Run() == nil
}

// PythonKernelSpec returns Debian's python3 kernelspec from
// /usr/share/jupyter, with argv[0] replaced by PythonWithIPyKernel if the
// spec's own interpreter cannot import ipykernel.
func PythonKernelSpec(t testing.TB) jupyter.KernelSpec {
	t.Helper()
	python := PythonWithIPyKernel(t)
	specs, err := jupyter.FindKernelSpecs(jupyter.SearchPath{Dirs: []string{"/usr/share/jupyter"}})
	if err != nil {
		t.Fatalf("find kernelspecs: %v", err)
	}
	spec, err := specs.Lookup("python3")
	if err != nil {
		spec = jupyter.KernelSpec{
			Name:          "python3",
			Argv:          []string{python, "-m", "ipykernel_launcher", "-f", "{connection_file}"},
			DisplayName:   "Python 3 (ipykernel)",
			Language:      "python",
			InterruptMode: "signal",
		}
	}
	if p, err := exec.LookPath(spec.Argv[0]); err != nil || !hasIPyKernel(p) {
		argv := append([]string{python}, spec.Argv[1:]...)
		spec.Argv = argv
	}
	return spec
}

// StartKernel starts a real ipykernel for the test, with its runtime dir
// under t.TempDir(), and shuts it down (process group included) at cleanup.
func StartKernel(t testing.TB) *jupyter.Kernel {
	t.Helper()
	return StartKernelWith(t, jupyter.StartOptions{})
}

// StartKernelWith is StartKernel with options. The kernel is started with
// DieWithServer so a crashed test binary leaves no kernel behind.
func StartKernelWith(t testing.TB, opts jupyter.StartOptions) *jupyter.Kernel {
	t.Helper()
	spec := PythonKernelSpec(t)
	dir := filepath.Join(t.TempDir(), "runtime")
	opts.Launch.DieWithServer = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k, err := jupyter.StartKernel(ctx, spec, dir, jupyter.NewID(), opts)
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
