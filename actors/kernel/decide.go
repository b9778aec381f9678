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
		return []events.Draft{draft(id, events.KernelStartFailed{KernelID: id, Spec: cmd.Spec, Reason: err.Error(), StderrTail: stderrTail})}
	}
	return []events.Draft{draft(id, events.KernelStarted{KernelID: id, Spec: cmd.Spec, Label: cmd.Label, Notebook: cmd.Notebook,
		Language: l.Language, InterruptMode: l.InterruptMode, Process: l.Process, DiesWithServer: l.DiesWithServer})}
}

// DecideInterrupt validates an interrupt and records it.
func DecideInterrupt(s State) ([]events.Draft, error) {
	if !s.Status.Alive() {
		return nil, notRunning(s)
	}
	mode := s.InterruptMode
	if mode == "" {
		mode = "signal"
	}
	return []events.Draft{draft(s.ID, events.KernelInterrupted{KernelID: s.ID, Mode: mode})}, nil
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
