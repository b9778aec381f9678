package jupyterapi

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestChannelsTablesBounded: a connection's relays and origins, and the
// server's resume cursors, stay within their bounds however many come.
func TestChannelsTablesBounded(t *testing.T) {
	tr := newTranslator(&conn{})
	for i := range 3 * maxRelaysPerConn {
		tr.track(fmt.Sprint(i), relay{header: json.RawMessage(`{}`)})
	}
	if len(tr.relays) != maxRelaysPerConn || len(tr.relayOrder) != maxRelaysPerConn {
		t.Fatalf("%d relays (%d in order), bound %d", len(tr.relays), len(tr.relayOrder), maxRelaysPerConn)
	}
	if _, ok := tr.relays[fmt.Sprint(3*maxRelaysPerConn-1)]; !ok {
		t.Fatal("the newest relay was forgotten, not the oldest")
	}
	for i := range 3 * maxOrigins {
		tr.remember(fmt.Sprint(i), &events.Origin{})
	}
	if len(tr.origins) > maxOrigins {
		t.Fatalf("%d origins cached, bound %d", len(tr.origins), maxOrigins)
	}

	var st channelsState
	st.cursors = map[sessionKey]uint64{}
	for i := range 2 * maxCursors {
		st.saveCursor(sessionKey{"k", fmt.Sprint(i)}, uint64(i))
	}
	if len(st.cursors) != maxCursors || len(st.order) != maxCursors {
		t.Fatalf("%d cursors, bound %d", len(st.cursors), maxCursors)
	}
	if seq, ok := st.cursor(sessionKey{"k", fmt.Sprint(2*maxCursors - 1)}); !ok || seq != uint64(2*maxCursors-1) {
		t.Fatal("the newest cursor was dropped")
	}
	if _, ok := st.cursor(sessionKey{"k", "0"}); ok {
		t.Fatal("the oldest cursor was kept past the bound")
	}
}

// TestRelayForgottenAfterReplyAndIdle: a relay is forgotten once both its
// reply and its idle status arrived, in either order, and not before.
func TestRelayForgottenAfterReplyAndIdle(t *testing.T) {
	c := &conn{out: make(chan outMsg, 16), ctrl: make(chan outMsg, ctrlQueue), room: make(chan struct{}, 1), stop: make(chan struct{}), kernel: ChannelKernel{Session: "s"}}
	tr := newTranslator(c)
	c.tr = tr
	idle := func(id string) events.IOPubMessageReceived {
		return events.IOPubMessageReceived{MsgID: "i" + id, ParentMsgID: id, MsgType: "status", Content: json.RawMessage(`{"execution_state":"idle"}`)}
	}
	for _, replyFirst := range []bool{true, false} {
		id := fmt.Sprint("r", replyFirst)
		tr.track(id, relay{header: json.RawMessage(`{"msg_id":"front"}`), channel: "shell"})
		rep := events.KernelMessage{Channel: "shell", MsgID: "x" + id, ParentMsgID: id, MsgType: "complete_reply", Content: json.RawMessage(`{}`)}
		if replyFirst {
			tr.reply(rep)
		} else if p := tr.iopubParent(idle(id)); string(p) != `{"msg_id":"front"}` {
			t.Fatalf("idle parent %s", p)
		}
		if _, ok := tr.relays[id]; !ok {
			t.Fatalf("replyFirst=%v: forgotten after one of reply and idle", replyFirst)
		}
		if replyFirst {
			tr.iopubParent(idle(id))
		} else {
			tr.reply(rep)
		}
		if _, ok := tr.relays[id]; ok {
			t.Fatalf("replyFirst=%v: kept after both", replyFirst)
		}
	}
	if n := len(c.ctrl); n != 2 {
		t.Fatalf("%d replies forwarded, want 2", n)
	}
}

// TestReplyNotSlowBehindAFullFeed: a reply to the frontend while the
// feed's queue is full (a big stream being read at full speed) waits on a
// queue of its own: the connection is not ended as slow. Only its own
// queue overflowing ends it.
func TestReplyNotSlowBehindAFullFeed(t *testing.T) {
	c := &conn{out: make(chan outMsg, outQueue), ctrl: make(chan outMsg, ctrlQueue), room: make(chan struct{}, 1),
		stop: make(chan struct{}), framing: SubprotocolV1, kernel: ChannelKernel{Session: "s"}}
	c.tr = newTranslator(c)
	for range outQueue {
		c.out <- outMsg{data: make([]byte, outQueueBytes/outQueue)}
	}
	c.queued.Store(outQueueBytes)
	c.tr.notice("a reply")
	select {
	case <-c.stop:
		t.Fatalf("ended as %q behind a full feed queue", c.endWith.reason)
	default:
	}
	for range ctrlQueue {
		c.tr.notice("flood")
	}
	select {
	case <-c.stop:
		if c.endWith.code != CloseSlowFrontend {
			t.Fatalf("ended with %d, want 4008", c.endWith.code)
		}
	default:
		t.Fatalf("%d own messages queued past the bound %d without ending", len(c.ctrl), ctrlQueue)
	}
}
