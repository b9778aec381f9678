package jupyterapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// conn is one channels WebSocket: a reader goroutine (frontend requests),
// a feed goroutine (the kernel's durable events, translated), and the
// writer (the handler's goroutine), which alone writes to the socket.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	key     sessionKey
	kernel  ChannelKernel
	framing string
	user    string
	client  string
	// principal is who authenticated the WebSocket (auth.FromContext).
	principal string
	// ephemeral: the frontend sent no session_id (the server made one up):
	// nobody can resume it, so it keeps no cursor.
	ephemeral bool

	ctx    context.Context // ends when the connection ends
	cancel context.CancelFunc

	out     chan outMsg               // the feed's messages, bounded: see outQueue
	ctrl    chan outMsg               // replies and notices of this connection's own, bounded: see ctrlQueue
	replies chan events.KernelMessage // relay replies, bounded
	stop    chan struct{}             // closed by shutdown (graceful) or replace
	done    chan struct{}             // closed once its cursor is saved
	stopped sync.Once
	endWith closeReason // why stop was closed (under stopOnce)

	// sent is the last seq written (the writer's).
	sent uint64
	// queued is the bytes in out; room is signalled when the writer took
	// some (cap 1). See outQueueBytes.
	queued     atomic.Int64
	room       chan struct{}
	ctrlQueued atomic.Int64 // the bytes in ctrl

	tr *translator

	// bg: the connection's goroutines besides the reader and the feed
	// (held kernel_info requests); held counts those.
	bg   sync.WaitGroup
	held atomic.Int32
	// commanding: a shutdown_request (restart or shutdown) of this
	// connection's is running on bg (one at a time).
	commanding atomic.Bool
}

type outMsg struct {
	data   []byte
	binary bool
	seq    uint64 // the event it carries the last message of (0: none)
	ctrl   bool   // from ctrl, not out
}

type closeReason struct {
	code   websocket.StatusCode
	reason string
}

func (s *Server) channels(w http.ResponseWriter, r *http.Request) {
	id := events.CanonicalID(r.PathValue("id"))
	session := r.URL.Query().Get("session_id")
	if err := checkSessionID(session); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	k, err := s.opts.Channels.Kernel(ctx, id)
	if err != nil {
		s.failChannels(w, id, err)
		return
	}
	if k.Session == "" {
		k.Session = k.ID
	}
	framing := FramingLegacy
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == SubprotocolV1 {
				framing = SubprotocolV1
			}
		}
	}
	ephemeral := session == ""
	if ephemeral {
		session = newMsgID() // NB: as jupyter_server: a session of its own, no resume
	}
	p, _ := auth.FromContext(ctx)
	key := sessionKey{kernel: id, principal: p.Name, session: session}
	s.ch.mu.Lock()
	if s.ch.closed {
		s.ch.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down: reconnect with the same session_id")
		return
	}
	s.ch.wg.Add(1)
	s.ch.mu.Unlock()
	defer s.ch.wg.Done()

	opts := &websocket.AcceptOptions{
		// NB: mcpserver.Guard checked Host and Origin before the upgrade.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	}
	if framing == SubprotocolV1 {
		opts.Subprotocols = []string{SubprotocolV1}
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		return // Accept wrote the HTTP error
	}
	ws.SetReadLimit(DefaultChannelsReadLimit)
	// NB: the connection outlives a cancelled request context (a graceful
	// shutdown drains it, CloseChannels) but not the credentials: the
	// guard (EndOnRevoke) ends ctx with a cause when the token is revoked
	// or expires.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	c := &conn{s: s, ws: ws, key: key, ephemeral: ephemeral, kernel: k, framing: framing, user: r.URL.Query().Get("username"), principal: p.Name,
		client: clip(r.UserAgent(), 120), ctx: cctx, cancel: cancel,
		out: make(chan outMsg, outQueue), ctrl: make(chan outMsg, ctrlQueue), replies: make(chan events.KernelMessage, replyQueue), stop: make(chan struct{}), done: make(chan struct{}),
		room: make(chan struct{}, 1)}
	c.tr = newTranslator(c)
	stopWatch := context.AfterFunc(ctx, func() {
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			c.end(closeReason{CloseAccessEnded, clip("credentials ended: "+cause.Error(), 120)})
		}
	})
	defer stopWatch()
	c.run()
}

