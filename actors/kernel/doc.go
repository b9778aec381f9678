// Package kernel is the kernel actor: one per Jupyter kernel. It launches,
// watches, interrupts, restarts and shuts down its kernel, re-attaches to it
// after a server restart, sends the executions its scheduler hands it, and
// turns every message of the kernel into events.
//
// Who writes what (one writer per stream):
//
//   - kernel/<id>: this actor, only (KernelStarted … KernelShutDown, and the
//     IOPub messages and gaps no execution of ours caused).
//   - execution/<x>, from its start on: this actor, only — every
//     IOPubMessageReceived, ExecutionInputRequested/InputSent, and the final
//     ExecutionFinished, ExecutionInterrupted or ExecutionLost (when the
//     kernel dies, is restarted or shut down mid-execution, when a
//     re-adopted execution's barrier answers first, and when it could not be
//     sent). The scheduler writes ExecutionQueued and ExecutionStarted
//     before handing it over (and ExecutionCancelled / ExecutionLost for
//     executions that never started).
//
// The pieces:
//
//  1. pump.go: a goroutine the actor owns reads the connection's messages
//     and forwards them to the actor in batches (at most maxPumpBatch
//     messages and maxPumpBatchBytes); it never appends. The connection's
//     receive queue is bounded in bytes and makes the kernel wait when full
//     (infra/jupyter); the pump waits for the actor's ack of each batch, which
//     bounds what sits between the socket and the log. What the kernel still
//     drops shows as holes in its message counters (gap.go): Step records
//     ExecutionOutputLost before the execution's final event.
//  2. output.go: Step, a pure function (OutputState, []Incoming) →
//     (OutputState, []events.Draft, []Effect), decides what a batch means. An
//     execution is complete when both its execute_reply and its idle status
//     have arrived; ExecutionFinished (or ExecutionInterrupted) then goes in
//     the same batch as the idle status, after every output of that
//     execution. Effects are data: requests to send (idle probes, resume
//     barriers, with ids derived from the execution's) and Ended.
//  3. actor.go: Receive → Step → one AppendAsync per batch (in the log's
//     write path; the fsync overlaps what follows) → perform the effects:
//     send probes, and tell the scheduler ExecutionEnded{ID, Status, Count}
//     (the scheduler never reads the log back to learn an outcome; it may
//     start the next execution before this end is durable: WAL order makes
//     that start durable only after it). Executions are sent as soon as
//     the scheduler's ExecutionStarted is in the write path; on ipykernel
//     ("ipython") one more may be sent behind the running one (Execute
//     with Behind), and withdrawn with abort_request (Abort).
//     After a re-attach the scheduler sends Reconcile: the count probe
//     (StartReconcile, a silent execute_request behind everything sent
//     before the crash) says how many executions ran while the server was
//     down; they are recorded (ExecutionLost{Ran}, KernelRanUnrecorded)
//     and never run again before anything new is dispatched.
//  4. state.go: the actor's State is a fold of kernel/<id>; on every
//     (re)start — the producer builds a fresh actor — it is rebuilt from that
//     stream, and the shell derives what to do from it: re-attach a running
//     kernel (Ready{Reattached}), or tell the scheduler a stopped one takes
//     no work. A scheduler that (re)starts asks with Watch. When the
//     re-attach fails and Deps.AutoRestore is set, it relaunches instead
//     of recording KernelLost: a fresh process of the same kernelspec under
//     the same id (KernelRestarted{Reason, Restore}); Ready{Fresh, Gone}
//     makes the scheduler hand back the executions of the gone process,
//     which this actor records lost (Resume{Gone}). State.Restore holds the
//     kernel for its restore until FinishRestore appends KernelRestored
//     and tells the scheduler (RestoreEnded); every Ready carries the hold,
//     so a rebuilt scheduler keeps it. If no process starts: KernelLost
//     with both reasons.
//  5. frontend.go, relay.go: Jupyter frontends (infra/jupyterapi). Relay
//     sends an allow-listed request that is no execution (complete,
//     inspect, kernel_info, comm_*, debug_request, ...) under the server's
//     msg_id; Step turns what the kernel sends with that parent on shell or
//     control into DeliverReply effects, which the actor hands to the
//     asker's channel without blocking (a full channel loses the reply,
//     counted). At most MaxRelays wait; the oldest is forgotten past it, and
//     all are with the connection (restart, death). AttachFrontend records
//     FrontendAttached once per session and incarnation (a bounded set);
//     OpenSession/CloseSession record the Jupyter sessions bound to the
//     kernel (State.Sessions, at most MaxSessions; none after a shutdown).
package kernel
