package ws

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/backlog"
)

// session is one connected client: a reader goroutine for what it sends,
// and the writer (the handler's goroutine) for what it receives.
type session struct {
	h    *Hub
	conn *websocket.Conn
	c    *client
	sent uint64 // the last seq written to the client

	buf    []byte // events not yet written, one per line
	bufSeq uint64 // the seq of the last event in buf

	pong chan struct{} // cap 1: a ping to answer
}

// closeWith is how the session ended, as sent to the client.
type closeWith struct {
	code   websocket.StatusCode
	reason string
}

func (s *session) resumeHint() string { return "resume with since=" + strconv.FormatUint(s.sent, 10) }

func (s *session) run(req request, liveFrom uint64) {
	ctx, cancel := context.WithCancel(s.h.ctx)
	defer cancel()
	s.pong = make(chan struct{}, 1)
	readErr := make(chan closeWith, 1)
	readDone := make(chan struct{})
	// NB: the reader's context is not the hub's: coder/websocket tears the
	// connection down when a Read's context ends, which would lose the close
	// frame the writer sends on shutdown. Close (below) ends the reader.
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	go func() {
		defer close(readDone)
		readErr <- s.readLoop(rctx)
		cancel()
	}()
	end := s.write(ctx, req, liveFrom, readErr)
	if by := s.c.end.Load(); by != nil {
		end = *by // the hub ended it (token revoked)
	}
	if end.code == 0 {
		end = closeWith{websocket.StatusGoingAway, "server shutting down: " + s.resumeHint()}
	}
	if end.code == CloseSlowConsumer {
		s.h.kicked.Add(1)
		s.h.opts.Observer.SlowConsumerClosed()
		s.h.opts.Logger.Warn("closed a slow websocket client", "last_seq", s.sent)
	}
	_ = s.conn.Close(end.code, end.reason)
	<-readDone // NB: wait for the reader; Close unblocked it
}

// readLoop reads client messages until the connection ends; it returns how
// to close when the client broke the protocol.
func (s *session) readLoop(ctx context.Context) closeWith {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return closeWith{} // the client closed
			}
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig || isTooBig(err) {
				return closeWith{websocket.StatusMessageTooBig, fmt.Sprintf("client message over %d bytes: send only {\"type\":\"ping\"}", s.h.opts.ReadLimit)}
			}
			return closeWith{}
		}
		if typ != websocket.MessageText {
			return closeWith{websocket.StatusUnsupportedData, "binary client message: send only {\"type\":\"ping\"} as text"}
		}
		if err := parseClientMessage(data); err != nil {
			reason := err.Error()
			if len(reason) > 120 {
				reason = reason[:120]
			}
			return closeWith{websocket.StatusInvalidFramePayloadData, reason}
		}
		select {
		case s.pong <- struct{}{}:
		default:
		}
	}
}

func isTooBig(err error) bool {
	return err != nil && strings.Contains(err.Error(), "read limited at")
}

// write serves the client: first the log from its cursor up to liveFrom,
// then the fan-out queue. It returns how to close.
func (s *session) write(ctx context.Context, req request, liveFrom uint64, readErr <-chan closeWith) closeWith {
	if req.hasSince && s.sent < liveFrom {
		if end, ok := s.catchUp(ctx, req, liveFrom); !ok {
			return end
		}
	}
	s.c.floor.Store(0) // caught up: the fan-out feeds it from here
	var batch []frame
	for {
		select {
		case <-ctx.Done():
			select {
			case end := <-readErr:
				return s.readEnd(end)
			default:
			}
			return closeWith{}
		case end := <-readErr:
			return s.readEnd(end)
		case <-s.c.revoked:
			return closeWith{} // run sends c.end
		case <-s.pong:
			if err := s.send(ctx, []byte(`{"type":"pong","seq":`+strconv.FormatUint(s.sent, 10)+`}`)); err != nil {
				return closeWith{}
			}
			continue
		case <-s.c.q.ready:
		}
		var over bool
		batch, over = s.c.q.take(batch)
		for _, f := range batch {
			if f.seq <= s.sent {
				continue // NB: the client resumed past it (since > liveFrom)
			}
			if err := s.add(ctx, f.seq, f.data); err != nil {
				return s.writeFailed(ctx, err)
			}
		}
		clear(batch)
		if err := s.flush(ctx); err != nil {
			return s.writeFailed(ctx, err)
		}
		if over {
			return closeWith{CloseSlowConsumer, "slow consumer: " + s.resumeHint()}
		}
	}
}

