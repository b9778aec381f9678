package kernel

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Transcripts of Step, Readopt and Died, as raft tests its state machine:
// given what is in flight and these incoming messages, expect these events
// (one line each: stream, type, detail) and these effects. No kernel.

func iopub(parent, msgType, content string) Incoming {
	return Incoming{Channel: ChannelIOPub, MsgID: "o-" + msgType, ParentMsgID: parent, MsgType: msgType, Content: json.RawMessage(content)}
}

func shell(parent, msgType, content string) Incoming {
	return Incoming{Channel: ChannelShell, MsgID: "r-" + parent, ParentMsgID: parent, MsgType: msgType, Content: json.RawMessage(content)}
}

const (
	busy = `{"execution_state":"busy"}`
	idle = `{"execution_state":"idle"}`
	ok   = `{"status":"ok","execution_count":3}`
)

func renderDraft(d events.Draft) string {
	detail := ""
	switch p := d.Payload.(type) {
	case events.IOPubMessageReceived:
		detail = p.MsgType
		if p.ExecutionID != "" {
			detail += " of " + p.ExecutionID
		}
	case events.ExecutionFinished:
		detail = fmt.Sprintf("%s count=%d %s", p.Status, p.ExecutionCount, p.ErrorName)
	case events.ExecutionLost:
		detail = p.Reason
	case events.IOPubGapRecorded:
		detail = fmt.Sprintf("dropped=%d", p.Dropped)
	case events.ExecutionOutputLost:
		detail = fmt.Sprintf("messages=%d %s", p.Messages, p.Reason)
	case events.KernelDied:
		detail = p.Reason
	case events.ExecutionInputRequested:
		detail = p.Prompt
	}
	return strings.TrimSpace(d.Stream + " " + d.Payload.EventType() + " " + detail)
}

func renderEffect(e Effect) string {
	switch e := e.(type) {
	case SendRequest:
		return "send " + e.Channel + " " + e.MsgType + " " + e.MsgID
	case Ended:
		return "ended " + e.ExecutionID + " " + e.Status
	case WarnUnknownIOPub:
		return "warn " + e.MsgType
	}
	return fmt.Sprintf("%T", e)
}

func check(t *testing.T, drafts []events.Draft, effs []Effect, wantEvents, wantEffects []string) {
	t.Helper()
	var got []string
	for _, d := range drafts {
		got = append(got, renderDraft(d))
	}
	if strings.Join(got, "\n") != strings.Join(wantEvents, "\n") {
		t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantEvents, "\n  "))
	}
	got = nil
	for _, e := range effs {
		got = append(got, renderEffect(e))
	}
	if strings.Join(got, "\n") != strings.Join(wantEffects, "\n") {
		t.Errorf("effects:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantEffects, "\n  "))
	}
}

