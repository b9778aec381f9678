// Package executions is the execution read model: for each execution its
// status (what queue.ApplyExecution folds) and its outputs, with a wake-up
// per execution. It is what the MCP edge answers get_execution, execute's
// wait and progress notifications from.
//
// # Contract
//
//  1. Read(id, since) returns the execution's status, the outputs with seq >
//     since in log order, the cursor (the last seq of its stream the model
//     applied) and a channel closed at the execution's next change. Its cost
//     is what is new since the cursor: outputs are indexed by seq and found
//     by binary search.
//  2. A waiter is woken only when ITS execution changes: each execution has
//     its own channel, created when someone asks for it and closed (then
//     forgotten) by the next event of that execution. An event of another
//     execution or kernel wakes nobody else.
//  3. Memory is bounded. Outputs held in memory are at most
//     Options.MaxOutputBytes (counted as payload bytes + 64 per output):
//     beyond it the outputs of finished executions are dropped, oldest
//     finished first, then the oldest outputs of running ones. Statuses are
//     kept for at most Options.MaxFinished finished executions. What was
//     dropped is paged from the log on demand (Reader.ReadStream from the
//     caller's cursor), never refolded from the start unless the whole
//     status was dropped.
//  4. Snapshots hold statuses and cursors, not outputs: after a restart
//     outputs come from the log (point 3) until new ones arrive.
//  5. Apply is called by the projections runner only; the query methods are
//     safe for concurrent use with it.
//
// Caller's duties:
//
//  1. New(opts, reader) and add the model to the server's projections
//     runner.
//  2. For read-your-writes after an append that returned seq, call the
//     runner's WaitFor(ctx, seq) before Read.
//  3. Wait on View.Changed with a deadline; never poll.
//
// Usage:
//
//	m := executions.New(executions.Options{}, log)
//	r := projections.NewRunner(log, opts, m)
//	...
//	_ = r.WaitFor(ctx, submittedSeq)
//	v, err := m.Read(ctx, id, since)
//	select { case <-v.Changed: ...; case <-ctx.Done(): ... }
package executions
