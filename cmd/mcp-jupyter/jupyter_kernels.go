package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// jupyterAPIVersion is what GET /api answers: the jupyter_server release
// whose REST and WebSocket API this server serves, so that clients that
// compare versions take their 2.x paths.
const jupyterAPIVersion = "2.14.2"

// jupyterKernels implements jupyterapi.Kernels on the MCP edge's backend:
// the same commands, the same read models and the same access rules as
// the MCP tools (access.go; the scope of the tool doing the same thing,
// mcpserver.ToolScope). A kernel the caller may not read is 404 with the
// words of an unknown id; one it may read but not act on is 403 saying
// what it lacks.
type jupyterKernels struct {
	back    *backend
	started time.Time // when this server process started
	// creating serializes the opening of sessions, so that two frontends
	// opening the same path at once get one session.
	creating sync.Mutex
}

var _ jupyterapi.Kernels = (*jupyterKernels)(nil)

func (j *jupyterKernels) Status(ctx context.Context) (jupyterapi.Status, error) {
	if _, err := caller(ctx); err != nil {
		return jupyterapi.Status{}, err
	}
	return jupyterapi.Status{Started: j.started, LastActivity: j.started}, nil
}

func (j *jupyterKernels) KernelSpecs(ctx context.Context) (jupyterapi.KernelSpecs, error) {
	specs, err := j.back.launcher.Specs()
	if err != nil {
		return jupyterapi.KernelSpecs{}, fmt.Errorf("list the kernelspecs: %w", err)
	}
	out := jupyterapi.KernelSpecs{Specs: make([]jupyterapi.KernelSpec, 0, len(specs.Specs))}
	for _, s := range specs.Specs {
		out.Specs = append(out.Specs, jupyterapi.KernelSpec{Name: s.Name, ResourceDir: s.ResourceDir, Argv: s.Argv,
			DisplayName: s.DisplayName, Language: s.Language, InterruptMode: s.InterruptMode, Metadata: s.Metadata})
		if s.Name == defaultKernelSpec {
			out.Default = s.Name
		}
	}
	if out.Default == "" && len(out.Specs) > 0 {
		out.Default = out.Specs[0].Name
	}
	return out, nil
}

// caller is ctx's principal; none is a 403 (the Guard always puts one).
func caller(ctx context.Context) (auth.Principal, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return auth.Principal{}, jupyterapi.Errorf(http.StatusForbidden, "%v", err)
	}
	return p, nil
}

// noKernel is the 404 of a kernel id nobody knows — and, word for word, of
// one the caller may not read or that was shut down.
func noKernel(id string) error {
	return jupyterapi.Errorf(http.StatusNotFound, "Kernel does not exist: %s", jupyterapi.ShownID(id))
}

// listed reports whether k shows on the Jupyter API: every kernel but the
// shut down ones (dead and lost ones show as execution_state dead).
func listed(k kernels.Kernel) bool { return k.State != kernels.StateShutDown }

// allow checks that the caller may do, on kernel id, what MCP tool does
// (its scope) at access level need, and returns the caller.
func (j *jupyterKernels) allow(ctx context.Context, id, tool string, need auth.Access) (auth.Principal, error) {
	p, err := caller(ctx)
	if err != nil {
		return p, err
	}
	k, ok := j.back.kernels.Get(id)
	if !ok || !listed(k) || !j.back.access.canRead(p, id) {
		return p, noKernel(id)
	}
	if err := scoped(p, tool); err != nil {
		return p, err
	}
	if err := j.back.access.require(p, id, need, func() error { return noKernel(id) }); err != nil {
		var se *jupyterapi.StatusError
		if errors.As(err, &se) {
			return p, err
		}
		return p, jupyterapi.Errorf(http.StatusForbidden, "%v", err)
	}
	return p, nil
}

// scoped refuses (403) what the MCP tool doing the same thing would refuse
// for p's scopes.
func scoped(p auth.Principal, tool string) error {
	if need := mcpserver.ToolScope(tool); !p.Scopes.Has(need) {
		has := p.Scopes.String()
		if has == "" {
			has = "no scope"
		}
		return jupyterapi.Errorf(http.StatusForbidden, "this needs the %s scope (as the MCP tool %s), and principal %q has %s: ask an admin for a token with %s",
			need, tool, p.Name, has, need)
	}
	return nil
}

