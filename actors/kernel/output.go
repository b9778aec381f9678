package kernel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// maxPumpBatch and maxPumpBatchBytes bound one batch of kernel messages
// (one append): at most this many messages, and no more content bytes than
// this unless a single message is larger. The pump holds at most two
// batches (one being appended, one being gathered).
const (
	maxPumpBatch      = 1024
	maxPumpBatchBytes = 1 << 20
)

// Inflight is an execute_request we sent and whose completion we await.
type Inflight struct {
	ExecID string
	// By is the principal that submitted the execution: every event of its
	// output and its end carries it.
	By      string
	Replied bool
	Idle    bool
	Reply   ExecuteReply

	// First and Last are the kernel's message counters (see
	// counterTracker) of the execution's first and last message seen;
	// Counted says First is set. The holes between them are messages lost.
	First, Last uint64
	Counted     bool
	// HoleReason says why holes would be missing (a re-adopted execution
	// names the time the server was away).
	HoleReason string
	// Lost counts messages known lost otherwise (a gap marker of the
	// connection's queue when counters are not available, a batch the log
	// refused); LostReason says why.
	Lost       int
	LostReason string
	// Abort, when set, is why an abort_request was sent for it (by
	// AbortBy): an "aborted" reply then records it cancelled.
	Abort, AbortBy string
	// InputCount is the execution_count of its execute_input, FromIOPub
	// its error message's fields (Status "error") when one was published:
	// what its reply would say, for a reply that never comes (reconciled).
	InputCount int
	FromIOPub  ExecuteReply
}

// observe notes what an execution's IOPub message says of its reply.
func observe(in *Inflight, m Incoming) *Inflight {
	switch m.MsgType {
	case "execute_input":
		var c struct {
			ExecutionCount int `json:"execution_count"`
		}
		if json.Unmarshal(m.Content, &c) == nil {
			in.InputCount = c.ExecutionCount
		}
	case "error":
		var c ExecuteReply
		if json.Unmarshal(m.Content, &c) == nil {
			c.Status = "error"
			in.FromIOPub = c
		}
	}
	return in
}

// ExecuteReply is the part of an execute_reply an execution's final event
// records.
type ExecuteReply struct {
	Status         string   `json:"status"`
	ExecutionCount int      `json:"execution_count"`
	Ename          string   `json:"ename"`
	Evalue         string   `json:"evalue"`
	Traceback      []string `json:"traceback"`
	// Payload and UserExpressions are passed on to the asking frontend
	// (ExecutionFinished.ReplyPayload / UserExpressions).
	Payload         json.RawMessage `json:"payload"`
	UserExpressions json.RawMessage `json:"user_expressions"`
}

// replyExtra returns the JSON text of a reply's payload or
// user_expressions to record: "" when empty; dropped says why it was not
// recorded (over events.MaxReplyExtra).
func replyExtra(name string, raw json.RawMessage) (text, dropped string) {
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return "", ""
	}
	switch b.String() {
	case "[]", "{}", "null":
		return "", ""
	}
	if b.Len() > events.MaxReplyExtra {
		return "", fmt.Sprintf("the execute_reply's %s (%d bytes) is over the %d-byte limit and was not recorded", name, b.Len(), events.MaxReplyExtra)
	}
	return b.String(), ""
}

// OutputState is what the kernel actor knows about the executions it sent
// on its current connection: which requests are in flight, the resume
// barriers and idle probes it is waiting on. It lives only as long as the
// connection (a new connection starts from NewOutputState).
//
// NB: Step and the other transitions take the state by value but reuse its
// maps: the caller must drop the state it passed and keep the one returned,
// as raft's RawNode hands its Ready over.
type OutputState struct {
	KernelID string
	// Inflight holds the executions sent and not ended, by execute_request
	// msg_id.
	Inflight map[string]*Inflight
	// Barriers maps a resume barrier's msg_id to the execute_request it
	// stands behind (see Readopt).
	Barriers map[string]string
	// IdleProbes maps a probe's msg_id to the execute_request whose reply
	// came before its idle status. IOPub is ordered, so any IOPub message
	// caused by the probe proves the execution's idle status was dropped by
	// the kernel's PUB socket (it drops past its high-water mark).
	IdleProbes map[string]string
	// Probes counts the probes sent: a probe's msg_id is derived from its
	// execute_request's and this count, so Step needs no clock or random.
	Probes int
	// Dropped counts IOPub messages of unknown types; Warned holds the
	// types already reported (at most 64).
	Dropped int
	Warned  map[string]bool
	// Counters tracks the kernel's message counters to find what its
	// IOPub socket dropped.
	Counters counterTracker
	// AttachReplies are the counters of the kernel_info replies the
	// transport consumed while re-attaching. The busy and idle statuses
	// around each (counters r-1 and r+1) that precede the lowest IOPub
	// counter seen on the connection (FirstIOPub, once SawIOPub) were
	// published before our subscription took effect (the "slow joiner"):
	// holes, but not the execution's output.
	AttachReplies []uint64
	FirstIOPub    uint64
	SawIOPub      bool
	// Reconcile is the count probe in flight after a re-attach (see
	// StartReconcile); nil when none.
	Reconcile *Reconciliation
	// LastProbe and LastHistory are the msg_ids of the last count probe and
	// history request answered: their IOPub statuses may still arrive, and
	// are no one's output.
	LastProbe, LastHistory string
	// Relays are the frontends' relayed requests waiting for their reply
	// (relay.go).
	Relays Relays
}

