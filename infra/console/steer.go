package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Steerer carries out a person's commands. cmd/mcp-jupyter implements it
// on the MCP backend with the request's context, so each command is the
// one an agent's tool call would be: the same access checks per kernel
// (owner, shares, admin), and the event it appends carries the caller's
// principal. Methods are called concurrently; each returns once the read
// models reflect what it appended.
//
// Errors are *StatusError where the status says more than 500: 404 for an
// unknown or foreign id (in the words of one nobody knows), 403 for a
// kernel shared for less than the command needs, 409 for a wrong state (a
// kernel not running, an execution already started or done), 503 while
// the server drains.
type Steerer interface {
	Interrupt(ctx context.Context, kernelID string) error
	Restart(ctx context.Context, kernelID string) error
	// Cancel withdraws a queued execution (CancelWithdrawn) or asks the
	// kernel to abort one sent behind the running one
	// (CancelAbortRequested).
	Cancel(ctx context.Context, executionID string) (path string, err error)
	// Checkpoints lists the checkpoints the caller may load into the
	// kernel (its own; every principal's for an admin).
	Checkpoints(ctx context.Context, kernelID string) ([]Checkpoint, error)
	// SaveCheckpoint saves the kernel's variables as name (overwrite:
	// replace a checkpoint of that name, else 409).
	SaveCheckpoint(ctx context.Context, kernelID, name string, overwrite bool) (Checkpoint, error)
	LoadCheckpoint(ctx context.Context, kernelID, name string) (Loaded, error)
}

// Cancel paths.
const (
	CancelWithdrawn      = "withdrawn"
	CancelAbortRequested = "abort_requested"
)

// Checkpoint is a saved checkpoint as the console lists it.
type Checkpoint struct {
	// Name is how the caller names it: its own by the name alone, another
	// principal's (an admin's view) as "<owner>/<name>".
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	KernelID  string    `json:"kernel_id"` // the kernel it was saved from
	CreatedAt time.Time `json:"created_at"`
	Bytes     int64     `json:"bytes"`
	Variables []string  `json:"variables"`
	// Skipped are the variables a save left out, each "name (type): why".
	Skipped  []string `json:"skipped,omitempty"`
	Verified bool     `json:"verified"`
	Problem  string   `json:"problem,omitempty"`
}

// Loaded is what a checkpoint load did.
type Loaded struct {
	OK       bool     `json:"ok"`
	Name     string   `json:"name"`
	KernelID string   `json:"kernel_id"`
	Restored []string `json:"restored"`
	// Summary is one readable paragraph (missing or different packages,
	// a rolled-back version).
	Summary string `json:"summary"`
}

// ConfirmRequest is the body of the commands that destroy state.
type ConfirmRequest struct {
	Confirm bool `json:"confirm"`
}

// SaveRequest is POST /ui/api/kernels/{id}/checkpoints' body.
type SaveRequest struct {
	Name      string `json:"name"`
	Overwrite bool   `json:"overwrite,omitempty"`
	// Confirm must accompany Overwrite: replacing a checkpoint destroys
	// the saved variables as surely as a restart destroys the live ones.
	Confirm bool `json:"confirm,omitempty"`
}

// OK is a command's answer when there is nothing more to say.
type OK struct {
	OK bool `json:"ok"`
}

// CancelResult is POST /ui/api/executions/{id}/cancel's answer.
type CancelResult struct {
	Path string `json:"path"`
}

// CheckpointList is GET /ui/api/kernels/{id}/checkpoints' answer.
type CheckpointList struct {
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// The scopes the commands need: the MCP tools' (infra/mcpserver/scopes.go).
var (
	scopeInterrupt = auth.ScopeExecute // interrupt_kernel
	scopeCancel    = auth.ScopeExecute // cancel_execution
	scopeRestart   = auth.ScopeManage  // restart_kernel
	scopeCheckpt   = auth.ScopeManage  // save_environment, load_environment
)

func (h *Handler) steerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /ui/api/kernels/{id}/interrupt", h.steer(scopeInterrupt, "interrupt a kernel", h.interrupt))
	mux.HandleFunc("POST /ui/api/kernels/{id}/restart", h.steer(scopeRestart, "restart a kernel", h.restart))
	mux.HandleFunc("POST /ui/api/executions/{id}/cancel", h.steer(scopeCancel, "cancel an execution", h.cancel))
	mux.HandleFunc("GET /ui/api/kernels/{id}/checkpoints", h.steer(0, "", h.checkpoints))
	mux.HandleFunc("POST /ui/api/kernels/{id}/checkpoints", h.steer(scopeCheckpt, "save a checkpoint", h.saveCheckpoint))
	mux.HandleFunc("POST /ui/api/kernels/{id}/checkpoints/{name}/load", h.steer(scopeCheckpt, "load a checkpoint", h.loadCheckpoint))
}

