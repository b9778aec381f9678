package eventlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Free space on the log's file system is a state, not a crash. Pebble
// cannot survive running out of space in the middle of a WAL write (its
// fatal path unwinds through held locks), so the log stops well before:
//
//	free >= MinFree          ok: everything is accepted
//	free <  MinFree          low: CheckSpace refuses new work (the edges ask it);
//	                         appends go on, so running work can finish
//	free <  MinFree*3/4      floor: OutputRoom refuses output (the kernel actor
//	                         records it as a gap); other appends go on
//	free <  MinFree/4        reserve: every append gets a *DiskFullError; the
//	                         log stays usable and resumes when space returns
//
// The levels are worked out from statfs, refreshed by a monitor goroutine
// every SpaceInterval and by the write path whenever the bytes it wrote since
// the last statfs could have crossed the next level: a burst of appends
// cannot outrun the check, and a quiet log costs one statfs per interval.

// Space levels, from healthy to full.
const (
	SpaceOK      = iota // above MinFree
	SpaceLow            // below MinFree: refuse new work
	SpaceFloor          // below MinFree/2: refuse output
	SpaceReserve        // below MinFree/4: refuse every append
)

// defaultSpaceInterval is how often the monitor looks at the file system.
const defaultSpaceInterval = time.Second

// lowSpaceLogEvery bounds how often a lasting shortage is logged.
const lowSpaceLogEvery = time.Minute

// DiskFullError says that the data dir's file system is short of space:
// what is free, what the server keeps free, and what to do.
type DiskFullError struct {
	Dir   string
	Free  uint64 // bytes available
	Min   uint64 // the reserve the server keeps (MinFree)
	Level int    // SpaceLow, SpaceFloor or SpaceReserve
	// Setting names the setting that sets Min (for example "--min-free-disk").
	Setting string
}

func (e *DiskFullError) Error() string {
	what := "new work is refused"
	switch e.Level {
	case SpaceFloor:
		what = "new work is refused and further output of running executions is dropped (recorded as lost)"
	case SpaceReserve:
		what = "nothing more is written to the event log"
	}
	setting := ""
	if e.Setting != "" {
		setting = " (" + e.Setting + ")"
	}
	return fmt.Sprintf("disk full: %s free on the file system of %s, below the %s the server keeps free%s; %s. "+
		"Reads still work. Free space (delete old checkpoints, assets or other files, or grow the volume); "+
		"the server resumes by itself within seconds", HumanSize(e.Free), e.Dir, HumanSize(e.Min), setting, what)
}

// Unwrap makes the error errors.Is events.ErrDiskFull.
func (e *DiskFullError) Unwrap() error { return events.ErrDiskFull }

// Space is the log's view of its file system.
type Space struct {
	Free    uint64    // bytes available to the server
	Min     uint64    // MinFree; 0 when the check is off
	Level   int       // SpaceOK .. SpaceReserve
	Checked time.Time // when statfs last answered
	Err     error     // statfs's error, if it failed (the level stays as it was)
}

// space watches free space. Its fields are read on every append by the
// write path and by the edges: the level is an atomic.
type space struct {
	dir      string
	min      uint64
	setting  string
	interval time.Duration
	logf     func(level int, free uint64, err error) // reports changes (rate-limited by the caller)

	level   atomic.Int32
	free    atomic.Uint64
	written atomic.Uint64 // bytes the write path wrote since the last statfs
	budget  atomic.Uint64 // bytes that may be written before the next statfs

	mu        sync.Mutex // serializes refresh
	checked   time.Time
	err       error
	lastLog   time.Time
	lastLevel int
}

func newSpace(dir string, min uint64, setting string, interval time.Duration) *space {
	if interval <= 0 {
		interval = defaultSpaceInterval
	}
	return &space{dir: dir, min: min, setting: setting, interval: interval}
}

