package events

import "time"

// Kernel lifecycle events, on stream kernel/<id>.
// NB: type strings must not change.
const (
	TypeKernelStarted     = "KernelStarted"
	TypeKernelStartFailed = "KernelStartFailed"
	TypeKernelInterrupted = "KernelInterrupted"
	TypeKernelRestarted   = "KernelRestarted"
	TypeKernelShutDown    = "KernelShutDown"
	TypeKernelDied        = "KernelDied"
	TypeKernelReattached  = "KernelReattached"
	TypeKernelLost        = "KernelLost"
	TypeKernelShared      = "KernelShared"
	// TypeKernelRanUnrecorded: see KernelRanUnrecorded.
	TypeKernelRanUnrecorded = "KernelRanUnrecorded"
	// TypeKernelRestored: see KernelRestored.
	TypeKernelRestored = "KernelRestored"
	// TypeKernelAdopted: see KernelAdopted.
	TypeKernelAdopted = "KernelAdopted"
)

// KernelProcess is what is needed to find a kernel process again after the
// server restarts. The connection file (0600, runtime/kernels/<id>/connection.json;
// runtime/kernel-<id>.json in logs of older servers) holds the signing key and
// the ports the kernel bound; the key itself never enters the log, which is
// published.
type KernelProcess struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // /proc/<pid>/stat field 22, clock ticks since boot
	ConnFile  string `json:"conn_file"`
	LogFile   string `json:"log_file,omitempty"`
	IP        string `json:"ip,omitempty"`
	ShellPort int    `json:"shell_port,omitempty"`
	IOPubPort int    `json:"iopub_port,omitempty"`
	// Session is the client session, also the ZeroMQ identity of the shell
	// socket: re-attaching with it lets replies to requests sent before a
	// server restart still reach us.
	Session string `json:"session,omitempty"`
	// Sandbox is how the kernel process is confined (infra/sandbox):
	// "landlock-v7+mount+caps", "landlock-v7", "none" (no protection was
	// available), "off" (--kernel-sandbox=off). Empty in events written
	// before it existed.
	Sandbox string `json:"sandbox,omitempty"`
}

// KernelStarted: a kernel process is running and answered kernel_info.
type KernelStarted struct {
	KernelID      string        `json:"kernel_id"`
	Spec          string        `json:"spec"`
	Label         string        `json:"label,omitempty"`
	Notebook      string        `json:"notebook,omitempty"`
	Language      string        `json:"language,omitempty"`
	InterruptMode string        `json:"interrupt_mode,omitempty"`
	Process       KernelProcess `json:"process"`
	// DiesWithServer is true when the kernel was started with JPY_PARENT_PID
	// and will not outlive this server process.
	DiesWithServer bool `json:"dies_with_server,omitempty"`
	// Owner is the principal that started the kernel; it keeps it across
	// restarts and re-attachments. Empty in events written before
	// principals existed: such kernels belong to the admin.
	Owner string `json:"owner,omitempty"`
}

// KernelStartFailed: a start did not produce a ready kernel.
type KernelStartFailed struct {
	KernelID   string `json:"kernel_id"`
	Spec       string `json:"spec"`
	Reason     string `json:"reason"`
	StderrTail string `json:"stderr_tail,omitempty"`
}

// KernelInterrupted: an interrupt was delivered (signal or control message).
type KernelInterrupted struct {
	KernelID string `json:"kernel_id"`
	Mode     string `json:"mode"`
}

// KernelRestarted: the kernel process was replaced; its variables are gone.
type KernelRestarted struct {
	KernelID string        `json:"kernel_id"`
	Process  KernelProcess `json:"process"`
	// Reason is why the server started a fresh process on its own; empty
	// for a restart someone asked for. At recovery (--auto-restore): the
	// recorded process was gone (the pod was replaced), so a fresh one of
	// the same kernelspec runs under the same id.
	Reason string `json:"reason,omitempty"`
	// Restore names the checkpoint the server restores into the fresh
	// process (the kernel's auto-checkpoint; empty: none). Until the
	// KernelRestored that follows, the kernel runs nothing but that load:
	// what was queued waits for it.
	Restore string `json:"restore,omitempty"`
}

// KernelAdopted: in a cluster, this node took the kernel over from node
// From, whose ownership lease lapsed (the node died or was cut off). It is
// the adopting node's first record on kernel/<id>: from here on that node
// is the stream's writer. The process of the lost node is not the
// kernel's any more: a fresh one runs under the same id (the
// KernelRestarted that follows), restored from checkpoint Restore.
type KernelAdopted struct {
	KernelID string `json:"kernel_id"`
	// From is the node that owned the kernel until now.
	From string `json:"from"`
	// Reason says why the kernel changed hands ("node a stopped renewing
	// its lease 12s ago").
	Reason string `json:"reason"`
	// Restore names the checkpoint the fresh process is restored from
	// (empty: none).
	Restore string `json:"restore,omitempty"`
	// Through is the newest of node From's own records this node had
	// imported when it adopted the kernel (its sequence in From's log; 0:
	// not known). From's executions of the kernel queued after it were
	// unknown to this node, which neither runs nor ends them: From ends
	// them lost when it lets the kernel go (it was cut off meanwhile).
	Through uint64 `json:"through,omitempty"`
}