// checkSessionID refuses session ids no frontend sends: they key the
// resume cursors and are recorded in the log.
func checkSessionID(s string) error {
	if len(s) > 128 {
		return fmt.Errorf("session_id is %d bytes: at most 128 (frontends send a UUID)", len(s))
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.' || r == ':') {
			return fmt.Errorf("session_id %q has %q: use letters, digits, '-', '_', '.', ':' (frontends send a UUID)", clip(s, 40), r)
		}
	}
	return nil
}

func (s *Server) failChannels(w http.ResponseWriter, id string, err error) {
	switch {
	case errors.Is(err, ErrNoKernel):
		writeError(w, http.StatusNotFound, fmt.Sprintf("Kernel does not exist: %s", shownID(id)))
	case errors.Is(err, ErrNoAccess):
		writeError(w, http.StatusForbidden, err.Error())
	default:
		// NB: as statusOf: the detail may name server paths.
		s.log.Warn("jupyter api: channels refused", "kernel", shownID(id), "err", err)
		writeError(w, http.StatusInternalServerError, internalErrorMessage)
	}
}

func shownID(id string) string {
	if u, ok := events.UUIDForm(id); ok {
		return u
	}
	return id
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// register makes c the session's connection, replacing a stale one with
// the same (kernel, session_id) as jupyter_server does — of the same
// principal only (sessionKey).
func (c *conn) register() {
	st := &c.s.ch
	st.mu.Lock()
	old := st.open[c.key]
	st.open[c.key] = c
	st.perKern[c.key.kernel]++
	closing := st.closed
	st.mu.Unlock()
	if closing {
		// NB: CloseChannels took its list before c was in it: end at once.
		c.shutdown()
	}
	if old != nil {
		old.end(closeReason{websocket.StatusPolicyViolation, "replaced by a newer connection with the same session_id"})
		// NB: wait (bounded) for its cursor: a frontend reconnecting before
		// the server noticed the old connection was lost resumes from
		// what the old one delivered.
		t := time.NewTimer(c.s.writeTimeout())
		defer t.Stop()
		select {
		case <-old.done:
		case <-t.C:
		}
	}
}

func (c *conn) unregister() {
	st := &c.s.ch
	st.mu.Lock()
	if st.open[c.key] == c {
		delete(st.open, c.key)
	}
	st.perKern[c.key.kernel]--
	if st.perKern[c.key.kernel] <= 0 {
		delete(st.perKern, c.key.kernel)
	}
	st.mu.Unlock()
}

// end makes the writer close the connection with how, after what is
// queued.
func (c *conn) end(how closeReason) {
	c.stopped.Do(func() {
		c.endWith = how
		close(c.stop)
	})
}

func (c *conn) shutdown() {
	c.end(closeReason{websocket.StatusGoingAway, "server shutting down: reconnect with the same session_id to resume"})
}

func (c *conn) run() {
	c.register()
	defer c.unregister()
	doneOnce := sync.OnceFunc(func() { close(c.done) })
	defer doneOnce()
	after, resume := c.s.ch.cursor(c.key)
	live := !resume
	a, seen, err := c.s.opts.Channels.Attach(c.ctx, c.key.kernel, Attach{Session: c.key.session, Username: c.user, Client: c.client, Framing: c.framing})
	if err != nil {
		c.s.log.Warn("record a frontend attaching", "kernel", c.key.kernel, "err", err)
	} else if !resume && seen {
		after, live = a, false
	}
	if live && c.kernel.Seq > 0 {
		// NB: a new session starts where the greeting's state snapshot is
		// as of (not "now"): a status or a death recorded between the
		// snapshot and the subscription is told, not lost. The kernel's
		// output after it is none (output moves the snapshot's seq).
		after, live = c.kernel.Seq, false
	}
	feed, err := c.s.opts.Channels.Subscribe(c.key.kernel, after, live)
	if err != nil && !resume && !seen {
		feed, err = c.s.opts.Channels.Subscribe(c.key.kernel, 0, true)
	} else if err != nil && !live {
		// NB: the events after the cursor are gone (retention): live only,
		// said once on stderr.
		c.tr.notice(fmt.Sprintf("output recorded while you were away is no longer retained (%v); showing live output only", err))
		feed, err = c.s.opts.Channels.Subscribe(c.key.kernel, 0, true)
	}
	if err != nil {
		_ = c.ws.Close(websocket.StatusInternalError, clip("follow the kernel's events: "+err.Error(), 120))
		return
	}
	defer feed.Close()
	c.sent = feed.Cursor() // NB: a live feed starts at the log's end, not at 0

	// NB: the greeting's status goes first, written before the feed
	// starts: a newer status from the feed always follows it.
	if how, ok := c.send(c.outMsg(c.tr.greetStatus())); !ok {
		_ = c.ws.Close(how.code, how.reason)
		return
	}
	var wg sync.WaitGroup
	feedEnd := make(chan closeReason, 1)
	readEnd := make(chan closeReason, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		feedEnd <- c.pumpFeed(feed)
	}()
	go func() {
		defer wg.Done()
		readEnd <- c.readLoop()
	}()
	c.tr.greet()
	how := c.write(feedEnd, readEnd)
	if how.code == CloseSlowFrontend {
		c.s.log.Warn("closed a slow frontend: it resumes when it reconnects", "kernel", c.key.kernel, "session", c.key.session, "last_seq", c.sent)
	}
	if !c.ephemeral {
		c.s.ch.saveCursor(c.key, c.sent)
	}
	doneOnce()
	_ = c.ws.Close(how.code, how.reason)
	c.cancel()
	wg.Wait()
	c.bg.Wait()
}

// write is the writer loop: it returns how to close.
func (c *conn) write(feedEnd, readEnd <-chan closeReason) closeReason {
	for {
		select {
		case m := <-c.out:
			if how, ok := c.send(m); !ok {
				return how
			}
		case m := <-c.ctrl:
			if how, ok := c.send(m); !ok {
				return how
			}
		case rep := <-c.replies:
			c.tr.reply(rep)
		case how := <-feedEnd:
			c.drain()
			return how
		case how := <-readEnd:
			if how.code == 0 {
				how = closeReason{websocket.StatusNormalClosure, ""}
			}
			return how
		case <-c.stop:
			c.drain()
			return c.endWith
		}
	}
}

// drain writes what is queued (a graceful end).
func (c *conn) drain() {
	for {
		select {
		case m := <-c.out:
			if _, ok := c.send(m); !ok {
				return
			}
		case m := <-c.ctrl:
			if _, ok := c.send(m); !ok {
				return
			}
		default:
			return
		}
	}
}

func (c *conn) send(m outMsg) (closeReason, bool) {
	if n := len(m.data); n > 0 && m.ctrl {
		defer c.ctrlQueued.Add(-int64(n))
	} else if n > 0 {
		defer func() {
			c.queued.Add(-int64(n))
			select {
			case c.room <- struct{}{}:
			default:
			}
		}()
	}
	if m.data == nil { // a cursor move only
		c.sent = max(c.sent, m.seq)
		return closeReason{}, true
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.writeTimeout())
	defer cancel()
	typ := websocket.MessageText
	if m.binary {
		typ = websocket.MessageBinary
	}
	if err := c.ws.Write(ctx, typ, m.data); err != nil {
		return closeReason{CloseSlowFrontend, "slow consumer: reconnect with the same session_id to resume"}, false
	}
	if m.seq > c.sent {
		c.sent = m.seq
	}
	return closeReason{}, true
}

// enqueue offers a message of the connection's own (a reply, a notice) to
// the writer without blocking, on a queue of its own: the feed filling
// its queue (a big stream read at full speed) never makes a reply look
// slow. A full ctrl queue ends the connection as a slow consumer (it
// resumes from its cursor).
func (c *conn) enqueue(m Message) {
	om := c.outMsg(m)
	om.ctrl = true
	n := int64(len(om.data))
	if q := c.ctrlQueued.Load(); q > 0 && q+n > ctrlQueueBytes {
		c.end(closeReason{CloseSlowFrontend, "slow consumer: reconnect with the same session_id to resume"})
		return
	}
	c.ctrlQueued.Add(n)
	select {
	case c.ctrl <- om:
	default:
		c.ctrlQueued.Add(-n)
		c.end(closeReason{CloseSlowFrontend, "slow consumer: reconnect with the same session_id to resume"})
	}
}

// outMsg encodes m in the connection's framing (no queue's).
func (c *conn) outMsg(m Message) outMsg {
	var om outMsg
	if c.framing == SubprotocolV1 {
		om.data, om.binary = EncodeV1(m), true
	} else {
		om.data, om.binary = EncodeLegacy(m)
	}
	return om
}

// pumpFeed translates the kernel's events into messages for the writer.
// It waits for room in the writer's queue: while it waits, the feed's own
// bounded queue fills, and a feed that falls behind ends the connection
// (4008) — the hub never waits.
func (c *conn) pumpFeed(feed Feed) closeReason {
	for {
		evs, err := feed.Next(c.ctx)
		if err != nil {
			switch {
			case c.ctx.Err() != nil:
				return closeReason{}
			case errors.Is(err, ErrFeedBehind):
				return closeReason{CloseSlowFrontend, "slow consumer: reconnect with the same session_id to resume"}
			default:
				return closeReason{websocket.StatusGoingAway, clip("the kernel's events ended: "+err.Error(), 120)}
			}
		}
		for i := range evs {
			if evs[i].Type == events.TypeKernelShared {
				// NB: before anything after it: a withdrawn share ends the
				// connection at the event that withdrew it.
				if err := c.s.opts.Channels.Readable(c.ctx, c.key.kernel, evs[i].Seq); errors.Is(err, ErrNoKernel) || errors.Is(err, ErrNoAccess) {
					return closeReason{CloseAccessEnded, "access to this kernel was withdrawn (its share ended)"}
				}
			}
			msgs := c.tr.event(&evs[i])
			for j, m := range msgs {
				seq := uint64(0)
				if j == len(msgs)-1 {
					seq = evs[i].Seq
				}
				if !c.put(m, seq) {
					return closeReason{}
				}
			}
			if len(msgs) == 0 {
				// NB: an event that makes no message still moves the cursor.
				if !c.put(Message{}, evs[i].Seq) {
					return closeReason{}
				}
			}
		}
	}
}

// put waits for room in the writer's queue (the feed's side).
func (c *conn) put(m Message, seq uint64) bool {
	var om outMsg
	switch {
	case m.Channel == "":
		om = outMsg{seq: seq} // a cursor move only
	case c.framing == SubprotocolV1:
		om = outMsg{data: EncodeV1(m), binary: true, seq: seq}
	default:
		om.data, om.binary = EncodeLegacy(m)
		om.seq = seq
	}
	// NB: bounded in bytes too: wait for room (one message larger than
	// the bound goes alone).
	for {
		q := c.queued.Load()
		if q == 0 || q+int64(len(om.data)) <= outQueueBytes {
			break
		}
		select {
		case <-c.room:
		case <-c.ctx.Done():
			return false
		case <-c.stop:
			return false
		}
	}
	c.queued.Add(int64(len(om.data)))
	select {
	case c.out <- om:
		return true
	case <-c.ctx.Done():
		return false
	case <-c.stop:
		return false
	}
}

// readLoop reads the frontend's messages until the connection ends.
func (c *conn) readLoop() closeReason {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig || strings.Contains(err.Error(), "read limited at") {
				return closeReason{websocket.StatusMessageTooBig, fmt.Sprintf("message over %d bytes", DefaultChannelsReadLimit)}
			}
			return closeReason{}
		}
		var m Message
		switch {
		case c.framing == SubprotocolV1 && typ == websocket.MessageBinary:
			m, err = DecodeV1(data)
		case c.framing == SubprotocolV1:
			err = frameErr(SubprotocolV1, "a text message: this subprotocol sends binary messages only")
		case typ == websocket.MessageBinary:
			m, err = DecodeLegacyBinary(data)
		default:
			m, err = DecodeLegacyText(data)
		}
		if err != nil {
			return closeReason{websocket.StatusInvalidFramePayloadData, clip(err.Error(), 120)}
		}
		c.tr.inbound(m)
	}
}

// Write adds a message (not from the feed) for this connection.
func (c *conn) write1(m Message) { c.enqueue(m) }
