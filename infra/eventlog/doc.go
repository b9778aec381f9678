// Package eventlog is mcp-jupyter's durable, append-only event log on Pebble.
//
// Every state change of the server is an event appended here before anyone
// acts on it. The log assigns each event a global sequence number (1, 2, 3,
// ... with no gaps except after a LogTailDropped, see 8), stamps the time
// and the node, and stores it as an events record.
//
// # Contract
//
//  1. Append returns only after its events are synced to disk (fsync).
//     No committer goroutine stands between an append and the disk
//     (write.go): each encodes its payloads outside any lock; under one
//     short lock, whose holder writes every append queued behind it as one
//     batch, appends are admitted, get their sequences and are written to
//     Pebble without waiting for the fsync (ApplyNoSyncWait), so sequence
//     order is WAL order. The holder then waits for that batch's fsync
//     outside the lock and settles it; an Append that found the lock taken
//     sleeps once, until it is settled. Concurrent appends share
//     Pebble's WAL syncs, so throughput grows with concurrency while each
//     caller still waits for durability. An append is reported done, and
//     becomes visible to readers (Last, Changed), only once it and every
//     append before it are durable.
//     AppendAsync returns once its events are in the write path (sequenced,
//     written, not yet durable) with an events.Pending that settles when
//     they are durable or failed. What is written but not durable is
//     bounded (Options.MaxUnsyncedEvents, MaxUnsyncedBytes): past the bound
//     appends wait for syncs to make room. Fault points eventlog.written
//     (in the write path, before the fsync) and eventlog.durable (synced,
//     before the caller hears of it) serve the kill -9 tests.
//  2. An append that fails (disk full, fsync error) returns the error to its
//     caller (or settles its Pending with it) and the log becomes
//     inoperable: every later append, snapshot and truncation returns
//     ErrFailed, and every append already in the write path after the
//     failed one fails too. Nothing that was not durable is reported as
//     done, and readers never see it. Its outcome is unknown, though: after
//     a failed fsync the record may sit in the OS page cache and reappear
//     when the log is reopened. Pebble signals a failed WAL write through
//     Logger.Fatalf; the log's logger panics and the log recovers that
//     panic into the error (a Fatalf on one of Pebble's own goroutines
//     still ends the process).
//  3. Readers see a prefix of the log: Read (by sequence), ReadStream (one
//     stream, e.g. "kernel/<id>"), ReadKernel (everything about one kernel)
//     and Follow, which wakes on append (no polling).
//  4. One process owns a data dir: a second Open gets *InUseError naming the
//     pid of the owner. Options.ReadOnly reads a stopped server's log (Pebble
//     locks the dir even then, so beside a running owner it is *InUseError).
//  5. Close refuses new appends with ErrClosed (also those waiting for
//     room under the bound), waits for the appends already in the write
//     path to settle (durable ones are reported done), then for reads in
//     flight; every call after it returns ErrClosed. A read callback must
//     not call Close.
//  6. Snapshots of read models are stored beside the events (SaveSnapshot);
//     TruncateBefore deletes a prefix once snapshots cover it, except the
//     events its keep function keeps (the streams actors recover from),
//     which stay readable by stream below First.
//  7. A read that asks for what retention deleted (Read or Scan from
//     0 < from < First, Follow after 0 < after < First-1, CheckAfter) gets a
//     *TruncatedError (errors.Is ErrTruncated) naming First and the
//     retention setting (Options.TruncatedHint); from/after 0 means "from
//     the start of what is retained".
//  8. A sequence is never handed out twice. SEQMARK (seqmark.go) records how
//     far sequences may have been issued; when Open finds that events which
//     may have been acknowledged do not read back (a damaged WAL tail,
//     waltail.go), Tail reports it, and a read-write Open records
//     events.LogTailDropped after the highest sequence that may have been
//     issued and continues from there.
//  9. Free space is a state (space.go): with Options.MinFree, CheckSpace
//     refuses new work below it, OutputRoom refuses output below 3/4 of it,
//     and appends get a *DiskFullError (errors.Is events.ErrDiskFull) below
//     1/4 of it, leaving the log usable. A ballast (ballast.go) is freed by
//     Pebble's ENOSPC hook.
//  10. A damaged Pebble file makes reads return *CorruptStoreError naming it,
//     never a panic (corrupt.go).
//
// # Key layout (NB: on disk; must not change)
//
//	e <seq be64>                     -> record (events.AppendRecord)
//	s <stream> 0x00 <seq be64>       -> empty (stream index)
//	k <kernel> 0x00 <seq be64>       -> empty (kernel index)
//	p <name>                         -> <seq be64> <snapshot bytes>
//	m first                          -> <seq be64> first retained sequence
//	m foreign                        -> <position be64> history stream position of the last import
//	f <seq be64>                     -> <position be64> an imported record (foreign.go)
//
// Files beside Pebble's (NB: on disk; must not change): SEQMARK ("open <seq>"
// or "clean <seq>"), BALLAST (preallocated, with MinFree).
//
// Usage:
//
//	log, err := eventlog.Open(dir, eventlog.Options{Node: "host-1"})
//	evs, err := log.Append(ctx, events.Draft{Stream: events.KernelStream(id), Kernel: id, Payload: events.KernelStarted{...}})
//	p, err := log.AppendAsync(ctx, draft) // sequenced and written; act on p.Events() where a crash is recovered from
//	evs, err = p.Wait(ctx)                // durable: now tell people
//	err = log.Follow(ctx, 0, func(e events.Event) error { ...; return nil })
//	err = log.Close()
package eventlog