// Reconciliation is what a re-attach's count probe is compared with: the
// highest execution count the log records on this kernel process, the
// execution the log shows started and unended (re-adopted behind the
// probe), and the executions it shows queued, in order.
type Reconciliation struct {
	ProbeID string
	// Replied, Reply, Readable: the probe's execute_reply; SawIOPub: an
	// IOPub message of the probe arrived.
	Replied, Readable, SawIOPub bool
	Reply                       ExecuteReply
	Base                        int
	// HistoryID names the history_request asked when runs are left to
	// attribute and executions are queued (see historied).
	HistoryID string
	// IOPubProbes counts the kernel_info_requests sent behind a probe
	// answered without any IOPub message (see iopubProbe).
	IOPubProbes int
	Active      []string // msg_ids of the re-adopted executions, in the order sent
	Pending     []Unstarted
}

// The reasons a reconciliation records.
const (
	ranWhileDown = "ran while the server was down: the kernel's execution count shows it ran, but its result and outputs were not recorded; it is not run again"
	// NB: a request still unread by the kernel when the server re-attached
	// (pipelined behind a running one) runs, and its outputs reach the new
	// connection, but ipykernel's reply to it is routed to the closed one.
	ranReplyLost = ReasonRanReplyLost
)

// ReasonRanReplyLost is the ExecutionLost reason of an execution that ran
// after a re-attach with its outputs recorded but its reply lost.
const (
	ReasonRanReplyLost = "ran after the server restarted: its outputs were recorded, but the kernel's reply (its status and execution count) went to the server's previous connection and was lost; it is not run again"
	neverRan           = "never reached the kernel: the server stopped before sending it, and the kernel's execution count shows it did not run; submit it again if it is still wanted"
)

// NewOutputState is the state of a fresh connection to kernel id.
func NewOutputState(kernelID string) OutputState {
	return OutputState{KernelID: kernelID, Inflight: map[string]*Inflight{}, Barriers: map[string]string{},
		IdleProbes: map[string]string{}, Warned: map[string]bool{}}
}

// Effects Step asks the shell to perform once the events are durable.
type (
	// Effect is one of SendRequest, Ended, ReconcileDone,
	// WarnUnknownIOPub, DeliverReply.
	Effect interface{ effect() }
	// SendRequest sends a request to the kernel (an idle probe, a barrier).
	SendRequest struct {
		Channel, MsgType, MsgID string
		Content                 any // nil: {}
		// After > 0: an idle probe sent only if still due then
		// (IdleProbeDue).
		After time.Duration
	}
	// Ended: an execution's final event is in the drafts; tell the
	// scheduler once they are in the log's write path. Count is its
	// execution count when known.
	Ended struct {
		ExecutionID string
		Status      string
		Count       int
	}
	// ReconcileDone: a re-attach's count probe was answered and every
	// execution it accounts for is in the drafts; the scheduler may
	// dispatch again. Count is the kernel's execution count the probe read
	// (0 when not read): runs recorded KernelRanUnrecorded raise the
	// scheduler's count too.
	ReconcileDone struct{ Count int }
	// WarnUnknownIOPub: log, once per type, that messages of a type the
	// protocol does not define are dropped.
	WarnUnknownIOPub struct{ MsgType string }
)

func (SendRequest) effect()      {}
func (Ended) effect()            {}
func (WarnUnknownIOPub) effect() {}
func (ReconcileDone) effect()    {}

// Expect registers an execute_request before it is sent, so that every
// message whose parent it is lands on the execution's stream.
func Expect(s OutputState, msgID, execID, by string) OutputState {
	s.Inflight[msgID] = &Inflight{ExecID: execID, By: by}
	return s
}

// Forget withdraws an execute_request that could not be sent.
func Forget(s OutputState, msgID string) OutputState {
	delete(s.Inflight, msgID)
	return s
}

// RequestAbort marks the pipelined execution execID as asked not to run
// (by, for reason) and returns its execute_request's msg_id, which the
// abort_request names.
func RequestAbort(s OutputState, execID, reason, by string) (OutputState, string) {
	for msgID, in := range s.Inflight {
		if in.ExecID == execID {
			in.Abort, in.AbortBy = reason, by
			return s, msgID
		}
	}
	return s, ""
}

// Readopt re-adopts an execution sent by a previous connection, behind the
// barrier request (msg_id barrier) that decides whether it is still running:
// a kernel_info_request on shell is answered only after the running
// execution's reply, so if the barrier's reply comes first the execution was
// over before we re-attached.
//
// away describes what the log recorded of it before: the msg_id of its last
// recorded message (its counter is where holes start counting) and why
// messages after it may be missing (the server was away).
func Readopt(s OutputState, msgID, execID, by, barrier string, away Away) (OutputState, []Effect) {
	in := &Inflight{ExecID: execID, By: by, HoleReason: away.Reason}
	if _, n, ok := parseCounter(away.LastMsgID); ok {
		in.First, in.Last, in.Counted = n+1, n, true
	} else if away.Reason != "" {
		in.Lost, in.LostReason = -1, away.Reason // NB: -1: an unknown number
	}
	s.Inflight[msgID] = in
	s.Barriers[barrier] = msgID
	return s, []Effect{SendRequest{Channel: ChannelShell, MsgType: "kernel_info_request", MsgID: barrier}}
}

