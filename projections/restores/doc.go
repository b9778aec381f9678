// Package restores is the read model of the server's own restores: per
// kernel, the last KernelRestored (what came back of its auto-checkpoint
// after the server found its process gone at start, and what did not),
// where it sits in the log, and the first execution queued on the kernel
// after it. The MCP edge tells an agent about a restore from it on the
// agent's next call (list_kernels, and execute / get_execution of an
// execution the restore affected).
//
// # Contract
//
//  1. It folds KernelRestored (the last one per kernel wins),
//     ExecutionQueued (envelope only: the first one on a restored kernel
//     after its restore is FirstAfter) and KernelShutDown (the kernel is
//     forgotten). Nothing else; a pure fold, so replaying the log tells the
//     same.
//  2. Affects says whether an execution was touched by the restore: lost
//     by the relaunch (Lost), queued before the restore and run (or ended)
//     after it, or the first one queued after it.
//  3. Get takes a kernel id in either form (events.UUIDForm) and returns a
//     copy. Safe for concurrent use.
//  4. It holds one entry per kernel restored and not shut down.
//
// Usage:
//
//	rm := restores.New()
//	r := projections.NewRunner(log, opts, rm)
//	...
//	if rs, ok := rm.Get(kernelID); ok && rs.Affects(x.ID, x.QueuedSeq, x.LastSeq) { ... }
package restores