// writeFailed: a write did not complete within WriteTimeout (or the
// connection broke). A client that does not take its events in time is a
// slow consumer, whether or not its queue overflowed yet.
func (s *session) writeFailed(ctx context.Context, err error) closeWith {
	// NB: a write that timed out closes the connection, which also ends the
	// reader and so cancels ctx: the timeout decides, not ctx.
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(fmt.Sprint(err), "timed out") {
		return closeWith{CloseSlowConsumer, "slow consumer: " + s.resumeHint()}
	}
	if ctx.Err() != nil {
		return closeWith{}
	}
	return closeWith{CloseSlowConsumer, "slow consumer: " + s.resumeHint()}
}

func (s *session) readEnd(end closeWith) closeWith {
	if end.code == 0 {
		return closeWith{websocket.StatusNormalClosure, ""}
	}
	return end
}

// maxBatch bounds one WebSocket message of several events.
const maxBatch = 64 << 10

// add appends one event to the message being built, sending the message
// first if the event would make it larger than maxBatch. s.sent advances
// only when a message is written.
func (s *session) add(ctx context.Context, seq uint64, data []byte) error {
	if len(s.buf) > 0 && len(s.buf)+1+len(data) > maxBatch {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	if len(s.buf) > 0 {
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, data...)
	s.bufSeq = seq
	return nil
}

// flush writes the message being built.
func (s *session) flush(ctx context.Context) error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.send(ctx, s.buf)
	if err == nil {
		s.sent = s.bufSeq
	}
	if cap(s.buf) > 2*maxBatch {
		s.buf = nil // NB: one huge event must not pin its buffer
	} else {
		s.buf = s.buf[:0]
	}
	return err
}

func (s *session) send(ctx context.Context, data []byte) error {
	wctx, cancel := context.WithTimeout(ctx, s.h.opts.WriteTimeout)
	defer cancel()
	return s.conn.Write(wctx, websocket.MessageText, data)
}

var errStop = errors.New("ws: stop")

// catchUp sends the events in (s.sent, liveFrom]: from the backlog what it
// holds, from the log only what it no longer does (older seqs).
func (s *session) catchUp(ctx context.Context, req request, liveFrom uint64) (closeWith, bool) {
	var werr error
	visit := func(e events.Event) error {
		if e.Seq > liveFrom {
			return errStop
		}
		select {
		case <-s.c.revoked:
			return errStop // run sends c.end
		default:
		}
		if e.Seq <= s.sent || !s.h.mayRead(s.c, &e) {
			return nil
		}
		data, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		if err := s.add(ctx, e.Seq, data); err != nil {
			werr = err
			return err
		}
		if e.Type == events.TypeAssetStored && s.h.opts.Renew != nil {
			if p, err := events.As[events.AssetStored](&e); err == nil {
				// NB: best effort: a collected asset is history, not an error.
				_ = s.h.opts.Renew(ctx, p.SHA256)
			}
		}
		return nil
	}
	var held []backlog.Entry
	limit, complete := liveFrom, false
	if bl := s.h.opts.Backlog; bl != nil && s.h.opts.BacklogWait != nil && s.h.opts.BacklogWait(ctx, liveFrom) == nil {
		// NB: the backlog applied everything up to liveFrom: what it holds
		// after s.sent plus the log below its first entry is all of it.
		var ents []backlog.Entry
		ents, complete, _ = bl.Since(req.kernel, s.sent)
		held = ents
		if len(ents) > 0 {
			limit = min(limit, ents[0].Seq-1)
		}
	}
	var err error
	if !complete && limit > s.sent {
		s.h.logReads.Add(1)
		if req.kernel != "" {
			err = s.h.log.ReadKernel(ctx, req.kernel, s.sent, func(e events.Event) error {
				if e.Seq > limit {
					return errStop
				}
				return visit(e)
			})
		} else {
			err = s.h.log.Scan(ctx, s.sent+1, limit, visit)
		}
	}
	if err == nil || errors.Is(err, errStop) {
		err = nil
		for _, ent := range held {
			if err = visit(ent.Event()); err != nil {
				break
			}
		}
	}
	if werr == nil {
		werr = s.flush(ctx)
	}
	if werr != nil {
		return s.writeFailed(ctx, werr), false // a client too slow to catch up is a slow consumer too
	}
	if err != nil && !errors.Is(err, errStop) {
		if ctx.Err() != nil {
			return closeWith{}, false
		}
		reason := "reading the event log failed: " + s.resumeHint()
		// NB: retention passed the cursor between the check in serve and
		// this read (eventlog.TruncatedError has TruncatedAt). ≤ 123 bytes.
		var gone interface{ TruncatedAt() uint64 }
		if errors.As(err, &gone) {
			reason = "the log was truncated past your cursor (retention): resume with since=" + strconv.FormatUint(gone.TruncatedAt()-1, 10)
		}
		return closeWith{websocket.StatusInternalError, reason}, false
	}
	return closeWith{}, true
}