// silentProbe is the content of the count probe: an execute_request that
// runs nothing and stores no history, whose reply's execution_count is the
// count of the last execution the kernel stored (ipykernel).
var silentProbe = map[string]any{"code": "", "silent": true, "store_history": false,
	"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": false}

// StartReconcile sends the count probe after a re-attach, before anything
// new is dispatched. The kernel answers shell requests in order, so the
// probe's reply comes after everything sent before the crash ran, and its
// execution_count says how many of those ran. base is the highest count
// the log records; active, when the log shows an execution started and
// unended, is re-adopted behind the probe (as Readopt does behind a
// barrier); pending are the executions the log shows queued, in order.
// The reply is decided in Step (reconciled).
func StartReconcile(s OutputState, probeID string, base int, actives []Readoption, pending []Unstarted) (OutputState, []Effect) {
	rc := &Reconciliation{ProbeID: probeID, Base: base, Pending: pending}
	for _, active := range actives {
		in := &Inflight{ExecID: active.ExecutionID, By: active.By, HoleReason: active.Away.Reason}
		if _, n, ok := parseCounter(active.Away.LastMsgID); ok {
			in.First, in.Last, in.Counted = n+1, n, true
		} else if active.Away.Reason != "" {
			in.Lost, in.LostReason = -1, active.Away.Reason
		}
		s.Inflight[active.MsgID] = in
		rc.Active = append(rc.Active, active.MsgID)
	}
	s.Reconcile = rc
	return s, []Effect{SendRequest{Channel: ChannelShell, MsgType: "execute_request", MsgID: probeID, Content: silentProbe}}
}

// Readoption is an execution re-adopted behind a probe.
type Readoption struct {
	MsgID, ExecutionID, By string
	Away                   Away
}

// reconciled decides what the count probe's reply means: the re-adopted
// execution whose reply did not come first ran (count above base) or never
// reached the kernel; further runs are the queued executions', in order
// (they were sent before their start was durable); runs beyond those are
// recorded as KernelRanUnrecorded. Nothing is ever run again.
func reconciled(s OutputState, drafts []events.Draft, effs []Effect) (OutputState, []events.Draft, []Effect) {
	rc := s.Reconcile
	s.Reconcile, s.LastProbe = nil, rc.ProbeID
	r, readable := rc.Reply, rc.Readable
	base := rc.Base
	// answeredAfter: an execution sent after this one was answered, so this
	// one ran (the kernel runs its shell requests in order).
	answeredAfter := func(i int) bool {
		for _, later := range rc.Active[i+1:] {
			if in := s.Inflight[later]; in == nil || in.Replied {
				return true
			}
		}
		return false
	}
	for i, msgID := range rc.Active {
		in := s.Inflight[msgID]
		switch {
		case in == nil: // it completed before the probe: complete moved Base
		case in.Replied:
			base = max(base, in.Reply.ExecutionCount) // it completes on its idle status
		case in.Idle && in.InputCount > 0:
			// It ran after the re-attach and every IOPub message of it
			// arrived, but its reply went to the previous connection (the
			// kernel read the request from there): its IOPub says how it
			// ended (execute_input's count, an error message or none).
			in.Replied, in.Reply = true, in.FromIOPub
			in.Reply.ExecutionCount = in.InputCount
			if in.Reply.Status == "" {
				in.Reply.Status = "ok"
			}
			base = max(base, in.InputCount)
			drafts, effs = complete(s, msgID, in, drafts, effs)
		default:
			delete(s.Inflight, msgID)
			lost := events.ExecutionLost{ExecutionID: in.ExecID, Reason: neverRan}
			switch {
			case answeredAfter(i):
				// NB: its count is below the later one's, already in base.
				lost = events.ExecutionLost{ExecutionID: in.ExecID, Reason: ranWhileDown, Ran: true}
				if in.Idle {
					lost.Reason = ranReplyLost
				}
			case !readable:
				lost.Reason = "the server restarted during this execution and its result was not observed; the kernel (and its variables) survived — re-run it if needed"
			case r.ExecutionCount > base:
				base++
				lost = events.ExecutionLost{ExecutionID: in.ExecID, Reason: ranWhileDown, Ran: true, ExecutionCount: base}
				if in.Idle {
					lost.Reason = ranReplyLost
				}
			}
			drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.ExecID), Kernel: s.KernelID, Principal: in.By, Payload: lost})
			effs = append(effs, Ended{ExecutionID: in.ExecID, Status: "lost", Count: lost.ExecutionCount})
		}
	}
	if readable && r.ExecutionCount > base && len(rc.Pending) > 0 {
		// Runs the log does not account for, and queued executions that may
		// be them: ask the kernel's history which code ran (historied).
		rc.Base, rc.HistoryID = base, rc.ProbeID+"-history"
		s.Reconcile = rc
		// NB: a kernel_info_request right behind it: the kernel answers its
		// shell requests in order, so its reply before a history_reply says
		// the kernel will not answer history (then historied goes without).
		return s, drafts, append(effs, SendRequest{Channel: ChannelShell, MsgType: "history_request", MsgID: rc.HistoryID,
			Content: map[string]any{"output": false, "raw": true, "hist_access_type": "range", "session": 0,
				"start": base + 1, "stop": r.ExecutionCount + 1}},
			SendRequest{Channel: ChannelShell, MsgType: "kernel_info_request", MsgID: rc.HistoryID + historyBarrier})
	}
	done := ReconcileDone{}
	if readable {
		done.Count = max(base, r.ExecutionCount)
	}
	if readable && r.ExecutionCount > base {
		drafts = append(drafts, draft(s.KernelID, events.KernelRanUnrecorded{KernelID: s.KernelID, Count: r.ExecutionCount - base, ExecutionCount: r.ExecutionCount}))
	}
	return s, drafts, append(effs, done)
}

