package jupyterapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Channels is what /api/kernels/<id>/channels needs. Kernel ids are in
// canonical form; every call carries the request's context, with its
// principal (auth.FromContext): the implementation decides access.
// Errors: ErrNoKernel (unknown kernel, or one the caller may not read:
// 404), ErrNoAccess (the caller may read but not do this: a
// PermissionError reply), anything else as is.
type Channels interface {
	// Kernel returns what a connection needs to know about a kernel the
	// caller may read.
	Kernel(ctx context.Context, id string) (ChannelKernel, error)
	// Attach records that a frontend session attached (FrontendAttached,
	// once per session and server process) and says from which seq a
	// session with no cursor in this process resumes: resume is true when
	// the session attached in an earlier process, after is then the last
	// seq before this process started.
	Attach(ctx context.Context, kernel string, a Attach) (after uint64, resume bool, err error)
	// Execute queues an execution like an agent's (durable, in
	// list_executions) with its Origin, and returns its id.
	Execute(ctx context.Context, kernel string, req ExecuteRequest) (executionID string, err error)
	// Execution returns the Origin of an execution of kernel (nil: not a
	// frontend's), for the parent_header of its messages, and the
	// principal that submitted it (its replies go to that principal's
	// session only).
	Execution(ctx context.Context, kernel, executionID string) (o *events.Origin, by string, err error)
	// Relay sends a request that is no execution to the kernel under
	// msgID (the server's); the kernel's shell or control messages with
	// that parent go to replies, without blocking.
	Relay(ctx context.Context, kernel string, r RelayRequest) error
	SendInput(ctx context.Context, kernel, executionID, value string) error
	Interrupt(ctx context.Context, kernel string) error
	Restart(ctx context.Context, kernel string) error
	Shutdown(ctx context.Context, kernel string) error
	// Readable checks, once the read models hold the events up to asOf,
	// that the caller may still read the kernel (a share withdrawn since
	// it connected: ErrNoKernel).
	Readable(ctx context.Context, kernel string, asOf uint64) error
	// Subscribe feeds the kernel's durable events after a seq (live: from
	// now), bounded: Next ends with an error wrapping ErrFeedBehind when
	// the reader fell behind.
	Subscribe(kernel string, after uint64, live bool) (Feed, error)
}

// Feed is a kernel's durable events in seq order (infra/ws's
// Subscription). Payloads are decoded by the reader (events.As).
type Feed interface {
	Next(ctx context.Context) ([]events.Event, error)
	// Cursor is the seq the feed delivered up to: before the first Next,
	// where it starts (for a live feed, the last event recorded when it
	// began).
	Cursor() uint64
	Close()
}

// Errors the Channels implementation returns.
var (
	ErrNoKernel   = errors.New("jupyterapi: no such kernel")
	ErrNoAccess   = errors.New("jupyterapi: permission denied")
	ErrFeedBehind = errors.New("jupyterapi: the connection fell behind the kernel's events")
	// ErrNotRunning: the kernel is not running (starting, restarting,
	// dead): a Relay refused.
	ErrNotRunning  = errors.New("jupyterapi: the kernel is not running")
	errStopChannel = errors.New("jupyterapi: stop")
)

// ChannelKernel is what a connection needs to know about its kernel.
type ChannelKernel struct {
	ID string
	// Session is the kernel's Jupyter session (the header.session of the
	// messages it sends); "" gives the kernel id.
	Session string
	// ExecutionState is Jupyter's: starting, idle, busy, restarting, dead.
	ExecutionState string
	// Seq is the last event about the kernel the state is as of: a
	// lifecycle event up to it is history the greeting's status already
	// tells (no restarting or dead status is replayed for it).
	Seq uint64
}

// Attach describes a frontend session.
type Attach struct {
	Session, Username, Client, Framing string
}

// ExecuteRequest is a frontend's execute_request.
type ExecuteRequest struct {
	Code        string
	AllowStdin  bool
	Silent      bool
	SkipHistory bool // store_history false
	StopOnError bool
	// UserExpressions: evaluated after the code, answered in execute_reply.
	UserExpressions map[string]string
	Origin          events.Origin
}

// RelayRequest is a frontend's request relayed to the kernel.
type RelayRequest struct {
	Channel, MsgType, MsgID string
	Content                 []byte
	Replies                 chan<- events.KernelMessage
}

// Channel limits. A connection that passes one is told why.
const (
	// DefaultChannelsReadLimit bounds one message a frontend sends (code
	// cells and comm messages with buffers; a larger one closes with
	// 1009).
	DefaultChannelsReadLimit = 16 << 20
	// outQueue bounds the messages waiting for one connection's writer:
	// past it the connection is closed with 4008 and resumes from its
	// cursor when it reconnects.
	outQueue = 256
	// outQueueBytes bounds the same queue in bytes.
	outQueueBytes = 4 << 20
	// ctrlQueue and ctrlQueueBytes bound a connection's own messages
	// (replies, notices) waiting for its writer, apart from the feed's.
	ctrlQueue      = 64
	ctrlQueueBytes = 16 << 20
	// replyQueue bounds the relay replies waiting for one connection.
	replyQueue = 64
	// maxRelaysPerConn bounds the relayed requests a connection waits on
	// (the oldest is forgotten).
	maxRelaysPerConn = 256
	// holdKernelInfo bounds how long a kernel_info_request waits for a
	// starting or restarting kernel to run (then it is answered, as
	// jupyter_server does, which connects once the kernel is up);
	// holdKernelInfoEvery is how often it asks again; maxHeldPerConn
	// bounds the requests held per connection (more are refused).
	holdKernelInfo      = 2 * time.Minute
	holdKernelInfoEvery = 200 * time.Millisecond
	maxHeldPerConn      = 8
	// maxOrigins bounds a connection's cache of executions' origins.
	maxOrigins = 1024
	// maxCursors bounds the resume cursors kept per (kernel, session).
	maxCursors = 4096
	// channelsWriteTimeout bounds one write to a frontend (unless
	// Options.ChannelsWriteTimeout says otherwise). NB: a write that
	// times out tears the connection down without a close frame; one
	// cut off by its queue overflowing gets 4008 once its blocked write
	// completes. Generous: a browser tab in the background reads late.
	channelsWriteTimeout = 30 * time.Second
)

