package jupyterapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// protocolVersion is the Jupyter messaging version of the headers the
// server writes.
const protocolVersion = "5.3"

// serverUsername names the server in the headers it writes.
const serverUsername = "mcp-jupyter"

// translator turns a kernel's durable events into Jupyter messages for one
// connection, and the frontend's messages into commands. Its tables are
// bounded and under mu: the reader, the feed and the writer goroutines
// all use it.
type translator struct {
	c *conn

	mu sync.Mutex
	// relays: the server's msg_id of a relayed request -> the frontend's
	// request header (the parent_header of the replies and of the IOPub
	// messages it caused, for this connection only). Forgotten at its
	// idle status, or when more than maxRelaysPerConn wait (the oldest).
	relays     map[string]relay
	relayOrder []string
	// origins caches executions' origins (nil: an agent's) and who
	// submitted them.
	origins map[string]execOrigin
	// inputs: the msg_id of an input_request sent to this frontend -> its
	// execution.
	inputs map[string]string
	// restartAsked: this connection asked for a restart (shutdown_request
	// with restart) not yet seen recorded.
	restartAsked bool
}

type relay struct {
	header  json.RawMessage // the frontend's request header
	msgType string
	channel string
	// replied and idle: its reply (direct from the kernel actor) and its
	// idle status (through the log) arrived, in either order: forgotten
	// once both did.
	replied, idle bool
}

func newTranslator(c *conn) *translator {
	return &translator{c: c, relays: map[string]relay{}, origins: map[string]execOrigin{}, inputs: map[string]string{}}
}

func newMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func jupyterDate(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// header builds a header of the server's (or the kernel's) message.
func (t *translator) header(msgID, msgType string, at time.Time) json.RawMessage {
	h, _ := json.Marshal(Header{MsgID: msgID, MsgType: msgType, Session: t.c.kernel.Session, Username: serverUsername,
		Date: jupyterDate(at), Version: protocolVersion})
	return h
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return emptyObject
	}
	return b
}

// originHeader rebuilds a frontend's execute_request header from its Origin.
func originHeader(o *events.Origin) json.RawMessage {
	return mustJSON(Header{MsgID: o.MsgID, MsgType: "execute_request", Session: o.Session, Username: o.Username, Version: protocolVersion})
}

// greetState is the kernel's state a new connection is told.
func (t *translator) greetState() string {
	if t.c.kernel.ExecutionState == "" {
		return "idle"
	}
	return t.c.kernel.ExecutionState
}

// greetStatus is the IOPub status telling a new connection the kernel's
// state (as of the snapshot, ChannelKernel.Seq).
func (t *translator) greetStatus() Message {
	return t.status(t.greetState(), time.Now())
}

// greet asks the kernel for its kernel_info on the connection's behalf, so
// the frontend sees it alive at once (after greetStatus).
func (t *translator) greet() {
	if t.greetState() == "dead" {
		return
	}
	id := newMsgID()
	t.relayRequest(events.ChannelShell, "kernel_info_request", t.header(id, "kernel_info_request", time.Now()), emptyObject, id)
}

// notice writes a stderr stream message to this connection only.
func (t *translator) notice(text string) {
	t.c.write1(Message{Channel: events.ChannelIOPub, Header: t.header(newMsgID(), "stream", time.Now()), ParentHeader: emptyObject,
		Metadata: emptyObject, Content: mustJSON(map[string]string{"name": "stderr", "text": text + "\n"})})
}

