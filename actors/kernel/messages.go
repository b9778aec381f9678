package kernel

import "github.com/mcp-jupyter/mcp-jupyter/events"

// Commands the kernel actor takes. Each is answered with a Result unless
// noted. By names the principal whose request it is: the events the command
// causes carry it (events.Draft.Principal). Who may send which command is
// decided at the edge (cmd/mcp-jupyter), not here.
type (
	// Start launches the kernel from a kernelspec. Owner is the principal
	// starting it, who owns the kernel from then on.
	Start struct {
		Spec     string
		Label    string
		Notebook string
		Owner    string
	}
	// Execute sends an execute_request whose ExecutionStarted is already
	// durable. Answered with ExecuteResult.
	Execute struct {
		ExecutionID string
		MsgID       string
		Code        string
		AllowStdin  bool
		// A frontend's execute options (see events.ExecutionQueued);
		// stop_on_error is the scheduler's, never sent to the kernel.
		Silent          bool
		SkipHistory     bool
		UserExpressions map[string]string
		// By submitted the execution: its outputs and final event carry it.
		By string
		// Behind names the running execution this one is pipelined behind
		// ("" none); refused with ErrBusy unless the kernel pipelines and
		// that one is the only one in flight.
		Behind string
		// Seq is the log sequence of its ExecutionStarted: in a cluster
		// the request leaves once the history holds it
		// (Deps.ConfirmStarted; 0: at once).
		Seq uint64
	}
	// Abort asks the kernel not to run ExecutionID, pipelined behind the
	// running one (answered with a Result once the kernel acknowledged the
	// abort_request, or after Deps.AbortReplyTimeout; the outcome comes as
	// ExecutionEnded: "cancelled" if the kernel had not taken it up, its
	// real status otherwise).
	Abort struct {
		ExecutionID string
		Reason      string
		By          string
	}
	// Resume re-adopts an execution that was running when the server (or
	// the kernel actor) stopped: it completes if its reply still arrives on
	// the reattached connection, and is recorded lost if the kernel answers
	// a later request first, or at once if the kernel is not running. Not
	// answered: the outcome comes as ExecutionEnded.
	Resume struct {
		ExecutionID string
		MsgID       string
		By          string // who submitted it (from its ExecutionQueued)
		// Gone: the process it was sent to is gone (the kernel was
		// relaunched since): it is recorded lost with this reason at once,
		// never looked for on the current connection.
		Gone string
	}
	// Reconcile, from the scheduler after a re-attach (Ready{Reattached}),
	// probes the kernel's execution count before anything new is sent and
	// records what ran while the server was down (see StartReconcile):
	// Active, the execution the log shows started and unended (nil if
	// none or the actor holds it); Pending, the first executions the log
	// shows queued; LastCount, the highest execution count the log records
	// on this kernel process. Not answered: the executions it accounts for
	// come as ExecutionEnded, then Reconciled.
	Reconcile struct {
		Active    []Resume
		Pending   []Unstarted
		LastCount int
	}
	Interrupt struct{ By string }
	Restart   struct{ By string }
	Shutdown  struct {
		Reason string
		By     string
		// Culled: the server shuts the kernel down after --cull-idle
		// without activity (KernelShutDown.Culled, with Reason); refused
		// while an execution is in flight (see DecideCull).
		Culled bool
	}
	// SendInput answers an input() call of an execution.
	SendInput struct {
		ExecutionID string
		Value       string
		By          string
	}
	// Share grants Principal access ("read", "execute") to the kernel, or
	// withdraws it ("none"). Answered with a Result.
	Share struct {
		By        string
		Principal string
		Access    string
	}
	// GetState is answered with the State.
	GetState struct{}
	// FinishRestore ends the hold of a kernel relaunched at recovery
	// (State.Restore): it records Restored (KernelRestored, its KernelID
	// set to this kernel's) and tells the scheduler (RestoreEnded), which
	// runs what waits from then on. Refused with ErrNotHeld when no restore
	// is under way. Answered with a Result.
	FinishRestore struct{ Restored events.KernelRestored }
	// Disown: another node took the kernel over (its KernelAdopted was
	// imported) while this one still ran it. The actor appends nothing,
	// closes its connection and kills this node's process of the kernel;
	// every later command is refused. Answered with a Result.
	Disown struct{}
	// Watch, from a scheduler that (re)started, is answered with Ready or
	// Stopped when the kernel's state says which; while an operation is
	// under way it is not answered (its end is notified).
	Watch struct{}
)