// statfs returns the bytes available to an unprivileged writer: the
// blocks root keeps in reserve are not counted on purpose.
func statfs(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// levelFor maps free bytes to a level.
func (s *space) levelFor(free uint64) int {
	switch {
	case s.min == 0 || free >= s.min:
		return SpaceOK
	case free >= s.min/4*3:
		return SpaceLow
	case free >= s.min/4:
		return SpaceFloor
	default:
		return SpaceReserve
	}
}

// refresh runs statfs and updates the level and the write budget. It
// returns the new level.
func (s *space) refresh(now time.Time) int {
	if s.min == 0 {
		return SpaceOK
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	free, err := statfs(s.dir)
	s.checked, s.err = now, err
	if err != nil {
		// NB: keep the last level: a transient statfs error is no reason to
		// refuse or to accept work.
		s.report(now, int(s.level.Load()), s.free.Load(), err)
		return int(s.level.Load())
	}
	lvl := s.levelFor(free)
	s.free.Store(free)
	s.level.Store(int32(lvl))
	s.written.Store(0)
	// The next statfs is due once a quarter of the distance to the next
	// lower threshold was written (Pebble writes each byte more than once:
	// WAL, flush, compaction), and at least every 64 KiB near the bottom.
	next := s.min / 4
	for _, t := range []uint64{s.min, s.min / 4 * 3, s.min / 4} {
		if free >= t {
			next = t
			break
		}
	}
	s.budget.Store(max((free-min(free, next))/4, 64<<10))
	s.report(now, lvl, free, nil)
	return lvl
}

// report logs a change of level at once and a lasting shortage (or statfs
// failure) at most once per lowSpaceLogEvery. Called with mu held.
func (s *space) report(now time.Time, lvl int, free uint64, err error) {
	if s.logf == nil {
		return
	}
	// NB: free space hovering at a threshold (Pebble frees and takes space
	// in bursts) must not flood the log: a change is logged at most every
	// 10 s, except a fall to the reserve.
	changed := lvl != s.lastLevel && (now.Sub(s.lastLog) >= 10*time.Second || lvl == SpaceReserve)
	lasting := (lvl != SpaceOK || err != nil) && now.Sub(s.lastLog) >= lowSpaceLogEvery
	if !changed && !lasting {
		return
	}
	s.lastLevel, s.lastLog = lvl, now
	s.logf(lvl, free, err)
}

// wrote records bytes the write path is about to write and says whether a
// statfs is due first.
func (s *space) wrote(n uint64) bool {
	if s.min == 0 {
		return false
	}
	return s.written.Add(n) >= s.budget.Load()
}

// fits returns a *DiskFullError when writing n more bytes (counted twice:
// WAL, then table) on top of what was written since the last statfs would
// bring free space below floor.
func (s *space) fits(n, floor uint64) error {
	if s.min == 0 {
		return nil
	}
	free, need := s.free.Load(), 2*n+s.written.Load()
	if free >= need && free-need >= floor {
		return nil
	}
	lvl := SpaceFloor
	if floor <= s.min/4 {
		lvl = SpaceReserve
	}
	return &DiskFullError{Dir: s.dir, Free: free, Min: s.min, Level: max(lvl, int(s.level.Load())), Setting: s.setting}
}

// near reports whether free space is within twice MinFree, where every
// group commit looks again.
func (s *space) near() bool {
	return s.min != 0 && (s.level.Load() != SpaceOK || s.free.Load() < 2*s.min)
}

// state returns the current view without a statfs.
func (s *space) state() Space {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Space{Free: s.free.Load(), Min: s.min, Level: int(s.level.Load()), Checked: s.checked, Err: s.err}
}

// errAt returns a *DiskFullError when the level is at or below lvl.
func (s *space) errAt(lvl int) error {
	cur := int(s.level.Load())
	if cur < lvl {
		return nil
	}
	return &DiskFullError{Dir: s.dir, Free: s.free.Load(), Min: s.min, Level: cur, Setting: s.setting}
}

// check is errAt for callers outside the write path: while short of space it
// looks again (a statfs, a few microseconds), so that work resumes as soon
// as space was freed rather than at the monitor's next tick.
func (s *space) check(lvl int, now time.Time) error {
	if int(s.level.Load()) >= lvl {
		s.refresh(now)
	}
	return s.errAt(lvl)
}

// roomFor refuses (a *DiskFullError) a write of n bytes while space is
// low, or when it would bring free space below the reserve. It runs statfs.
func (s *space) roomFor(n uint64, now time.Time) error {
	if s.min == 0 {
		return nil
	}
	lvl := s.refresh(now)
	free := s.free.Load()
	if lvl == SpaceOK && free >= n && free-n >= s.min/4 {
		return nil
	}
	return &DiskFullError{Dir: s.dir, Free: free, Min: s.min, Level: max(lvl, SpaceLow), Setting: s.setting}
}

// CheckSpace returns a *DiskFullError (errors.Is events.ErrDiskFull) while
// the file system holding the log has less than Options.MinFree available,
// nil otherwise. Edges call it before accepting new work (start a kernel,
// queue an execution, write a notebook, save a checkpoint). It costs an
// atomic load while space is fine.
func (l *Log) CheckSpace() error { return l.space.check(SpaceLow, l.opts.Now()) }

// OutputRoom returns a *DiskFullError while free space is below three
// quarters of Options.MinFree, or when appending bytes more of output would
// take it there: output of running executions should then be recorded as
// lost (a gap) instead of appended, so that their end can still be. A
// caller with a batch asks with the running total of its output.
func (l *Log) OutputRoom(bytes int) error {
	if err := l.space.check(SpaceFloor, l.opts.Now()); err != nil {
		return err
	}
	return l.space.fits(uint64(bytes), l.space.min/4*3)
}

// Space reports the log's view of its file system (no statfs).
func (l *Log) Space() Space { return l.space.state() }

// spaceLoop is the monitor: it refreshes the level every interval until
// stop closes. Owned by the Log; Close waits for it.
func (l *Log) spaceLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(l.space.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			l.space.refresh(l.opts.Now())
			l.keepBallast()
		}
	}
}