// event translates one durable event into the messages this connection
// gets (none for most).
func (t *translator) event(e *events.Event) []Message {
	switch e.Type {
	case events.TypeExecutionQueued:
		p, err := events.As[events.ExecutionQueued](e)
		if err == nil {
			t.rememberBy(p.ExecutionID, p.Origin, e.Principal)
		}
	case events.TypeIOPubMessageReceived:
		p, err := events.As[events.IOPubMessageReceived](e)
		if err != nil {
			return nil
		}
		return []Message{{Channel: events.ChannelIOPub, Header: t.header(p.MsgID, p.MsgType, e.Time),
			ParentHeader: t.iopubParent(p), Metadata: emptyObject, Content: orEmpty(p.Content)}}
	case events.TypeExecutionInputRequested:
		p, err := events.As[events.ExecutionInputRequested](e)
		if err != nil {
			return nil
		}
		o := t.mine(p.ExecutionID)
		if o == nil {
			return nil
		}
		id := newMsgID()
		t.mu.Lock()
		if len(t.inputs) >= maxRelaysPerConn {
			clear(t.inputs)
		}
		t.inputs[id] = p.ExecutionID
		t.mu.Unlock()
		return []Message{{Channel: events.ChannelStdin, Header: t.header(id, "input_request", e.Time), ParentHeader: originHeader(o),
			Metadata: emptyObject, Content: mustJSON(map[string]any{"prompt": p.Prompt, "password": p.Password})}}
	case events.TypeExecutionFinished, events.TypeExecutionInterrupted, events.TypeExecutionCancelled, events.TypeExecutionLost:
		return t.executeReply(e)
	case events.TypeKernelRestarted:
		if t.restartNews(e) {
			return []Message{t.status("restarting", e.Time)}
		}
	case events.TypeKernelDied, events.TypeKernelShutDown, events.TypeKernelLost:
		if e.Seq > t.c.kernel.Seq { // NB: older is history: the greeting said dead
			return []Message{t.status("dead", e.Time)}
		}
	}
	return nil
}

// restartNews reports whether a restart is news to this frontend, told as
// status "restarting" (which frontends take as the server restarting the
// kernel on its own, as jupyter_server's auto-restart, and reconnect): a
// restart it asked for on this connection (shutdown_request with
// restart) is, as jupyter_server tells it; one its own principal asked
// for through REST (POST /api/kernels/<id>/restart, JupyterLab's restart,
// which reconnects by itself) is not, nor one before it attached
// (history the greeting's status tells).
func (t *translator) restartNews(e *events.Event) bool {
	t.mu.Lock()
	asked := t.restartAsked
	t.restartAsked = false
	t.mu.Unlock()
	switch {
	case e.Seq <= t.c.kernel.Seq:
		return false
	case asked:
		return true
	}
	// NB: by the path, not the principal alone: with one token shared by
	// an agent and a person, the agent's restart_kernel is news to the
	// person's JupyterLab; only a REST restart of the same principal
	// (JupyterLab's own) is not.
	return e.Principal == "" || e.Principal != t.c.principal || !t.c.s.ch.restRestarting(t.c.key.kernel, t.c.principal)
}

func (t *translator) status(state string, at time.Time) Message {
	return Message{Channel: events.ChannelIOPub, Header: t.header(newMsgID(), "status", at), ParentHeader: emptyObject,
		Metadata: emptyObject, Content: mustJSON(map[string]string{"execution_state": state})}
}

// execOrigin is an execution's Origin (nil: an agent's) and the principal
// that submitted it.
type execOrigin struct {
	o  *events.Origin
	by string
}

// remember caches the Origin of an execution this connection submitted.
func (t *translator) remember(execID string, o *events.Origin) {
	t.rememberBy(execID, o, t.c.principal)
}

func (t *translator) rememberBy(execID string, o *events.Origin, by string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.origins) >= maxOrigins {
		clear(t.origins) // NB: a miss asks the read model again
	}
	t.origins[execID] = execOrigin{o: o, by: by}
}

// lookup returns an execution's Origin and submitter, from the cache or the
// read model.
func (t *translator) lookup(execID string) execOrigin {
	t.mu.Lock()
	x, ok := t.origins[execID]
	t.mu.Unlock()
	if ok {
		return x
	}
	o, by, err := t.c.s.opts.Channels.Execution(t.c.ctx, t.c.key.kernel, execID)
	if err != nil {
		return execOrigin{}
	}
	t.rememberBy(execID, o, by)
	return execOrigin{o: o, by: by}
}

