// Package restores is the read model of what follows the server's own
// restores: per kernel, the seq of its last KernelRestored and the first
// execution queued on it after that. projections/kernels keeps the restore
// itself (Kernel.Restored, RestoredSeq); the MCP edge uses both to tell an
// agent, on its next calls, about a kernel relaunched and restored at
// start.
//
// # Contract
//
//  1. It folds KernelRestored (envelope only: the last one per kernel
//     wins and clears First), ExecutionQueued (envelope only: the first one
//     on a kernel after its restore is First) and KernelShutDown (the
//     kernel is forgotten). A pure fold: replaying the log tells the same.
//  2. Restore.Affects says whether an execution was touched by a restore:
//     lost by the relaunch, queued before the restore and run (or ended)
//     after it, or the first one queued after it.
//  3. Get takes a kernel id in either form (events.UUIDForm). Safe for
//     concurrent use. One entry per kernel restored and not shut down.
//
// Usage:
//
//	rm := restores.New()
//	r := projections.NewRunner(log, opts, km, rm)
//	...
//	k, _ := km.Get(id)
//	a, _ := rm.Get(id)
//	hit := restores.Restore{Seq: k.RestoredSeq, Lost: k.Restored.Lost, FirstAfter: a.First}.Affects(x.ID, x.QueuedSeq, x.LastSeq)
package restores
