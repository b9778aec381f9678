package events

import (
	"context"
	"encoding/json"
)

// What a connection to a kernel process delivers, at the level of the
// Jupyter wire protocol. These are not events of the log: they are the
// vocabulary shared by the kernel actor (actors/kernel, which decides what
// becomes an event) and the transport (infra/jupyter, which reads sockets),
// declared here because both may import events and neither may import the
// other.

// Channels of the Jupyter protocol a kernel connection sends and receives on.
const (
	ChannelShell   = "shell"
	ChannelControl = "control"
	ChannelStdin   = "stdin"
	ChannelIOPub   = "iopub"
)

// KernelMessage is one message from a kernel, or a gap marker (Dropped > 0)
// standing in order for messages the connection had to drop.
type KernelMessage struct {
	Channel     string
	MsgID       string
	ParentMsgID string
	MsgType     string
	Content     json.RawMessage
	Dropped     int
	// Consumed: the transport answered this message itself (its readiness
	// check while re-attaching); only MsgID and MsgType are set. It is
	// delivered so that the kernel's message counters can be checked for
	// gaps, and is otherwise ignored.
	Consumed bool
}

// KernelDeath says why a kernel process stopped.
type KernelDeath struct {
	Reason     string
	ExitCode   *int
	Signal     string
	StderrTail string
}

// KernelLaunched describes a kernel process that just started.
type KernelLaunched struct {
	Language       string
	InterruptMode  string
	Process        KernelProcess
	DiesWithServer bool
}

// KernelConn is a live connection to one kernel process (infra/jupyter
// implements it; actors/kernel uses it as kernel.Conn). Send does not block
// on the kernel. Messages has a single consumer and is closed by Close. Dead
// closes when the process exits or stops answering heartbeats; Death then
// says why.
type KernelConn interface {
	Send(channel, msgType, msgID string, content any) error
	Messages() <-chan KernelMessage
	Dead() <-chan struct{}
	Death() KernelDeath
	Interrupt() error
	// Shutdown stops the kernel: politely, then by force.
	Shutdown(ctx context.Context) (forced bool, err error)
	// Close releases the connection; the kernel process keeps running.
	Close() error
}