// historied attributes the runs after Base from the kernel's input history
// (history_reply): in order, a run whose code is the next queued
// execution's is that execution (ExecutionLost{Ran}); any other run is
// unrecorded (KernelRanUnrecorded). If the history does not cover every
// run, the runs are attributed to the queued executions in order, as the
// server would have sent them (never run again; see docs).
func historied(s OutputState, m Incoming, drafts []events.Draft, effs []Effect) (OutputState, []events.Draft, []Effect) {
	rc := s.Reconcile
	s.Reconcile, s.LastHistory = nil, rc.HistoryID
	n := rc.Reply.ExecutionCount
	var reply struct {
		Status  string            `json:"status"`
		History []json.RawMessage `json:"history"`
	}
	var inputs []string
	if json.Unmarshal(m.Content, &reply) == nil && reply.Status == "ok" {
		for _, h := range reply.History {
			var entry []any // [session, line, input]
			if json.Unmarshal(h, &entry) == nil && len(entry) == 3 {
				if in, ok := entry[2].(string); ok {
					inputs = append(inputs, in)
				}
			}
		}
	}
	known := len(inputs) == n-rc.Base
	base, unrecorded, next := rc.Base, 0, 0
	for base < n {
		base++
		ran := next < len(rc.Pending) && (!known || sameCode(inputs[base-rc.Base-1], rc.Pending[next].Code))
		if !ran {
			unrecorded++
			continue
		}
		p := rc.Pending[next]
		next++
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(p.ExecutionID), Kernel: s.KernelID, Principal: p.By,
			Payload: events.ExecutionLost{ExecutionID: p.ExecutionID, Reason: ranWhileDown, Ran: true, ExecutionCount: base}})
		effs = append(effs, Ended{ExecutionID: p.ExecutionID, Status: "lost", Count: base})
	}
	if unrecorded > 0 {
		drafts = append(drafts, draft(s.KernelID, events.KernelRanUnrecorded{KernelID: s.KernelID, Count: unrecorded, ExecutionCount: n}))
	}
	return s, drafts, append(effs, ReconcileDone{Count: n})
}

// sameCode compares a history input with an execution's code (IPython
// stores the cell as sent; trailing whitespace aside).
func sameCode(input, code string) bool {
	return strings.TrimRight(input, " \t\r\n") == strings.TrimRight(code, " \t\r\n")
}

// Away is what Readopt knows of an execution's output before the server
// re-attached.
type Away struct {
	LastMsgID string // the msg_id of its last recorded kernel message ("" if none)
	Reason    string // why what followed it may be missing
}

// Unrecorded records that batch never reached the log (the log refused
// it): each of its messages of an execution in flight counts as lost, and
// that execution's final event is preceded by ExecutionOutputLost. Pure.
func Unrecorded(s OutputState, batch []Incoming, reason string) OutputState {
	for _, m := range batch {
		if in := s.Inflight[m.ParentMsgID]; in != nil && m.Channel == ChannelIOPub && in.Lost >= 0 {
			in.Lost++
			in.LostReason = reason
		}
	}
	return s
}

// maxPromptBytes bounds the input() prompt an ExecutionInputRequested
// records: the kernel's code chooses it, and every read of the execution
// carries it (get_execution, send_input, the input request).
const maxPromptBytes = 4 << 10

// boundPrompt is prompt cut to maxPromptBytes (on a character boundary),
// with a note saying how much was left out.
func boundPrompt(prompt string) string {
	if len(prompt) <= maxPromptBytes {
		return prompt
	}
	n := maxPromptBytes
	for n > 0 && !utf8.RuneStart(prompt[n]) {
		n--
	}
	return prompt[:n] + fmt.Sprintf("\u2026 (prompt cut by the server: %d more bytes not recorded)", len(prompt)-n)
}

// Running reports the executions in flight, in msg_id order.
func Running(s OutputState) []string {
	keys := make([]string, 0, len(s.Inflight))
	for k := range s.Inflight {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = s.Inflight[k].ExecID
	}
	return ids
}