// Result answers a command: the kernel's state after it, or why it was
// refused.
type Result struct {
	State State
	Err   error
}

// ExecuteResult answers Execute.
type ExecuteResult struct {
	ExecutionID string
	Err         error
}

// Notifications the kernel actor sends to its scheduler.
type (
	// Ready: the kernel can take executions (started, restarted or
	// reattached). Running names the execution the actor has in flight
	// (answering Watch); an active execution of the scheduler's that is not
	// running must be handed back with Resume.
	Ready struct {
		Reattached bool
		Running    string
		// Pipelined is the execution in flight behind Running ("" none);
		// Pipeline says the kernel takes one (ipykernel honours
		// abort_request, so a pipelined execution can still be cancelled).
		Pipelined string
		Pipeline  bool
		// Fresh: a new kernel process (started or restarted): its
		// execution count starts again.
		Fresh bool
		// Gone (with Fresh): the started executions the scheduler holds and
		// this actor does not ran in a process that is gone: hand them back
		// with Resume{Gone: Gone} (recorded lost with that reason). Empty:
		// a generic reason. GoneBehind is the reason for the one sent behind
		// the running one (pipelined).
		Gone, GoneBehind string
		// Restore: the kernel is held for its restore from this checkpoint
		// (State.Restore): dispatch nothing but a Submit{Restore} until
		// RestoreEnded.
		Restore string
		// RestoreSeq is the seq of the KernelRestarted that began the hold.
		RestoreSeq uint64
	}
	// RestoreEnded: KernelRestored is durable; the hold is over.
	RestoreEnded struct{}
	// Reconciled: a Reconcile is done; the kernel takes executions.
	// ExecutionCount is the kernel's count it read (0: not read).
	Reconciled struct{ ExecutionCount int }
	// Stopped: the kernel can take no executions until a restart (Status
	// running: a restart is under way). Ending lists the executions in
	// flight whose ExecutionEnded follows.
	Stopped struct {
		Status Status
		Reason string
		Ending []string
	}
	// ExecutionEnded: an execution's final event (ExecutionFinished,
	// ExecutionInterrupted or ExecutionLost, written by the kernel actor) is
	// durable. Status is the final status ("ok", "error", "interrupted",
	// "lost"): the scheduler applies it without reading the log.
	ExecutionEnded struct {
		ExecutionID string
		Status      string
		// ExecutionCount is the kernel's count for it, when known.
		ExecutionCount int
	}
)

// Unstarted is a queued execution named in a Reconcile.
type Unstarted struct {
	ExecutionID string
	By          string
	Code        string // compared with the kernel's input history
}

// Commands of Jupyter frontends attached through the Jupyter Server API
// (infra/jupyterapi). An execute_request of a frontend is not one of them:
// it is an execution like an agent's (scheduler.Submit with an Origin).
type (
	// Relay sends a frontend's request that is no execution
	// (kernel_info_request, complete_request, inspect_request,
	// history_request, is_complete_request, comm_info_request, comm_open,
	// comm_msg, comm_close; debug_request on control) to the kernel under
	// MsgID, a fresh id of the server's. Every shell or control message the
	// kernel sends with that parent is delivered to Replies, without
	// blocking (a full channel loses the reply, counted); the relay is
	// forgotten once its *_reply arrived, when the kernel restarts or dies,
	// or when more than MaxRelays are outstanding (the oldest). Its IOPub
	// messages are recorded like any other (IOPubMessageReceived on the
	// kernel's stream). Answered with a Result.
	Relay struct {
		Channel string // shell or control
		MsgType string
		MsgID   string
		Content []byte // the request's content, JSON
		By      string
		Replies chan<- Reply
	}
	// AttachFrontend records FrontendAttached unless this session was
	// recorded by this actor already. Answered with a Result.
	AttachFrontend struct {
		Session, Username, Client, Framing string
		By                                 string
	}
	// OpenSession records KernelSessionOpened; CloseSession
	// KernelSessionClosed. Answered with a Result.
	OpenSession struct {
		SessionID, Path, Name, Type string
		By                          string
	}
	CloseSession struct {
		SessionID, Reason string
		By                string
	}
)

// Reply is a kernel's message to a Relay's request (a *_reply on shell or
// control, with the request's MsgID as its parent).
type Reply = events.KernelMessage

// MaxRelays bounds the relayed requests a kernel actor waits on.
const MaxRelays = 1024
