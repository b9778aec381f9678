package eventlog

import (
	"errors"
	"fmt"
)

// ErrTruncated: a read asked for events retention already deleted. Check
// with errors.Is; the error itself is a *TruncatedError.
var ErrTruncated = errors.New("eventlog: truncated")

// DefaultTruncatedHint is the hint of a TruncatedError when
// Options.TruncatedHint is empty.
const DefaultTruncatedHint = "retention deleted the older events"

// TruncatedError is what a reader gets when its cursor or the thing it asks
// for lies before the retained log: Seq is the first event it needs, First
// the first one the log still holds.
type TruncatedError struct {
	Seq   uint64
	First uint64
	// Hint names the retention setting (Options.TruncatedHint).
	Hint string
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("event %d is no longer in the log, which starts at %d: %s; resume from %d (since/after=%d), or raise the setting to keep more",
		e.Seq, e.First, e.Hint, e.First, e.First-1)
}

func (e *TruncatedError) Unwrap() error { return ErrTruncated }

// TruncatedAt returns First: edges that do not import this package find
// the error with errors.As on interface{ TruncatedAt() uint64 }.
func (e *TruncatedError) TruncatedAt() uint64 { return e.First }

// Truncated returns a *TruncatedError for a reader that needs seq, or nil
// when seq is retained (or 0, which means "from the start of what is
// retained").
func (l *Log) Truncated(seq uint64) error {
	if first := l.First(); seq != 0 && seq < first {
		return &TruncatedError{Seq: seq, First: first, Hint: l.truncatedHint()}
	}
	return nil
}

// CheckAfter returns a *TruncatedError when a cursor `after` (the last
// event a reader has seen) lies before the retained log: the events after
// it are gone in part. after 0 is a cursor too: a reader that saw nothing.
func (l *Log) CheckAfter(after uint64) error {
	// NB: not after+1 < first, which wraps for after = MaxUint64.
	if first := l.First(); first > 0 && after < first-1 {
		return &TruncatedError{Seq: after + 1, First: first, Hint: l.truncatedHint()}
	}
	return nil
}

func (l *Log) truncatedHint() string {
	if l.opts.TruncatedHint != "" {
		return l.opts.TruncatedHint
	}
	return DefaultTruncatedHint
}