// Step decides what a batch of kernel messages means: the events to append
// (in one append, in this order) and the effects to perform after. Pure.
func Step(s OutputState, batch []Incoming) (OutputState, []events.Draft, []Effect) {
	drafts := make([]events.Draft, 0, len(batch)+1)
	var effs []Effect
	k := s.KernelID
	for _, m := range batch {
		if m.Consumed {
			s = consumed(s, m)
			continue
		}
		if m.Dropped == 0 {
			s = count(s, m)
		}
		switch {
		case m.Dropped > 0:
			reason, short := "the server's IOPub queue overflowed; these messages never reached the log", "the server's IOPub queue overflowed"
			if m.MsgType == diskFullMarker {
				reason, short = diskFullReason, diskFullReason
			}
			drafts = append(drafts, draft(k, events.IOPubGapRecorded{KernelID: k, Dropped: m.Dropped, Reason: reason}))
			for msgID, in := range s.Inflight {
				// NB: without the kernel's counters the marker is all we
				// know; with them, the holes count these messages already
				// and only the reason is news. A marker naming its parent
				// concerns that execution only.
				if m.ParentMsgID != "" && s.Inflight[m.ParentMsgID] != nil && msgID != m.ParentMsgID {
					continue
				}
				if in.Lost >= 0 && (s.Counters.prefix == "" || m.MsgType == diskFullMarker) {
					if s.Counters.prefix == "" {
						in.Lost += m.Dropped
					}
					in.LostReason = short
				}
			}
		case (m.Channel == ChannelShell || m.Channel == ChannelControl) && s.Relays.Waiting(m.ParentMsgID):
			// A reply to a frontend's relayed request: its asker's only (its
			// IOPub messages are recorded below, on the kernel's stream).
			s, effs = relayReply(s, m, effs)
		case m.Channel == ChannelIOPub && m.ParentMsgID != "" && (m.ParentMsgID == s.LastProbe || m.ParentMsgID == s.LastHistory):
			// NB: the answered probe's statuses: no one's output.
		case s.Reconcile != nil && s.Reconcile.HistoryID != "" && m.ParentMsgID == s.Reconcile.HistoryID:
			if m.Channel == ChannelShell && m.MsgType == "history_reply" {
				s, drafts, effs = historied(s, m, drafts, effs)
			}
		case s.Reconcile != nil && s.Reconcile.HistoryID != "" && m.ParentMsgID == s.Reconcile.HistoryID+historyBarrier:
			if m.Channel == ChannelShell {
				// The request behind the history_request was answered first:
				// the kernel will not answer it. Decide without a history.
				s, drafts, effs = historied(s, Incoming{}, drafts, effs)
			}
		case s.Reconcile != nil && strings.HasPrefix(m.ParentMsgID, s.Reconcile.ProbeID+iopubProbe):
			rc := s.Reconcile
			switch {
			case rc.SawIOPub:
			case m.Channel == ChannelIOPub || (m.Channel == ChannelShell && rc.IOPubProbes >= maxIOPubProbes):
				// IOPub is ordered: a message of a request sent behind the
				// probe arrived, so the probe's own were dropped. Decide from
				// its reply alone, recording the gap. NB: so too when no IOPub
				// arrives at all after maxIOPubProbes round trips on shell.
				rc.SawIOPub = true
				drafts = append(drafts, draft(k, events.IOPubGapRecorded{KernelID: k, Dropped: 1,
					Reason: "the kernel's IOPub socket dropped messages (at least the status of the server's count probe after a re-attach); output of the re-adopted executions may be incomplete"}))
				s, drafts, effs = reconciled(s, drafts, effs)
			case m.Channel == ChannelShell:
				// Answered, but none of its IOPub arrived yet: probe again
				// until some does (the PUB queue drains), as probeIdle does.
				effs = append(effs, nextIOPubProbe(rc))
			}
		case s.Reconcile != nil && m.ParentMsgID == s.Reconcile.ProbeID:
			// The count is decided once both the probe's reply and an IOPub
			// message of it arrived: IOPub is ordered, so every IOPub message
			// of what ran before it has arrived too.
			rc := s.Reconcile
			switch {
			case m.Channel == ChannelIOPub:
				rc.SawIOPub = true
			case m.Channel == ChannelShell && m.MsgType == "execute_reply":
				rc.Replied = true
				rc.Readable = json.Unmarshal(m.Content, &rc.Reply) == nil && rc.Reply.Status == "ok"
			}
			if rc.Replied && rc.SawIOPub {
				s, drafts, effs = reconciled(s, drafts, effs)
			}
		case s.LastProbe != "" && strings.HasPrefix(m.ParentMsgID, s.LastProbe+"-"):
			// NB: the replies and statuses of the requests a finished
			// reconciliation sent behind its probe: no one's output.
		case m.Channel == ChannelIOPub && s.IdleProbes[m.ParentMsgID] != "":
			execMsg := s.IdleProbes[m.ParentMsgID]
			for probe, target := range s.IdleProbes {
				if target == execMsg {
					delete(s.IdleProbes, probe)
				}
			}
			drafts, effs = idleLost(s, execMsg, drafts, effs)
			drafts = append(drafts, draft(k, events.IOPubMessageReceived{KernelID: k, MsgID: m.MsgID,
				ParentMsgID: m.ParentMsgID, MsgType: m.MsgType, Content: m.Content}))
		case m.Channel == ChannelShell && s.IdleProbes[m.ParentMsgID] != "":
			// The probe was answered but none of its IOPub output arrived yet:
			// probe again until some does (the PUB queue drains).
			execMsg := s.IdleProbes[m.ParentMsgID]
			delete(s.IdleProbes, m.ParentMsgID)
			if in := s.Inflight[execMsg]; in != nil && !in.Idle {
				s, effs = probeIdle(s, execMsg, effs)
			}
		case m.Channel == ChannelIOPub && !knownIOPub[m.MsgType]:
			// NB: never applied: a type the protocol (v5.3) does not define.
			s.Dropped++
			if !s.Warned[m.MsgType] && len(s.Warned) < 64 {
				s.Warned[m.MsgType] = true
				effs = append(effs, WarnUnknownIOPub{MsgType: m.MsgType})
			}
		case m.Channel == ChannelIOPub:
			in := s.Inflight[m.ParentMsgID]
			stream, execID, by := events.KernelStream(k), "", ""
			if in != nil {
				stream, execID, by = events.ExecutionStream(in.ExecID), in.ExecID, in.By
			}
			drafts = append(drafts, events.Draft{Stream: stream, Kernel: k, Principal: by, Payload: events.IOPubMessageReceived{
				KernelID: k, ExecutionID: execID, MsgID: m.MsgID, ParentMsgID: m.ParentMsgID, MsgType: m.MsgType, Content: m.Content}})
			if in != nil {
				in = observe(in, m)
			}
			if in != nil && m.MsgType == "status" && isIdle(m.Content) {
				in.Idle = true
				drafts, effs = complete(s, m.ParentMsgID, in, drafts, effs)
			}
		case m.Channel == ChannelShell && m.MsgType == "execute_reply":
			in := s.Inflight[m.ParentMsgID]
			if in == nil {
				continue // a reply to a request of a previous connection
			}
			in.Replied = true
			if err := json.Unmarshal(m.Content, &in.Reply); err != nil {
				in.Reply = ExecuteReply{Status: "error", Ename: "ProtocolError", Evalue: "unreadable execute_reply: " + err.Error()}
			}
			if in.Reply.Status == "aborted" && in.Abort != "" {
				// NB: ipykernel publishes busy, not idle, for a request it
				// aborts on abort_request: the reply is its last word.
				in.Idle = true
			}
			if !in.Idle {
				s, effs = probeIdle(s, m.ParentMsgID, effs)
				effs = deferProbe(effs)
			}
			drafts, effs = complete(s, m.ParentMsgID, in, drafts, effs)
		case m.Channel == ChannelShell && s.Barriers[m.ParentMsgID] != "":
			execMsg := s.Barriers[m.ParentMsgID]
			delete(s.Barriers, m.ParentMsgID)
			in := s.Inflight[execMsg]
			if in == nil || in.Replied {
				continue // it completed (or its reply came) before the barrier
			}
			delete(s.Inflight, execMsg)
			if n, ok := s.Counters.see(m.MsgID); ok && in.Counted && n > 0 {
				in.Last = max(in.Last, n-1) // NB: everything before the barrier's reply was sent while we were away
			}
			drafts = lostDrafts(s, in, drafts)
			drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.ExecID), Kernel: k,
				Payload: events.ExecutionLost{ExecutionID: in.ExecID, Reason: "the server restarted during this execution and its result was not observed; the kernel (and its variables) survived — re-run it if needed"}})
			effs = append(effs, Ended{ExecutionID: in.ExecID, Status: "lost"})
		case m.Channel == ChannelStdin && m.MsgType == "input_request":
			in := s.Inflight[m.ParentMsgID]
			if in == nil {
				continue
			}
			var req struct {
				Prompt   string `json:"prompt"`
				Password bool   `json:"password"`
			}
			_ = json.Unmarshal(m.Content, &req)
			drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.ExecID), Kernel: k, Principal: in.By,
				Payload: events.ExecutionInputRequested{ExecutionID: in.ExecID, Prompt: boundPrompt(req.Prompt), Password: req.Password}})
		}
	}
	if rc := s.Reconcile; rc != nil && rc.HistoryID == "" && rc.Replied && !rc.SawIOPub && rc.IOPubProbes == 0 {
		// NB: the probe was answered and none of its IOPub came in this
		// batch; it may have been dropped (a full PUB queue): a request
		// behind it tells (the case above).
		effs = append(effs, nextIOPubProbe(rc))
	}
	return s, drafts, effs
}

