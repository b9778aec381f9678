package kernel

import (
	"context"
	"encoding/json"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Channels of the Jupyter protocol a Conn sends and receives on.
const (
	ChannelShell   = "shell"
	ChannelControl = "control"
	ChannelStdin   = "stdin"
	ChannelIOPub   = "iopub"
)

// Incoming is one message from the kernel, or a gap marker (Dropped > 0)
// standing in order for messages the connection had to drop.
type Incoming struct {
	Channel     string
	MsgID       string
	ParentMsgID string
	MsgType     string
	Content     json.RawMessage
	Dropped     int
}

// Death says why a kernel stopped.
type Death struct {
	Reason     string
	ExitCode   *int
	Signal     string
	StderrTail string
}

// Conn is a live connection to one kernel process (infra/jupyter implements
// it). Send does not block on the kernel. Messages has a single consumer and
// is closed by Close. Dead closes when the process exits or stops answering
// heartbeats; Death then says why.
type Conn interface {
	Send(channel, msgType, msgID string, content any) error
	Messages() <-chan Incoming
	Dead() <-chan struct{}
	Death() Death
	Interrupt() error
	// Shutdown stops the kernel: politely, then by force.
	Shutdown(ctx context.Context) (forced bool, err error)
	// Close releases the connection; the kernel process keeps running.
	Close() error
}

// Launched describes a kernel that just started.
type Launched struct {
	Language       string
	InterruptMode  string
	Process        events.KernelProcess
	DiesWithServer bool
}

// Launcher starts kernels from kernelspecs and re-attaches to running ones.
type Launcher interface {
	// Launch starts kernel id from the named kernelspec and returns once it
	// is ready, or an error carrying the tail of its stderr (no orphan left).
	Launch(ctx context.Context, id, spec string) (Conn, Launched, error)
	// Attach dials a kernel recorded in the log and confirms it answers. It
	// never signals a pid whose start time does not match.
	Attach(ctx context.Context, id string, p events.KernelProcess) (Conn, error)
	// Kill force-stops a recorded kernel process group, if it is still that
	// process.
	Kill(p events.KernelProcess) error
}