func TestStepTranscripts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		batches     [][]Incoming // one Step each; events and effects are concatenated
		wantEvents  []string
		wantEffects []string
		inflight    int // executions still in flight at the end
	}{{
		name: "idle before reply: finished after every output, in the reply's batch",
		batches: [][]Incoming{{iopub("m1", "status", busy), iopub("m1", "stream", `{"name":"stdout","text":"hi"}`), iopub("m1", "status", idle)},
			{shell("m1", "execute_reply", ok)}},
		wantEvents: []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 IOPubMessageReceived stream of x1",
			"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionFinished ok count=3"},
		wantEffects: []string{"ended x1 ok"},
	}, {
		name:    "reply before idle: an idle probe, then finished with the idle status",
		batches: [][]Incoming{{iopub("m1", "status", busy), shell("m1", "execute_reply", ok)}, {iopub("m1", "status", idle)}},
		wantEvents: []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 IOPubMessageReceived status of x1",
			"execution/x1 ExecutionFinished ok count=3"},
		wantEffects: []string{"send shell kernel_info_request m1-idle-probe-1", "ended x1 ok"},
	}, {
		name: "idle dropped by the kernel: the probe's own IOPub proves it, a gap is recorded",
		batches: [][]Incoming{{shell("m1", "execute_reply", ok)}, {shell("m1-idle-probe-1", "kernel_info_reply", `{}`)},
			{iopub("m1-idle-probe-2", "status", busy)}},
		wantEvents: []string{"kernel/k IOPubGapRecorded dropped=1", "execution/x1 ExecutionFinished ok count=3",
			"kernel/k IOPubMessageReceived status"},
		wantEffects: []string{"send shell kernel_info_request m1-idle-probe-1", "send shell kernel_info_request m1-idle-probe-2", "ended x1 ok"},
	}, {
		name:        "KeyboardInterrupt is an interruption",
		batches:     [][]Incoming{{shell("m1", "execute_reply", `{"status":"error","ename":"KeyboardInterrupt","execution_count":2}`), iopub("m1", "status", idle)}},
		wantEvents:  []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionInterrupted"},
		wantEffects: []string{"send shell kernel_info_request m1-idle-probe-1", "ended x1 interrupted"},
	}, {
		name:        "unreadable reply: an error naming the protocol",
		batches:     [][]Incoming{{iopub("m1", "status", idle), shell("m1", "execute_reply", `{`)}},
		wantEvents:  []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionFinished error count=0 ProtocolError"},
		wantEffects: []string{"ended x1 error"},
	}, {
		name: "unknown IOPub types are dropped and warned once; output with no parent of ours goes to the kernel stream",
		batches: [][]Incoming{{iopub("m1", "stream", `{}`), iopub("m1", "teleport", `{}`), iopub("m1", "teleport", `{}`),
			iopub("other", "stream", `{}`)}},
		wantEvents:  []string{"execution/x1 IOPubMessageReceived stream of x1", "kernel/k IOPubMessageReceived stream"},
		wantEffects: []string{"warn teleport"},
		inflight:    1,
	}, {
		name:        "a gap marker from the connection's queue is recorded in order",
		batches:     [][]Incoming{{iopub("m1", "stream", `{}`), {Dropped: 7}, iopub("m1", "stream", `{}`)}},
		wantEvents:  []string{"execution/x1 IOPubMessageReceived stream of x1", "kernel/k IOPubGapRecorded dropped=7", "execution/x1 IOPubMessageReceived stream of x1"},
		wantEffects: nil,
		inflight:    1,
	}, {
		name:       "input_request is recorded on the execution's stream; replies to other requests are ignored",
		batches:    [][]Incoming{{{Channel: ChannelStdin, ParentMsgID: "m1", MsgType: "input_request", Content: json.RawMessage(`{"prompt":"name?"}`)}, shell("zz", "execute_reply", ok)}},
		wantEvents: []string{"execution/x1 ExecutionInputRequested name?"},
		inflight:   1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := Expect(NewOutputState("k"), "m1", "x1", "")
			var drafts []events.Draft
			var effs []Effect
			for _, b := range tc.batches {
				var d []events.Draft
				var e []Effect
				s, d, e = Step(s, b)
				drafts, effs = append(drafts, d...), append(effs, e...)
			}
			check(t, drafts, effs, tc.wantEvents, tc.wantEffects)
			if len(s.Inflight) != tc.inflight {
				t.Errorf("%d in flight at the end, want %d", len(s.Inflight), tc.inflight)
			}
		})
	}
}

// TestReadoptTranscripts: after a re-attach, the barrier decides. Its
// reply first: the execution ended while we were away (lost, never
// resent). The execution's reply first: it finishes as usual.
func TestReadoptTranscripts(t *testing.T) {
	s, effs := Readopt(NewOutputState("k"), "m1", "x1", "", "b1", Away{})
	check(t, nil, effs, nil, []string{"send shell kernel_info_request b1"})
	_, d, e := Step(s, []Incoming{shell("b1", "kernel_info_reply", `{}`), shell("m1", "execute_reply", ok)})
	check(t, d, e, []string{"execution/x1 ExecutionLost the server restarted during this execution and its result was not observed; the kernel (and its variables) survived — re-run it if needed"},
		[]string{"ended x1 lost"})

	s, _ = Readopt(NewOutputState("k"), "m1", "x1", "", "b1", Away{})
	s, d, e = Step(s, []Incoming{shell("m1", "execute_reply", ok), iopub("m1", "status", idle), shell("b1", "kernel_info_reply", `{}`)})
	check(t, d, e, []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionFinished ok count=3"},
		[]string{"send shell kernel_info_request m1-idle-probe-1", "ended x1 ok"})
	if len(s.Inflight) != 0 || len(s.Barriers) != 0 {
		t.Fatalf("left over: %+v", s)
	}
}