// Lose records every execution in flight as lost (the connection ended)
// and empties the state; the losses carry principal by ("" when the
// server caused them). Pure.
func Lose(s OutputState, reason, by string) (OutputState, []events.Draft, []Effect) {
	var drafts []events.Draft
	var effs []Effect
	for _, id := range Running(s) {
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(id), Kernel: s.KernelID, Principal: by,
			Payload: events.ExecutionLost{ExecutionID: id, Reason: reason}})
		effs = append(effs, Ended{ExecutionID: id, Status: "lost"})
	}
	clear(s.Inflight)
	clear(s.Barriers)
	clear(s.IdleProbes)
	s.Reconcile = nil
	s = forgetRelays(s)
	return s, drafts, effs
}

// Died decides what a connection's end means: what the kernel had already
// sent (rest), the loss of everything still in flight and — unless the
// actor itself stopped the kernel (expected) — KernelDied. One append.
func Died(s OutputState, rest []Incoming, death Death, expected bool, by string) (OutputState, []events.Draft, []Effect) {
	s, drafts, effs := Step(s, rest)
	reason := "the kernel died during the execution: " + death.Reason
	if expected {
		reason = "the kernel was stopped during the execution"
	}
	s, lost, lostEffs := Lose(s, reason, by)
	drafts, effs = append(drafts, lost...), append(effs, lostEffs...)
	if !expected {
		drafts = append(drafts, draft(s.KernelID, events.KernelDied{KernelID: s.KernelID, Reason: death.Reason,
			ExitCode: death.ExitCode, Signal: death.Signal, StderrTail: death.StderrTail}))
	}
	return s, drafts, effs
}

