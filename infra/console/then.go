package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Replayer answers reads of the past: the server's own replay of the log
// (cmd/mcp-jupyter/console_then.go). Every method takes the request's
// context, which carries the principal: the Replayer answers only with
// what that principal may read, and a kernel or execution it may not read
// exactly as an unknown one (404). Methods are safe for concurrent use.
//
// Errors: a *StatusError (400 bad input, 404 unknown or not the
// caller's), an error with a TruncatedAt() uint64 method (the events are
// gone: 410, its message names the retention setting); anything else is a
// 500.
type Replayer interface {
	// Timeline is a page of one kernel's events (its own stream, its
	// executions' and their outputs), oldest first, after a seq.
	Timeline(ctx context.Context, q TimelineQuery) (Timeline, error)
	// At is the state as of event seq: what the read models were once
	// that event was applied.
	At(ctx context.Context, q AtQuery) (AtState, error)
	// OutputsAt pages one execution's outputs recorded up to seq, after a
	// cursor: the rest of an execution At cut short.
	OutputsAt(ctx context.Context, q OutputsQuery) (OutputsPage, error)
}

// TimelineQuery asks for a page of a kernel's events.
type TimelineQuery struct {
	Kernel string
	After  uint64 // events with seq > After; 0: from the start of what is retained
	Limit  int
}

// TimelineEvent is one event as the timeline shows it.
type TimelineEvent struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Type        string    `json:"type"`
	Stream      string    `json:"stream"`
	Principal   string    `json:"principal,omitempty"`
	ExecutionID string    `json:"execution_id,omitempty"`
	// Summary is one human line: "print(1) queued by alice", "finished ok",
	// "stream stdout 2 lines".
	Summary string `json:"summary"`
}

// Timeline is a page of a kernel's events.
type Timeline struct {
	First uint64 `json:"first"` // the log's first retained seq
	Last  uint64 `json:"last"`  // the log's last seq
	// KernelFirst is the seq of the kernel's first retained event (0: none).
	KernelFirst uint64          `json:"kernel_first"`
	Events      []TimelineEvent `json:"events"`
	More        bool            `json:"more"` // the page was cut: ask again with after = the last event's seq
}

// AtQuery asks for the state as of one event.
type AtQuery struct {
	Seq    uint64
	Kernel string // "": every kernel the principal may read
	Limit  int    // executions at most
}

// PastKernel is a kernel as it was: the Now view's shape, with its IOPub
// busy flag and how many times it had been restarted.
type PastKernel struct {
	Kernel
	Busy     bool `json:"busy"`
	Restarts int  `json:"restarts"`
}

// ExecutionAt is x as the console shows it at time at (its duration as of
// then, its submitter).
func ExecutionAt(x queue.Execution, at time.Time) Execution { return shown(x, at) }

// AtState is the state as of event Seq.
type AtState struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"` // the time of event Seq
	// First and Last bound the log now (the page's slider).
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Kernels as they were (the one asked for, or every one the principal
	// may read); empty when the kernel did not exist yet.
	Kernels []PastKernel `json:"kernels"`
	// Executions as they were, newest first, at most the query's Limit;
	// MoreExecutions says older ones were left out.
	Executions     []Execution `json:"executions"`
	MoreExecutions bool        `json:"more_executions"`
	// Around is the events before and after Seq (of the kernel, when one
	// was asked for), oldest first, in the timeline's shape.
	Around []TimelineEvent `json:"around"`
	// OutputsOf is, per execution listed, its outputs recorded up to Seq
	// (bounded); OutputsMore names the executions whose outputs were cut
	// (read the rest with /ui/api/at/outputs).
	OutputsOf   map[string][]queue.Output `json:"outputs_of"`
	OutputsMore map[string]bool           `json:"outputs_more"`
	// Folded is how many events the request folded past the cached state
	// it started from (how much this answer cost).
	Folded uint64 `json:"folded"`
}

// OutputsQuery asks for an execution's outputs up to Seq, after a cursor.
type OutputsQuery struct {
	Execution string
	Seq       uint64
	After     uint64
}

// OutputsPage is a page of an execution's outputs as of a seq.
type OutputsPage struct {
	Outputs []queue.Output `json:"outputs"`
	Cursor  uint64         `json:"cursor"` // ask again with after = cursor
	More    bool           `json:"more"`
}

// Page bounds of the "then" reads.
const (
	DefaultTimelineLimit = 200
	MaxTimelineLimit     = 1000
	DefaultAtExecutions  = 50
	MaxAtExecutions      = 500
)

func (h *Handler) thenRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/api/timeline", h.timeline)
	mux.HandleFunc("GET /ui/api/at", h.at)
	mux.HandleFunc("GET /ui/api/at/outputs", h.atOutputs)
}

// replayer is the configured Replayer, or nil after writing 503.
func (h *Handler) replayer(w http.ResponseWriter) Replayer {
	if h.opts.Replay == nil {
		respondJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the console's past is not available on this server"})
		return nil
	}
	return h.opts.Replay
}

