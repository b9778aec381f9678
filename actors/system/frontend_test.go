package system_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestRelayRepliesGoToTheAskerOnly: a frontend's complete_request and
// kernel_info_request (shell and control), relayed to a real ipykernel
// under the server's msg ids, are answered to the channel that asked and
// to no other; their IOPub statuses are recorded on the kernel's stream.
// The kernel is named in UUID form, as a frontend names it.
func TestRelayRepliesGoToTheAskerOnly(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	uuid, ok := events.UUIDForm(k)
	if !ok {
		t.Fatalf("kernel id %s has no UUID form", k)
	}
	ctx := context.Background()
	a, b := make(chan kernel.Reply, 8), make(chan kernel.Reply, 8)
	completeID, infoID, controlID := events.NewID(time.Now()), events.NewID(time.Now()), events.NewID(time.Now())
	if err := s.System.Relay(ctx, uuid, kernel.Relay{Channel: kernel.ChannelShell, MsgType: "complete_request", MsgID: completeID,
		Content: []byte(`{"code":"impo","cursor_pos":4}`), By: "admin", Replies: a}); err != nil {
		t.Fatalf("relay complete_request: %v", err)
	}
	if err := s.System.Relay(ctx, k, kernel.Relay{Channel: kernel.ChannelShell, MsgType: "kernel_info_request", MsgID: infoID,
		By: "admin", Replies: b}); err != nil {
		t.Fatalf("relay kernel_info_request: %v", err)
	}
	if err := s.System.Relay(ctx, k, kernel.Relay{Channel: kernel.ChannelControl, MsgType: "kernel_info_request", MsgID: controlID,
		By: "admin", Replies: b}); err != nil {
		t.Fatalf("relay kernel_info_request on control: %v", err)
	}

	got := testkit.Receive(t, a, 30*time.Second, "the complete_reply")
	var complete struct {
		Status  string   `json:"status"`
		Matches []string `json:"matches"`
	}
	if got.Channel != kernel.ChannelShell || got.MsgType != "complete_reply" || got.ParentMsgID != completeID ||
		json.Unmarshal(got.Content, &complete) != nil || complete.Status != "ok" || !contains(complete.Matches, "import") {
		t.Fatalf("complete_reply: %+v (%s)", got, got.Content)
	}
	byParent := map[string]kernel.Reply{}
	for range 2 {
		r := testkit.Receive(t, b, 30*time.Second, "a kernel_info_reply")
		byParent[r.ParentMsgID] = r
	}
	if r := byParent[infoID]; r.Channel != kernel.ChannelShell || r.MsgType != "kernel_info_reply" || !strings.Contains(string(r.Content), `"implementation"`) {
		t.Fatalf("shell kernel_info_reply: %+v", r)
	}
	if r := byParent[controlID]; r.Channel != kernel.ChannelControl || r.MsgType != "kernel_info_reply" {
		t.Fatalf("control kernel_info_reply: %+v", r)
	}
	// NB: the shell replies came in order (complete, then kernel_info): the
	// asker of the first already has everything it will get.
	select {
	case r := <-a:
		t.Fatalf("a reply to another asker reached the complete_request's channel: %+v", r)
	default:
	}
	for _, id := range []string{completeID, infoID} {
		e := s.WaitEvent(k, 0, func(e events.Event) bool {
			p, ok := e.Payload.(events.IOPubMessageReceived)
			return ok && p.ParentMsgID == id && p.MsgType == "status" && strings.Contains(string(p.Content), "idle")
		}, 30*time.Second)
		if e.Stream != events.KernelStream(k) {
			t.Fatalf("the relayed request's IOPub is on %s, want the kernel's stream", e.Stream)
		}
	}
}