// maxIOPubProbes bounds the kernel_info_requests sent behind a count probe
// whose IOPub never arrives (an IOPub socket that delivers nothing): then
// the probe's reply decides alone.
const maxIOPubProbes = 1000

// Suffixes of the requests a reconciliation sends behind its probe.
const (
	iopubProbe     = "-iopub-probe-"
	historyBarrier = "-barrier"
)

// nextIOPubProbe asks for a kernel_info_request behind a count probe whose
// reply arrived without any of its IOPub messages.
func nextIOPubProbe(rc *Reconciliation) Effect {
	rc.IOPubProbes++
	return SendRequest{Channel: ChannelShell, MsgType: "kernel_info_request", MsgID: rc.ProbeID + iopubProbe + strconv.Itoa(rc.IOPubProbes)}
}

// probeIdle asks for a kernel_info_request behind an execution whose reply
// arrived without its idle status.
func probeIdle(s OutputState, execMsgID string, effs []Effect) (OutputState, []Effect) {
	s.Probes++
	probe := execMsgID + "-idle-probe-" + strconv.Itoa(s.Probes)
	s.IdleProbes[probe] = execMsgID
	return s, append(effs, SendRequest{Channel: ChannelShell, MsgType: "kernel_info_request", MsgID: probe})
}

// IdleProbeGrace is how long the first idle probe of an execution waits
// before it is sent. ipykernel publishes the idle status right after the
// reply (a median of ~0.15 ms later here), so a probe sent at once almost
// always proved nothing, and cost the kernel a kernel_info request — whose
// busy/idle statuses were then recorded too — ahead of the next execution
// on every round trip. Only an idle the kernel really dropped waits this
// long for its probe.
const IdleProbeGrace = 20 * time.Millisecond

// deferProbe turns the probe effect probeIdle just added into one sent
// after IdleProbeGrace, unless the idle status arrives first
// (IdleProbeDue).
func deferProbe(effs []Effect) []Effect {
	if r, ok := effs[len(effs)-1].(SendRequest); ok {
		r.After = IdleProbeGrace
		effs[len(effs)-1] = r
	}
	return effs
}

// IdleProbeDue is a deferred idle probe's time: the probe is sent if the
// execution still waits for its idle status, and forgotten otherwise.
// Pure.
func IdleProbeDue(s OutputState, probe string) (OutputState, []Effect) {
	target := s.IdleProbes[probe]
	if target == "" {
		return s, nil
	}
	if in := s.Inflight[target]; in != nil && in.Replied && !in.Idle {
		return s, []Effect{SendRequest{Channel: ChannelShell, MsgType: "kernel_info_request", MsgID: probe}}
	}
	delete(s.IdleProbes, probe)
	return s, nil
}

// idleLost completes an execution whose idle status the kernel dropped,
// recording the gap.
func idleLost(s OutputState, execMsgID string, drafts []events.Draft, effs []Effect) ([]events.Draft, []Effect) {
	in := s.Inflight[execMsgID]
	if in == nil || in.Idle {
		return drafts, effs
	}
	drafts = append(drafts, draft(s.KernelID, events.IOPubGapRecorded{KernelID: s.KernelID, Dropped: 1,
		Reason: "the kernel's IOPub socket dropped messages (at least the idle status of execution " + in.ExecID + "); output of that execution may be incomplete"}))
	in.Idle = true
	return complete(s, execMsgID, in, drafts, effs)
}

