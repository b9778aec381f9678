package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// kernelSandbox is the confinement every kernel of this server gets: the
// whole data dir hidden, except each kernel's own directory (the launcher
// adds it). Checkpoints reach a kernel only as descriptors handed over a
// socket in that directory (actors/checkpoint), so nothing else is shared.
func kernelSandbox(cfg config) *jupyter.Sandbox {
	if cfg.KernelSandbox == sandbox.ModeOff {
		return nil
	}
	return &jupyter.Sandbox{Mode: cfg.KernelSandbox, Hide: []string{cfg.DataDir}}
}

// checkSandbox says how kernels will be confined on this machine: a
// problem when --kernel-sandbox=required cannot be met, a warning when
// auto will start them unconfined or the layout weakens the confinement.
func checkSandbox(cfg config) finding { return checkSandboxOn(cfg, sandbox.Probe()) }

// checkSandboxOn is checkSandbox for a machine offering a.
func checkSandboxOn(cfg config, a sandbox.Availability) finding {
	f := finding{Check: "kernel sandbox", OK: true}
	if cfg.KernelSandbox == sandbox.ModeOff {
		f.Warn = true
		f.Detail = "off (--kernel-sandbox=off): agents' code in kernels can read the data dir (MCP token, checkpoint keys, event log)"
		f.Fix = "remove --kernel-sandbox=off unless another layer (a separate uid, a container per kernel) confines kernels"
		return f
	}
	f.Detail = a.String()
	if !a.Protected() {
		if cfg.KernelSandbox == sandbox.ModeRequired {
			f.OK = false
			f.Detail = "--kernel-sandbox=required, but " + a.String()
			f.Fix = "run on Linux 5.13+ with Landlock enabled (lsm= boot parameter), or set --kernel-sandbox=auto to start kernels unconfined"
			return f
		}
		f.Warn = true
		f.Detail = "kernels will start UNCONFINED: " + a.String()
		f.Fix = "run on Linux 5.13+ with Landlock enabled, or --kernel-sandbox=required to refuse unconfined kernels"
		return f
	}
	if !a.Mount {
		if inside, root := dataDirInsideKernelArea(cfg); inside {
			f.Warn = true
			f.Detail += fmt.Sprintf("; the data dir %s is inside %s, which kernels then cannot add files to", cfg.DataDir, root)
			f.Fix = "move --data-dir out of the notebook root and the working directory (e.g. --data-dir /var/lib/mcp-jupyter)"
		}
	}
	return f
}

// dataDirInsideKernelArea reports whether the data dir lies inside the
// notebook root or the working directory kernels start in.
func dataDirInsideKernelArea(cfg config) (bool, string) {
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return false, ""
	}
	wd, _ := os.Getwd()
	for _, area := range []string{cfg.NotebookRoot, wd} {
		a, err := filepath.Abs(area)
		// NB: "/" (a container's default working directory) takes no new
		// entries from a non-root kernel anyway.
		if err != nil || a == "" || a == "/" {
			continue
		}
		if strings.HasPrefix(data, a+string(filepath.Separator)) {
			return true, a
		}
	}
	return false, ""
}