// origin returns an execution's Origin (nil: an agent's).
func (t *translator) origin(execID string) *events.Origin { return t.lookup(execID).o }

// mine returns the Origin of an execution this frontend session asked for
// (its session_id, by its principal), nil for any other: its replies and
// input requests are for that session alone.
func (t *translator) mine(execID string) *events.Origin {
	x := t.lookup(execID)
	if x.o == nil || x.o.Session != t.c.key.session || x.by != t.c.principal {
		return nil
	}
	return x.o
}

// iopubParent is the parent_header of an IOPub message: the frontend's
// request header for its executions (from the Origin) and, on the
// connection that asked, for its relayed requests; the server's request
// header otherwise.
func (t *translator) iopubParent(p events.IOPubMessageReceived) json.RawMessage {
	if p.ExecutionID != "" {
		if o := t.origin(p.ExecutionID); o != nil {
			return originHeader(o)
		}
		return mustJSON(Header{MsgID: p.ParentMsgID, MsgType: "execute_request", Session: t.c.kernel.Session, Username: serverUsername, Version: protocolVersion})
	}
	if p.ParentMsgID == "" {
		return emptyObject
	}
	t.mu.Lock()
	r, ok := t.relays[p.ParentMsgID]
	if ok && p.MsgType == "status" && strings.Contains(string(p.Content), `"idle"`) {
		if r.replied {
			t.forgetLocked(p.ParentMsgID)
		} else {
			r.idle = true
			t.relays[p.ParentMsgID] = r
		}
	}
	t.mu.Unlock()
	if ok {
		return r.header
	}
	return mustJSON(Header{MsgID: p.ParentMsgID, Session: t.c.kernel.Session, Username: serverUsername, Version: protocolVersion})
}

func (t *translator) forgetLocked(id string) {
	delete(t.relays, id)
	for i, x := range t.relayOrder {
		if x == id {
			t.relayOrder = append(t.relayOrder[:i], t.relayOrder[i+1:]...)
			break
		}
	}
}

// executeReply answers the frontend session that asked for an execution
// when it ends.
func (t *translator) executeReply(e *events.Event) []Message {
	var execID string
	content := map[string]any{}
	switch e.Type {
	case events.TypeExecutionFinished:
		p, err := events.As[events.ExecutionFinished](e)
		if err != nil {
			return nil
		}
		execID = p.ExecutionID
		content["status"] = p.Status
		content["execution_count"] = p.ExecutionCount
		if p.Status == "error" {
			content["ename"], content["evalue"], content["traceback"] = p.ErrorName, p.ErrorValue, orNone(p.Traceback)
		}
		if p.Status == "ok" {
			// NB: what the kernel answered (set_next_input of %load, the
			// page of obj?, user_expressions), recorded on the final event.
			content["payload"], content["user_expressions"] = rawOr(p.ReplyPayload, "[]"), rawOr(p.UserExpressions, "{}")
		}
	case events.TypeExecutionInterrupted:
		p, err := events.As[events.ExecutionInterrupted](e)
		if err != nil {
			return nil
		}
		execID = p.ExecutionID
		content["status"], content["execution_count"] = "error", p.ExecutionCount
		content["ename"], content["evalue"], content["traceback"] = "KeyboardInterrupt", "", []string{}
	case events.TypeExecutionCancelled:
		p, err := events.As[events.ExecutionCancelled](e)
		if err != nil {
			return nil
		}
		execID = p.ExecutionID
		content["status"] = "aborted"
	case events.TypeExecutionLost:
		p, err := events.As[events.ExecutionLost](e)
		if err != nil {
			return nil
		}
		execID = p.ExecutionID
		content["status"], content["execution_count"] = "error", p.ExecutionCount
		content["ename"], content["evalue"], content["traceback"] = "ExecutionLost", p.Reason, []string{"ExecutionLost: " + p.Reason}
	}
	o := t.mine(execID)
	t.mu.Lock()
	delete(t.origins, execID)
	t.mu.Unlock()
	if o == nil {
		return nil
	}
	return []Message{{Channel: events.ChannelShell, Header: t.header(newMsgID(), "execute_reply", e.Time), ParentHeader: originHeader(o),
		Metadata: emptyObject, Content: mustJSON(content)}}
}

