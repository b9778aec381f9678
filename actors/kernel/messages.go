package kernel

// Commands the kernel actor takes. Each is answered with a Result unless
// noted.
type (
	// Start launches the kernel from a kernelspec.
	Start struct {
		Spec     string
		Label    string
		Notebook string
	}
	// Execute sends an execute_request whose ExecutionStarted is already
	// durable. Answered with ExecuteResult.
	Execute struct {
		ExecutionID string
		MsgID       string
		Code        string
		AllowStdin  bool
	}
	// Resume re-adopts an execution that was running when the server
	// stopped: it completes if its reply still arrives on the reattached
	// connection, and is recorded lost if the kernel answers a later
	// request first.
	Resume struct {
		ExecutionID string
		MsgID       string
	}
	Interrupt struct{}
	Restart   struct{}
	Shutdown  struct{ Reason string }
	// SendInput answers an input() call of an execution.
	SendInput struct {
		ExecutionID string
		Value       string
	}
	// GetState is answered with the State.
	GetState struct{}
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
	// reattached).
	Ready struct{ Reattached bool }
	// Stopped: the kernel can take no executions until a restart; Final
	// when it never will (shut down).
	Stopped struct {
		Status Status
		Reason string
	}
	// ExecutionEnded: an execution's final event is durable.
	ExecutionEnded struct {
		ExecutionID string
		Status      string
	}
)
