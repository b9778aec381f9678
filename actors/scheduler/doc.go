// Package scheduler is the scheduler actor: one per kernel, owning that
// kernel's FIFO of executions. It accepts submissions (durably queued before
// the caller hears back: System.Submit waits for the append's fsync, while
// the kernel already runs it) and hands them to the kernel actor one at a
// time — or, when the kernel pipelines (ipykernel), one more behind the
// running one (ExecutionStarted{Behind}, State.Next).
//
// Who writes what (one writer per stream): the scheduler appends
// ExecutionQueued, ExecutionStarted (in the same append as the queueing
// when the kernel is idle: one fsync), ExecutionCancelled, and
// ExecutionLost only for executions that never started (their kernel
// stopped for good). Everything about an execution after its start is the
// kernel actor's (see actors/kernel): it reports each end by message,
// kernel.ExecutionEnded{ID, Status}, which the scheduler applies with End —
// it never reads the log back to learn an outcome.
//
// Recovery, on every (re)start (the producer builds a fresh actor):
//
//  1. Fold this kernel's execution lifecycle events (Lifecycle: queued,
//     started, cancelled, finished, interrupted, lost) read through the
//     log's per-kernel index (ReadKernel) into State. The state is the
//     scheduler's own fold with its own Execution type, not a read model.
//  2. Ask the kernel actor (its PID is in Deps: kernel actors are spawned
//     under a known name) with kernel.Watch. It answers Ready{Running} or
//     Stopped, or notifies when its own recovery ends.
//  3. After a re-attach (Ready{Reattached}) it sends kernel.Reconcile with
//     the started executions, the first queued ones and the highest
//     execution count recorded, and dispatches nothing until Reconciled:
//     the kernel actor's count probe records what ran while the server was
//     down. Otherwise an active execution the kernel actor does not hold
//     is handed back with kernel.Resume (a barrier decides finished or
//     lost). Nothing is resent automatically: an execution the kernel may
//     have run is never sent twice.
//
// The restore hold (a kernel relaunched at recovery, see actors/kernel):
// State.Hold is folded from KernelRestarted{Restore} and KernelRestored,
// and set by Ready{Restore}. While it holds, nothing is dispatched from the
// queue and submissions queue; a Submit{Restore} (the server's load of the
// auto-checkpoint) starts at once when nothing is in flight, or first once
// the executions of the gone process are recorded lost, never with one
// pipelined behind it. kernel.RestoreEnded ends it: the queue runs. Outcome
// answers once the kernel's recovery has an outcome (System.Restoring).
package scheduler
