// Package lease owns the assets: it stores rich and large outputs, grants and
// renews their leases, and collects the ones nobody holds any more.
//
// It is a protoactor actor, the single writer of the asset streams
// (asset/<sha256>: AssetStored, LeaseGranted, LeaseRenewed, LeaseExpired,
// AssetCollected) and the only code that creates or deletes asset files.
// Callers talk to it through Client, whose methods send messages and wait
// for the answer with a timeout.
//
//  1. state.go: State is the actor's own fold of its streams (Apply); it is
//     not a read model (edges read projections/leases).
//  2. decide.go: Decide turns a command (Store, Renew, Adopt, Collect) and
//     the clock's now into events, or refuses with ErrNotFound.
//  3. actor.go: the shell. Command → Decide → Append (durable, awaited) →
//     Apply → reply → effects. File writes, deletions and snapshots run in
//     goroutines the actor owns and report back by message, so a 100,000
//     file GC never blocks a read.
//
// # Why the GC cannot delete a leased asset, or lose one the log still has
//
//  1. The GC decides in the mailbox, batch by batch: an asset is collected
//     only if no lease holds it at now (a batch's candidates are re-decided
//     against the state as it is when the batch runs).
//  2. It appends LeaseExpired and AssetCollected (the intent) and waits for
//     the fsync, then applies them: from here the asset is collected, and a
//     read or renewal gets ErrNotFound.
//  3. Only then the deleter goroutine unlinks the files. Until it reports
//     back, a Put of the same bytes waits; the GC never picks a sum whose
//     file a Put is writing.
//
// A renewal is either before step 1 (the lease is live: not collected) or
// after step 2 (the asset is collected: the renewal fails, nothing is
// read). A crash before 2 deletes nothing. A crash between 2 and 3 leaves
// files the log calls collected; the next start deletes them (redo).
// Files are created before their AssetStored is appended, so a crash there
// leaves a file the log does not know; the next start adopts it (AssetStored
// with a fresh lease) rather than delete bytes a reply may already link.
// Reads renew a "read" lease, coalesced: at most one event per TTL/64.
//
// # Recovery
//
// On every start (and every restart after a panic) the actor loads its
// snapshot (SnapshotName, saved every 50,000 of its events off the mailbox
// and when it stops) and folds the tail of its own streams after it with
// Log.ReadStreams("asset/", seq): the per-stream index of the log, so only
// asset events are read, never the rest of the log. It then reconciles the
// files with the state. A crashed incarnation hands its callers over: the
// command it was recording, the GC callers and the Puts waiting on a
// deletion are queued again, and the new incarnation serves them from its
// recovered state, so the work finishes once.
//
// Usage:
//
//	c, err := lease.Open(ctx, lease.Config{System: sys.Actors(), Log: log, Files: store, TTL: 24 * time.Hour})
//	sum, err := c.Put(ctx, data, "image/png", lease.Origin{KernelID: k, ExecutionID: x, OutputIndex: 2})
//	f, size, mime, err := c.ReadAsset(ctx, sum) // renews
//	res, err := c.Collect(ctx)
//	err = c.Run(ctx, time.Hour)                 // GC every hour until ctx ends
//	err = c.Close(ctx)                          // saves the snapshot
package lease