// complete appends the final event of an execution whose reply and idle
// status have both arrived.
func complete(s OutputState, msgID string, in *Inflight, drafts []events.Draft, effs []Effect) ([]events.Draft, []Effect) {
	if !in.Replied || !in.Idle {
		return drafts, effs
	}
	delete(s.Inflight, msgID)
	drafts = lostDrafts(s, in, drafts)
	if len(s.Inflight) == 0 && in.Counted {
		s.Counters.forget(in.Last + 1)
	}
	r := in.Reply
	if s.Reconcile != nil {
		// NB: it ran before the count probe: the probe's base moves past it.
		s.Reconcile.Base = max(s.Reconcile.Base, r.ExecutionCount)
	}
	var payload events.Payload
	status := r.Status
	if r.Status == "aborted" && in.Abort != "" {
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.ExecID), Kernel: s.KernelID, Principal: in.AbortBy,
			Payload: events.ExecutionCancelled{ExecutionID: in.ExecID, Reason: in.Abort}})
		return drafts, append(effs, Ended{ExecutionID: in.ExecID, Status: "cancelled"})
	}
	if r.Status == "error" && r.Ename == "KeyboardInterrupt" {
		payload, status = events.ExecutionInterrupted{ExecutionID: in.ExecID, ExecutionCount: r.ExecutionCount}, "interrupted"
	} else {
		fin := events.ExecutionFinished{ExecutionID: in.ExecID, Status: r.Status, ExecutionCount: r.ExecutionCount,
			ErrorName: r.Ename, ErrorValue: r.Evalue, Traceback: r.Traceback}
		var d1, d2 string
		fin.ReplyPayload, d1 = replyExtra("payload", r.Payload)
		fin.UserExpressions, d2 = replyExtra("user_expressions", r.UserExpressions)
		fin.ReplyDropped = strings.Join(slices.DeleteFunc([]string{d1, d2}, func(d string) bool { return d == "" }), "; ")
		payload = fin
	}
	drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.ExecID), Kernel: s.KernelID, Principal: in.By, Payload: payload})
	return drafts, append(effs, Ended{ExecutionID: in.ExecID, Status: status, Count: r.ExecutionCount})
}

// consumed counts a message the transport answered itself.
func consumed(s OutputState, m Incoming) OutputState {
	n, ok := s.Counters.see(m.MsgID)
	switch {
	case !ok:
	case m.MsgType == "status":
		s = sawIOPub(s, n)
	case m.MsgType == "kernel_info_reply" && len(s.AttachReplies) < 64:
		s.AttachReplies = append(s.AttachReplies, n)
	}
	return s
}

func sawIOPub(s OutputState, n uint64) OutputState {
	if !s.SawIOPub || n < s.FirstIOPub {
		s.SawIOPub, s.FirstIOPub = true, n
	}
	return s
}

// count records m's counter and widens its execution's window.
func count(s OutputState, m Incoming) OutputState {
	n, ok := s.Counters.see(m.MsgID)
	if !ok {
		return s
	}
	if m.Channel == ChannelIOPub {
		s = sawIOPub(s, n)
	}
	if len(s.Inflight) == 0 {
		// NB: nothing in flight needs what came before: the tracker stays
		// small on a kernel that talks while idle (comms, other clients).
		s.Counters.forget(n + 1)
		return s
	}
	in := s.Inflight[m.ParentMsgID]
	if in == nil {
		return s
	}
	if !in.Counted {
		in.First, in.Last, in.Counted = n, n, true
	}
	in.First, in.Last = min(in.First, n), max(in.Last, n)
	return s
}

// holeReason is why messages missing from an execution's window were lost,
// unless the window says otherwise.
const holeReason = "the kernel's IOPub socket dropped messages (its send queue was full)"

// lostDrafts records, before an execution's final event, the output it
// lost: the holes in its window of the kernel's counters, and what was
// counted lost otherwise.
func lostDrafts(s OutputState, in *Inflight, drafts []events.Draft) []events.Draft {
	add := func(n int, reason string) {
		drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.ExecID), Kernel: s.KernelID, Principal: in.By,
			Payload: events.ExecutionOutputLost{ExecutionID: in.ExecID, Messages: max(n, 0), Reason: reason}})
	}
	if in.Counted {
		n, known := s.Counters.missing(in.First, in.Last)
		reason := holeReason
		if in.HoleReason != "" {
			reason = in.HoleReason + "; or " + holeReason
			// NB: the statuses of the re-attach's own kernel_info requests,
			// published before our subscription took effect, are holes too
			// but no output: leave them out. A lost output that happens to
			// sit right beside such a reply may be hidden this way; no gap
			// is invented.
			for _, r := range s.AttachReplies {
				for _, c := range [2]uint64{r - 1, r + 1} {
					if c >= in.First && c <= in.Last && (!s.SawIOPub || c < s.FirstIOPub) && !s.Counters.has(c) {
						n--
					}
				}
			}
		}
		switch {
		case !known:
			add(0, "too many messages to check for gaps; "+reason)
		case n > 0:
			add(n, reason)
		}
	}
	if in.Lost != 0 {
		add(in.Lost, in.LostReason)
	}
	return drafts
}

// rawMsgID reads the msg_id of a stored IOPubMessageReceived payload.
func rawMsgID(raw []byte) (string, bool) {
	var p struct {
		MsgID string `json:"msg_id"`
	}
	if json.Unmarshal(raw, &p) != nil || p.MsgID == "" {
		return "", false
	}
	return p.MsgID, true
}

// knownIOPub lists the IOPub message types of the Jupyter messaging
// protocol v5.3 (and ipykernel's debug events).
var knownIOPub = map[string]bool{
	"stream": true, "display_data": true, "update_display_data": true, "execute_input": true,
	"execute_result": true, "error": true, "status": true, "clear_output": true, "debug_event": true,
	"comm_open": true, "comm_msg": true, "comm_close": true, "shutdown_reply": true,
}

func isIdle(content json.RawMessage) bool {
	var s struct {
		ExecutionState string `json:"execution_state"`
	}
	return json.Unmarshal(content, &s) == nil && s.ExecutionState == "idle"
}
