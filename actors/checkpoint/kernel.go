package checkpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

//go:embed kernel.py
var kernelPy string

// Runner runs code in a kernel and returns its stdout once the execution
// has finished (cmd/mcp-jupyter implements it over the actor system, so a
// checkpoint's code is queued, recorded and at-most-once like any other).
// It returns an error when the execution did not end "ok", naming the
// Python exception. It is safe for concurrent use.
//
// The code runs on behalf of the principal events.PrincipalFrom(ctx) names (the
// one saving or loading): its execution's events carry it.
type Runner interface {
	Run(ctx context.Context, kernelID, code string) (stdout string, err error)
}

// RestoreRunner is a Runner that can also run code as the server's
// restore of a relaunched kernel: ahead of the kernel's queue, which is held
// until the restore ends (scheduler.Submit.Restore). A LoadRequest with
// Restore needs it.
type RestoreRunner interface {
	Runner
	RunRestore(ctx context.Context, kernelID, code string) (stdout string, err error)
}

// ErrNoRestoreRunner: a LoadRequest with Restore reached an actor whose
// Runner cannot run a restore (it is not a RestoreRunner). A wiring bug:
// the load is refused before anything reaches the kernel.
var ErrNoRestoreRunner = errors.New("checkpoint: restore load needs a RestoreRunner")

// restoreRun is the Runner a restore load runs through: every call of it
// (the package check, an install, the load itself) goes to RunRestore, so
// none of it waits behind the kernel's held queue.
type restoreRun struct{ r RestoreRunner }

func (r restoreRun) Run(ctx context.Context, kernelID, code string) (string, error) {
	return r.r.RunRestore(ctx, kernelID, code)
}

// runnerFor is the Runner req's work goes through: RunRestore for a
// restore load (ErrNoRestoreRunner when r cannot), r otherwise.
func runnerFor(r Runner, req LoadRequest) (Runner, error) {
	if !req.Restore {
		return r, nil
	}
	rr, ok := r.(RestoreRunner)
	if !ok {
		return nil, fmt.Errorf("%w (load %q into kernel %s): the server's Runner lacks RunRestore", ErrNoRestoreRunner, Display(req.Name), req.KernelID)
	}
	return restoreRun{rr}, nil
}

// callKernel runs fn(params) of kernel.py in a private namespace and
// decodes the JSON line it prints after a per-call marker into out.
func callKernel(ctx context.Context, r Runner, kernelID, fn string, params map[string]any, out any) error {
	nb := make([]byte, 8)
	_, _ = rand.Read(nb)
	marker := "__MCPJ_CKPT_" + hex.EncodeToString(nb) + "__"
	params["marker"] = marker
	pj, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encode %s parameters: %w", fn, err)
	}
	src, _ := json.Marshal(kernelPy + "\n" + fn + "(json.loads(__mcpj_params))\n")
	// NB: a JSON string is a valid Python string literal; one line, so no
	// IPython input transformation applies.
	code := fmt.Sprintf("exec(compile(%s, '"+codeFilename+"', 'exec'), {'__name__': '__mcpj_checkpoint__', 'get_ipython': get_ipython, '__mcpj_params': %s})",
		src, mustJSON(string(pj)))
	stdout, err := r.Run(ctx, kernelID, code)
	if err != nil {
		return fmt.Errorf("run checkpoint %s in kernel %s: %w", fn, kernelID, err)
	}
	i := strings.LastIndex(stdout, marker)
	if i < 0 {
		return fmt.Errorf("checkpoint %s in kernel %s printed no result (stdout %q)", fn, kernelID, tail(stdout, 300))
	}
	line := stdout[i+len(marker):]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(line)))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("decode checkpoint %s result from kernel %s: %w", fn, kernelID, err)
	}
	return nil
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Variable is one saved or skipped variable as the kernel reports it.
type Variable struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size,omitempty"`
	Reason string `json:"reason,omitempty"`
}

type saveResult struct {
	Saved    []Variable        `json:"saved"`
	Skipped  []Variable        `json:"skipped"`
	Bytes    int64             `json:"bytes"`
	Python   string            `json:"python"`
	Packages map[string]string `json:"packages"`
}

type checkResult struct {
	Missing    []string `json:"missing"`
	Mismatched []string `json:"mismatched"`
	Python     string   `json:"python"`
}

// InstallResult is pip's answer for one package.
type InstallResult struct {
	Package string `json:"package"`
	OK      bool   `json:"ok"`
	// NoIndex: pip could not reach a package index (offline machine,
	// proxy, firewall).
	NoIndex bool `json:"no_index"`
	// ExternallyManaged: the kernel's Python refuses pip installs (PEP 668).
	ExternallyManaged bool   `json:"externally_managed"`
	Output            string `json:"output,omitempty"`
}

type installResult struct {
	Results []InstallResult `json:"results"`
}

// loadResult: Restored is null when the kernel stopped at the package
// check (stop_on_mismatch) without taking the checkpoint.
type loadResult struct {
	checkResult
	Restored []string `json:"restored"`
}
