package events

// Execution lifecycle, on stream execution/<id>.
// NB: type strings must not change.
const (
	TypeExecutionQueued         = "ExecutionQueued"
	TypeExecutionStarted        = "ExecutionStarted"
	TypeExecutionInputRequested = "ExecutionInputRequested"
	TypeExecutionInputSent      = "ExecutionInputSent"
	TypeExecutionFinished       = "ExecutionFinished"
	TypeExecutionInterrupted    = "ExecutionInterrupted"
	TypeExecutionCancelled      = "ExecutionCancelled"
	TypeExecutionLost           = "ExecutionLost"
	TypeExecutionOutputLost     = "ExecutionOutputLost"
)

// ExecutionQueued: code was accepted for a kernel. Durable before the caller
// hears back.
type ExecutionQueued struct {
	ExecutionID string `json:"execution_id"`
	KernelID    string `json:"kernel_id"`
	Code        string `json:"code"`
	AllowStdin  bool   `json:"allow_stdin,omitempty"`
	Notebook    string `json:"notebook,omitempty"`
	CellID      string `json:"cell_id,omitempty"`
	// Origin: a Jupyter frontend's execute_request (nil: an MCP tool call).
	Origin *Origin `json:"origin,omitempty"`
	// The frontend's execute options (an MCP tool call's are the zero
	// values: not silent, stored in history, no stop on error).
	// Silent: execute_request silent (no execute_input, not counted).
	Silent bool `json:"silent,omitempty"`
	// SkipHistory: execute_request store_history false.
	SkipHistory bool `json:"skip_history,omitempty"`
	// StopOnError: if it ends in error, its frontend session's executions
	// waiting with StopOnError are cancelled (as ipykernel aborts its queue).
	StopOnError bool `json:"stop_on_error,omitempty"`
	// UserExpressions: evaluated after the code, by name; answered in the
	// execute_reply.
	UserExpressions map[string]string `json:"user_expressions,omitempty"`
}

// ExecutionStarted: the execute_request is handed to the kernel (it may
// leave before this event is durable: a crash in between is accounted for
// by the count probe after the re-attach, never by sending it again).
type ExecutionStarted struct {
	ExecutionID string `json:"execution_id"`
	KernelID    string `json:"kernel_id"`
	MsgID       string `json:"msg_id"`
	// Behind names the execution this one was sent behind (pipelined): the
	// kernel runs it once that one ends; until then it is shown queued.
	Behind string `json:"behind,omitempty"`
}

// ExecutionInputRequested: the code called input() and waits for an answer.
type ExecutionInputRequested struct {
	ExecutionID string `json:"execution_id"`
	Prompt      string `json:"prompt"`
	Password    bool   `json:"password,omitempty"`
}

// ExecutionInputSent: an answer went to the kernel. The value is not
// recorded (it may be a password).
type ExecutionInputSent struct {
	ExecutionID string `json:"execution_id"`
}

// ExecutionFinished: both the execute_reply and the idle status arrived.
type ExecutionFinished struct {
	ExecutionID    string   `json:"execution_id"`
	Status         string   `json:"status"` // ok, error or aborted, as in execute_reply
	ExecutionCount int      `json:"execution_count,omitempty"`
	ErrorName      string   `json:"ename,omitempty"`
	ErrorValue     string   `json:"evalue,omitempty"`
	Traceback      []string `json:"traceback,omitempty"`
	// ReplyPayload: the execute_reply's payload list (set_next_input from
	// %load, page from obj?, ...) as JSON text; "" when empty or larger than
	// MaxReplyExtra (ReplyDropped then says so).
	ReplyPayload string `json:"reply_payload,omitempty"`
	// UserExpressions: the execute_reply's user_expressions object as JSON
	// text, bounded likewise.
	UserExpressions string `json:"user_expressions,omitempty"`
	// ReplyDropped says which of the two was too large to record.
	ReplyDropped string `json:"reply_dropped,omitempty"`
}

// MaxReplyExtra bounds the JSON text of an ExecutionFinished's
// ReplyPayload and of its UserExpressions (each).
const MaxReplyExtra = 256 << 10

// ExecutionInterrupted: the execution ended in KeyboardInterrupt after an
// interrupt was asked for.
type ExecutionInterrupted struct {
	ExecutionID    string `json:"execution_id"`
	ExecutionCount int    `json:"execution_count,omitempty"`
}

// ExecutionCancelled: a queued execution was withdrawn before it started.
type ExecutionCancelled struct {
	ExecutionID string `json:"execution_id"`
	Reason      string `json:"reason"`
}

// ExecutionLost: the execution can have no definite result (its kernel died,
// was lost, or the server restarted while it ran and no reply came).
// NB: never resent automatically — the kernel may already have run it.
type ExecutionLost struct {
	ExecutionID string `json:"execution_id"`
	Reason      string `json:"reason"`
	// Ran says the kernel did run it (its execution count, after a
	// re-attach, proves so) though its result and outputs were not
	// recorded; ExecutionCount is then its count. Never run again.
	Ran            bool `json:"ran,omitempty"`
	ExecutionCount int  `json:"execution_count,omitempty"`
}

// ExecutionOutputLost: some of the execution's output never reached the log
// (the kernel's IOPub socket dropped it, the server was down while it was
// printed, or the log refused it). The execution's other events are
// unaffected; its result says "outputs incomplete". Messages is how many
// were lost, 0 when the number is not known.
type ExecutionOutputLost struct {
	ExecutionID string `json:"execution_id"`
	Messages    int    `json:"messages,omitempty"`
	Reason      string `json:"reason"`
}

func (ExecutionQueued) EventType() string         { return TypeExecutionQueued }
func (ExecutionStarted) EventType() string        { return TypeExecutionStarted }
func (ExecutionInputRequested) EventType() string { return TypeExecutionInputRequested }
func (ExecutionInputSent) EventType() string      { return TypeExecutionInputSent }
func (ExecutionFinished) EventType() string       { return TypeExecutionFinished }
func (ExecutionInterrupted) EventType() string    { return TypeExecutionInterrupted }
func (ExecutionCancelled) EventType() string      { return TypeExecutionCancelled }
func (ExecutionLost) EventType() string           { return TypeExecutionLost }
func (ExecutionOutputLost) EventType() string     { return TypeExecutionOutputLost }
