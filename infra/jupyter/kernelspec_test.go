package jupyter_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
)

func writeSpec(t *testing.T, dir, name, body string) {
	t.Helper()
	d := filepath.Join(dir, "kernels", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "kernel.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindKernelSpecsOrderAndProblems(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	writeSpec(t, first, "py", `{"argv":["/first/python","-f","{connection_file}","{resource_dir}/x"],"display_name":"First","language":"python","env":{"A":"1"},"metadata":{"debugger":true}}`)
	writeSpec(t, second, "py", `{"argv":["/second/python"],"display_name":"Second","language":"python"}`)
	writeSpec(t, second, "Rust", `{"argv":["evcxr"],"display_name":"Rust","language":"rust","interrupt_mode":"message"}`)
	writeSpec(t, second, "broken", `{"argv": [`)
	writeSpec(t, second, "noargv", `{"display_name":"x"}`)

	specs, err := jupyter.FindKernelSpecs(jupyter.SearchPath{Dirs: []string{first, filepath.Join(first, "missing"), second}})
	if err != nil {
		t.Fatal(err)
	}
	py, err := specs.Lookup("py")
	if err != nil {
		t.Fatal(err)
	}
	if py.DisplayName != "First" || py.InterruptMode != "signal" || py.Env["A"] != "1" || py.Metadata["debugger"] != true {
		t.Fatalf("first dir must win: %+v", py)
	}
	want := []string{"/first/python", "-f", "/run/k.json", filepath.Join(first, "kernels", "py") + "/x"}
	if got := py.ArgvFor("/run/k.json"); !reflect.DeepEqual(got, want) {
		t.Fatalf("argv = %q, want %q", got, want)
	}
	rust, err := specs.Lookup("RUST")
	if err != nil || rust.InterruptMode != "message" {
		t.Fatalf("rust: %+v %v", rust, err)
	}
	if len(specs.Problems) != 2 {
		t.Fatalf("problems = %v, want broken and noargv", specs.Problems)
	}

	_, err = specs.Lookup("julia")
	var unknown *jupyter.UnknownKernelSpecError
	if !errors.As(err, &unknown) || !reflect.DeepEqual(unknown.Available, []string{"py", "rust"}) ||
		!strings.Contains(err.Error(), "py, rust") {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultSearchPathFromEnv(t *testing.T) {
	t.Setenv("JUPYTER_PATH", "/a"+string(os.PathListSeparator)+"/b")
	t.Setenv("JUPYTER_DATA_DIR", "/data")
	got := jupyter.DefaultSearchPath().Dirs
	want := []string{"/a", "/b", "/data", "/usr/local/share/jupyter", "/usr/share/jupyter"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("dirs = %q, want %q", got, want)
	}
	t.Setenv("JUPYTER_PATH", "")
	t.Setenv("JUPYTER_DATA_DIR", "")
	t.Setenv("HOME", "/home/u")
	if got := jupyter.DefaultSearchPath().Dirs[0]; got != "/home/u/.local/share/jupyter" {
		t.Fatalf("user dir = %q", got)
	}
}

func TestSystemPython3SpecFound(t *testing.T) {
	specs, err := jupyter.FindKernelSpecs(jupyter.DefaultSearchPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := specs.Lookup("python3"); err != nil {
		t.Fatalf("Debian's python3 kernelspec not found: %v", err)
	}
}
