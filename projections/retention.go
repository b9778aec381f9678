package projections

import (
	"fmt"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Retention bounds the log's disk use by deleting the old events nobody
// needs any more. The zero value keeps everything.
//
// After each periodic snapshot (Options.SnapshotEvery) the runner truncates
// the log before
//
//	min(Last - KeepEvents + 1, oldest snapshot of its projections + 1, Floors)
//
// keeping below that point only the events a Keeper keeps. So the newest
// KeepEvents events always stay (for inspection and for readers that lag a
// little), nothing a snapshot does not cover is deleted, and nothing a
// registered reader has not read yet.
//
// Two kinds of readers hold the log back, and they need different things:
//
//  1. A cursor (the NATS publisher's saved position, a WebSocket client
//     catching up, the other runner's snapshots) reads every event after
//     it: it is a Floor, and the log keeps everything from there on.
//  2. An actor recovering from its own stream (a kernel not shut down
//     folds kernel/<id>; an unfinished execution's stream is re-adopted)
//     needs only that stream, however old. As a Floor it would pin the
//     whole log behind a kernel that runs for months; as a Keeper it pins
//     just the few events of its stream it folds.
//
// NB: the runner knows only its own projections. Every other reader of the
// log must be registered in Floors, or retention deletes what it needs.
type Retention struct {
	// KeepEvents is how many of the newest events are never deleted. 0
	// disables retention.
	KeepEvents uint64
	// Floors holds back the other readers (nil: none).
	Floors *Floors
}

// A Floor is a reader of the log that retention must not outrun.
//
// LogFloor returns the lowest sequence the reader still needs (events at
// or above it are kept) and true, or false when it needs nothing now. It
// is called from the runner's goroutine, concurrently with the reader's
// own work: it must be cheap and safe for concurrent use, and must not wait
// for the runner.
type Floor interface {
	LogFloor() (seq uint64, ok bool)
}

// FloorFunc adapts a function to Floor.
type FloorFunc func() (uint64, bool)

// LogFloor implements Floor.
func (f FloorFunc) LogFloor() (uint64, bool) { return f() }

// A Keeper keeps whole the streams an actor recovers from, below the
// retention window.
//
// Keep reports whether an event older than the window must stay. It sees
// the envelope only (Raw set, Payload nil). It is called from the runner's
// goroutine for every event below the window at each truncation, so it must
// be cheap, safe for concurrent use, and must not wait for the runner.
type Keeper interface {
	Keep(e events.Event) bool
}

// KeepFunc adapts a function to Keeper.
type KeepFunc func(events.Event) bool

// Keep implements Keeper.
func (f KeepFunc) Keep(e events.Event) bool { return f(e) }

// Floors is the registry retention asks: every reader of the log that is
// not one of the truncating runner's projections registers here. It is
// safe for concurrent use.
//
// NB: until Enable is called it reports a floor of 0, so that nothing is
// truncated while the server is still starting and its readers are not all
// registered yet.
type Floors struct {
	mu      sync.Mutex
	enabled bool
	floors  []named[Floor]
	keepers []named[Keeper]
}

// starting is the name Lowest gives before Enable.
const starting = "starting"

type named[T any] struct {
	name string
	v    T
}

// AddFloor registers a cursor-like reader under a name (used in messages).
func (f *Floors) AddFloor(name string, fl Floor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.floors = append(f.floors, named[Floor]{name, fl})
}

// AddKeeper registers an owner of streams to keep.
func (f *Floors) AddKeeper(name string, k Keeper) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keepers = append(f.keepers, named[Keeper]{name, k})
}

// Enable lets retention run: call it once every reader is registered.
func (f *Floors) Enable() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enabled = true
}

// Lowest returns the lowest sequence any registered Floor needs and its
// name; ok is false when none needs anything. Before Enable it is 0,
// "starting".
func (f *Floors) Lowest() (seq uint64, who string, ok bool) {
	f.mu.Lock()
	floors, enabled := f.floors, f.enabled
	f.mu.Unlock()
	if !enabled {
		return 0, starting, true
	}
	for _, fl := range floors {
		if s, need := fl.v.LogFloor(); need && (!ok || s < seq) {
			seq, who, ok = s, fl.name, true
		}
	}
	return seq, who, ok
}

// keepFunc returns the keep function for one truncation: the keepers are
// read once, not per event.
func (f *Floors) keepFunc() func(events.Event) bool {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	keepers := f.keepers
	f.mu.Unlock()
	if len(keepers) == 0 {
		return nil
	}
	return func(e events.Event) bool {
		for _, k := range keepers {
			if k.v.Keep(e) {
				return true
			}
		}
		return false
	}
}

// LogFloor makes a runner a Floor for another runner's retention: it needs
// the events after its projections' oldest stored snapshot (all of them
// before its first snapshot).
func (r *Runner) LogFloor() (uint64, bool) {
	return r.snapFloor.Load(), true
}

// updateSnapFloor records the oldest stored snapshot + 1. Loop goroutine
// (or Start, before the loop) only.
func (r *Runner) updateSnapFloor() {
	floor := uint64(0)
	for i, st := range r.states {
		if i == 0 || st.saved+1 < floor {
			floor = st.saved + 1
		}
	}
	r.snapFloor.Store(floor)
}

func (r *Runner) retain() error {
	keep := r.opts.Retention.KeepEvents
	if keep == 0 || len(r.states) == 0 {
		return nil
	}
	last := r.log.Last()
	if last <= keep {
		return nil
	}
	before := min(last-keep+1, r.snapFloor.Load())
	who := "the retention window"
	floors := r.opts.Retention.Floors
	if floors != nil {
		s, name, ok := floors.Lowest()
		if name == starting {
			return nil
		}
		if ok && s < before {
			before, who = s, name
		}
	}
	keepFn := floors.keepFunc()
	if first := r.log.First(); before <= first {
		if keepFn == nil {
			return nil
		}
		before = first // NB: truncate anyway, to release the events kept before
	}
	n, err := r.log.TruncateBefore(before, keepFn)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	r.opts.Logger.Debug("log truncated", "before", before, "held_by", who, "deleted", n)
	return nil
}