// logSpace reports a change of the space level, and a lasting shortage at
// most once per lowSpaceLogEvery (never once per event).
func (l *Log) logSpace(level int, free uint64, err error) {
	lg := l.opts.Logger
	switch {
	case err != nil:
		lg.Warn("event log: cannot read free disk space", "dir", l.dir, "err", err)
	case level == SpaceOK:
		lg.Info("event log: disk space is back above the reserve; new work is accepted again", "dir", l.dir,
			"free", HumanSize(free), "min_free", HumanSize(l.space.min))
	default:
		lg.Error("event log: "+(&DiskFullError{Dir: l.dir, Free: free, Min: l.space.min, Level: level, Setting: l.space.setting}).Error(),
			"free", HumanSize(free), "min_free", HumanSize(l.space.min), "level", level)
	}
}

// onDiskFull is Pebble's ENOSPC hook: free the ballast so that the write
// Pebble retries fits, and refuse appends from now on.
func (l *Log) onDiskFull() {
	freed := l.ballast.release()
	l.space.level.Store(SpaceReserve)
	l.space.free.Store(0)
	l.opts.Logger.Error("event log: the disk ran out of space under Pebble; the ballast was released so it can finish, and appends are refused until space is freed",
		"dir", l.dir, "ballast_freed", freed)
}

// keepBallast re-creates the ballast while space is fine.
func (l *Log) keepBallast() {
	if l.ballast == nil || l.ballast.isPresent() || int(l.space.level.Load()) != SpaceOK {
		return
	}
	if err := l.ballast.ensure(); err != nil {
		l.opts.Logger.Warn("event log: no ballast", "dir", l.dir, "err", err)
	}
}

// errNoSpace is what the write path answers below the reserve.
func (l *Log) errNoSpace() error {
	err := l.space.errAt(SpaceReserve)
	if err == nil {
		return nil
	}
	return fmt.Errorf("append: %w", err)
}

// HumanSize renders bytes as B, KiB, MiB, GiB... for people.
func HumanSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