// steer runs fn for a caller holding need (0: the read the Guard checked),
// else answers 403 naming the missing scope.
func (h *Handler) steer(need auth.Scope, what string, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Steerer == nil {
			respondError(w, Errorf(http.StatusServiceUnavailable, "the console cannot steer kernels yet: retry when /readyz says ready"))
			return
		}
		p, err := principal(r)
		if err != nil {
			respondError(w, err)
			return
		}
		if need != 0 && !p.Scopes.Has(need) {
			has := p.Scopes.String()
			if has == "" {
				has = "no scope"
			}
			respondError(w, Errorf(http.StatusForbidden, "to %s you need the %s scope, and principal %q has %s: ask an admin for a token with %s (mcp-jupyter principal add NAME --scopes %s)",
				what, need, p.Name, has, need, (p.Scopes|need).String()))
			return
		}
		fn(w, r)
	}
}

func (h *Handler) interrupt(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "kernel")
	if err == nil {
		err = decodeBody(w, r, &struct{}{})
	}
	if err == nil {
		err = h.opts.Steerer.Interrupt(r.Context(), id)
	}
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusAccepted, OK{OK: true})
}

func (h *Handler) restart(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "kernel")
	if err != nil {
		respondError(w, err)
		return
	}
	var req ConfirmRequest
	if err := decodeBody(w, r, &req); err != nil {
		respondError(w, err)
		return
	}
	if !req.Confirm {
		respondError(w, Errorf(http.StatusBadRequest, `restart destroys the kernel's variables: send {"confirm": true}`))
		return
	}
	if err := h.opts.Steerer.Restart(r.Context(), id); err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, OK{OK: true})
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "execution")
	if err == nil {
		err = decodeBody(w, r, &struct{}{})
	}
	if err != nil {
		respondError(w, err)
		return
	}
	path, err := h.opts.Steerer.Cancel(r.Context(), id)
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, CancelResult{Path: path})
}

func (h *Handler) checkpoints(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "kernel")
	if err != nil {
		respondError(w, err)
		return
	}
	list, err := h.opts.Steerer.Checkpoints(r.Context(), id)
	if err != nil {
		respondError(w, err)
		return
	}
	if list == nil {
		list = []Checkpoint{}
	}
	respondJSON(w, http.StatusOK, CheckpointList{Checkpoints: list})
}

func (h *Handler) saveCheckpoint(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "kernel")
	if err != nil {
		respondError(w, err)
		return
	}
	var req SaveRequest
	if err := decodeBody(w, r, &req); err != nil {
		respondError(w, err)
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		respondError(w, Errorf(http.StatusBadRequest, `give {"name": "..."}: letters, digits, '-', '_' and '.', e.g. "friday"`))
		return
	}
	if req.Overwrite && !req.Confirm {
		respondError(w, Errorf(http.StatusBadRequest, `overwrite replaces the saved checkpoint %q and its variables for good: send {"overwrite": true, "confirm": true}, or save under another name`, clip(req.Name, 40)))
		return
	}
	c, err := h.opts.Steerer.SaveCheckpoint(r.Context(), id, req.Name, req.Overwrite)
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, c)
}

func (h *Handler) loadCheckpoint(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "kernel")
	if err != nil {
		respondError(w, err)
		return
	}
	name := r.PathValue("name")
	var req ConfirmRequest
	if err := decodeBody(w, r, &req); err != nil {
		respondError(w, err)
		return
	}
	if !req.Confirm {
		respondError(w, Errorf(http.StatusBadRequest, `loading a checkpoint replaces the kernel's variables of the same names: send {"confirm": true}`))
		return
	}
	res, err := h.opts.Steerer.LoadCheckpoint(r.Context(), id, name)
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, res)
}