// rawOr is JSON text recorded in an event, or def when none was.
func rawOr(text, def string) json.RawMessage {
	if text == "" || !json.Valid([]byte(text)) {
		return json.RawMessage(def)
	}
	return json.RawMessage(text)
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// inbound handles one message from the frontend.
func (t *translator) inbound(m Message) {
	h, err := ParseHeader(m)
	if err != nil {
		t.notice("message ignored: " + err.Error())
		return
	}
	switch m.Channel {
	case events.ChannelShell, events.ChannelControl, events.ChannelStdin:
	default:
		// NB: as jupyter_server, the message is ignored; unlike it, the
		// frontend is told.
		t.c.write1(Message{Channel: events.ChannelIOPub, Header: t.header(newMsgID(), "stream", time.Now()), ParentHeader: m.Header,
			Metadata: emptyObject, Content: mustJSON(map[string]string{"name": "stderr",
				"text": fmt.Sprintf("message %s on unknown channel %q ignored: use shell, control or stdin\n", h.MsgType, clip(m.Channel, 40))})})
		return
	}
	if len(m.Buffers) > 0 {
		// NB: binary buffers are not carried to the kernel yet: refused,
		// never passed on without them (a widget would get half its
		// message).
		why := fmt.Sprintf("%s with %d binary buffer(s) refused: this server does not carry binary buffers to the kernel yet; send the data in the message's content", h.MsgType, len(m.Buffers))
		if strings.HasSuffix(h.MsgType, "_request") {
			t.refuse(m, h, "ValueError", why)
		} else {
			t.c.write1(Message{Channel: events.ChannelIOPub, Header: t.header(newMsgID(), "stream", time.Now()), ParentHeader: m.Header,
				Metadata: emptyObject, Content: mustJSON(map[string]string{"name": "stderr", "text": why + "\n"})})
		}
		return
	}
	ctx := t.c.ctx
	k := t.c.key.kernel
	switch {
	case h.MsgType == "execute_request" && m.Channel == events.ChannelShell:
		// NB: store_history and stop_on_error default to true, as in the
		// messaging spec and ipykernel.
		var req struct {
			Code            string            `json:"code"`
			Silent          bool              `json:"silent"`
			StoreHistory    *bool             `json:"store_history"`
			StopOnError     *bool             `json:"stop_on_error"`
			UserExpressions map[string]string `json:"user_expressions"`
			AllowStdin      bool              `json:"allow_stdin"`
		}
		if err := json.Unmarshal(m.Content, &req); err != nil {
			t.refuse(m, h, "ValueError", "execute_request content: "+err.Error())
			return
		}
		session := t.c.key.session
		o := events.Origin{Kind: events.OriginFrontend, Session: session, MsgID: h.MsgID, Username: clip(h.Username, 120), Client: t.c.client}
		id, err := t.c.s.opts.Channels.Execute(ctx, k, ExecuteRequest{Code: req.Code, AllowStdin: req.AllowStdin, Silent: req.Silent,
			SkipHistory: req.StoreHistory != nil && !*req.StoreHistory, StopOnError: req.StopOnError == nil || *req.StopOnError,
			UserExpressions: req.UserExpressions, Origin: o})
		if err != nil {
			t.refuseErr(m, h, err)
			return
		}
		oc := o
		t.remember(id, &oc)
	case h.MsgType == "input_reply" && m.Channel == events.ChannelStdin:
		var parent Header
		_ = json.Unmarshal(m.ParentHeader, &parent)
		var rep struct {
			Value string `json:"value"`
		}
		_ = json.Unmarshal(m.Content, &rep)
		t.mu.Lock()
		exec, ok := t.inputs[parent.MsgID]
		if !ok && len(t.inputs) == 1 {
			for _, x := range t.inputs {
				exec, ok = x, true
			}
		}
		delete(t.inputs, parent.MsgID)
		t.mu.Unlock()
		if !ok {
			t.notice("input_reply ignored: no input() of yours is waiting")
			return
		}
		if err := t.c.s.opts.Channels.SendInput(ctx, k, exec, rep.Value); err != nil {
			t.notice("input_reply: " + err.Error())
		}
	case h.MsgType == "interrupt_request" && m.Channel == events.ChannelControl:
		t.command(m, h, "interrupt_reply", t.c.s.opts.Channels.Interrupt(ctx, k), nil)
	case h.MsgType == "shutdown_request" && m.Channel == events.ChannelControl:
		var req struct {
			Restart bool `json:"restart"`
		}
		_ = json.Unmarshal(m.Content, &req)
		if !t.c.commanding.CompareAndSwap(false, true) {
			t.refuse(m, h, "RuntimeError", "a shutdown_request of this connection is still running: wait for its shutdown_reply")
			return
		}
		// NB: on a goroutine of the connection's: a restart takes seconds,
		// and the reader meanwhile takes an interrupt_request or an
		// input_reply.
		t.c.bg.Add(1)
		go func() {
			defer t.c.bg.Done()
			defer t.c.commanding.Store(false)
			var err error
			if req.Restart {
				t.mu.Lock()
				t.restartAsked = true
				t.mu.Unlock()
				err = t.c.s.opts.Channels.Restart(ctx, k)
			} else {
				err = t.c.s.opts.Channels.Shutdown(ctx, k)
			}
			t.command(m, h, "shutdown_reply", err, map[string]any{"restart": req.Restart})
		}()
	case m.Channel == events.ChannelStdin:
		t.notice(fmt.Sprintf("message %s on stdin ignored: only input_reply goes there", clip(h.MsgType, 40)))
	default:
		t.relayRequest(m.Channel, h.MsgType, m.Header, m.Content, newMsgID())
	}
}

// relayRequest sends a request that is no execution under a fresh msg_id
// of the server's; its reply comes back to this connection only.
func (t *translator) relayRequest(channel, msgType string, header, content json.RawMessage, id string) {
	// NB: comm messages get no reply: forgotten at their idle alone.
	noReply := msgType == "comm_open" || msgType == "comm_msg" || msgType == "comm_close"
	t.track(id, relay{header: header, msgType: msgType, channel: channel, replied: noReply})
	err := t.c.s.opts.Channels.Relay(t.c.ctx, t.c.key.kernel, RelayRequest{Channel: channel, MsgType: msgType, MsgID: id,
		Content: content, Replies: t.c.replies})
	if errors.Is(err, ErrNotRunning) && msgType == "kernel_info_request" && t.c.held.Add(1) <= maxHeldPerConn {
		// NB: a kernel starting or restarting answers once it runs (no
		// error reply, no made-up idle status that would tell the
		// frontend a state the kernel is not in).
		t.c.bg.Add(1)
		go func() {
			defer t.c.bg.Done()
			defer t.c.held.Add(-1)
			t.holdRelay(channel, msgType, header, content, id)
		}()
		return
	} else if errors.Is(err, ErrNotRunning) && msgType == "kernel_info_request" {
		t.c.held.Add(-1)
	}
	if err != nil {
		t.mu.Lock()
		t.forgetLocked(id)
		t.mu.Unlock()
		h, _ := ParseHeader(Message{Header: header})
		t.refuseErr(Message{Channel: channel, Header: header}, h, err)
	}
}

// holdRelay asks the kernel again until it runs, it is dead, the
// connection ends or holdKernelInfo passes (then the request is refused).
func (t *translator) holdRelay(channel, msgType string, header, content json.RawMessage, id string) {
	ctx, cancel := context.WithTimeout(t.c.ctx, holdKernelInfo)
	defer cancel()
	tick := time.NewTicker(holdKernelInfoEvery)
	defer tick.Stop()
	var err error
	for {
		select {
		case <-ctx.Done():
			if t.c.ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("%w: still not running after %s", ErrNotRunning, holdKernelInfo)
		case <-tick.C:
			err = t.c.s.opts.Channels.Relay(t.c.ctx, t.c.key.kernel, RelayRequest{Channel: channel, MsgType: msgType, MsgID: id,
				Content: content, Replies: t.c.replies})
			if errors.Is(err, ErrNotRunning) {
				if k, kerr := t.c.s.opts.Channels.Kernel(t.c.ctx, t.c.key.kernel); kerr == nil && k.ExecutionState != "dead" {
					continue
				}
			}
		}
		if err == nil {
			return
		}
		t.mu.Lock()
		t.forgetLocked(id)
		t.mu.Unlock()
		h, _ := ParseHeader(Message{Header: header})
		t.refuseErr(Message{Channel: channel, Header: header}, h, err)
		return
	}
}

// track remembers a relayed request, bounded: past maxRelaysPerConn the
// oldest is forgotten (its reply, if it still comes, is dropped).
func (t *translator) track(id string, r relay) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.relays[id] = r
	t.relayOrder = append(t.relayOrder, id)
	for len(t.relayOrder) > maxRelaysPerConn {
		delete(t.relays, t.relayOrder[0])
		t.relayOrder = t.relayOrder[1:]
	}
}

