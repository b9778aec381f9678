package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
)

// Close codes. NB: clients act on them; they must not change.
const (
	// CloseSlowConsumer: the client fell behind past its send queue.
	CloseSlowConsumer websocket.StatusCode = 4008
)

// Defaults for Options left zero.
const (
	DefaultQueueMessages = 4096
	DefaultQueueBytes    = 16 << 20
	DefaultWriteTimeout  = 5 * time.Second
	DefaultReadLimit     = 4096
)

// Log is what the edge reads: Scan (envelopes with raw payloads, seq in
// [from, to]), ReadKernel (one kernel's events after a seq), FollowRaw (every
// event after a seq, then live, woken by commits) and Last. CheckAfter
// returns an error naming the retention setting when the events after a
// cursor are no longer all retained (eventlog.TruncatedError).
type Log interface {
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
	ReadKernel(ctx context.Context, kernel string, after uint64, fn func(events.Event) error) error
	FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error
	Last() uint64
	CheckAfter(after uint64) error
}

// Backlog is the read model a resuming client is served from
// (projections/backlog): Since returns the held events about kernel
// (backlog.All: every event) after a seq, whether they are all of them
// (complete), and the last seq it applied (upTo).
type Backlog interface {
	Since(kernel string, after uint64) (ents []backlog.Entry, complete bool, upTo uint64)
	Covers(kernel string, after uint64) bool
}

// Options configure a Hub.
type Options struct {
	// Backlog, when set, serves resuming clients: the log is read only for
	// what it no longer holds. Without it they are served from the log.
	Backlog Backlog
	// BacklogWait waits until the backlog applied seq (its projections
	// runner's WaitFor). Required with Backlog.
	BacklogWait func(ctx context.Context, seq uint64) error
	// QueueMessages and QueueBytes bound each client's send queue.
	QueueMessages int
	QueueBytes    int
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// ReadLimit is the largest message a client may send.
	ReadLimit int64
	// Renew, when set, is called for every AssetStored event replayed to a
	// client from the log (a replay is a read: it renews the asset's lease).
	Renew  func(ctx context.Context, sum string) error
	Logger *slog.Logger
	// Observer, when set, is told of clients joining, leaving and being
	// closed as slow consumers (metrics).
	Observer Observer
	// Access, when set, limits each client to what its principal (from
	// the request context, auth.FromContext) may read: events of kernels
	// it can read and events it caused; admins read everything. A request
	// without a principal is refused. Without Access every client reads
	// every event (one trusted token).
	Access Access
	// Current, when set, reports whether r's credentials still
	// authenticate as the principal they did (not revoked, not rotated
	// away). The hub asks it once the client joined: a revocation that
	// landed between the authentication of the request and the join found
	// no client to close (ClosePrincipal), so the client is closed here
	// with CloseTokenRevoked. NB: the directory must apply a revocation
	// before it calls its watchers (auth.TokenDirectory does): then every
	// revocation is seen by one of the two.
	Current func(r *http.Request) bool
}

func (o Options) withDefaults() Options {
	if o.QueueMessages <= 0 {
		o.QueueMessages = DefaultQueueMessages
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o
}

// ErrClosed: the hub was closed.
var ErrClosed = errors.New("ws: closed")

// Hub fans the log out to WebSocket clients.
type Hub struct {
	log  Log
	opts Options

	// NB: RW: resuming clients ask mayRead once per event they catch up
	// on, concurrently with each other, under the read lock.
	mu      sync.RWMutex
	clients map[*client]struct{}
	idx     index  // who gets which event; see offer
	last    uint64 // the last seq offered to clients
	closed  bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the follow loop and every client
	errc   chan error
	once   sync.Once

	// Counters, for tests and metrics.
	kicked   atomic.Uint64
	logReads atomic.Uint64
}

type client struct {
	kernel string
	view   viewer
	q      *queue
	// mark is the last seq offered to it (under Hub.mu): an event reaches
	// a client through one route only.
	mark uint64
	// revoked is closed (once, by ClosePrincipal, under Hub.mu) when the
	// hub ends the session; end says how. NB: a channel the writer selects
	// on, not a context: cancelling a write in progress would tear the
	// connection down without the close frame that tells the client why.
	revoked chan struct{}
	end     atomic.Pointer[closeWith]
	// floor is the first event the client still reads from the log while
	// it catches up (0 once it is fed by the fan-out): see LogFloor.
	floor atomic.Uint64
	// sub: a Subscription (an edge of this process), fed events, not JSON.
	sub bool
}

// New returns a hub over log. Call Start before serving.
func New(log Log, opts Options) *Hub {
	return &Hub{log: log, opts: opts.withDefaults(), clients: map[*client]struct{}{}, idx: newIndex(), errc: make(chan error, 1)}
}

// Start begins following the log from its current end.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx != nil {
		return errors.New("ws: hub already started")
	}
	h.ctx, h.cancel = context.WithCancel(ctx)
	h.last = h.log.Last()
	if h.opts.Access != nil {
		// NB: the readers are as of at least at; a model ahead of Last is
		// fine (the fan-out re-applies the changes after Last at their
		// seqs, in order), one behind it is caught up from the log here:
		// a share it had not applied yet is not lost.
		readers, at := h.opts.Access.Readers()
		for k, ps := range readers {
			for _, p := range ps {
				h.idx.grant(Grant{Kernel: k, Principal: p, Read: true})
			}
		}
		if at < h.last {
			err := h.log.Scan(ctx, at+1, h.last, func(e events.Event) error {
				for _, g := range h.opts.Access.Changes(e) {
					h.idx.grant(g)
				}
				return nil
			})
			if err != nil {
				h.cancel()
				h.ctx = nil
				return fmt.Errorf("ws: replay kernel shares after %d: %w", at, err)
			}
		}
	}
	after := h.last
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		err := h.log.FollowRaw(h.ctx, after, h.broadcast)
		if err != nil && h.ctx.Err() == nil {
			h.opts.Logger.Error("websocket fan-out stopped", "err", err)
			h.errc <- fmt.Errorf("ws fan-out: %w", err)
		}
	}()
	return nil
}

