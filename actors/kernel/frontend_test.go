package kernel

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestRelaysAreBounded: past MaxRelays waiting, the oldest is forgotten:
// its late reply reaches no one, the newest's still does.
func TestRelaysAreBounded(t *testing.T) {
	s := NewOutputState("k")
	ch := make(chan Reply, 1)
	total := 0
	for i := range MaxRelays + 3 {
		var n int
		s, n = ExpectRelay(s, fmt.Sprintf("r%d", i), ch)
		total += n
	}
	if s.Relays.Len() != MaxRelays || total != 3 {
		t.Fatalf("%d relays waiting, %d forgotten; want %d and 3", s.Relays.Len(), total, MaxRelays)
	}
	if s.Relays.Waiting("r0") || s.Relays.Waiting("r2") || !s.Relays.Waiting("r3") {
		t.Fatal("the oldest must be the ones forgotten")
	}
	s, _, effs := Step(s, []Incoming{{Channel: ChannelShell, MsgID: "m1", ParentMsgID: "r0", MsgType: "kernel_info_reply"}})
	if len(effs) != 0 {
		t.Fatalf("a forgotten relay's reply was delivered: %+v", effs)
	}
	last := fmt.Sprintf("r%d", MaxRelays+2)
	_, _, effs = Step(s, []Incoming{{Channel: ChannelShell, MsgID: "m2", ParentMsgID: last, MsgType: "kernel_info_reply"}})
	if len(effs) != 1 {
		t.Fatalf("the newest relay's reply: %+v", effs)
	}
}

// TestRelayReplyTranscript: what the kernel sends with a relayed request
// as parent on shell or control is delivered to its asker; the request is
// forgotten at its *_reply; its IOPub is recorded on the kernel's stream
// like any other; a death forgets every relay.
func TestRelayReplyTranscript(t *testing.T) {
	s := NewOutputState("k")
	a, b := make(chan Reply, 4), make(chan Reply, 4)
	s, _ = ExpectRelay(s, "ra", a)
	s, _ = ExpectRelay(s, "rb", b)
	s, drafts, effs := Step(s, []Incoming{
		{Channel: ChannelIOPub, MsgID: "i1", ParentMsgID: "ra", MsgType: "status", Content: []byte(`{"execution_state":"busy"}`)},
		{Channel: ChannelShell, MsgID: "m1", ParentMsgID: "ra", MsgType: "complete_reply", Content: []byte(`{"status":"ok"}`)},
		{Channel: ChannelControl, MsgID: "m2", ParentMsgID: "rb", MsgType: "debug_event_like", Content: []byte(`{}`)},
	})
	if len(drafts) != 1 || drafts[0].Stream != events.KernelStream("k") {
		t.Fatalf("the relay's IOPub must be recorded on the kernel's stream: %+v", drafts)
	}
	if len(effs) != 2 {
		t.Fatalf("effects: %+v", effs)
	}
	if d := effs[0].(DeliverReply); d.Replies != a || d.Msg.MsgID != "m1" {
		t.Fatalf("first delivery: %+v", d)
	}
	if d := effs[1].(DeliverReply); d.Replies != b || d.Msg.MsgID != "m2" {
		t.Fatalf("second delivery: %+v", d)
	}
	if s.Relays.Waiting("ra") || !s.Relays.Waiting("rb") {
		t.Fatal("ra is answered (forgotten); rb had no *_reply yet (still waiting)")
	}
	s, _, _ = Lose(s, "died", "")
	if s.Relays.Len() != 0 {
		t.Fatal("a connection's end forgets every relay")
	}
}

func TestDecideRelay(t *testing.T) {
	running := State{ID: "k", Status: StatusRunning}
	ok := Relay{Channel: ChannelShell, MsgType: "inspect_request", MsgID: "m1", Content: []byte(`{"code":"x","cursor_pos":1}`)}
	if err := DecideRelay(running, ok); err != nil {
		t.Fatal(err)
	}
	if err := DecideRelay(State{ID: "k", Status: StatusDead}, ok); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("relay to a dead kernel: %v", err)
	}
	bad := ok
	bad.MsgID = "not an id!"
	if err := DecideRelay(running, bad); !errors.Is(err, ErrNotRelayed) {
		t.Fatalf("a msg id of another shape: %v", err)
	}
	if RelayAnswered("comm_msg") || !RelayAnswered("debug_request") {
		t.Fatal("comm messages have no reply; debug_request has")
	}
}

// TestSessionsAreBounded: a kernel takes at most MaxSessions sessions; a
// session already open may still change.
func TestSessionsAreBounded(t *testing.T) {
	s := State{ID: "k", Status: StatusRunning}
	var seq uint64
	for i := range MaxSessions {
		drafts, err := DecideOpenSession(s, OpenSession{SessionID: fmt.Sprint(i), Path: "p"})
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		seq++
		s = Apply(s, events.Event{Seq: seq, Type: events.TypeKernelSessionOpened, Payload: drafts[0].Payload})
	}
	if _, err := DecideOpenSession(s, OpenSession{SessionID: "one more", Path: "p"}); !errors.Is(err, ErrBadSession) {
		t.Fatalf("session %d: %v", MaxSessions+1, err)
	}
	if d, err := DecideOpenSession(s, OpenSession{SessionID: "0", Path: "moved"}); err != nil || len(d) != 1 {
		t.Fatalf("an open session moves: %v %v", d, err)
	}
	s = Apply(s, events.Event{Seq: seq + 1, Type: events.TypeKernelShutDown, Payload: events.KernelShutDown{KernelID: "k"}})
	if len(s.Sessions) != 0 {
		t.Fatalf("a shut-down kernel holds %d sessions", len(s.Sessions))
	}
}

// TestFrontendsSeenAreBounded: the actor remembers at most
// MaxFrontendsSeen sessions; the oldest forgotten is recorded again.
func TestFrontendsSeenAreBounded(t *testing.T) {
	var f seenFrontends
	for i := range MaxFrontendsSeen + 1 {
		f.add(fmt.Sprint(i))
	}
	if len(f.set) != MaxFrontendsSeen || len(f.order) != MaxFrontendsSeen || f.has("0") || !f.has(fmt.Sprint(MaxFrontendsSeen)) {
		t.Fatalf("%d remembered, oldest kept: %v", len(f.set), f.has("0"))
	}
	d, err := DecideAttachFrontend(State{ID: "k", Status: StatusRunning}, AttachFrontend{Session: "0", Framing: "legacy"}, f.has("0"))
	if err != nil || len(d) != 1 {
		t.Fatalf("a forgotten session is recorded again: %v %v", d, err)
	}
}
