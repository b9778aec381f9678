package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// consoleSteer is the console's steering (infra/console.Steerer) on the MCP
// backend: each command is the MCP tool's own call (interrupt_kernel,
// restart_kernel, cancel_execution, save/load_environment), so the access
// rules are an agent's and the events carry the person's principal.
type consoleSteer struct {
	b  *backend
	cb checkpointBackend // svc nil: checkpoints are not open
}

var _ console.Steerer = consoleSteer{}

// consoleSteerer is the console's steering on the MCP backend.
func (c *core) consoleSteerer() console.Steerer {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return consoleSteer{b: c.back, cb: checkpointBackend{b: c.back, svc: c.ckpt}}
}

// kernel resolves a kernel id the caller may read (either form), or the
// 404 an unknown id gets.
func (s consoleSteer) kernel(ctx context.Context, ref string) (string, error) {
	p, err := consoleCaller(ctx)
	if err != nil {
		return "", err
	}
	id := events.CanonicalID(ref)
	if _, ok := s.b.kernels.Get(id); !ok || !s.b.access.canRead(p, id) {
		return "", consoleNoKernel(ref)
	}
	return id, nil
}

// may checks that the caller may act on kernel id at level need: a kernel
// shared for less is a 403 that says whom to ask.
func (s consoleSteer) may(ctx context.Context, ref string, need auth.Access) (string, error) {
	id, err := s.kernel(ctx, ref)
	if err != nil {
		return "", err
	}
	p, _ := auth.Caller(ctx)
	hidden := func() error { return consoleNoKernel(ref) }
	if err := s.b.access.require(p, id, need, hidden); err != nil {
		var se *console.StatusError
		if errors.As(err, &se) {
			return "", err
		}
		return "", console.Errorf(http.StatusForbidden, "%v", err)
	}
	return id, nil
}

func (s consoleSteer) Interrupt(ctx context.Context, ref string) error {
	id, err := s.may(ctx, ref, auth.AccessExecute)
	if err != nil {
		return err
	}
	return consoleCommandError(s.b.InterruptKernel(ctx, id), id)
}

func (s consoleSteer) Restart(ctx context.Context, ref string) error {
	id, err := s.may(ctx, ref, auth.AccessManage)
	if err != nil {
		return err
	}
	return consoleCommandError(s.b.RestartKernel(ctx, id), id)
}

func (s consoleSteer) Cancel(ctx context.Context, executionID string) (string, error) {
	v, err := s.b.Execution(ctx, executionID, ^uint64(0))
	if err != nil {
		return "", consoleReadError(err, executionID)
	}
	if _, err := s.may(ctx, v.Execution.KernelID, auth.AccessExecute); err != nil {
		return "", err
	}
	if v.Execution.Status.Done() {
		return "", console.Errorf(http.StatusConflict, "execution %s is already %s: there is nothing to cancel", executionID, v.Execution.Status)
	}
	path, err := s.b.CancelExecution(ctx, executionID)
	if err != nil {
		return "", consoleCommandError(err, v.Execution.KernelID)
	}
	if path == mcpserver.CancelAbortRequested {
		return console.CancelAbortRequested, nil
	}
	return console.CancelWithdrawn, nil
}

func (s consoleSteer) Checkpoints(ctx context.Context, ref string) ([]console.Checkpoint, error) {
	if _, err := s.kernel(ctx, ref); err != nil {
		return nil, err
	}
	if s.cb.svc == nil {
		return nil, console.Errorf(http.StatusServiceUnavailable, "checkpoints are not open yet: retry when /readyz says ready")
	}
	r, err := s.cb.Checkpoints(ctx)
	if err != nil {
		return nil, consoleCheckpointError(err)
	}
	listed, _ := r.Data["checkpoints"].([]checkpoint.Listed)
	out := make([]console.Checkpoint, 0, len(listed))
	for _, c := range listed {
		cp := consoleCheckpoint(c.Meta)
		cp.Owner, cp.Verified, cp.Problem = c.Owner, c.Verified, c.Problem
		out = append(out, cp)
	}
	return out, nil
}

// consoleCheckpoint is m as the console shows it.
func consoleCheckpoint(m checkpoint.Meta) console.Checkpoint {
	c := console.Checkpoint{Name: m.Name, Owner: m.Owner, KernelID: m.KernelID, CreatedAt: m.Created.UTC(), Bytes: m.FileBytes,
		Variables: []string{}, Verified: true}
	if c.Bytes == 0 {
		c.Bytes = m.PayloadBytes
	}
	for _, v := range m.Saved {
		c.Variables = append(c.Variables, v.Name)
	}
	for _, v := range m.Skipped {
		c.Skipped = append(c.Skipped, fmt.Sprintf("%s (%s): %s", v.Name, v.Type, v.Reason))
	}
	return c
}