// Err reports the fan-out loop's failure (it stops on a log error).
func (h *Hub) Err() <-chan error { return h.errc }

// Kicked returns how many clients were closed as slow consumers.
func (h *Hub) Kicked() uint64 { return h.kicked.Load() }

// LogReads returns how many catch-ups read the log (the backlog no longer
// held what they needed, or there is no backlog).
func (h *Hub) LogReads() uint64 { return h.logReads.Load() }

// Clients returns how many clients are connected.
func (h *Hub) Clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// broadcast encodes e once and offers it to every interested client. It
// never blocks on a client.
func (h *Hub) broadcast(e events.Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	h.route(e, frame{seq: e.Seq, data: data})
	return nil
}

// route offers the encoded event f to every client that may read e.
func (h *Hub) route(e events.Event, f frame) {
	var by string
	var grants []Grant
	if a := h.opts.Access; a != nil {
		by, grants = a.CausedBy(e), a.Changes(e)
	}
	h.mu.Lock()
	h.last = e.Seq
	for _, g := range grants {
		h.idx.grant(g) // NB: before offering: a share's own event reaches its new reader
	}
	var owned *events.Event // e with its own Raw, made for the first subscription
	h.idx.offer(&e, by, func(c *client) {
		if c.mark == e.Seq {
			return
		}
		c.mark = e.Seq
		g := f
		if c.sub {
			if owned == nil {
				o := own(e)
				owned = &o
			}
			g = frame{seq: e.Seq, data: owned.Raw, ev: owned}
		}
		if !c.q.push(g) {
			h.drop(c) // its writer closes it with 4008
		}
	})
	h.mu.Unlock()
}

// drop removes c from the fan-out. Under h.mu.
func (h *Hub) drop(c *client) {
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.idx.remove(c)
	}
}

