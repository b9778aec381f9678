package console

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Source answers the console's reads of the present. cmd/mcp-jupyter
// implements it on the MCP backend: read models only, never the log, with
// the request's context (the principal in it), so a person sees exactly
// what an agent with the same token would. Methods are called concurrently.
//
// An id the caller may not read answers exactly as one nobody knows: a
// *StatusError 404 that names nothing of anyone else's.
type Source interface {
	// Kernels returns the kernels the caller may read (shut down ones
	// left out) and seq, the read models' position read BEFORE them: a
	// /ws client resuming from seq misses nothing the list does not show.
	Kernels(ctx context.Context) (seq uint64, kernels []Kernel, err error)
	// Executions returns a kernel's executions the read models hold,
	// oldest first (404 for an unknown or foreign kernel).
	Executions(ctx context.Context, kernelID string) ([]queue.Execution, error)
	// Execution returns an execution and its outputs with seq > since,
	// bounded in bytes (More: read on from Cursor).
	Execution(ctx context.Context, id string, since uint64) (ExecutionRead, error)
	// StoreText stores text, the merged text of one of execution id's
	// outputs, as a leased asset readable by the caller at
	// /assets/<sha256>, and returns its sha256.
	StoreText(ctx context.Context, executionID, kernelID string, text []byte) (sum string, err error)
}

// Kernel is a kernel as the Now view lists it.
type Kernel struct {
	ID             string    `json:"id"`
	UUID           string    `json:"uuid,omitempty"` // the id as Jupyter frontends show it
	State          string    `json:"state"`          // starting, running, dead, lost
	ExecutionState string    `json:"execution_state"`
	Reason         string    `json:"reason,omitempty"`
	Kernelspec     string    `json:"kernelspec"`
	Label          string    `json:"label"`
	Notebook       string    `json:"notebook"`
	Owner          string    `json:"owner"`
	QueueDepth     int       `json:"queue_depth"`
	Running        string    `json:"running"` // the running execution's id, or ""
	LastActivity   time.Time `json:"last_activity,omitzero"`
	StartedAt      time.Time `json:"started_at,omitzero"`
}

// ExecutionRead is an execution with a page of its outputs.
type ExecutionRead struct {
	Execution queue.Execution
	Outputs   []queue.Output
	Cursor    uint64
	More      bool
}

// Execution is an execution as the console shows it: the read model's
// JSON plus its duration and who submitted it.
type Execution struct {
	queue.Execution
	DurationMS int64     `json:"duration_ms"`
	Submitter  Submitter `json:"submitter"`
}

// Submitter says who asked for an execution.
type Submitter struct {
	// Kind: "agent" (an MCP call), "frontend" (a Jupyter frontend's
	// execute_request) or "person" (the console; not used yet).
	Kind   string `json:"kind"`
	Name   string `json:"name"`             // the principal
	Client string `json:"client,omitempty"` // the frontend as it named itself
}

// Submitter kinds.
const (
	SubmitterAgent    = "agent"
	SubmitterFrontend = "frontend"
	SubmitterPerson   = "person"
)

// shown is x as the console shows it at now.
func shown(x queue.Execution, now time.Time) Execution {
	out := Execution{Execution: x, Submitter: Submitter{Kind: SubmitterAgent, Name: x.By}}
	if out.Submitter.Name == "" {
		out.Submitter.Name = auth.AdminName
	}
	if x.Origin != nil && x.Origin.Kind == events.OriginFrontend {
		out.Submitter.Kind, out.Submitter.Client = SubmitterFrontend, x.Origin.Client
	}
	if !x.StartedAt.IsZero() {
		end := x.FinishedAt
		if end.IsZero() {
			end = now
			if x.Status.Done() {
				end = x.StartedAt // NB: ended without a finish time (lost): no duration to invent
			}
		}
		out.DurationMS = max(end.Sub(x.StartedAt).Milliseconds(), 0)
	}
	return out
}

// Me is GET /ui/api/me.
type Me struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// CanSteer: interrupt and cancel (the execute scope); CanManage:
	// restart and checkpoints (the manage scope). Which kernels each
	// applies to is still checked per kernel.
	CanSteer  bool `json:"can_steer"`
	CanManage bool `json:"can_manage"`
	Admin     bool `json:"admin"`
}

// Now is GET /ui/api/now.
type Now struct {
	Seq uint64 `json:"seq"`
	// FirstSeq is the oldest event a /ws client can still resume from
	// (since=FirstSeq-1 is accepted; anything older is answered 410 Gone):
	// a page whose last seq is below FirstSeq-1 lost events to retention
	// and must re-read. 0: the source does not say.
	FirstSeq uint64   `json:"first_seq,omitempty"`
	Kernels  []Kernel `json:"kernels"`
}

// ResumeFloor is what a Source may also do: say the first seq /ws still
// serves to a resuming client (Now.FirstSeq).
type ResumeFloor interface {
	FirstResumable() uint64
}

// ExecutionsPage is GET /ui/api/kernels/{id}/executions.
type ExecutionsPage struct {
	Executions []Execution `json:"executions"`
	More       bool        `json:"more"`
}

// Outputs is GET /ui/api/executions/{id}.
type Outputs struct {
	Execution Execution      `json:"execution"`
	Outputs   []queue.Output `json:"outputs"`
	Cursor    uint64         `json:"cursor"`
	More      bool           `json:"more"`
}

