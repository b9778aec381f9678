package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var (
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("eventlog: closed")
	// ErrFailed marks a log made inoperable by a failed write or sync.
	ErrFailed = errors.New("eventlog: failed")
	// ErrReadOnly: the log was opened read-only.
	ErrReadOnly = errors.New("eventlog: read-only")
)

// Options configure a Log. The zero value is usable.
type Options struct {
	// Node names this server in every event it writes (default: hostname-pid).
	Node string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// FS replaces the file system, for fault injection in tests.
	FS vfs.FS
	// Logger receives Pebble's and the log's own messages.
	Logger *slog.Logger
	// MaxUnsyncedEvents and MaxUnsyncedBytes bound what is written but not
	// yet durable (defaults 8192 events, 32 MiB): an append past either
	// waits for syncs to catch up (write.go). One append larger than the
	// bound is let through alone.
	MaxUnsyncedEvents int
	MaxUnsyncedBytes  int64
	// BeforeCommit, when set, runs in the write path (under its lock)
	// before each append's batch is written: a test hook to slow the log
	// down. Production leaves it nil.
	BeforeCommit func()
	// ReadOnly opens an existing log for reading (no lock, no appends).
	ReadOnly bool
	// TruncatedHint names the retention setting in TruncatedError (for
	// example "the server keeps the last 1000000 events (--retain-events)").
	TruncatedHint string
	// MinFree is the free space (bytes) the log keeps on its file system;
	// below it CheckSpace refuses new work, below 3/4 of it OutputRoom
	// refuses output, below a quarter every append is refused with a
	// *DiskFullError (space.go). 0 turns the check off.
	MinFree uint64
	// MinFreeSetting names the setting of MinFree in DiskFullError (for
	// example "--min-free-disk").
	MinFreeSetting string
	// SpaceInterval is how often free space is looked at while the log is
	// quiet (default 1s); appends look sooner, by the bytes they write.
	SpaceInterval time.Duration
	// Faults, in the kill -9 tests, kills the process at the log's fault
	// points (infra/fault); nil in production.
	Faults interface{ Hit(point string) }
}

// Log is the durable event log. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	db   *pebble.DB
	lock *dirLock

	w writePath // appends (write.go)

	stop chan struct{} // closed by Close once the write path is empty: stops the syncer
	done chan struct{} // closed when the syncer has exited

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced after every commit
	failed    error
	hasFailed atomic.Bool    // failed != nil; read without mu on the append path
	readers   sync.WaitGroup // reads in flight; Close waits for them (NB: Add only under mu while !closed)

	truncMu sync.Mutex // serializes TruncateBefore

	last       atomic.Uint64 // highest durable sequence
	foreignPos atomic.Uint64 // history stream position of the last import (foreign.go)
	first      atomic.Uint64 // lowest retained sequence (1 when nothing was truncated)
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error

	appendStats stats

	space     *space
	ballast   *ballast // nil without MinFree
	spaceStop chan struct{}
	spaceDone chan struct{}

	tail        TailReport   // what Open found at the end of the log
	corruptPath atomic.Value // the last file Pebble reported damaged (string)
}