// KernelRestored: the server's restore of a relaunched kernel ended (see
// KernelRestarted.Restore); queued executions run from here on. What an
// agent is told on its next call about this kernel.
type KernelRestored struct {
	KernelID string `json:"kernel_id"`
	// Checkpoint is the checkpoint loaded (empty: none was).
	Checkpoint string `json:"checkpoint,omitempty"`
	// SavedAt is when that checkpoint was taken.
	SavedAt time.Time `json:"saved_at,omitzero"`
	// Restored are the variables back in the kernel's namespace.
	Restored []string `json:"restored,omitempty"`
	// Skipped are the variables the checkpoint could not hold (each with
	// its reason), so they are not back.
	Skipped []CheckpointVariable `json:"skipped,omitempty"`
	// Missing and Mismatched are recorded packages the fresh kernel lacks
	// or has at another version ("name==version" as saved).
	Missing    []string `json:"missing,omitempty"`
	Mismatched []string `json:"mismatched,omitempty"`
	// Lost are the executions that were running when the process went:
	// recorded lost, never run again.
	Lost []string `json:"lost,omitempty"`
	// Error says why nothing (or not everything) was restored: no
	// auto-checkpoint, the load was refused, it failed. Empty on success.
	Error string `json:"error,omitempty"`
}

// KernelShutDown: the kernel was stopped on request and must not be
// resurrected.
type KernelShutDown struct {
	KernelID string `json:"kernel_id"`
	Forced   bool   `json:"forced,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Culled: the server shut it down after --cull-idle without activity
	// (its auto-checkpoint, if any, was saved first), or its orphan guard
	// ended it after --orphan-grace without a server (recorded at the next
	// start instead of relaunching it; Reason says which).
	Culled bool `json:"culled,omitempty"`
}

// KernelDied: the kernel process exited or stopped answering heartbeats
// without being asked to.
type KernelDied struct {
	KernelID   string `json:"kernel_id"`
	Reason     string `json:"reason"`
	ExitCode   *int   `json:"exit_code,omitempty"`
	Signal     string `json:"signal,omitempty"`
	StderrTail string `json:"stderr_tail,omitempty"`
}

// KernelReattached: after a server restart, the kernel answered kernel_info
// on its recorded connection; its variables are intact.
type KernelReattached struct {
	KernelID string `json:"kernel_id"`
	Pid      int    `json:"pid"`
}

// KernelLost: after a server restart the kernel could not be found again.
type KernelLost struct {
	KernelID string `json:"kernel_id"`
	Reason   string `json:"reason"`
}

// KernelRanUnrecorded: after a re-attach, the kernel's execution count
// (asked with a silent execute_request once everything sent before had
// run) showed Count executions that no execution in the log accounts for:
// code the server sent but whose ExecutionQueued never became durable (a
// crash in between), or code another client of the kernel ran while the
// server was down. Their outputs are not recorded; the namespace may hold
// what they did. ExecutionCount is the kernel's count after them.
type KernelRanUnrecorded struct {
	KernelID       string `json:"kernel_id"`
	Count          int    `json:"count"`
	ExecutionCount int    `json:"execution_count"`
}

// Kernel access levels a share grants (KernelShared.Access).
// NB: the strings are part of the stored format.
const (
	AccessNone    = "none"
	AccessRead    = "read"
	AccessExecute = "execute"
)

// KernelShared: the kernel's owner (or an admin) granted another principal
// access to the kernel: "read" (see it, its executions, outputs and
// assets) or "execute" (read, and run code on it). Access "none" withdraws
// an earlier share. The event's envelope names who shared it.
type KernelShared struct {
	KernelID  string `json:"kernel_id"`
	Principal string `json:"principal"`
	Access    string `json:"access"`
}

func (KernelStarted) EventType() string     { return TypeKernelStarted }
func (KernelStartFailed) EventType() string { return TypeKernelStartFailed }
func (KernelInterrupted) EventType() string { return TypeKernelInterrupted }
func (KernelRestarted) EventType() string   { return TypeKernelRestarted }
func (KernelShutDown) EventType() string    { return TypeKernelShutDown }
func (KernelDied) EventType() string        { return TypeKernelDied }
func (KernelReattached) EventType() string  { return TypeKernelReattached }
func (KernelLost) EventType() string        { return TypeKernelLost }
func (KernelShared) EventType() string      { return TypeKernelShared }
func (KernelRestored) EventType() string    { return TypeKernelRestored }
func (KernelAdopted) EventType() string     { return TypeKernelAdopted }
func (KernelRanUnrecorded) EventType() string {
	return TypeKernelRanUnrecorded
}
