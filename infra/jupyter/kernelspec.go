package jupyter

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// KernelSpec is a kernel.json found on the Jupyter search path.
type KernelSpec struct {
	Name          string // directory name, e.g. "python3"
	ResourceDir   string // directory holding kernel.json
	Argv          []string
	DisplayName   string
	Language      string
	Env           map[string]string
	InterruptMode string // "signal" (default) or "message"
	Metadata      map[string]any
}

type kernelJSON struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	Env           map[string]string `json:"env"`
	InterruptMode string            `json:"interrupt_mode"`
	Metadata      map[string]any    `json:"metadata"`
}

// SearchPath is the ordered list of Jupyter data directories searched for
// kernels/<name>/kernel.json. The first directory holding a name wins.
type SearchPath struct {
	Dirs []string
}

// DefaultSearchPath builds the search path the way Jupyter does from the
// environment: $JUPYTER_PATH entries, the user data dir ($JUPYTER_DATA_DIR or
// ~/.local/share/jupyter), then /usr/local/share/jupyter and
// /usr/share/jupyter.
func DefaultSearchPath() SearchPath {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("JUPYTER_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
		dirs = append(dirs, d)
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local", "share", "jupyter"))
	}
	dirs = append(dirs, "/usr/local/share/jupyter", "/usr/share/jupyter")
	return SearchPath{Dirs: dirs}
}

// SpecProblem describes a kernel.json that was skipped.
type SpecProblem struct {
	Path string
	Err  error
}

func (p SpecProblem) Error() string { return fmt.Sprintf("kernelspec %s: %v", p.Path, p.Err) }
func (p SpecProblem) Unwrap() error { return p.Err }

// KernelSpecs is the result of a search, sorted by name.
type KernelSpecs struct {
	Specs []KernelSpec
	// Problems lists kernel.json files that were skipped as invalid.
	Problems []SpecProblem
}

// FindKernelSpecs lists the kernelspecs on path. A missing directory is not
// an error; an unreadable or invalid kernel.json is skipped and reported in
// Problems.
func FindKernelSpecs(path SearchPath) (KernelSpecs, error) {
	var out KernelSpecs
	seen := map[string]bool{}
	for _, dir := range path.Dirs {
		kdir := filepath.Join(dir, "kernels")
		entries, err := os.ReadDir(kdir)
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				continue
			}
			out.Problems = append(out.Problems, SpecProblem{Path: kdir, Err: err})
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if seen[name] {
				continue
			}
			res := filepath.Join(kdir, name)
			file := filepath.Join(res, "kernel.json")
			data, err := os.ReadFile(file)
			if err != nil {
				if !os.IsNotExist(err) {
					out.Problems = append(out.Problems, SpecProblem{Path: file, Err: err})
				}
				continue
			}
			spec, err := parseKernelSpec(name, res, data)
			if err != nil {
				out.Problems = append(out.Problems, SpecProblem{Path: file, Err: err})
				continue
			}
			seen[name] = true
			out.Specs = append(out.Specs, spec)
		}
	}
	sort.Slice(out.Specs, func(i, j int) bool { return out.Specs[i].Name < out.Specs[j].Name })
	return out, nil
}

func parseKernelSpec(name, resourceDir string, data []byte) (KernelSpec, error) {
	var kj kernelJSON
	if err := json.Unmarshal(data, &kj); err != nil {
		return KernelSpec{}, fmt.Errorf("decode kernel.json: %w", err)
	}
	if len(kj.Argv) == 0 || kj.Argv[0] == "" {
		return KernelSpec{}, fmt.Errorf("kernel.json has no argv")
	}
	switch kj.InterruptMode {
	case "":
		kj.InterruptMode = "signal"
	case "signal", "message":
	default:
		return KernelSpec{}, fmt.Errorf("unknown interrupt_mode %q", kj.InterruptMode)
	}
	return KernelSpec{
		Name:          strings.ToLower(name),
		ResourceDir:   resourceDir,
		Argv:          kj.Argv,
		DisplayName:   kj.DisplayName,
		Language:      kj.Language,
		Env:           kj.Env,
		InterruptMode: kj.InterruptMode,
		Metadata:      kj.Metadata,
	}, nil
}

// UnknownKernelSpecError is returned by Lookup for a name not found; it
// lists the names that were.
type UnknownKernelSpecError struct {
	Name      string
	Available []string
}

func (e *UnknownKernelSpecError) Error() string {
	if len(e.Available) == 0 {
		return fmt.Sprintf("jupyter: no kernelspec named %q (no kernelspecs found; install one, e.g. apt-get install python3-ipykernel)", e.Name)
	}
	return fmt.Sprintf("jupyter: no kernelspec named %q (available: %s)", e.Name, strings.Join(e.Available, ", "))
}

// Lookup returns the spec called name (case-insensitive, as Jupyter does).
func (s KernelSpecs) Lookup(name string) (KernelSpec, error) {
	want := strings.ToLower(name)
	names := make([]string, 0, len(s.Specs))
	for _, spec := range s.Specs {
		if spec.Name == want {
			return spec, nil
		}
		names = append(names, spec.Name)
	}
	return KernelSpec{}, &UnknownKernelSpecError{Name: name, Available: names}
}

// ArgvFor returns the command line for a kernel with the given connection
// file, substituting {connection_file} and {resource_dir}.
func (k KernelSpec) ArgvFor(connFile string) []string {
	r := strings.NewReplacer("{connection_file}", connFile, "{resource_dir}", k.ResourceDir)
	out := make([]string, len(k.Argv))
	for i, a := range k.Argv {
		out[i] = r.Replace(a)
	}
	return out
}
