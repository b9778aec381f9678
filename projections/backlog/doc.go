// Package backlog keeps, per kernel, a bounded ring of its recent IOPub
// output with the log sequence numbers, filled whether or not anyone
// listens: output that arrived before a client subscribed is waiting for it.
//
// # Contract
//
//  1. Each kernel's ring holds at most Options.MaxMessages messages and
//     Options.MaxBytes bytes of payload; the oldest go first. Every message
//     that leaves (or never fits) is counted in Stats.Evicted: overflow is
//     never silent.
//  2. An entry keeps the execution its event was recorded under (its
//     stream); the backlog never re-attributes a message to another
//     execution.
//  3. Read serves a reader from any cursor: what the ring no longer holds
//     comes from the event log (ReadKernel), the rest from the ring, with
//     no gap and no duplicate.
//
// Usage:
//
//	b := backlog.New(backlog.Options{})
//	runner := projections.NewRunner(log, opts, b)
//	err := b.Read(ctx, log, kernelID, cursor, func(e backlog.Entry) error { ... })
package backlog
