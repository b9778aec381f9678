package jupyter

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// Sandbox is how kernels are confined (infra/sandbox): what they must not
// reach, and what each may still use there.
type Sandbox struct {
	Mode sandbox.Mode
	// Hide lists the directories kernels must not reach: the data dir.
	Hide []string
	// Share lists paths inside Hide every kernel may read and write,
	// ShareRead those it may only read (missing ones are skipped). Each
	// kernel also keeps its own KernelDir and connection file.
	Share     []string
	ShareRead []string
	// Without names mechanisms to leave out ("landlock", "mount"), for
	// tests of the degraded paths.
	Without []string
	// Self runs the launcher (default: this binary, sandbox.Subcommand).
	Self sandbox.Self
}

// plan turns the policy into one kernel's launcher plan: paths absolute and
// free of symlinks (a rule on a link would follow it), the kernel's own
// directory and its connection file writable.
func (s *Sandbox) plan(connFile, kernelDir string) (sandbox.Plan, error) {
	plan := sandbox.Plan{Mode: s.Mode, Without: s.Without}
	for _, h := range s.Hide {
		p, err := realPath(h)
		if err != nil {
			return plan, fmt.Errorf("sandbox: hidden directory: %w", err)
		}
		plan.Hide = append(plan.Hide, p)
	}
	keep := func(path string, write, optional bool) error {
		p, err := realPath(path)
		if err != nil {
			if optional && os.IsNotExist(err) {
				return nil
			}
			return fmt.Errorf("sandbox: kept path: %w", err)
		}
		for _, k := range plan.Keep {
			if under(p, k.Path) && (k.Write || !write) {
				return nil // already kept
			}
		}
		for _, h := range plan.Hide {
			if under(p, h) {
				plan.Keep = append(plan.Keep, sandbox.Keep{Path: p, Write: write, Optional: optional})
				return nil
			}
		}
		return nil // outside every hidden directory: reachable anyway
	}
	if kernelDir != "" {
		if err := keep(kernelDir, true, false); err != nil {
			return plan, err
		}
	}
	// NB: writable: ipykernel rewrites its connection file as it starts.
	if err := keep(connFile, true, false); err != nil {
		return plan, err
	}
	// NB: read-only shares first: a writable share inside one is bound
	// over it afterwards (the launcher binds in this order).
	for _, sh := range s.ShareRead {
		if err := keep(sh, false, true); err != nil {
			return plan, err
		}
	}
	for _, sh := range s.Share {
		if err := keep(sh, true, true); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, dir+"/")
}