// Open opens (creating if needed) the log in dir and takes its lock.
func Open(dir string, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Node == "" {
		host, _ := os.Hostname()
		opts.Node = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if opts.MaxUnsyncedEvents <= 0 {
		opts.MaxUnsyncedEvents = defaultMaxUnsyncedEvents
	}
	if opts.MaxUnsyncedBytes <= 0 {
		opts.MaxUnsyncedBytes = defaultMaxUnsyncedBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{dir: dir, opts: opts, changed: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
		spaceStop: make(chan struct{}), spaceDone: make(chan struct{})}
	minFree := opts.MinFree
	if opts.ReadOnly {
		minFree = 0
	}
	// NB: a full channel only makes the lock holder wait for the syncer,
	// which never takes the lock.
	l.w.async = make(chan *flight, min(opts.MaxUnsyncedEvents+1, 4096))
	l.space = newSpace(dir, minFree, opts.MinFreeSetting, opts.SpaceInterval)
	l.space.logf = l.logSpace
	po := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{l: opts.Logger, limit: &errorLimit{}}, FS: opts.FS,
		EventListener: l.listener()}
	// Replays read the log front to back: 32 KiB blocks (instead of 4 KiB)
	// cut the reads and block-cache allocations per event by 8 and compress
	// better. Other levels inherit L0's size. Only new tables are affected;
	// the key/value format is unchanged.
	po.Levels[0].BlockSize = 32 << 10
	if minFree > 0 {
		// The ballast is what Pebble's ENOSPC hook frees (ballast.go).
		l.ballast = newBallast(dir, int64(minFree/8))
		fs := opts.FS
		if fs == nil {
			fs = vfs.Default
		}
		po.FS = vfs.OnDiskFull(fs, l.onDiskFull)
		// NB: Pebble preallocates each WAL to 110% of the memtable, keeps
		// obsolete WALs for reuse and flushes a memtable into a table: its
		// own footprint (and a compaction's burst) is a few memtables.
		// Sized at MinFree/32, that fits in the reserve (MinFree/4) kept
		// below the last refusal level, and a burst between two looks at
		// the disk fits between the output floor and the reserve (MinFree/2),
		// so a WAL rotation or flush does not meet a full disk (the crash and
		// the flush-retry loop of issue 13). 4 MiB is Pebble's default.
		po.MemTableSize = min(max(minFree/32, 256<<10), 4<<20)
	}
	if opts.ReadOnly {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("open event log %s: %w", dir, err)
		}
		po.ReadOnly = true
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create event log dir: %w", err)
		}
		lock, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		l.lock = lock
	}
	// NB: before Pebble opens: a read-write open replays the WAL into a
	// table and deletes it, and a damaged last record vanishes with it.
	mark, hasMark, err := readSeqMark(dir)
	var tail walTail
	if err == nil {
		tail, err = scanWALTails(dir)
	}
	if err != nil {
		_ = l.lock.release()
		return nil, fmt.Errorf("open event log %s: %w", dir, err)
	}
	db, err := l.openPebble(dir, po)
	if err != nil {
		_ = l.lock.release()
		if opts.ReadOnly && errors.Is(err, syscall.EWOULDBLOCK) {
			// NB: Pebble locks its dir even read-only, so a read-only open
			// beside a running owner fails; say who owns it.
			return nil, &InUseError{Dir: dir, Pid: ownerPid(dir)}
		}
		return nil, fmt.Errorf("open event log %s: %w", dir, err)
	}
	l.db = db
	if err := l.loadBounds(); err != nil {
		_ = db.Close()
		_ = l.lock.release()
		return nil, err
	}
	if err := l.loadForeign(); err != nil {
		_ = db.Close()
		_ = l.lock.release()
		return nil, err
	}
	l.tail = judgeTail(mark, hasMark, tail, l.last.Load())
	if opts.ReadOnly {
		close(l.done)
		close(l.spaceDone)
		return l, nil
	}
	if err := l.startWriting(); err != nil {
		_ = db.Close()
		_ = l.lock.release()
		return nil, err
	}
	l.space.refresh(opts.Now())
	l.keepBallast()
	go l.spaceLoop(l.spaceStop, l.spaceDone)
	go l.syncLoop()
	return l, nil
}

// startWriting records a dropped tail (continuing after what may have been
// handed out) and reserves the first sequences, before any append.
func (l *Log) startWriting() error {
	if l.tail.Torn != "" {
		l.opts.Logger.Warn("event log: "+l.tail.Torn, "last", l.last.Load())
	}
	if l.tail.Dropped {
		seq, err := l.recordTail(l.tail)
		if err != nil {
			return fmt.Errorf("open event log %s: record the dropped tail: %w", l.dir, err)
		}
		l.tail.Recorded = seq
		l.opts.Logger.Error("event log: "+l.tail.String(), "last_good", l.tail.LastGood, "issued", l.tail.Issued,
			"bytes", l.tail.Bytes, "file", l.tail.File)
	}
	l.w.next = l.last.Load()
	l.w.reserved = l.last.Load() + seqReserveStep
	if err := writeSeqMark(l.dir, seqMark{seq: l.w.reserved}); err != nil {
		return fmt.Errorf("open event log %s: %w", l.dir, err)
	}
	return nil
}

