// Package backlog keeps, per kernel, a bounded ring of its recent events —
// IOPub output for the most part, with the kernel's other events between
// them — and one more ring (All) of every event, each with its log sequence
// number. It is filled whether or not anyone listens: what happened before a
// client subscribed is waiting for it. It is what the /ws edge (infra/ws)
// serves a resuming client from; the log is read only for what the rings no
// longer hold.
//
// # Contract
//
//  1. Each ring holds at most Options.MaxMessages events and Options.MaxBytes
//     bytes of payload; the oldest go first. Every event that leaves (or
//     never fits) is counted in Stats.Evicted: overflow is never silent.
//  2. A ring holds a contiguous run: every event about its kernel (All:
//     every event) after its last eviction, in seq order.
//  3. An entry keeps the execution its event was recorded under (its
//     stream); the backlog never re-attributes a message to another
//     execution.
//  4. Read serves a reader from any cursor: what the ring no longer holds
//     comes from the event log (ReadKernel, or Scan for All), the rest from
//     the ring, with no gap and no duplicate. Since gives the ring's part
//     alone, and says whether it is complete.
//
// Usage:
//
//	b := backlog.New(backlog.Options{})
//	runner := projections.NewRunner(log, opts, b)
//	err := b.Read(ctx, log, kernelID, cursor, func(e backlog.Entry) error { ... })
package backlog
