// Package scheduler is the scheduler actor: one per kernel, owning that
// kernel's FIFO of executions. It accepts submissions (durably queued before
// the caller hears back), hands them to the kernel actor one at a time, and
// after a server restart resumes from the queue read model: queued
// executions run in order exactly once, and the one that was running is
// re-adopted (finished if its reply still arrives, lost otherwise).
//
// Nothing is resent automatically: an execution the kernel may have run is
// never sent twice.
package scheduler