// mayRead reports whether c may read e: the same rule as the fan-out, for
// events a resuming client reads from the backlog or the log (with the
// readers as they are now).
func (h *Hub) mayRead(c *client, e *events.Event) bool {
	if c.view.all {
		return true
	}
	if h.opts.Access.CausedBy(*e) == c.view.principal {
		return true
	}
	if e.Kernel == "" {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.idx.canRead(c.view.principal, e.Kernel)
}

// ClosePrincipal closes every client of principal at once with
// CloseTokenRevoked (its token was revoked or rotated) and returns how many
// it closed. Wire it to the token store's revocation callback.
func (h *Hub) ClosePrincipal(principal string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.idx.owned[principal] {
		h.end(c, closeWith{CloseTokenRevoked, revokedReason})
		n++
	}
	return n
}

// end makes c's session close with how and drops it from the fan-out.
// Under h.mu.
func (h *Hub) end(c *client, how closeWith) {
	if c.end.Load() != nil {
		return
	}
	c.end.Store(&how)
	close(c.revoked)
	h.drop(c)
}

// endIfStale ends c when its request's credentials no longer authenticate
// (Options.Current): revoked between the guard and the join.
func (h *Hub) endIfStale(c *client, r *http.Request) {
	if h.opts.Current == nil || h.opts.Current(r) {
		return
	}
	h.mu.Lock()
	h.end(c, closeWith{CloseTokenRevoked, revokedReason})
	h.mu.Unlock()
}

// join registers a client and returns the seq after which the fan-out
// feeds it: the client reads (since, liveFrom] from the log itself.
func (h *Hub) join(c *client) (liveFrom uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.ctx == nil {
		return 0, ErrClosed
	}
	h.clients[c] = struct{}{}
	h.idx.add(c)
	h.opts.Observer.ClientJoined()
	return h.last, nil
}

// backlogCovers reports whether the backlog read model still holds every
// event after since for the client's filter: then a cursor older than the
// retained log is served from it, not refused.
func (h *Hub) backlogCovers(kernel string, since uint64) bool {
	if h.opts.Backlog == nil {
		return false
	}
	return h.opts.Backlog.Covers(kernel, since)
}

// LogFloor implements projections.Floor: retention keeps the events a
// connected client catching up from its since= cursor has yet to read.
// Clients fed by the fan-out need nothing from the log.
func (h *Hub) LogFloor() (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var floor uint64
	for c := range h.clients {
		if f := c.floor.Load(); f != 0 && (floor == 0 || f < floor) {
			floor = f
		}
	}
	return floor, floor != 0
}

// leave is called exactly once per client that joined, when its handler
// returns (the fan-out may have dropped it from clients already).
func (h *Hub) leave(c *client) {
	h.mu.Lock()
	h.drop(c)
	h.mu.Unlock()
	h.opts.Observer.ClientLeft()
}

// Close stops the fan-out, closes every client with 1001 and a resume hint,
// and waits for their goroutines until ctx ends. It is idempotent.
func (h *Hub) Close(ctx context.Context) error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		if h.cancel != nil {
			h.cancel()
		}
	})
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close websocket clients: %w", ctx.Err())
	}
}

// Handler returns the /ws handler. Mount it behind mcpserver.Guard.
func (h *Hub) Handler() http.Handler { return http.HandlerFunc(h.serve) }

func (h *Hub) serve(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	if h.opts.Access != nil && !ok {
		// NB: a wiring fault (the route is not behind the principals
		// middleware): refuse, never default to everything.
		http.Error(w, "Unauthorized: no principal on the request: mount /ws behind the authentication middleware.", http.StatusUnauthorized)
		return
	}
	if ok && !p.Scopes.Has(auth.ScopeRead) {
		http.Error(w, fmt.Sprintf("Forbidden: principal %q lacks the read scope /ws needs: ask an admin for it.", p.Name), http.StatusForbidden)
		return
	}
	req, err := parseRequest(r.URL.Query())
	if err != nil {
		http.Error(w, "Bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if last := h.log.Last(); req.since > last {
		http.Error(w, fmt.Sprintf("Bad request: since %d is past the last event %d; resume with a seq you received.", req.since, last),
			http.StatusBadRequest)
		return
	}
	if req.hasSince {
		// NB: 410, not 400: the cursor was valid; the events after it are
		// gone. The text names the retention setting and where to resume.
		if err := h.log.CheckAfter(req.since); err != nil && !h.backlogCovers(req.kernel, req.since) {
			http.Error(w, "Gone: "+err.Error(), http.StatusGone)
			return
		}
	}
	h.mu.Lock()
	closed := h.closed || h.ctx == nil
	if !closed {
		h.wg.Add(1)
	}
	h.mu.Unlock()
	if closed {
		http.Error(w, "Service unavailable: the server is shutting down; reconnect with since=<last seq>.", http.StatusServiceUnavailable)
		return
	}
	defer h.wg.Done()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// NB: Guard checked Host and Origin (loopback on any port, or the
		// allowed hosts) before we got here; the library's stricter
		// same-host check would refuse a dev server on another port.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept wrote the HTTP error
	}
	conn.SetReadLimit(h.opts.ReadLimit)
	c := &client{kernel: req.kernel, view: viewerOf(p, h.opts.Access != nil), q: newQueue(h.opts.QueueMessages, h.opts.QueueBytes),
		revoked: make(chan struct{})}
	if req.hasSince {
		c.floor.Store(req.since + 1) // NB: before join, so retention sees it as soon as it counts
	}
	liveFrom, err := h.join(c)
	if err != nil {
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down: reconnect with since=<last seq>")
		return
	}
	defer h.leave(c)
	h.endIfStale(c, r)
	if !p.Expires.IsZero() {
		// An OAuth token's stream ends with the token.
		expire := time.AfterFunc(time.Until(p.Expires), func() {
			h.mu.Lock()
			h.end(c, closeWith{CloseTokenRevoked, expiredReason})
			h.mu.Unlock()
		})
		defer expire.Stop()
	}
	s := &session{h: h, conn: conn, c: c, sent: req.since}
	if !req.hasSince {
		s.sent = liveFrom
	}
	s.run(req, liveFrom)
}
