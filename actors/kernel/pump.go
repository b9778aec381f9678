package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// maxPumpBatch bounds how many kernel messages go into one append.
const maxPumpBatch = 1024

// inflight is an execute_request we sent and whose completion we await.
type inflight struct {
	execID  string
	replied bool
	idle    bool
	reply   executeReply
}

type executeReply struct {
	Status         string   `json:"status"`
	ExecutionCount int      `json:"execution_count"`
	Ename          string   `json:"ename"`
	Evalue         string   `json:"evalue"`
	Traceback      []string `json:"traceback"`
}

// ended tells the actor an execution reached a final state (durably).
type ended struct {
	execID string
	status string
}

// pumpStopped tells the actor the pump ended: the connection died (death set)
// or persisting failed (err set).
type pumpStopped struct {
	conn  Conn
	death *Death
	err   error
}

// pump turns what a kernel sends into durable events. It is owned by the
// kernel actor: started with the connection, stopped by closing the
// connection (Messages closes) or by ctx.
type pump struct {
	kernelID string
	log      actors.Log
	conn     Conn
	logger   *slog.Logger
	report   func(any) // delivers ended / pumpStopped to the actor

	mu       sync.Mutex
	inflight map[string]*inflight // by execute_request msg_id
	// barriers maps a resume barrier's msg_id to the execute_request it
	// stands behind (see Resume).
	barriers map[string]string
	// idleProbes maps a probe's msg_id to the execute_request whose reply
	// came before its idle status. IOPub is ordered, so any IOPub message
	// caused by the probe proves the execution's idle status was dropped by
	// the kernel's PUB socket (it drops past its high-water mark).
	idleProbes map[string]string
	// expectExit is set when the actor itself stops the kernel (shutdown,
	// restart): the exit is then not a death.
	expectExit bool
	// dropped counts IOPub messages of unknown types; warned holds the types
	// already logged (once each).
	dropped int
	warned  map[string]bool

	done chan struct{}
}

func startPump(ctx context.Context, kernelID string, log actors.Log, conn Conn, logger *slog.Logger, report func(any)) *pump {
	p := &pump{kernelID: kernelID, log: log, conn: conn, logger: logger, report: report,
		inflight: map[string]*inflight{}, barriers: map[string]string{}, idleProbes: map[string]string{}, warned: map[string]bool{}, done: make(chan struct{})}
	go p.run(ctx)
	return p
}

// expect registers an execute_request before it is sent, so that every
// message whose parent it is lands on the execution's stream.
func (p *pump) expect(msgID, execID string) {
	p.mu.Lock()
	p.inflight[msgID] = &inflight{execID: execID}
	p.mu.Unlock()
}

// resume re-adopts an execution sent by a previous connection, with the
// barrier request that decides whether it is still running.
func (p *pump) resume(msgID, execID, barrier string) {
	p.mu.Lock()
	p.inflight[msgID] = &inflight{execID: execID}
	p.barriers[barrier] = msgID
	p.mu.Unlock()
}

// probeIdle sends a kernel_info_request behind an execution whose reply
// arrived without its idle status. Called with p.mu held.
func (p *pump) probeIdle(execMsgID string) {
	probe := events.NewID(time.Now())
	p.idleProbes[probe] = execMsgID
	if err := p.conn.Send(ChannelShell, "kernel_info_request", probe, nil); err != nil {
		p.logger.Warn("send idle probe", "err", err)
	}
}

// idleLost completes an execution whose idle status the kernel dropped,
// recording the gap. Called with p.mu held.
func (p *pump) idleLost(execMsgID string, drafts []events.Draft, done []ended) ([]events.Draft, []ended) {
	in := p.inflight[execMsgID]
	if in == nil || in.idle {
		return drafts, done
	}
	drafts = append(drafts, draft(p.kernelID, events.IOPubGapRecorded{KernelID: p.kernelID, Dropped: 1,
		Reason: "the kernel's IOPub socket dropped messages (at least the idle status of execution " + in.execID + "); output of that execution may be incomplete"}))
	in.idle = true
	return p.complete(execMsgID, in, drafts, done)
}

func (p *pump) forget(msgID string) {
	p.mu.Lock()
	delete(p.inflight, msgID)
	p.mu.Unlock()
}

func (p *pump) setExpectExit() {
	p.mu.Lock()
	p.expectExit = true
	p.mu.Unlock()
}