// reply forwards a relayed request's reply to this connection.
func (t *translator) reply(rep events.KernelMessage) {
	t.mu.Lock()
	r, ok := t.relays[rep.ParentMsgID]
	if ok && strings.HasSuffix(rep.MsgType, "_reply") {
		if r.idle {
			t.forgetLocked(rep.ParentMsgID)
		} else {
			r.replied = true
			t.relays[rep.ParentMsgID] = r
		}
	}
	t.mu.Unlock()
	if !ok {
		return // forgotten (bound)
	}
	t.c.write1(Message{Channel: r.channel, Header: t.header(rep.MsgID, rep.MsgType, time.Now()), ParentHeader: r.header,
		Metadata: emptyObject, Content: orEmpty(rep.Content)})
}

// command answers a control request the server performs itself
// (interrupt, shutdown, restart).
func (t *translator) command(m Message, h Header, replyType string, err error, extra map[string]any) {
	if err != nil {
		t.refuseErr(m, h, err)
		return
	}
	content := map[string]any{"status": "ok"}
	for k, v := range extra {
		content[k] = v
	}
	t.c.write1(Message{Channel: m.Channel, Header: t.header(newMsgID(), replyType, time.Now()), ParentHeader: m.Header,
		Metadata: emptyObject, Content: mustJSON(content)})
}

func (t *translator) refuseErr(m Message, h Header, err error) {
	if errors.Is(err, ErrNoAccess) {
		t.refuse(m, h, "PermissionError", err.Error())
		return
	}
	t.refuse(m, h, "RuntimeError", err.Error())
}

// refuse answers a request with an error reply (status "error") to this
// connection, then an idle status with it as parent so that the
// frontend's request completes; the connection stays.
func (t *translator) refuse(m Message, h Header, ename, evalue string) {
	replyType := strings.TrimSuffix(h.MsgType, "_request") + "_reply"
	t.c.write1(Message{Channel: m.Channel, Header: t.header(newMsgID(), replyType, time.Now()), ParentHeader: m.Header, Metadata: emptyObject,
		Content: mustJSON(map[string]any{"status": "error", "ename": ename, "evalue": evalue, "traceback": []string{ename + ": " + evalue}})})
	t.c.write1(Message{Channel: events.ChannelIOPub, Header: t.header(newMsgID(), "status", time.Now()), ParentHeader: m.Header,
		Metadata: emptyObject, Content: mustJSON(map[string]string{"execution_state": "idle"})})
}