// TestDiedTranscripts: a connection's end records what the kernel had sent,
// the loss of what was in flight, and KernelDied unless we stopped it.
func TestDiedTranscripts(t *testing.T) {
	code := 9
	death := Death{Reason: "the kernel process exited (signal: killed)", ExitCode: &code}
	s := Expect(NewOutputState("k"), "m1", "x1", "")
	s, d, e := Died(s, []Incoming{iopub("m1", "stream", `{}`)}, death, false, "")
	check(t, d, e, []string{"execution/x1 IOPubMessageReceived stream of x1",
		"execution/x1 ExecutionLost the kernel died during the execution: the kernel process exited (signal: killed)",
		"kernel/k KernelDied the kernel process exited (signal: killed)"}, []string{"ended x1 lost"})
	if len(Running(s)) != 0 {
		t.Fatalf("still running: %v", Running(s))
	}
	s = Expect(NewOutputState("k"), "m1", "x1", "")
	_, d, e = Died(s, nil, Death{}, true, "")
	check(t, d, e, []string{"execution/x1 ExecutionLost the kernel was stopped during the execution"}, []string{"ended x1 lost"})
	_, d, e = Died(NewOutputState("k"), nil, Death{}, true, "")
	check(t, d, e, nil, nil)
}

// counted is a kernel message whose msg_id carries the Session counter n.
func counted(m Incoming, n int) Incoming {
	m.MsgID = fmt.Sprintf("sess_1_%d", n)
	return m
}

// TestGapTranscripts: holes in the kernel's message counters within an
// execution end it with ExecutionOutputLost before its final event; a run
// with no hole has none; a re-adopted execution counts what the kernel
// sent while the server was away.
func TestGapTranscripts(t *testing.T) {
	const lost = "execution/x1 ExecutionOutputLost messages=%d %s"
	s := Expect(NewOutputState("k"), "m1", "x1", "")
	_, d, _ := Step(s, []Incoming{counted(iopub("m1", "status", busy), 10), counted(iopub("m1", "stream", `{}`), 11),
		counted(shell("m1", "execute_reply", ok), 12), counted(iopub("m1", "status", idle), 13)})
	check(t, d, nil, []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 IOPubMessageReceived stream of x1",
		"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionFinished ok count=3"}, nil)

	s = Expect(NewOutputState("k"), "m1", "x1", "")
	s, _, _ = Step(s, []Incoming{counted(iopub("m1", "status", busy), 10), counted(iopub("m1", "stream", `{}`), 11)})
	// 12..88 dropped by the kernel's PUB socket: 77 messages
	_, d, e := Step(s, []Incoming{counted(iopub("m1", "stream", `{}`), 89), counted(shell("m1", "execute_reply", ok), 90),
		counted(iopub("m1", "status", idle), 91)})
	check(t, d, e, []string{"execution/x1 IOPubMessageReceived stream of x1", "execution/x1 IOPubMessageReceived status of x1",
		fmt.Sprintf(lost, 77, holeReason), "execution/x1 ExecutionFinished ok count=3"}, []string{"send shell kernel_info_request m1-idle-probe-1", "ended x1 ok"})

	// Re-adopted: its last recorded message was counter 40; the kernel
	// printed 41..49 while the server was down.
	away := Away{LastMsgID: "sess_1_40", Reason: "outputs printed while the server was down from T1 to T2 are missing"}
	s, _ = Readopt(NewOutputState("k"), "m1", "x1", "", "b1", away)
	_, d, _ = Step(s, []Incoming{counted(iopub("m1", "stream", `{}`), 50), counted(shell("m1", "execute_reply", ok), 51),
		counted(iopub("m1", "status", idle), 52), counted(shell("b1", "kernel_info_reply", `{}`), 53)})
	check(t, d, nil, []string{"execution/x1 IOPubMessageReceived stream of x1", "execution/x1 IOPubMessageReceived status of x1",
		fmt.Sprintf(lost, 9, away.Reason+"; or "+holeReason), "execution/x1 ExecutionFinished ok count=3"}, nil)

	// Re-adopted and over before the re-attach: what it sent after
	// counter 40 up to the barrier's reply is gone with it.
	s, _ = Readopt(NewOutputState("k"), "m1", "x1", "", "b1", away)
	_, d, _ = Step(s, []Incoming{counted(shell("b1", "kernel_info_reply", `{}`), 45)})
	if len(d) != 2 || renderDraft(d[0]) != fmt.Sprintf(lost, 4, away.Reason+"; or "+holeReason) {
		t.Fatalf("lost while away: %v", d)
	}

	// Nothing recorded before the restart: an unknown number.
	s, _ = Readopt(NewOutputState("k"), "m1", "x1", "", "b1", Away{Reason: away.Reason})
	_, d, _ = Step(s, []Incoming{shell("m1", "execute_reply", ok), iopub("m1", "status", idle)})
	check(t, d, nil, []string{"execution/x1 IOPubMessageReceived status of x1", fmt.Sprintf(lost, 0, away.Reason),
		"execution/x1 ExecutionFinished ok count=3"}, nil)
}