func (p *pump) run(ctx context.Context) {
	defer close(p.done)
	msgs := p.conn.Messages()
	dead := p.conn.Dead()
	batch := make([]Incoming, 0, maxPumpBatch)
	for {
		batch = batch[:0]
		select {
		case m, ok := <-msgs:
			if !ok {
				return // connection closed by the actor
			}
			batch = append(batch, m)
		case <-dead:
			p.died(ctx, msgs)
			return
		case <-ctx.Done():
			return
		}
	gather:
		for len(batch) < maxPumpBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break gather
				}
				batch = append(batch, m)
			default:
				break gather
			}
		}
		done, err := p.persist(ctx, batch, nil)
		if err != nil {
			p.report(pumpStopped{conn: p.conn, err: err})
			return
		}
		for _, d := range done {
			p.report(d)
		}
	}
}

// died drains what the dead kernel had already sent, then records the
// death and the loss of everything in flight in one append.
func (p *pump) died(ctx context.Context, msgs <-chan Incoming) {
	var rest []Incoming
drain:
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				break drain
			}
			rest = append(rest, m)
		default:
			break drain
		}
	}
	death := p.conn.Death()
	p.mu.Lock()
	expected := p.expectExit
	p.mu.Unlock()
	var tail []events.Draft
	if !expected {
		tail = append(tail, draft(p.kernelID, events.KernelDied{KernelID: p.kernelID, Reason: death.Reason,
			ExitCode: death.ExitCode, Signal: death.Signal, StderrTail: death.StderrTail}))
	}
	done, err := p.persist(ctx, rest, func(lost []string) []events.Draft {
		reason := "the kernel died during the execution: " + death.Reason
		if expected {
			reason = "the kernel was stopped during the execution"
		}
		var out []events.Draft
		for _, id := range lost {
			out = append(out, events.Draft{Stream: events.ExecutionStream(id), Kernel: p.kernelID,
				Payload: events.ExecutionLost{ExecutionID: id, Reason: reason}})
		}
		return append(out, tail...)
	})
	// NB: the death first, so the scheduler stops dispatching before it
	// hears that the executions in flight ended.
	p.report(pumpStopped{conn: p.conn, death: &death, err: err})
	for _, d := range done {
		p.report(d)
	}
}

