package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
)

// finding is one preflight result. A problem (not OK) says in one line what
// is wrong and how to fix it.
type finding struct {
	Check  string // data dir, event log, python, port, orphans, resources
	OK     bool
	Warn   bool   // OK, but worth an operator's attention
	Detail string // what was found
	Fix    string // what to do, for a problem or a warning
}

func (f finding) String() string {
	tag := "ok  "
	switch {
	case !f.OK:
		tag = "FAIL"
	case f.Warn:
		tag = "WARN"
	}
	s := fmt.Sprintf("%s  %s: %s", tag, f.Check, f.Detail)
	if f.Fix != "" && (!f.OK || f.Warn) {
		s += " — fix: " + f.Fix
	}
	return s
}

func (f finding) err() error {
	if f.OK {
		return nil
	}
	return errors.New(strings.TrimPrefix(f.String(), "FAIL  "))
}

// checkDataDir: the data dir exists (or can be created) and takes a write.
func checkDataDir(dir string) finding {
	f := finding{Check: "data dir"}
	abs, _ := filepath.Abs(dir)
	if err := os.MkdirAll(abs, 0o700); err != nil {
		f.Detail = fmt.Sprintf("%s cannot be created (%v)", abs, unwrapOS(err))
		f.Fix = "create it and give the server's user write access (Kubernetes: mount the PersistentVolumeClaim there and set fsGroup), or choose another with --data-dir / MCP_DATA_DIR"
		return f
	}
	probe, err := os.CreateTemp(abs, ".preflight-*")
	if err != nil {
		f.Detail = fmt.Sprintf("%s is not writable (%v)", abs, unwrapOS(err))
		f.Fix = fmt.Sprintf("make it writable by uid %d (chown, or fsGroup in Kubernetes; a read-only mount needs remounting read-write), or choose another with --data-dir", os.Getuid())
		return f
	}
	name := probe.Name()
	_, werr := probe.Write([]byte("ok"))
	serr := probe.Sync()
	probe.Close()
	os.Remove(name)
	if err := errors.Join(werr, serr); err != nil {
		f.Detail = fmt.Sprintf("%s takes files but not writes (%v)", abs, unwrapOS(err))
		f.Fix = "the disk is full or failing: free space or move the data dir with --data-dir"
		return f
	}
	f.OK, f.Detail = true, abs+" is writable"
	return f
}

// unwrapOS strips the path from an *os.PathError: the line names it already.
func unwrapOS(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// pythonImports is what a kernel needs in its interpreter.
const pythonImports = "import ipykernel, dill"

// checkPython finds the kernelspecs and runs the python3 spec's interpreter
// (the first Python spec if there is no python3) with the imports a kernel
// needs.
func checkPython(ctx context.Context, path jupyter.SearchPath) finding {
	f := finding{Check: "python"}
	specs, err := jupyter.FindKernelSpecs(path)
	if err != nil || len(specs.Specs) == 0 {
		f.Detail = fmt.Sprintf("no kernelspec found in %s", strings.Join(path.Dirs, ":"))
		f.Fix = "install python3-ipykernel (Debian: apt-get install python3-ipykernel python3-dill), or set JUPYTER_PATH to a dir holding kernels/<name>/kernel.json"
		return f
	}
	spec, err := specs.Lookup("python3")
	if err != nil {
		found := false
		for _, s := range specs.Specs {
			if strings.EqualFold(s.Language, "python") {
				spec, found = s, true
				break
			}
		}
		if !found {
			f.Detail = "no Python kernelspec (found: " + specNames(specs) + ")"
			f.Fix = "install python3-ipykernel (Debian: apt-get install python3-ipykernel python3-dill)"
			return f
		}
	}
	if len(spec.Argv) == 0 {
		f.Detail = fmt.Sprintf("kernelspec %s in %s has an empty argv", spec.Name, spec.ResourceDir)
		f.Fix = "fix its kernel.json or remove it"
		return f
	}
	python, err := exec.LookPath(spec.Argv[0])
	if err != nil {
		f.Detail = fmt.Sprintf("kernelspec %s runs %q, which is not found on PATH", spec.Name, spec.Argv[0])
		f.Fix = "install it, or edit " + filepath.Join(spec.ResourceDir, "kernel.json") + " to name an interpreter that has ipykernel (Debian: /usr/bin/python3)"
		return f
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, python, "-c", pythonImports).CombinedOutput()
	if err != nil {
		msg := lastLine(string(out))
		if msg == "" {
			msg = err.Error()
		}
		f.Detail = fmt.Sprintf("kernelspec %s runs %s, which cannot %s (%s)", spec.Name, python, pythonImports, msg)
		f.Fix = "install them for that interpreter (Debian: apt-get install python3-ipykernel python3-dill; pip: " + python + " -m pip install ipykernel dill), or point the kernelspec at an interpreter that has them"
		return f
	}
	f.OK, f.Detail = true, fmt.Sprintf("kernelspec %s runs %s, which has ipykernel and dill", spec.Name, python)
	return f
}

func specNames(s jupyter.KernelSpecs) string {
	var names []string
	for _, k := range s.Specs {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// checkPort: the address can be listened on. When it cannot, it names the
// process holding the port (never touching it).
func checkPort(addr string) finding {
	f := finding{Check: "port"}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		f.OK, f.Detail = true, addr+" is free"
		return f
	}
	f.Detail, f.Fix = portProblem(addr, err)
	return f
}

// portProblem explains a failed listen on addr.
func portProblem(addr string, err error) (detail, fix string) {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Sprintf("cannot listen on %s (%v)", addr, err), "give a host:port this machine has, with --addr / MCP_ADDR"
	}
	_, portStr, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscanf(portStr, "%d", &port)
	holder := "a process this user cannot see (another user's, or another network namespace)"
	if h, ok := portHolder(port); ok {
		holder = h.String()
	}
	return fmt.Sprintf("%s is in use by %s", addr, holder),
		"stop that process yourself if it is a stale server (doctor never kills it), or choose another port with --addr / MCP_ADDR"
}

// checkResources reports free disk under the data dir and available
// memory, warning below what a few kernels need.
func checkResources(dir string) finding {
	f := finding{Check: "resources", OK: true}
	var parts, fixes []string
	var st unix.Statfs_t
	if err := unix.Statfs(existingParent(dir), &st); err == nil {
		free := st.Bavail * uint64(st.Bsize)
		parts = append(parts, fmt.Sprintf("%s free on the data dir's disk", eventlog.HumanSize(free)))
		if free < 1<<30 {
			f.Warn = true
			fixes = append(fixes, "free disk space or grow the volume (the event log and assets need room to grow)")
		}
	}
	if avail, ok := memAvailable(); ok {
		parts = append(parts, fmt.Sprintf("%s memory available", eventlog.HumanSize(avail)))
		if avail < 512<<20 {
			f.Warn = true
			fixes = append(fixes, "give the server more memory (each kernel takes 100 MB or more)")
		}
	}
	parts = append(parts, fmt.Sprintf("%d CPUs", runtime.NumCPU()))
	f.Detail, f.Fix = strings.Join(parts, ", "), strings.Join(fixes, "; ")
	return f
}

func existingParent(dir string) string {
	d, _ := filepath.Abs(dir)
	for {
		if _, err := os.Stat(d); err == nil || d == "/" {
			return d
		}
		d = filepath.Dir(d)
	}
}

// memAvailable reads MemAvailable from /proc/meminfo.
func memAvailable() (uint64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10, true
			}
		}
	}
	return 0, false
}