// model is k as the Jupyter API shows it; its execution state is what
// list_kernels shows (busy while an execution of the queue runs).
func (j *jupyterKernels) model(p auth.Principal, k kernels.Kernel) jupyterapi.Kernel {
	v := j.back.view(p, k)
	m := jupyterapi.Kernel{ID: k.ID, Spec: k.Spec, LastActivity: k.LastActivity, ExecutionState: v.ExecutionState}
	if m.LastActivity.IsZero() {
		m.LastActivity = k.StartedAt
	}
	if m.ExecutionState == "dead" {
		m.Reason = k.Reason
	}
	return m
}

func (j *jupyterKernels) Kernels(ctx context.Context) ([]jupyterapi.Kernel, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var out []jupyterapi.Kernel
	for _, k := range j.back.access.visibleKernels(p) {
		if listed(k) {
			out = append(out, j.model(p, k))
		}
	}
	return out, nil
}

func (j *jupyterKernels) Kernel(ctx context.Context, id string) (jupyterapi.Kernel, error) {
	p, err := caller(ctx)
	if err != nil {
		return jupyterapi.Kernel{}, err
	}
	k, ok := j.back.kernels.Get(id)
	if !ok || !listed(k) || !j.back.access.canRead(p, id) {
		return jupyterapi.Kernel{}, noKernel(id)
	}
	return j.model(p, k), nil
}

func (j *jupyterKernels) StartKernel(ctx context.Context, spec string) (jupyterapi.Kernel, error) {
	p, err := caller(ctx)
	if err != nil {
		return jupyterapi.Kernel{}, err
	}
	if err := scoped(p, "start_kernel"); err != nil {
		return jupyterapi.Kernel{}, err
	}
	specs, err := j.KernelSpecs(ctx)
	if err != nil {
		return jupyterapi.Kernel{}, err
	}
	if spec == "" {
		spec = specs.Default
	}
	if !slices.ContainsFunc(specs.Specs, func(s jupyterapi.KernelSpec) bool { return s.Name == spec }) {
		return jupyterapi.Kernel{}, &jupyterapi.NoSuchSpec{Name: spec}
	}
	v, err := j.back.StartKernel(ctx, mcpserver.StartKernelRequest{Spec: spec})
	if err != nil {
		return jupyterapi.Kernel{}, commandError(err, v.ID)
	}
	if k, ok := j.back.kernels.Get(v.ID); ok {
		return j.model(p, k), nil
	}
	return jupyterapi.Kernel{ID: v.ID, Spec: spec, LastActivity: time.Now(), ExecutionState: v.ExecutionState}, nil
}

// commandError is err of a kernel command as the Jupyter API answers it:
// a refusal of new work (shutting down, disk full) 503, a quota 403, a
// kernel that is not running 409, an unknown kernel 404; the rest 500.
func commandError(err error, id string) error {
	switch {
	case errors.Is(err, errDraining), errors.Is(err, system.ErrClosed):
		return jupyterapi.Errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, errQuota):
		return jupyterapi.Errorf(http.StatusForbidden, "%v", err)
	case errors.Is(err, kernel.ErrNotRunning):
		return jupyterapi.Errorf(http.StatusConflict, "kernel %s is not running (%v): restart it (POST /api/kernels/%s/restart) or start another",
			jupyterapi.ShownID(id), err, jupyterapi.ShownID(id))
	case errors.Is(err, system.ErrUnknownKernel):
		return noKernel(id)
	}
	return err
}

func (j *jupyterKernels) InterruptKernel(ctx context.Context, id string) error {
	if _, err := j.allow(ctx, id, "interrupt_kernel", auth.AccessExecute); err != nil {
		return err
	}
	return commandError(j.back.InterruptKernel(ctx, id), id)
}

func (j *jupyterKernels) RestartKernel(ctx context.Context, id string) (jupyterapi.Kernel, error) {
	if _, err := j.allow(ctx, id, "restart_kernel", auth.AccessManage); err != nil {
		return jupyterapi.Kernel{}, err
	}
	if err := j.back.RestartKernel(ctx, id); err != nil {
		return jupyterapi.Kernel{}, commandError(err, id)
	}
	return j.Kernel(ctx, id)
}

func (j *jupyterKernels) ShutdownKernel(ctx context.Context, id string) error {
	if _, err := j.allow(ctx, id, "shutdown_kernel", auth.AccessManage); err != nil {
		return err
	}
	return commandError(j.back.ShutdownKernel(ctx, id), id)
}