// Page sizes of the executions list.
const (
	DefaultExecutionsLimit = 50
	MaxExecutionsLimit     = 500
)

func (h *Handler) nowRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/api/me", h.me)
	mux.HandleFunc("GET /ui/api/now", h.source(h.now))
	mux.HandleFunc("GET /ui/api/kernels/{id}/executions", h.source(h.executions))
	mux.HandleFunc("GET /ui/api/executions/{id}", h.source(h.execution))
	// NB: API is built once per server, so these slots are the server's.
	slots := make(chan struct{}, MaxFullTextsAtOnce)
	mux.HandleFunc("POST /ui/api/executions/{id}/fulltext", h.source(func(w http.ResponseWriter, r *http.Request) {
		h.fullText(w, r, slots)
	}))
	// NB: anything else under /ui/api/ is a JSON 404, not the mux's text.
	mux.HandleFunc("/ui/api/", func(w http.ResponseWriter, r *http.Request) {
		respondError(w, Errorf(http.StatusNotFound, "no console API at %s %s: see docs/console.md for the endpoints", clip(r.Method, 16), clip(r.URL.Path, 120)))
	})
}

// source runs fn when a Source is configured.
func (h *Handler) source(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Source == nil {
			respondError(w, Errorf(http.StatusServiceUnavailable, "the console has no data source yet: retry when /readyz says ready"))
			return
		}
		fn(w, r)
	}
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request) {
	p, err := principal(r)
	if err != nil {
		respondError(w, err)
		return
	}
	scopes := []string{}
	if s := p.Scopes.String(); s != "" {
		scopes = strings.Split(s, ",")
	}
	respondJSON(w, http.StatusOK, Me{Name: p.Name, Scopes: scopes, CanSteer: p.Scopes.Has(auth.ScopeExecute),
		CanManage: p.Scopes.Has(auth.ScopeManage), Admin: p.IsAdmin()})
}

func (h *Handler) now(w http.ResponseWriter, r *http.Request) {
	seq, ks, err := h.opts.Source.Kernels(r.Context())
	if err != nil {
		respondError(w, err)
		return
	}
	if ks == nil {
		ks = []Kernel{}
	}
	now := Now{Seq: seq, Kernels: ks}
	if rf, ok := h.opts.Source.(ResumeFloor); ok {
		now.FirstSeq = rf.FirstResumable()
	}
	respondJSON(w, http.StatusOK, now)
}

func (h *Handler) executions(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "kernel")
	if err != nil {
		respondError(w, err)
		return
	}
	q := r.URL.Query()
	limit, err := queryUint(q.Get("limit"), "limit", DefaultExecutionsLimit)
	if err != nil {
		respondError(w, err)
		return
	}
	if limit == 0 || limit > MaxExecutionsLimit {
		respondError(w, Errorf(http.StatusBadRequest, "limit=%d: give 1 to %d (default %d)", limit, MaxExecutionsLimit, DefaultExecutionsLimit))
		return
	}
	before, err := queryUint(q.Get("before"), "before", 0)
	if err != nil {
		respondError(w, err)
		return
	}
	all, err := h.opts.Source.Executions(r.Context(), id)
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, executionsPage(all, int(limit), before, time.Now()))
}

// executionsPage is the newest limit executions of all (all is oldest
// first) queued before seq before (0: from the newest), newest first.
func executionsPage(all []queue.Execution, limit int, before uint64, now time.Time) ExecutionsPage {
	end := len(all)
	if before > 0 {
		end = 0
		for end < len(all) && all[end].QueuedSeq < before {
			end++
		}
	}
	start := max(end-limit, 0)
	page := ExecutionsPage{Executions: make([]Execution, 0, end-start), More: start > 0}
	for i := end - 1; i >= start; i-- {
		page.Executions = append(page.Executions, shown(all[i], now))
	}
	return page
}

func (h *Handler) execution(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "execution")
	if err != nil {
		respondError(w, err)
		return
	}
	since, err := queryUint(r.URL.Query().Get("since"), "since", 0)
	if err != nil {
		respondError(w, err)
		return
	}
	v, err := h.opts.Source.Execution(r.Context(), id, since)
	if err != nil {
		respondError(w, err)
		return
	}
	if v.Outputs == nil {
		v.Outputs = []queue.Output{}
	}
	respondJSON(w, http.StatusOK, Outputs{Execution: shown(v.Execution, time.Now()), Outputs: v.Outputs, Cursor: v.Cursor, More: v.More})
}

// pathID is the {id} of r's path, checked to be shaped like an id (what
// is not cannot name anything: 400, not 404).
func pathID(r *http.Request, what string) (string, error) {
	id := r.PathValue("id")
	if !events.ValidID(id) {
		return "", Errorf(http.StatusBadRequest, "%q is not a valid %s id: ids are 1 to 128 letters, digits, '-' or '_', as /ui/api/now and the executions list show them", clip(id, 40), what)
	}
	return id, nil
}

// queryUint parses a query parameter that is a non-negative integer (a seq,
// a count); empty is def.
func queryUint(s, name string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, Errorf(http.StatusBadRequest, "%s=%q is not a non-negative integer: give a number such as %s=0", name, clip(s, 40), name)
	}
	return n, nil
}

// clip shortens s for an error message (a hostile id must not make one
// huge).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
