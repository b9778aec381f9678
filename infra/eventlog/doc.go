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
//     Concurrent appends share syncs: one committer goroutine gathers every
//     pending append into one Pebble batch (group commit), so throughput
//     grows with concurrency while each caller still waits for durability.
//     The committer writes the next group while the previous one's fsync
//     runs (at most two groups in flight); a group is reported, and becomes
//     visible to readers, only after its own fsync.
//  2. An append that fails (disk full, fsync error) returns the error to its
//     caller and the log becomes inoperable: every later append, snapshot
//     and truncation returns ErrFailed. Nothing that was not durable is
//     reported as done, and readers never see it. Its outcome is unknown,
//     though: after a failed fsync the record may sit in the OS page cache
//     and reappear when the log is reopened. Pebble signals a failed WAL
//     write through Logger.Fatalf; the log's logger panics and the log
//     recovers that panic into the error (a Fatalf on one of Pebble's own
//     goroutines still ends the process).
//  3. Readers see a prefix of the log: Read (by sequence), ReadStream (one
//     stream, e.g. "kernel/<id>"), ReadKernel (everything about one kernel)
//     and Follow, which wakes on append (no polling).
//  4. One process owns a data dir: a second Open gets *InUseError naming the
//     pid of the owner. Options.ReadOnly reads a stopped server's log (Pebble
//     locks the dir even then, so beside a running owner it is *InUseError).
//  5. Close waits for reads in flight, then answers queued appends with
//     ErrClosed; every call after it returns ErrClosed. A read callback must
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
//
// Files beside Pebble's (NB: on disk; must not change): SEQMARK ("open <seq>"
// or "clean <seq>"), BALLAST (preallocated, with MinFree).
//
// Usage:
//
//	log, err := eventlog.Open(dir, eventlog.Options{Node: "host-1"})
//	evs, err := log.Append(ctx, events.Draft{Stream: events.KernelStream(id), Kernel: id, Payload: events.KernelStarted{...}})
//	err = log.Follow(ctx, 0, func(e events.Event) error { ...; return nil })
//	err = log.Close()
package eventlog
