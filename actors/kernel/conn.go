package kernel

import (
	"context"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Channels of the Jupyter protocol a Conn sends and receives on.
const (
	ChannelShell   = events.ChannelShell
	ChannelControl = events.ChannelControl
	ChannelStdin   = events.ChannelStdin
	ChannelIOPub   = events.ChannelIOPub
)

// Incoming is one message from the kernel, or a gap marker (Dropped > 0).
// NB: an alias, so that infra/jupyter satisfies Conn without importing this
// package and without copying each message.
type Incoming = events.KernelMessage

// Death says why a kernel stopped.
type Death = events.KernelDeath

// Conn is a live connection to one kernel process (infra/jupyter implements
// it); see events.KernelConn for its contract. NB: an alias, so infra need
// not import this package.
type Conn = events.KernelConn

// Launched describes a kernel that just started.
type Launched = events.KernelLaunched

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
	// Orphaned reports whether kernel id's guard ended it on purpose after
	// grace (--orphan-grace) without a server: then it is not relaunched.
	Orphaned(id string) (grace time.Duration, ok bool)
}