// TestGapMarkerAndUnrecorded: without counters, the connection's gap
// marker counts against the execution in flight; a batch the log refused
// (Unrecorded) counts too. Both are one ExecutionOutputLost each.
func TestGapMarkerAndUnrecorded(t *testing.T) {
	s := Expect(NewOutputState("k"), "m1", "x1", "")
	s, _, _ = Step(s, []Incoming{{Channel: ChannelIOPub, Dropped: 5}})
	s = Unrecorded(s, []Incoming{iopub("m1", "stream", `{}`), iopub("m1", "stream", `{}`), iopub("other", "stream", `{}`)}, "the disk is full")
	_, d, _ := Step(s, []Incoming{shell("m1", "execute_reply", ok), iopub("m1", "status", idle)})
	want := []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionOutputLost messages=7 the disk is full",
		"execution/x1 ExecutionFinished ok count=3"}
	check(t, d, nil, want, nil)
}

// TestAbortTranscript: a pipelined execution asked not to run that the
// kernel answers "aborted" (with a busy status and no idle, as ipykernel
// does) is recorded cancelled at once; one the kernel had already taken up
// records its real outcome.
func TestAbortTranscript(t *testing.T) {
	s := Expect(Expect(NewOutputState("k"), "m1", "x1", ""), "m2", "x2", "")
	s, msgID := RequestAbort(s, "x2", "cancelled by client", "bob")
	if msgID != "m2" {
		t.Fatalf("abort names %q", msgID)
	}
	s, d, e := Step(s, []Incoming{shell("m1", "execute_reply", ok), iopub("m1", "status", idle),
		iopub("m2", "status", busy), shell("m2", "execute_reply", `{"status":"aborted"}`)})
	check(t, d, e, []string{"execution/x1 IOPubMessageReceived status of x1", "execution/x1 ExecutionFinished ok count=3",
		"execution/x2 IOPubMessageReceived status of x2", "execution/x2 ExecutionCancelled"},
		[]string{"send shell kernel_info_request m1-idle-probe-1", "ended x1 ok", "ended x2 cancelled"})
	if d[len(d)-1].Principal != "bob" || len(s.Inflight) != 0 {
		t.Fatalf("the cancel carries its principal and nothing stays in flight: %+v %+v", d[len(d)-1], s.Inflight)
	}

	s = Expect(NewOutputState("k"), "m2", "x2", "")
	s, _ = RequestAbort(s, "x2", "cancelled by client", "bob")
	_, d, e = Step(s, []Incoming{iopub("m2", "status", busy), iopub("m2", "status", idle), shell("m2", "execute_reply", ok)})
	check(t, d, e, []string{"execution/x2 IOPubMessageReceived status of x2", "execution/x2 IOPubMessageReceived status of x2",
		"execution/x2 ExecutionFinished ok count=3"}, []string{"ended x2 ok"})
}