// TestRelayRefusesWhatIsNotRelayed: executions, interrupts, input and
// unknown channels have their own commands; a msg_id already waiting, bad
// content and an unknown kernel are refused with a clear error, and the
// kernel still answers afterwards.
func TestRelayRefusesWhatIsNotRelayed(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ctx := context.Background()
	replies := make(chan kernel.Reply, 4)
	for _, c := range []struct {
		r    kernel.Relay
		want string
	}{
		{kernel.Relay{Channel: kernel.ChannelShell, MsgType: "execute_request", Content: []byte(`{"code":"1"}`)}, "is an execution"},
		{kernel.Relay{Channel: kernel.ChannelControl, MsgType: "shutdown_request"}, "Shutdown command"},
		{kernel.Relay{Channel: kernel.ChannelStdin, MsgType: "input_reply"}, "relayed on shell or control"},
		{kernel.Relay{Channel: "iopub", MsgType: "status"}, "relayed on shell or control"},
		{kernel.Relay{Channel: kernel.ChannelShell, MsgType: "complete_request", Content: []byte(`[1,2]`)}, "must be a JSON object"},
		{kernel.Relay{Channel: kernel.ChannelShell, MsgType: "custom_request"}, "relays only"},
	} {
		c.r.MsgID, c.r.Replies = events.NewID(time.Now()), replies
		err := s.System.Relay(ctx, k, c.r)
		if !errors.Is(err, kernel.ErrNotRelayed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("relay %s on %s: %v, want ErrNotRelayed saying %q", c.r.MsgType, c.r.Channel, err, c.want)
		}
	}
	if err := s.System.Relay(ctx, "01kzzzzzzzzzzzzzzzzzzzzzzz", kernel.Relay{Channel: kernel.ChannelShell, MsgType: "kernel_info_request",
		MsgID: events.NewID(time.Now()), Replies: replies}); !errors.Is(err, system.ErrUnknownKernel) {
		t.Errorf("relay to an unknown kernel: %v", err)
	}

	// A msg_id waiting for its reply (the shell is held by an execution)
	// cannot be relayed again.
	hold := testkit.NewSentinel(t)
	x := submit(t, s, k, hold.Code("pass"))
	s.WaitOutput(k, x, "waiting", 30*time.Second)
	id := events.NewID(time.Now())
	info := kernel.Relay{Channel: kernel.ChannelShell, MsgType: "kernel_info_request", MsgID: id, Replies: replies}
	if err := s.System.Relay(ctx, k, info); err != nil {
		t.Fatal(err)
	}
	if err := s.System.Relay(ctx, k, info); !errors.Is(err, kernel.ErrNotRelayed) || !strings.Contains(err.Error(), "already waiting") {
		t.Fatalf("the same msg_id twice: %v", err)
	}
	hold.Release()
	if r := testkit.Receive(t, replies, 30*time.Second, "the kernel_info_reply"); r.ParentMsgID != id || r.MsgType != "kernel_info_reply" {
		t.Fatalf("reply: %+v", r)
	}
}

// TestRelayNeverWaitsForAFullChannel: an asker that reads nothing loses
// the replies past its channel's room; the kernel actor goes on answering
// (its mailbox is not stuck on the send).
func TestRelayNeverWaitsForAFullChannel(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ctx := context.Background()
	full := make(chan kernel.Reply, 1)
	var last string
	for range 3 {
		last = events.NewID(time.Now())
		if err := s.System.Relay(ctx, k, kernel.Relay{Channel: kernel.ChannelShell, MsgType: "kernel_info_request", MsgID: last, Replies: full}); err != nil {
			t.Fatal(err)
		}
	}
	// The last request's IOPub idle comes after its reply was handled.
	s.WaitEvent(k, 0, func(e events.Event) bool {
		p, ok := e.Payload.(events.IOPubMessageReceived)
		return ok && p.ParentMsgID == last && p.MsgType == "status" && strings.Contains(string(p.Content), "idle")
	}, 30*time.Second)
	x := submit(t, s, k, "print('still served')")
	if got := s.WaitExecution(x, 30*time.Second); got.Status != "ok" {
		t.Fatalf("execution after a full reply channel: %+v", got)
	}
	if len(full) != 1 {
		t.Fatalf("the channel holds %d replies, want its 1 slot filled", len(full))
	}
}