// CloseAccessEnded: the principal's token was revoked or expired, or it
// lost read access to the kernel (its share withdrawn). NB: the same code
// as /ws's revoked token (infra/ws CloseTokenRevoked).
const CloseAccessEnded = 4001

// CloseSlowFrontend: the frontend did not take its messages in time; it
// resumes from where it was when it reconnects with the same session_id.
// NB: the same code as /ws's slow consumer.
const CloseSlowFrontend = 4008

// channelsState is the Server's table of open connections and resume
// cursors.
type channelsState struct {
	mu      sync.Mutex
	open    map[sessionKey]*conn
	perKern map[string]int
	cursors map[sessionKey]uint64
	order   []sessionKey // cursors in insertion order, for the bound
	closed  bool
	wg      sync.WaitGroup
	// rest: the REST restarts (POST /api/kernels/<id>/restart) in flight
	// or recently done, by kernel and principal; bounded by maxRESTMarks.
	rest map[restKey]restMark
}

type restKey struct{ kernel, principal string }

type restMark struct {
	inFlight int
	doneAt   time.Time
}

// restRestartGrace is how long after a REST restart returned its
// KernelRestarted still counts as that restart (the feed may deliver it
// late); maxRESTMarks bounds the marks kept.
const (
	restRestartGrace = 30 * time.Second
	maxRESTMarks     = 1024
)

// markRESTRestart notes a REST restart of kernel by principal until the
// returned func is called (then for restRestartGrace).
func (st *channelsState) markRESTRestart(kernel, principal string) func() {
	k := restKey{kernel, principal}
	st.mu.Lock()
	if st.rest == nil || len(st.rest) >= maxRESTMarks {
		st.rest = map[restKey]restMark{} // NB: forgotten marks tell a restart twice at worst
	}
	m := st.rest[k]
	m.inFlight++
	st.rest[k] = m
	st.mu.Unlock()
	return func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		m := st.rest[k]
		m.inFlight = max(0, m.inFlight-1)
		m.doneAt = time.Now()
		st.rest[k] = m
	}
}

// restRestarting reports whether principal restarted kernel through REST
// just now (in flight, or within restRestartGrace).
func (st *channelsState) restRestarting(kernel, principal string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	m, ok := st.rest[restKey{kernel, principal}]
	return ok && (m.inFlight > 0 || time.Since(m.doneAt) < restRestartGrace)
}

// sessionKey identifies a frontend session: its kernel, who authenticated
// it, and its session_id. NB: the session_id is no secret (every reader of
// the kernel sees it as parent_header.session on IOPub): another principal
// sending it gets a session of its own, never this one's connection,
// cursor or replies.
type sessionKey struct{ kernel, principal, session string }

// Connections implements ConnectionCounter: the channels WebSockets open on
// a kernel (canonical id).
func (s *Server) Connections(kernelID string) int {
	s.ch.mu.Lock()
	defer s.ch.mu.Unlock()
	return s.ch.perKern[kernelID]
}

// CloseChannels drains every channels connection's queue and closes it
// with 1001 and a hint to reconnect with the same session_id, and waits for
// them until ctx ends. Later connections get 503.
func (s *Server) CloseChannels(ctx context.Context) error {
	s.ch.mu.Lock()
	s.ch.closed = true
	conns := make([]*conn, 0, len(s.ch.open))
	for _, c := range s.ch.open {
		conns = append(conns, c)
	}
	s.ch.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
	done := make(chan struct{})
	go func() { s.ch.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cursor returns the resume cursor of a session, if this process has one.
func (st *channelsState) cursor(k sessionKey) (uint64, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	seq, ok := st.cursors[k]
	return seq, ok
}

// saveCursor keeps the last seq delivered to a session, bounded: the
// oldest sessions' cursors go first (such a session reconnects live: what
// was recorded while it was away is not replayed).
func (st *channelsState) saveCursor(k sessionKey, seq uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.cursors[k]; !ok {
		st.order = append(st.order, k)
		for len(st.order) > maxCursors {
			delete(st.cursors, st.order[0])
			st.order = st.order[1:]
		}
	}
	st.cursors[k] = seq
}

func (s *Server) writeTimeout() time.Duration {
	if s.opts.ChannelsWriteTimeout > 0 {
		return s.opts.ChannelsWriteTimeout
	}
	return channelsWriteTimeout
}

func (s *Server) routesChannels(mux *http.ServeMux) {
	s.ch.open = map[sessionKey]*conn{}
	s.ch.perKern = map[string]int{}
	s.ch.cursors = map[sessionKey]uint64{}
	mux.HandleFunc("GET /api/kernels/{id}/channels", s.channels)
}