// persist appends the events for a batch of messages, completing the
// executions whose reply and idle status have both arrived, and returns the
// executions it ended (durably). finish, if set, adds events for the
// executions still in flight (passed by id) at the end.
func (p *pump) persist(ctx context.Context, batch []Incoming, finish func(lost []string) []events.Draft) ([]ended, error) {
	drafts := make([]events.Draft, 0, len(batch)+1)
	var done []ended
	p.mu.Lock()
	for _, m := range batch {
		switch {
		case m.Dropped > 0:
			drafts = append(drafts, draft(p.kernelID, events.IOPubGapRecorded{KernelID: p.kernelID, Dropped: m.Dropped,
				Reason: "the server's IOPub queue overflowed; these messages never reached the log"}))
		case m.Channel == ChannelIOPub && p.idleProbes[m.ParentMsgID] != "":
			execMsg := p.idleProbes[m.ParentMsgID]
			for probe, target := range p.idleProbes {
				if target == execMsg {
					delete(p.idleProbes, probe)
				}
			}
			drafts, done = p.idleLost(execMsg, drafts, done)
			drafts = append(drafts, draft(p.kernelID, events.IOPubMessageReceived{KernelID: p.kernelID, MsgID: m.MsgID,
				ParentMsgID: m.ParentMsgID, MsgType: m.MsgType, Content: m.Content}))
		case m.Channel == ChannelShell && p.idleProbes[m.ParentMsgID] != "":
			// The probe was answered but none of its IOPub output arrived yet:
			// probe again until some does (the PUB queue drains).
			execMsg := p.idleProbes[m.ParentMsgID]
			delete(p.idleProbes, m.ParentMsgID)
			if in := p.inflight[execMsg]; in != nil && !in.idle {
				p.probeIdle(execMsg)
			}
		case m.Channel == ChannelIOPub && !knownIOPub[m.MsgType]:
			// NB: never applied: a type the protocol (v5.3) does not define.
			p.dropped++
			if !p.warned[m.MsgType] && len(p.warned) < 64 {
				p.warned[m.MsgType] = true
				p.logger.Warn("dropped IOPub messages of an unknown type", "msg_type", m.MsgType)
			}
		case m.Channel == ChannelIOPub:
			in := p.inflight[m.ParentMsgID]
			stream, execID := events.KernelStream(p.kernelID), ""
			if in != nil {
				stream, execID = events.ExecutionStream(in.execID), in.execID
			}
			drafts = append(drafts, events.Draft{Stream: stream, Kernel: p.kernelID, Payload: events.IOPubMessageReceived{
				KernelID: p.kernelID, ExecutionID: execID, MsgID: m.MsgID, ParentMsgID: m.ParentMsgID, MsgType: m.MsgType, Content: m.Content}})
			if in != nil && m.MsgType == "status" && isIdle(m.Content) {
				in.idle = true
				drafts, done = p.complete(m.ParentMsgID, in, drafts, done)
			}
		case m.Channel == ChannelShell && m.MsgType == "execute_reply":
			in := p.inflight[m.ParentMsgID]
			if in == nil {
				continue // a reply to a request of a previous connection
			}
			in.replied = true
			if err := json.Unmarshal(m.Content, &in.reply); err != nil {
				in.reply = executeReply{Status: "error", Ename: "ProtocolError", Evalue: "unreadable execute_reply: " + err.Error()}
			}
			if !in.idle {
				p.probeIdle(m.ParentMsgID)
			}
			drafts, done = p.complete(m.ParentMsgID, in, drafts, done)
		case m.Channel == ChannelShell && p.barriers[m.ParentMsgID] != "":
			execMsg := p.barriers[m.ParentMsgID]
			delete(p.barriers, m.ParentMsgID)
			in := p.inflight[execMsg]
			if in == nil || in.replied {
				continue // it completed (or its reply came) before the barrier
			}
			delete(p.inflight, execMsg)
			drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.execID), Kernel: p.kernelID,
				Payload: events.ExecutionLost{ExecutionID: in.execID, Reason: "the server restarted during this execution and its result was not observed; the kernel (and its variables) survived — re-run it if needed"}})
			done = append(done, ended{execID: in.execID, status: "lost"})
		case m.Channel == ChannelStdin && m.MsgType == "input_request":
			in := p.inflight[m.ParentMsgID]
			if in == nil {
				continue
			}
			var req struct {
				Prompt   string `json:"prompt"`
				Password bool   `json:"password"`
			}
			_ = json.Unmarshal(m.Content, &req)
			drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.execID), Kernel: p.kernelID,
				Payload: events.ExecutionInputRequested{ExecutionID: in.execID, Prompt: req.Prompt, Password: req.Password}})
		}
	}
	if finish != nil {
		var lost []string
		for msgID, in := range p.inflight {
			lost = append(lost, in.execID)
			delete(p.inflight, msgID)
			done = append(done, ended{execID: in.execID, status: "lost"})
		}
		drafts = append(drafts, finish(lost)...)
	}
	p.mu.Unlock()
	if len(drafts) == 0 {
		return done, nil
	}
	if _, err := p.log.Append(ctx, drafts...); err != nil {
		return nil, fmt.Errorf("persist output of kernel %s: %w", p.kernelID, err)
	}
	return done, nil
}

// complete appends the final event of an execution whose reply and idle
// status have both arrived. Called with p.mu held.
func (p *pump) complete(msgID string, in *inflight, drafts []events.Draft, done []ended) ([]events.Draft, []ended) {
	if !in.replied || !in.idle {
		return drafts, done
	}
	delete(p.inflight, msgID)
	r := in.reply
	var payload events.Payload
	status := r.Status
	if r.Status == "error" && r.Ename == "KeyboardInterrupt" {
		payload, status = events.ExecutionInterrupted{ExecutionID: in.execID, ExecutionCount: r.ExecutionCount}, "interrupted"
	} else {
		payload = events.ExecutionFinished{ExecutionID: in.execID, Status: r.Status, ExecutionCount: r.ExecutionCount,
			ErrorName: r.Ename, ErrorValue: r.Evalue, Traceback: r.Traceback}
	}
	drafts = append(drafts, events.Draft{Stream: events.ExecutionStream(in.execID), Kernel: p.kernelID, Payload: payload})
	return drafts, append(done, ended{execID: in.execID, status: status})
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