// TestFrontendSessionsAreRecorded: FrontendAttached is recorded once per
// session per server process (again after a restart of the server);
// Jupyter sessions open, change, close, and a shut-down kernel holds none.
func TestFrontendSessionsAreRecorded(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	uuid, _ := events.UUIDForm(k)
	ctx := context.Background()
	attach := func(session string) {
		t.Helper()
		if _, err := s.System.AttachFrontend(ctx, uuid, kernel.AttachFrontend{Session: session, Username: "ann", Client: "test",
			Framing: "v1.kernel.websocket.jupyter.org", By: "admin"}); err != nil {
			t.Fatalf("attach %s: %v", session, err)
		}
	}
	count := func(typ string) int {
		n := 0
		if err := s.Log.ReadStream(ctx, events.KernelStream(k), 0, func(e events.Event) error {
			if e.Type == typ {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	attach("s1")
	attach("s1")
	attach("s2")
	if n := count(events.TypeFrontendAttached); n != 2 {
		t.Fatalf("FrontendAttached %d times for two sessions, want 2", n)
	}
	if _, err := s.System.AttachFrontend(ctx, k, kernel.AttachFrontend{Framing: "legacy"}); !errors.Is(err, kernel.ErrBadSession) {
		t.Fatalf("attach without a session: %v", err)
	}

	open := func(o kernel.OpenSession) kernel.State {
		t.Helper()
		st, err := s.System.OpenSession(ctx, uuid, o)
		if err != nil {
			t.Fatalf("open session %+v: %v", o, err)
		}
		return st
	}
	open(kernel.OpenSession{SessionID: "a", Path: "x.ipynb", Type: "notebook", By: "admin"})
	open(kernel.OpenSession{SessionID: "a", Path: "x.ipynb", Type: "notebook", By: "admin"})
	st := open(kernel.OpenSession{SessionID: "a", Path: "y.ipynb", Type: "notebook", By: "admin"})
	st2 := open(kernel.OpenSession{SessionID: "b", Path: "c.py", Type: "console", By: "admin"})
	if n := count(events.TypeKernelSessionOpened); n != 3 || st.Sessions["a"].Path != "y.ipynb" || len(st2.Sessions) != 2 {
		t.Fatalf("opened %d times (want 3: a repeat records nothing); state %+v", n, st2.Sessions)
	}
	st, err := s.System.CloseSession(ctx, k, kernel.CloseSession{SessionID: "b", Reason: "deleted", By: "admin"})
	if err != nil || len(st.Sessions) != 1 {
		t.Fatalf("close b: %v %+v", err, st.Sessions)
	}
	if _, err := s.System.CloseSession(ctx, k, kernel.CloseSession{SessionID: "b"}); !errors.Is(err, kernel.ErrBadSession) {
		t.Fatalf("close a closed session: %v", err)
	}

	s.Restart()
	if st, err := s.System.Kernel(ctx, k); err != nil || st.Sessions["a"].Path != "y.ipynb" {
		t.Fatalf("sessions after a server restart (rebuilt from the stream): %v %+v", err, st.Sessions)
	}
	attach("s1")
	if n := count(events.TypeFrontendAttached); n != 3 {
		t.Fatalf("FrontendAttached %d times, want s1 recorded again by the new process (3)", n)
	}
	s.WaitExecution(submit(t, s, k, "1"), 30*time.Second) // NB: re-attached and reconciled: a shutdown is taken
	if err := s.System.ShutdownKernel(ctx, uuid, "admin"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.System.Kernel(ctx, k); err != nil || len(st.Sessions) != 0 {
		t.Fatalf("a shut-down kernel holds no session: %v %+v", err, st.Sessions)
	}
	if _, err := s.System.OpenSession(ctx, k, kernel.OpenSession{SessionID: "c", Path: "z.ipynb"}); !errors.Is(err, kernel.ErrNotRunning) {
		t.Fatalf("open a session on a shut-down kernel: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestRestartForgetsRelays: a relayed request still waiting when the
// kernel is restarted is forgotten with the old process: its msg_id can be
// relayed again to the new one (it would be refused as "already waiting"
// otherwise), and that answer reaches the asker.
func TestRestartForgetsRelays(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ctx := context.Background()
	hold := testkit.NewSentinel(t)
	x := submit(t, s, k, hold.Code("pass"))
	s.WaitOutput(k, x, "waiting", 30*time.Second)
	replies := make(chan kernel.Reply, 4)
	info := kernel.Relay{Channel: kernel.ChannelShell, MsgType: "kernel_info_request", MsgID: events.NewID(time.Now()), Replies: replies}
	if err := s.System.Relay(ctx, k, info); err != nil {
		t.Fatal(err)
	}
	if err := s.System.RestartKernel(ctx, k, "admin"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := s.System.Relay(ctx, k, info); err != nil {
		t.Fatalf("relay the same msg_id to the restarted kernel: %v", err)
	}
	if r := testkit.Receive(t, replies, 30*time.Second, "the new process's kernel_info_reply"); r.ParentMsgID != info.MsgID {
		t.Fatalf("reply: %+v", r)
	}
	select {
	case r := <-replies:
		t.Fatalf("a second reply (the old process's?): %+v", r)
	default:
	}
}
