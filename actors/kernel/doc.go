// Package kernel is the kernel actor: one per Jupyter kernel. It launches,
// watches, interrupts, restarts and shuts down its kernel, re-attaches to it
// after a server restart, sends the executions its scheduler hands it, and
// turns every IOPub message into an event on the stream of the execution
// that caused it (or on the kernel's stream when nothing of ours did).
//
// The actor's state is a fold of its kernel/<id> stream (state.go). Socket
// reading and persistence of output happen in the pump (pump.go), a
// goroutine the actor owns, so that a slow log never stalls the kernel's
// IOPub reader and the mailbox never blocks on a socket. An execution is
// complete when both its execute_reply and its idle status have arrived; the
// pump then appends ExecutionFinished (or ExecutionInterrupted) in the same
// durable batch as the idle status, after every output of that execution.
package kernel
