package events

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownType: the record names a type this binary does not know.
	ErrUnknownType = errors.New("events: unknown event type")
	// ErrNewerVersion: the record was written by a newer binary.
	ErrNewerVersion = errors.New("events: event version newer than this binary")
	// ErrUnknownVersion: a version this binary cannot upcast.
	ErrUnknownVersion = errors.New("events: unknown event version")
	// ErrCorrupt marks a record that fails its checksum or framing.
	ErrCorrupt = errors.New("events: corrupt record")
	// ErrDiskFull marks an append the log refused because the disk is
	// (nearly) full. The log stays usable: the append may be retried once
	// space was freed. Actors that produce output record what they could not
	// append as a gap instead of stopping.
	ErrDiskFull = errors.New("events: disk full")
)

// DecodeError is what a reader gets for a record it cannot use. It names the
// sequence, and its hint says how to look at the record.
type DecodeError struct {
	Seq     uint64
	Type    string
	Version uint16
	Err     error
}

func (e *DecodeError) Error() string {
	what := fmt.Sprintf("event %d", e.Seq)
	if e.Type != "" {
		what = fmt.Sprintf("event %d (%s v%d)", e.Seq, e.Type, e.Version)
	}
	return fmt.Sprintf("decode %s: %v (%s)", what, e.Err, e.Hint())
}

// Hint says what to do about the error.
func (e *DecodeError) Hint() string {
	switch {
	case errors.Is(e.Err, ErrNewerVersion), errors.Is(e.Err, ErrUnknownType):
		return fmt.Sprintf("this log was written by a newer mcp-jupyter; upgrade the binary, or inspect it with `mcp-jupyter events show %d`", e.Seq)
	case errors.Is(e.Err, ErrCorrupt):
		return fmt.Sprintf("the record is damaged; inspect it with `mcp-jupyter events verify` and `mcp-jupyter events show %d`, restore the data dir from a backup or export the good prefix", e.Seq)
	default:
		return fmt.Sprintf("inspect it with `mcp-jupyter events show %d`", e.Seq)
	}
}

func (e *DecodeError) Unwrap() error { return e.Err }
