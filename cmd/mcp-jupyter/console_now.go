package main

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// consoleSource is the console's present (infra/console.Source) on the MCP
// backend: the read models only (eventlog is imported for its error
// sentinel alone), each call checked with the principal the request's
// context carries, exactly as the MCP tools are. Anything of a kernel the
// caller may not read answers as an id nobody knows.
type consoleSource struct {
	b *backend
	// applied is the read models' position (the core runner's Applied).
	applied func() uint64
	// assets stores through the lease actor, as the MCP renderer does.
	assets mcpserver.AssetStore
	// log and resumeBacklog decide, as the /ws hub does, which since= a
	// resuming client is still served (FirstResumable).
	log           *eventlog.Log
	resumeBacklog *backlog.Model
}

var (
	_ console.Source      = consoleSource{}
	_ console.ResumeFloor = consoleSource{}
)

// FirstResumable is the first seq /ws still serves to a page resuming
// without a kernel filter: the hub answers 410 Gone only when the log no
// longer holds the events after since AND the backlog does not cover them
// (infra/ws hub.serve), so this is the smallest since+1 either covers.
func (s consoleSource) FirstResumable() uint64 {
	if s.log == nil {
		return 0
	}
	first := s.log.First()
	if first <= 1 || s.resumeBacklog == nil {
		return first
	}
	// NB: Covers is monotonic in its cursor; since=first-1 is served by the log.
	after := sort.Search(int(first-1), func(i int) bool { return s.resumeBacklog.Covers(backlog.All, uint64(i)) })
	return uint64(after) + 1
}

// mimeConsoleText is what a full text is stored as (its ANSI colours kept:
// the page renders them).
const mimeConsoleText = "text/plain; charset=utf-8"

func (s consoleSource) Kernels(ctx context.Context) (uint64, []console.Kernel, error) {
	p, err := consoleCaller(ctx)
	if err != nil {
		return 0, nil, err
	}
	// NB: the position first, the models after: they are as of at least
	// seq, so a /ws client resuming from it misses nothing (it may see an
	// event twice; the page applies outputs idempotently by seq).
	seq := s.applied()
	var out []console.Kernel
	for _, k := range s.b.access.visibleKernels(p) {
		if k.State == kernels.StateShutDown {
			continue
		}
		out = append(out, s.kernel(p, k))
	}
	return seq, out, nil
}

// kernel is k as the Now view shows it.
func (s consoleSource) kernel(p auth.Principal, k kernels.Kernel) console.Kernel {
	v := s.b.view(p, k)
	uuid, _ := events.UUIDForm(k.ID)
	last := k.LastActivity
	if last.IsZero() {
		last = k.StartedAt
	}
	return console.Kernel{ID: k.ID, UUID: uuid, State: v.State, ExecutionState: v.ExecutionState, Reason: v.Reason,
		Kernelspec: v.Spec, Label: v.Label, Notebook: v.Notebook, Owner: v.Owner, QueueDepth: v.QueueDepth,
		Running: v.Running, LastActivity: last.UTC(), StartedAt: k.StartedAt.UTC()}
}

func (s consoleSource) Executions(ctx context.Context, kernelID string) ([]queue.Execution, error) {
	p, err := consoleCaller(ctx)
	if err != nil {
		return nil, err
	}
	id := events.CanonicalID(kernelID) // NB: either form: frontends show the UUID one
	if _, ok := s.b.kernels.Get(id); !ok || !s.b.access.canRead(p, id) {
		return nil, consoleNoKernel(kernelID)
	}
	return s.b.Executions(ctx, id, "")
}

func (s consoleSource) Execution(ctx context.Context, id string, since uint64) (console.ExecutionRead, error) {
	v, err := s.b.Execution(ctx, id, since)
	if err != nil {
		return console.ExecutionRead{}, consoleReadError(err, id)
	}
	return console.ExecutionRead{Execution: v.Execution, Outputs: v.Outputs, Cursor: v.Cursor, More: v.More}, nil
}

func (s consoleSource) StoreText(ctx context.Context, executionID, kernelID string, text []byte) (string, error) {
	if s.assets == nil {
		return "", console.Errorf(http.StatusServiceUnavailable, "the asset store is not open yet: retry when /readyz says ready")
	}
	if err := s.b.refuse(); err != nil {
		return "", console.Errorf(http.StatusServiceUnavailable, "%v", err)
	}
	sum, err := s.assets.Put(ctx, text, mimeConsoleText, mcpserver.AssetOrigin{KernelID: kernelID, ExecutionID: executionID})
	if err != nil {
		return "", err
	}
	return sum, nil
}

// consoleCaller is ctx's principal (the Guard always puts one).
func consoleCaller(ctx context.Context) (auth.Principal, error) {
	p, err := auth.Caller(ctx)
	if err != nil {
		return p, console.Errorf(http.StatusUnauthorized, "%v", err)
	}
	return p, nil
}

// consoleNoKernel is the 404 of a kernel id nobody knows — and, word for
// word, of one the caller may not read.
func consoleNoKernel(id string) error {
	return console.Errorf(http.StatusNotFound, "no kernel %q: GET /ui/api/now lists the kernels you may see", consoleClip(id))
}

// consoleClip shortens an id a caller sent for an error message: the
// timeline's ?kernel= is not checked for shape, and a hostile one must
// not make the answer as large as itself. A valid id (at most 128
// characters) is shown whole.
func consoleClip(s string) string {
	const n = 128
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// consoleNoExecution is the 404 of an execution id nobody knows — and,
// word for word, of one of a kernel the caller may not read.
func consoleNoExecution(id string) error {
	return console.Errorf(http.StatusNotFound, "no execution %q: GET /ui/api/kernels/<id>/executions lists a kernel's executions", consoleClip(id))
}

// consoleReadError maps a backend read error to the console's statuses.
func consoleReadError(err error, id string) error {
	switch {
	case errors.Is(err, system.ErrUnknownExecution):
		return consoleNoExecution(id)
	case errors.Is(err, eventlog.ErrTruncated):
		return console.Errorf(http.StatusGone, "%v", err)
	case errors.Is(err, auth.ErrNoPrincipal):
		return console.Errorf(http.StatusUnauthorized, "%v", err)
	}
	return err
}