// recordTail appends events.LogTailDropped at Issued+1, synced, before any
// append.
func (l *Log) recordTail(t TailReport) (uint64, error) {
	seq := max(t.Issued, l.last.Load()) + 1
	p := events.LogTailDropped{Node: l.opts.Node, LastGood: t.LastGood, Issued: seq - 1, Bytes: t.Bytes, File: t.File, Reason: t.Reason}
	raw, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	e := events.Event{Seq: seq, Time: l.opts.Now().UTC(), Stream: events.ServerStream(l.opts.Node), Node: l.opts.Node,
		Type: p.EventType(), Version: 1, Payload: p, Raw: raw}
	batch := l.db.NewBatch()
	defer batch.Close()
	var key [9]byte
	_ = batch.Set(eventKey(key[:0], seq), events.AppendRecord(nil, e, raw), nil)
	_ = batch.Set(appendIndexKey(nil, prefixStream, e.Stream, seq), nil, nil)
	if err := l.apply(batch); err != nil {
		return 0, err
	}
	l.last.Store(seq)
	return seq, nil
}

// Tail reports what Open found at the end of the log: whether events that
// may have been acknowledged could not be read back, and (for a read-write
// Open) the event that recorded it.
func (l *Log) Tail() TailReport { return l.tail }

// Dir returns the directory the log lives in.
func (l *Log) Dir() string { return l.dir }

// Node returns the node name stamped on this log's events.
func (l *Log) Node() string { return l.opts.Node }

// Last returns the highest durable sequence (0 for an empty log).
func (l *Log) Last() uint64 { return l.last.Load() }

// First returns the lowest retained sequence (1 unless a prefix was truncated).
func (l *Log) First() uint64 { return l.first.Load() }

func (l *Log) loadBounds() error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEvent}, UpperBound: []byte{prefixEvent + 1}})
	if err != nil {
		return fmt.Errorf("read log bounds: %w", err)
	}
	defer it.Close()
	if it.Last() {
		l.last.Store(seqFromEventKey(it.Key()))
	} else if err := it.Error(); err != nil {
		return l.readErr(fmt.Errorf("read log bounds: %w", err))
	}
	first := uint64(1)
	if v, closer, err := l.db.Get(metaFirstKey); err == nil {
		first = binary.BigEndian.Uint64(v)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return l.readErr(fmt.Errorf("read first sequence: %w", err))
	}
	l.first.Store(first)
	// NB: after TruncateBefore(Last()+1) no event key remains; the first
	// retained sequence still says where numbering continues, so a reopened
	// log never hands out a sequence twice.
	if first > 0 && l.last.Load() < first-1 {
		l.last.Store(first - 1)
	}
	return l.readErr(it.Error())
}

// applyNoSyncWait writes a batch with Sync, returning before the fsync
// completes; the caller must call SyncWait. A WAL write error makes Pebble
// call Logger.Fatalf; see apply.
func (l *Log) applyNoSyncWait(b *pebble.Batch) (err error) {
	defer recoverFatal(&err)
	return l.db.ApplyNoSyncWait(b, pebble.Sync)
}

// recoverFatal turns a pebbleFatal panic into *err; other panics go on.
func recoverFatal(err *error) {
	if r := recover(); r != nil {
		f, ok := r.(pebbleFatal)
		if !ok {
			panic(r)
		}
		*err = f
	}
}

// apply writes a batch durably. Pebble reports a failed WAL write or sync
// through Logger.Fatalf (db.go: "pebble: fatal commit error"), after the batch
// was applied to the memtable and published; pebbleLogger.Fatalf panics with
// a pebbleFatal, which is turned back into an error here so that the caller
// hears of it and the process lives on.
func (l *Log) apply(b *pebble.Batch) (err error) {
	defer recoverFatal(&err)
	return l.db.Apply(b, pebble.Sync)
}

func (l *Log) failedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// fail makes the log inoperable: the first failure is kept and returned to
// every later write, marked ErrFailed.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
		l.hasFailed.Store(true)
	}
	l.mu.Unlock()
	l.opts.Logger.Error("event log write failed; the log is now inoperable", "err", err)
	return err
}

// acquire registers a reader of the Pebble handle, or returns ErrClosed.
// Every successful acquire is paired with release; Close waits for them.
func (l *Log) acquire() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	l.readers.Add(1)
	return nil
}

func (l *Log) release() { l.readers.Done() }

