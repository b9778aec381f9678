package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Replayer answers reads of the past: the server's own replay of the log
// (cmd/mcp-jupyter/console_then.go). Every method takes the request's
// context, which carries the principal: the Replayer answers only with
// what that principal may read, and a kernel or execution it may not read
// as unknown (ErrThenNotFound). Methods are safe for concurrent use.
//
// Errors: ErrThenBadInput (400), ErrThenNotFound (404), an error with a
// TruncatedAt() uint64 method (the events are gone: 410, its message
// names the retention setting); anything else is a 500.
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

// Errors a Replayer returns, by status.
var (
	ErrThenBadInput = errors.New("bad input")
	ErrThenNotFound = errors.New("not found")
)

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

// PastKernel is a kernel as it was (the shape of the Now view's kernels).
type PastKernel struct {
	ID             string    `json:"id"`
	UUID           string    `json:"uuid,omitempty"`
	State          string    `json:"state"`
	ExecutionState string    `json:"execution_state,omitempty"`
	Busy           bool      `json:"busy"`
	Kernelspec     string    `json:"kernelspec,omitempty"`
	Label          string    `json:"label,omitempty"`
	Notebook       string    `json:"notebook,omitempty"`
	Owner          string    `json:"owner,omitempty"`
	QueueDepth     int       `json:"queue_depth"`
	Running        string    `json:"running"`
	Restarts       int       `json:"restarts"`
	Reason         string    `json:"reason,omitempty"`
	LastActivity   time.Time `json:"last_activity,omitzero"`
	StartedAt      time.Time `json:"started_at,omitzero"`
}

// Submitter is who submitted an execution.
type Submitter struct {
	Kind   string `json:"kind"` // agent, frontend or person
	Name   string `json:"name,omitempty"`
	Client string `json:"client,omitempty"`
}

// PastExecution is an execution as it was: queue.Execution's JSON with
// its duration as of that moment and its submitter.
type PastExecution struct {
	queue.Execution
	DurationMS int64     `json:"duration_ms"`
	Submitter  Submitter `json:"submitter"`
}

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
	Executions     []PastExecution `json:"executions"`
	MoreExecutions bool            `json:"more_executions"`
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
	mux.HandleFunc("GET /timeline", h.timeline)
	mux.HandleFunc("GET /at", h.at)
	mux.HandleFunc("GET /at/outputs", h.atOutputs)
}

// replayer is the configured Replayer, or nil after writing 503.
func (h *Handler) replayer(w http.ResponseWriter) Replayer {
	if h.opts.Replay == nil {
		thenJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the console's past is not available on this server"})
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
		thenJSON(w, http.StatusBadRequest, map[string]string{"error": "give the kernel: GET /ui/api/timeline?kernel=<id>"})
		return
	}
	var err error
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
	thenJSON(w, http.StatusOK, tl)
}

func (h *Handler) at(w http.ResponseWriter, r *http.Request) {
	rp := h.replayer(w)
	if rp == nil {
		return
	}
	if !r.URL.Query().Has("seq") {
		thenJSON(w, http.StatusBadRequest, map[string]string{"error": "give the moment: GET /ui/api/at?seq=<event sequence>[&kernel=<id>]"})
		return
	}
	q := AtQuery{Kernel: r.URL.Query().Get("kernel")}
	var err error
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
	thenJSON(w, http.StatusOK, st)
}

func (h *Handler) atOutputs(w http.ResponseWriter, r *http.Request) {
	rp := h.replayer(w)
	if rp == nil {
		return
	}
	q := OutputsQuery{Execution: r.URL.Query().Get("execution")}
	if q.Execution == "" || !r.URL.Query().Has("seq") {
		thenJSON(w, http.StatusBadRequest, map[string]string{"error": "give the execution and the moment: GET /ui/api/at/outputs?execution=<id>&seq=<seq>[&after=<cursor>]"})
		return
	}
	var err error
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
	thenJSON(w, http.StatusOK, page)
}

func seqParam(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, thenInputError{name + "=" + strconv.Quote(v) + ": give an event sequence number (a whole number)"}
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
		return 0, thenInputError{"limit=" + strconv.Quote(v) + ": give a number from 1 to " + strconv.Itoa(max)}
	}
	return n, nil
}

// thenInputError is a query parameter the handler refused.
type thenInputError struct{ msg string }

func (e thenInputError) Error() string { return e.msg }
func (e thenInputError) Unwrap() error { return ErrThenBadInput }

// thenFail answers err with its status.
func (h *Handler) thenFail(w http.ResponseWriter, err error) {
	var gone interface{ TruncatedAt() uint64 }
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrThenBadInput):
		status = http.StatusBadRequest
	case errors.Is(err, ErrThenNotFound):
		status = http.StatusNotFound
	case errors.As(err, &gone):
		status = http.StatusGone
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusInternalServerError {
		h.opts.Logger.Error("console past read failed", "err", err)
	}
	thenJSON(w, status, map[string]string{"error": err.Error()})
}

func thenJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
