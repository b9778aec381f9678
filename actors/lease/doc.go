// Package lease owns the assets: it stores rich and large outputs, grants and
// renews their leases, and collects the ones nobody holds any more.
//
// It is the single writer of the asset events (AssetStored, LeaseGranted,
// LeaseRenewed, LeaseExpired, AssetCollected) and the only code that creates
// or deletes asset files. Every command runs under one lock as
// decide → append (durable) → apply to the leases model → file effect, so
// a renewal and a collection of the same asset are totally ordered.
//
// # Why the GC cannot delete a leased asset, or lose one the log still has
//
//  1. GC decides from the leases model, under the lock: an asset is a victim
//     only if no lease holds it at now.
//  2. It appends LeaseExpired and AssetCollected (the intent) and waits for
//     the fsync, then applies them: from here the asset is collected, and a
//     read or renewal gets ErrNotFound.
//  3. Only then, still under the lock, it deletes the files.
//
// A renewal is either before step 1 (the lease is live: not a victim) or
// after step 2 (the asset is collected: the renewal fails, nothing is read).
// A crash before 2 deletes nothing. A crash between 2 and 3 leaves files the
// log calls collected; Open deletes them (redo). Files are created before
// their AssetStored is appended, so a crash there leaves a file the log does
// not know; Open adopts it (AssetStored with a fresh lease) rather than
// delete bytes a reply may already link. Hence no file the log says exists
// is ever missing, and no leased asset is ever deleted.
//
// Usage:
//
//	a, err := lease.Open(ctx, lease.Config{Log: log, Files: store, Model: model, TTL: 24 * time.Hour})
//	sum, err := a.Put(ctx, data, "image/png", lease.Origin{KernelID: k, ExecutionID: x, OutputIndex: 2})
//	f, size, mime, err := a.ReadAsset(ctx, sum) // renews
//	res, err := a.Collect(ctx)
//	err = a.Run(ctx, time.Hour)                 // GC every hour until ctx ends
package lease