// TestReconcileTranscripts: the count probe's reply, once an IOPub message
// of it has arrived, accounts for what ran: a re-adopted execution whose
// reply did not come ran (count above the log's) or never reached the
// kernel; further runs are matched against the queued executions' code in
// the kernel's input history (in order when the history says nothing), the
// rest are unrecorded runs.
func TestReconcileTranscripts(t *testing.T) {
	probeReply := func(n int) Incoming {
		return shell("p", "execute_reply", fmt.Sprintf(`{"status":"ok","execution_count":%d}`, n))
	}
	history := func(inputs ...string) Incoming {
		h := []any{}
		for i, in := range inputs {
			h = append(h, []any{1, i, in})
		}
		b, _ := json.Marshal(map[string]any{"status": "ok", "history": h})
		return shell("p-history", "history_reply", string(b))
	}
	act := []Readoption{{MsgID: "m1", ExecutionID: "x1"}}
	pending := []Unstarted{{ExecutionID: "q1", Code: "a = 1"}, {ExecutionID: "q2", Code: "b = 2"}}

	s, effs := StartReconcile(NewOutputState("k"), "p", 4, act, pending)
	check(t, nil, effs, nil, []string{"send shell execute_request p"})
	s, d, e := Step(s, []Incoming{probeReply(7)})
	// NB: not decided before an IOPub message of the probe; a request
	// behind it tells if the probe's were dropped.
	check(t, d, e, nil, []string{"send shell kernel_info_request p-iopub-probe-1"})
	s, d, e = Step(s, []Incoming{iopub("p", "status", busy)})
	check(t, d, e, []string{"execution/x1 ExecutionLost " + ranWhileDown}, []string{"ended x1 lost", "send shell history_request p-history",
		"send shell kernel_info_request p-history-barrier"})
	_, d, e = Step(s, []Incoming{iopub("p", "status", idle), history("a = 1\n", "print('someone else')")})
	check(t, d, e, []string{"execution/q1 ExecutionLost " + ranWhileDown, "kernel/k KernelRanUnrecorded"},
		[]string{"ended q1 lost", "kernel.ReconcileDone"})

	s, _ = StartReconcile(NewOutputState("k"), "p", 4, act, pending)
	_, d, e = Step(s, []Incoming{iopub("p", "status", busy), probeReply(4)})
	check(t, d, e, []string{"execution/x1 ExecutionLost " + neverRan}, []string{"ended x1 lost", "kernel.ReconcileDone"})

	// A history that does not cover the runs: attributed in queue order.
	s, _ = StartReconcile(NewOutputState("k"), "p", 4, nil, pending[:1])
	s, _, _ = Step(s, []Incoming{probeReply(6), iopub("p", "status", busy)})
	_, d, e = Step(s, []Incoming{history()})
	check(t, d, e, []string{"execution/q1 ExecutionLost " + ranWhileDown, "kernel/k KernelRanUnrecorded"},
		[]string{"ended q1 lost", "kernel.ReconcileDone"})

	// No queued execution: no history asked.
	s, _ = StartReconcile(NewOutputState("k"), "p", 4, nil, nil)
	_, d, e = Step(s, []Incoming{probeReply(5), iopub("p", "status", busy)})
	check(t, d, e, []string{"kernel/k KernelRanUnrecorded"}, []string{"kernel.ReconcileDone"})
	// NB: the count read goes to the scheduler: the unrecorded run raises
	// its LastCount, or its next reconcile would record it again.
	if done := e[len(e)-1].(ReconcileDone); done.Count != 5 {
		t.Fatalf("ReconcileDone after a probe read 5: %+v", done)
	}
	// The probe's IOPub is dropped (a full PUB queue): the requests sent
	// behind it tell; once one's IOPub arrives, the probe's reply decides
	// alone, with the gap recorded. Before, the reconcile hung for good.
	s, _ = StartReconcile(NewOutputState("k"), "p", 4, act, nil)
	s, d, e = Step(s, []Incoming{probeReply(5)})
	check(t, d, e, nil, []string{"send shell kernel_info_request p-iopub-probe-1"})
	s, d, e = Step(s, []Incoming{shell("p-iopub-probe-1", "kernel_info_reply", `{"status":"ok"}`)})
	check(t, d, e, nil, []string{"send shell kernel_info_request p-iopub-probe-2"})
	s, d, e = Step(s, []Incoming{iopub("p-iopub-probe-2", "status", busy)})
	check(t, d, e, []string{"kernel/k IOPubGapRecorded dropped=1", "execution/x1 ExecutionLost " + ranWhileDown},
		[]string{"ended x1 lost", "kernel.ReconcileDone"})
	if s.Reconcile != nil {
		t.Fatal("reconcile still open")
	}
	_, d, e = Step(s, []Incoming{iopub("p-iopub-probe-2", "status", idle), shell("p-iopub-probe-2", "kernel_info_reply", `{"status":"ok"}`),
		iopub("p", "status", idle)})
	check(t, d, e, nil, nil) // NB: the late ones are no one's output

	// No IOPub at all: after maxIOPubProbes round trips on shell, the
	// probe's reply decides alone.
	s, _ = StartReconcile(NewOutputState("k"), "p", 4, nil, nil)
	s, _, _ = Step(s, []Incoming{probeReply(4)})
	for i := 1; i <= maxIOPubProbes; i++ {
		s, d, e = Step(s, []Incoming{shell(fmt.Sprintf("p-iopub-probe-%d", i), "kernel_info_reply", `{"status":"ok"}`)})
	}
	check(t, d, e, []string{"kernel/k IOPubGapRecorded dropped=1"}, []string{"kernel.ReconcileDone"})

	// A history_reply that never comes: the request behind it is answered
	// first, so the runs are attributed in queue order, as without history.
	s, _ = StartReconcile(NewOutputState("k"), "p", 4, nil, pending[:1])
	s, _, _ = Step(s, []Incoming{probeReply(6), iopub("p", "status", busy)})
	_, d, e = Step(s, []Incoming{shell("p-history-barrier", "kernel_info_reply", `{"status":"ok"}`)})
	check(t, d, e, []string{"execution/q1 ExecutionLost " + ranWhileDown, "kernel/k KernelRanUnrecorded"},
		[]string{"ended q1 lost", "kernel.ReconcileDone"})

	// NB: the history path reports the count read too.
	if done := e[len(e)-1].(ReconcileDone); done.Count != 6 {
		t.Fatalf("ReconcileDone after a probe read 6: %+v", done)
	}
}

