package projections

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed: the runner was closed.
	ErrClosed = errors.New("projections: closed")
	// ErrGap: a projection needs events the log no longer holds.
	ErrGap = errors.New("projections: log truncated past a projection's snapshot")
)

// ApplyError is what stops a runner when a projection refuses an event.
type ApplyError struct {
	Projection string
	Seq        uint64
	Type       string
	Err        error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("projection %s: apply event %d (%s): %v (inspect it with `mcp-jupyter events show %d`)",
		e.Projection, e.Seq, e.Type, e.Err, e.Seq)
}

func (e *ApplyError) Unwrap() error { return e.Err }