func (h *Handler) timeline(w http.ResponseWriter, r *http.Request) {
	rp := h.replayer(w)
	if rp == nil {
		return
	}
	q := TimelineQuery{Kernel: r.URL.Query().Get("kernel"), Limit: DefaultTimelineLimit}
	if q.Kernel == "" {
		respondJSON(w, http.StatusBadRequest, errorBody{Error: "give the kernel: GET /ui/api/timeline?kernel=<id>"})
		return
	}
	var err error
	if err = queryID(q.Kernel, "kernel"); err != nil {
		h.thenFail(w, err)
		return
	}
	if q.After, err = seqParam(r, "after", 0); err != nil {
		h.thenFail(w, err)
		return
	}
	if q.Limit, err = limitParam(r, DefaultTimelineLimit, MaxTimelineLimit); err != nil {
		h.thenFail(w, err)
		return
	}
	tl, err := rp.Timeline(r.Context(), q)
	if err != nil {
		h.thenFail(w, err)
		return
	}
	respondJSON(w, http.StatusOK, tl)
}

func (h *Handler) at(w http.ResponseWriter, r *http.Request) {
	rp := h.replayer(w)
	if rp == nil {
		return
	}
	if !r.URL.Query().Has("seq") {
		respondJSON(w, http.StatusBadRequest, errorBody{Error: "give the moment: GET /ui/api/at?seq=<event sequence>[&kernel=<id>]"})
		return
	}
	q := AtQuery{Kernel: r.URL.Query().Get("kernel")}
	var err error
	if q.Kernel != "" {
		if err = queryID(q.Kernel, "kernel"); err != nil {
			h.thenFail(w, err)
			return
		}
	}
	if q.Seq, err = seqParam(r, "seq", 0); err != nil {
		h.thenFail(w, err)
		return
	}
	if q.Limit, err = limitParam(r, DefaultAtExecutions, MaxAtExecutions); err != nil {
		h.thenFail(w, err)
		return
	}
	st, err := rp.At(r.Context(), q)
	if err != nil {
		h.thenFail(w, err)
		return
	}
	respondJSON(w, http.StatusOK, st)
}

func (h *Handler) atOutputs(w http.ResponseWriter, r *http.Request) {
	rp := h.replayer(w)
	if rp == nil {
		return
	}
	q := OutputsQuery{Execution: r.URL.Query().Get("execution")}
	if q.Execution == "" || !r.URL.Query().Has("seq") {
		respondJSON(w, http.StatusBadRequest, errorBody{Error: "give the execution and the moment: GET /ui/api/at/outputs?execution=<id>&seq=<seq>[&after=<cursor>]"})
		return
	}
	var err error
	if err = queryID(q.Execution, "execution"); err != nil {
		h.thenFail(w, err)
		return
	}
	if q.Seq, err = seqParam(r, "seq", 0); err != nil {
		h.thenFail(w, err)
		return
	}
	if q.After, err = seqParam(r, "after", 0); err != nil {
		h.thenFail(w, err)
		return
	}
	page, err := rp.OutputsAt(r.Context(), q)
	if err != nil {
		h.thenFail(w, err)
		return
	}
	respondJSON(w, http.StatusOK, page)
}

// queryIDClip is how much of a bad query value an error echoes: the answer
// stays small whatever was sent.
const queryIDClip = 40

// queryID checks an id given in the query (kernel=, execution=) the way
// pathID checks one in the path: a bad one answers 400 echoing only its
// first queryIDClip bytes.
func queryID(id, what string) error {
	if !events.ValidID(id) {
		return Errorf(http.StatusBadRequest, "%s=%q is not a valid %s id: ids are 1 to 128 letters, digits, '-' or '_', as /ui/api/now and the executions list show them", what, clip(id, queryIDClip), what)
	}
	return nil
}

func seqParam(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, Errorf(http.StatusBadRequest, "%s=%q: give an event sequence number (a whole number)", name, clip(v, queryIDClip))
	}
	return n, nil
}

func limitParam(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, Errorf(http.StatusBadRequest, "limit=%q: give a number from 1 to %d", clip(v, queryIDClip), max)
	}
	return n, nil
}

// RetryError is a replay that could not answer now but will soon (the
// past is being computed, or the replay is busy): 503 with Retry-After.
type RetryError struct {
	After time.Duration
	Msg   string // what happened and that a retry will do
}

func (e *RetryError) Error() string { return e.Msg }

// thenFail answers err with its status: a *StatusError's own, 410 for
// events retention deleted, 500 (logged) for anything else.
func (h *Handler) thenFail(w http.ResponseWriter, err error) {
	var se *StatusError
	var gone interface{ TruncatedAt() uint64 }
	var retry *RetryError
	switch {
	case errors.As(err, &retry):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry.After.Round(time.Second)/time.Second))))
		respondJSON(w, http.StatusServiceUnavailable, errorBody{Error: retry.Msg})
	case errors.As(err, &se):
		respondError(w, err)
	case errors.As(err, &gone):
		respondJSON(w, http.StatusGone, errorBody{Error: err.Error()})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		respondJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the request ended before the replay did: " + err.Error()})
	default:
		h.opts.Logger.Error("console past read failed", "err", err)
		respondError(w, err)
	}
}