// TestIdleProbeDeferred: the probe a reply without its idle asks for is
// deferred (IdleProbeGrace); when it is due it is sent only if the idle
// still has not come, and forgotten otherwise (the map stays bounded).
func TestIdleProbeDeferred(t *testing.T) {
	s := Expect(NewOutputState("k"), "m1", "x1", "")
	s, _, effs := Step(s, []Incoming{shell("m1", "execute_reply", ok)})
	if len(effs) != 1 || effs[0].(SendRequest).After != IdleProbeGrace {
		t.Fatalf("effects = %+v, want one probe deferred by %v", effs, IdleProbeGrace)
	}
	probe := effs[0].(SendRequest).MsgID
	if _, due := IdleProbeDue(s, probe); len(due) != 1 || due[0].(SendRequest).After != 0 {
		t.Fatalf("due without idle = %+v, want the probe sent now", due)
	}
	s, _, _ = Step(s, []Incoming{iopub("m1", "status", idle)})
	s, due := IdleProbeDue(s, probe)
	if len(due) != 0 || len(s.IdleProbes) != 0 {
		t.Fatalf("due after idle = %+v, probes %v: want nothing sent and the probe forgotten", due, s.IdleProbes)
	}
}

// TestInputPromptIsBoundedWhenRecorded: code in the kernel chooses its
// input() prompt; a 1 MB one is recorded cut to maxPromptBytes (on a
// character boundary, the cut said), so that no read of the execution
// carries a megabyte.
func TestInputPromptIsBoundedWhenRecorded(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte characters
	content, _ := json.Marshal(map[string]any{"prompt": huge, "password": true})
	s := Expect(NewOutputState("k"), "m1", "x1", "")
	_, drafts, _ := Step(s, []Incoming{{Channel: ChannelStdin, ParentMsgID: "m1", MsgType: "input_request", Content: content}})
	if len(drafts) != 1 {
		t.Fatalf("drafts: %v", drafts)
	}
	p, ok := drafts[0].Payload.(events.ExecutionInputRequested)
	if !ok || !p.Password {
		t.Fatalf("payload %T %+v", drafts[0].Payload, drafts[0].Payload)
	}
	if len(p.Prompt) > maxPromptBytes+100 || !strings.HasPrefix(p.Prompt, strings.Repeat("é", maxPromptBytes/2)) ||
		!strings.Contains(p.Prompt, "prompt cut by the server") || !utf8.ValidString(p.Prompt) {
		t.Fatalf("recorded prompt of %d bytes (valid UTF-8 %v), ends %q", len(p.Prompt), utf8.ValidString(p.Prompt), p.Prompt[len(p.Prompt)-80:])
	}
	if short := boundPrompt("name? "); short != "name? " {
		t.Fatalf("a short prompt was changed: %q", short)
	}
}
