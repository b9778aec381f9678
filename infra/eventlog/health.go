package eventlog

// Healthy returns nil while the log accepts appends, without writing:
// ErrClosed after Close, ErrReadOnly for a read-only log, and the first
// write or sync failure (marked ErrFailed) once one made the log
// inoperable. Readiness probes call it on every request; it takes one
// short lock.
func (l *Log) Healthy() error {
	if l.opts.ReadOnly {
		return ErrReadOnly
	}
	return l.err()
}
