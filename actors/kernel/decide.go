package kernel

import (
	"errors"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var (
	// ErrNotRunning: the command needs a running kernel.
	ErrNotRunning = errors.New("kernel: not running")
	// ErrAlreadyStarted: Start on a kernel that already has a process.
	ErrAlreadyStarted = errors.New("kernel: already started")
	// ErrBusy: an execution is already in flight on this kernel.
	ErrBusy = errors.New("kernel: an execution is in flight")
	// ErrNotPipelined: an abort of an execution that is not waiting
	// behind the running one.
	ErrNotPipelined = errors.New("kernel: execution is not pipelined")
	// ErrBadShare: a share that cannot be granted (to oneself, to the
	// owner, an unknown access level).
	ErrBadShare = errors.New("kernel: bad share")
	// ErrNotHeld: FinishRestore on a kernel no restore is under way on.
	ErrNotHeld = errors.New("kernel: not held for a restore")
)

// notRunning explains, for an agent, why the kernel cannot take a command.
func notRunning(s State) error {
	switch s.Status {
	case StatusDead:
		return fmt.Errorf("%w: kernel %s died (%s); start a new kernel or restart_kernel it", ErrNotRunning, s.ID, s.Reason)
	case StatusLost:
		return fmt.Errorf("%w: kernel %s was lost (%s); start a new kernel", ErrNotRunning, s.ID, s.Reason)
	case StatusShutDown:
		return fmt.Errorf("%w: kernel %s was shut down; start a new kernel", ErrNotRunning, s.ID)
	case StatusFailed:
		return fmt.Errorf("%w: kernel %s failed to start (%s)", ErrNotRunning, s.ID, s.Reason)
	}
	return fmt.Errorf("%w: kernel %s is %q", ErrNotRunning, s.ID, s.Status)
}

func draft(id string, p events.Payload) events.Draft {
	return events.Draft{Stream: events.KernelStream(id), Kernel: id, Payload: p}
}

// draftBy is draft for an event a principal's command caused.
func draftBy(id, by string, p events.Payload) events.Draft {
	return events.Draft{Stream: events.KernelStream(id), Kernel: id, Principal: by, Payload: p}
}

// adminName is the principal that owns kernels started before principals
// existed (Owner ""). NB: infra/auth.Admin().Name; actors import no infra.
const adminName = "admin"

// EffectiveOwner is the kernel's owner, the admin for kernels from before
// principals existed.
func (s State) EffectiveOwner() string {
	if s.Owner == "" {
		return adminName
	}
	return s.Owner
}

// DecideStart validates a start.
func DecideStart(s State) error {
	if s.Status != StatusNew {
		return fmt.Errorf("%w: kernel %s is %s", ErrAlreadyStarted, s.ID, s.Status)
	}
	return nil
}

// StartedEvents records a launch's outcome.
func StartedEvents(id string, cmd Start, l Launched, err error, stderrTail string) []events.Draft {
	if err != nil {
		return []events.Draft{draftBy(id, cmd.Owner, events.KernelStartFailed{KernelID: id, Spec: cmd.Spec, Reason: err.Error(), StderrTail: stderrTail})}
	}
	return []events.Draft{draftBy(id, cmd.Owner, events.KernelStarted{KernelID: id, Spec: cmd.Spec, Label: cmd.Label, Notebook: cmd.Notebook,
		Language: l.Language, InterruptMode: l.InterruptMode, Process: l.Process, DiesWithServer: l.DiesWithServer, Owner: cmd.Owner})}
}

// DecideShare validates a share and records it. Only a running kernel can
// be shared, but a share can be withdrawn (access none) in any state: a
// dead, lost or shut-down kernel's executions and outputs stay readable to
// whoever it was shared with until the owner withdraws. A share with the
// sharer itself or with the owner means nothing and is refused; granting
// what is already granted records nothing.
func DecideShare(s State, c Share) ([]events.Draft, error) {
	if !s.Status.Alive() && c.Access != events.AccessNone {
		return nil, notRunning(s)
	}
	switch c.Access {
	case events.AccessRead, events.AccessExecute, events.AccessNone:
	default:
		return nil, fmt.Errorf("%w: access %q is not one of read, execute, none", ErrBadShare, c.Access)
	}
	switch {
	case c.Principal == "":
		return nil, fmt.Errorf("%w: name the principal to share kernel %s with", ErrBadShare, s.ID)
	case c.Principal == c.By:
		return nil, fmt.Errorf("%w: %q cannot share kernel %s with itself", ErrBadShare, c.By, s.ID)
	case c.Principal == s.EffectiveOwner():
		return nil, fmt.Errorf("%w: %q owns kernel %s already", ErrBadShare, c.Principal, s.ID)
	}
	current, shared := s.Shares[c.Principal]
	if current == c.Access || !shared && c.Access == events.AccessNone {
		return nil, nil
	}
	return []events.Draft{draftBy(s.ID, c.By, events.KernelShared{KernelID: s.ID, Principal: c.Principal, Access: c.Access})}, nil
}

// DecideInterrupt validates an interrupt by principal by and records it.
func DecideInterrupt(s State, by string) ([]events.Draft, error) {
	if !s.Status.Alive() {
		return nil, notRunning(s)
	}
	mode := s.InterruptMode
	if mode == "" {
		mode = "signal"
	}
	return []events.Draft{draftBy(s.ID, by, events.KernelInterrupted{KernelID: s.ID, Mode: mode})}, nil
}

// DecideShutdown validates a shutdown. Shutting down a dead or lost kernel
// is allowed: it records that the kernel must not be resurrected.
func DecideShutdown(s State) error {
	if s.Status == StatusShutDown {
		return fmt.Errorf("%w: kernel %s is already shut down", ErrNotRunning, s.ID)
	}
	if s.Status == StatusNew {
		return fmt.Errorf("%w: kernel %s never started", ErrNotRunning, s.ID)
	}
	return nil
}

// DecideRestart validates a restart: a running or dead kernel can be
// restarted in place; a shut-down one cannot.
func DecideRestart(s State) error {
	switch s.Status {
	case StatusRunning, StatusDead, StatusLost:
		return nil
	}
	return notRunning(s)
}

// DecideFinishRestore records the end of a restore under way (see
// FinishRestore). What the restore did is the caller's word; the kernel id
// is this kernel's.
func DecideFinishRestore(s State, c FinishRestore) ([]events.Draft, error) {
	if s.Restore == "" {
		return nil, fmt.Errorf("%w: kernel %s is not waiting for a restore (it was not relaunched at start, or its restore was finished already)", ErrNotHeld, s.ID)
	}
	r := c.Restored
	r.KernelID = s.ID
	return []events.Draft{draft(s.ID, r)}, nil
}