func (s consoleSteer) SaveCheckpoint(ctx context.Context, ref, name string, overwrite bool) (console.Checkpoint, error) {
	id, err := s.may(ctx, ref, auth.AccessManage)
	if err != nil {
		return console.Checkpoint{}, err
	}
	if s.cb.svc == nil {
		return console.Checkpoint{}, console.Errorf(http.StatusServiceUnavailable, "checkpoints are not open yet: retry when /readyz says ready")
	}
	r, err := s.cb.SaveEnvironment(ctx, mcpserver.SaveEnvironmentRequest{KernelID: id, Name: name, Overwrite: overwrite})
	if err != nil {
		return console.Checkpoint{}, consoleCheckpointError(consoleCommandError(err, id))
	}
	m, ok := r.Data["checkpoint"].(checkpoint.Meta)
	if !ok {
		return console.Checkpoint{}, fmt.Errorf("save checkpoint %s: unexpected answer %T (a server bug; please report it)", name, r.Data["checkpoint"])
	}
	return consoleCheckpoint(m), nil
}

func (s consoleSteer) LoadCheckpoint(ctx context.Context, ref, name string) (console.Loaded, error) {
	id, err := s.may(ctx, ref, auth.AccessManage)
	if err != nil {
		return console.Loaded{}, err
	}
	if s.cb.svc == nil {
		return console.Loaded{}, console.Errorf(http.StatusServiceUnavailable, "checkpoints are not open yet: retry when /readyz says ready")
	}
	r, err := s.cb.LoadEnvironment(ctx, mcpserver.LoadEnvironmentRequest{KernelID: id, Name: name, Policy: "warn"})
	if err != nil {
		return console.Loaded{}, consoleCheckpointError(consoleCommandError(err, id))
	}
	restored, _ := r.Data["restored"].([]string)
	if restored == nil {
		restored = []string{}
	}
	return console.Loaded{OK: true, Name: name, KernelID: id, Restored: restored, Summary: r.Summary}, nil
}

// consoleCommandError maps a kernel command's error to the console's
// statuses: draining 503, a kernel not running or an execution no longer
// queued 409, an unknown kernel 404; the rest as it is.
func consoleCommandError(err error, id string) error {
	var se *console.StatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case errors.Is(err, errDraining), errors.Is(err, system.ErrClosed):
		return console.Errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, kernel.ErrNotRunning):
		return console.Errorf(http.StatusConflict, "kernel %s is not running (%v): restart it or start another", id, err)
	case errors.Is(err, scheduler.ErrNotQueued):
		return console.Errorf(http.StatusConflict, "%s", strings.Replace(err.Error(), "use interrupt_kernel", "interrupt the kernel", 1))
	case errors.Is(err, system.ErrUnknownKernel):
		return consoleNoKernel(id)
	case errors.Is(err, system.ErrUnknownExecution):
		return console.Errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, errQuota):
		return console.Errorf(http.StatusForbidden, "%v", err)
	}
	return err
}

// consoleCheckpointError maps the checkpoint actor's errors.
func consoleCheckpointError(err error) error {
	var se *console.StatusError
	switch {
	case err == nil, errors.As(err, &se):
		return err
	case errors.Is(err, checkpoint.ErrNotFound):
		return console.Errorf(http.StatusNotFound, "%v: GET /ui/api/kernels/<id>/checkpoints lists yours", err)
	case errors.Is(err, checkpoint.ErrInvalidName):
		return console.Errorf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, checkpoint.ErrExists):
		return console.Errorf(http.StatusConflict, `%v: choose another name, or send "overwrite": true, "confirm": true to replace it`, err)
	case errors.Is(err, checkpoint.ErrBusy):
		return console.Errorf(http.StatusConflict, "%v: retry once the kernel's current checkpoint work is done", err)
	case errors.Is(err, checkpoint.ErrQuota):
		return console.Errorf(http.StatusForbidden, "%v", err)
	case errors.Is(err, checkpoint.ErrRenamed), errors.Is(err, checkpoint.ErrRollback), errors.Is(err, checkpoint.ErrRejected),
		errors.Is(err, checkpoint.ErrPolicy):
		return console.Errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, checkpoint.ErrClosed):
		return console.Errorf(http.StatusServiceUnavailable, "%v", err)
	}
	return err
}