// Changed returns a channel closed by the next commit. Read Last after it
// fires; take a new channel for the commit after.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Close refuses new appends (ErrClosed, also to appends waiting for room
// under the bound), waits for the appends already in the write path to
// settle (durable ones are reported done), then for reads in flight,
// closes Pebble and releases the lock. It is idempotent. NB: a Read or
// Follow callback must not call Close: Close waits for that callback to
// return.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed.Store(true) // NB: under mu, so no acquire succeeds after it
		l.mu.Unlock()
		if !l.opts.ReadOnly {
			l.closeWritePath()
		}
		if !l.opts.ReadOnly {
			close(l.spaceStop)
		}
		<-l.spaceDone
		l.mu.Lock()
		close(l.changed) // wake followers so they see ErrClosed
		l.changed = make(chan struct{})
		l.mu.Unlock()
		// NB: Pebble panics on use after Close and reports open iterators
		// as leaked: wait for reads in flight (a running Follow callback
		// included) to finish.
		l.readers.Wait()
		if err := l.db.Close(); err != nil {
			l.closeErr = fmt.Errorf("close event log: %w", err)
		}
		// NB: only a log that never failed closes clean: a failed append's
		// record may still reappear from the WAL, above Last.
		if !l.opts.ReadOnly && l.closeErr == nil && l.failedErr() == nil {
			if err := writeSeqMark(l.dir, seqMark{clean: true, seq: l.last.Load()}); err != nil {
				l.closeErr = fmt.Errorf("close event log: %w", err)
			}
		}
		if err := l.lock.release(); err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("release data dir lock: %w", err)
		}
	})
	return l.closeErr
}

// DiskUsage returns the bytes the log's files take on disk (0 once closed).
func (l *Log) DiskUsage() uint64 {
	if l.acquire() != nil {
		return 0
	}
	defer l.release()
	return l.db.Metrics().DiskSpaceUsage()
}

// Usage splits DiskUsage: Tables is the live data (events, indexes,
// snapshots), WAL the write-ahead log (bounded by the memtable size, not by
// the number of events).
type Usage struct {
	Tables, WAL, Total uint64
}

// Usage returns where the log's disk space goes (zero once closed).
func (l *Log) Usage() Usage {
	if l.acquire() != nil {
		return Usage{}
	}
	defer l.release()
	m := l.db.Metrics()
	return Usage{Tables: m.Table.Local.LiveSize, WAL: m.WAL.PhysicalSize + m.WAL.ObsoletePhysicalSize, Total: m.DiskSpaceUsage()}
}

// pebbleLogger routes Pebble's messages to slog. NB: Fatalf must not exit
// the process from library code, and must not return either (Pebble goes on
// as if the call had stopped it: DB.Apply would report a failed commit as
// done). It logs at error level and panics with a pebbleFatal. Log.apply
// recovers that panic for the writes the log makes; a Fatalf on one of
// Pebble's own goroutines (flush, compaction, MANIFEST sync) still crashes
// the process, which is the right outcome for a store that cannot go on.
type pebbleLogger struct {
	l     *slog.Logger
	limit *errorLimit
}

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

// Errorf logs Pebble's errors, at most errorsPerMinute a minute: a
// background job that fails over and over (a flush on a full disk retries
// every few milliseconds) must not flood the log.
func (p pebbleLogger) Errorf(format string, args ...any) {
	if n, ok := p.limit.allow(time.Now()); ok {
		if n > 0 {
			p.l.Error("event log: Pebble errors suppressed in the last minute", "suppressed", n)
		}
		p.l.Error(fmt.Sprintf(format, args...))
	}
}

// errorsPerMinute bounds the Pebble error lines logged per minute.
const errorsPerMinute = 10

// errorLimit is a fixed-window rate limit.
type errorLimit struct {
	mu         sync.Mutex
	window     time.Time
	n          int
	suppressed int
}

// allow reports whether a line may be logged now and how many were
// suppressed in the window that just ended.
func (e *errorLimit) allow(now time.Time) (suppressed int, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.window) >= time.Minute {
		suppressed, e.window, e.n, e.suppressed = e.suppressed, now, 0, 0
	}
	if e.n >= errorsPerMinute {
		e.suppressed++
		return 0, false
	}
	e.n++
	return suppressed, true
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic(pebbleFatal(msg))
}

// pebbleFatal is the panic value of pebbleLogger.Fatalf.
type pebbleFatal string

func (f pebbleFatal) Error() string { return "pebble: " + strings.TrimPrefix(string(f), "pebble: ") }
