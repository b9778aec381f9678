// Package projections folds the event log into read models: the views that
// edges (MCP tools, HTTP, WebSocket) query, such as the list of kernels.
//
// A read model is a Projection. A Runner owns a set of them and keeps them
// current: it restores each from its last snapshot, replays the log from the
// lowest snapshot sequence, reports Ready, then follows new events as they
// become durable. Appending and projecting are decoupled by construction: the
// runner reads the log, it is never called by writers.
//
// # Contract
//
//  1. Apply is called from one goroutine (the runner's), in log order, once
//     per event the projection Wants, never for an event at or below the
//     sequence its restored snapshot covers. Apply must be a pure fold of the
//     event into the model: no clock, no I/O, no map-order dependence.
//  2. Wants is asked once per event type and the answer is cached, so it must
//     not change over the life of the runner. Interest Payload means Apply
//     gets the decoded payload; Envelope means Apply gets the envelope and the
//     raw JSON payload only (Payload nil) — the cheap path for high-volume
//     types a projection can read without a full decode. The raw payload
//     aliases the log's buffers: copy what you keep.
//  3. Read models are read by edges while the runner applies. Each projection
//     guards its own state: Apply and Restore take its write lock; Snapshot
//     and the query methods it exports take its read lock. The runner never
//     holds a lock of its own while calling a projection.
//  4. An error from Apply stops the runner with an *ApplyError naming the
//     projection and the sequence. The runner does not skip events.
//  5. Snapshots are taken every Options.SnapshotEvery events and on Close,
//     and stored in the log (Log.SaveSnapshot) under the projection's Name at
//     the sequence they cover, so a restart replays only the events after
//     them. Retention may then delete the covered prefix of the log.
//  6. Retention (Options.Retention) never outruns a reader registered in its
//     Floors: a Floor (a cursor: another runner, a publisher, a WebSocket
//     client) keeps everything from its position; a Keeper (an actor's
//     stream) keeps just that stream's old events. Until Floors.Enable
//     nothing is deleted.
//  7. Start restores every projection from its snapshot at the same time.
//     Catch-up is a pipeline: a reader goroutine scans the log and decodes
//     payloads while the loop goroutine and a helper apply, sharing out
//     the projections (each whole to one of them), a run of events at a
//     time. Wants may therefore be
//     called from the reader while Apply runs (it must be pure), and two
//     projections' Apply may run at once: a projection shares no mutable
//     state with another (one projection's calls never overlap). Progress
//     is published at the end of each run (at most 512 events).
//
// # Caller's duties
//
//  1. NewRunner(log, opts, projections...) and Start(ctx) once.
//  2. Gate readiness on Ready() (the server's /readyz); for read-your-writes
//     after an append that returned event seq, call WaitFor(ctx, seq) before
//     querying a read model.
//  3. Watch Wait() (an errgroup goroutine) for the runner stopping on error.
//  4. Close(ctx) on shutdown: it stops the loop and writes final snapshots.
//  5. With retention, register every other reader of the log in the
//     Floors (AddFloor, AddKeeper), then Enable.
//
// Usage:
//
//	km := kernels.New()
//	r := projections.NewRunner(log, projections.Options{SnapshotEvery: 10000}, km)
//	if err := r.Start(ctx); err != nil { ... }
//	<-r.Ready()
//	evs, _ := log.Append(ctx, draft)
//	_ = r.WaitFor(ctx, evs[len(evs)-1].Seq)
//	k, ok := km.Get(id)
//	...
//	err = r.Close(ctx)
package projections
