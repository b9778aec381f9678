package checkpoint

import (
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Entry is what the log says of one checkpoint name.
type Entry struct {
	Name     string
	KernelID string
	KeyID    string
	SHA256   string // of the payload, as the file's metadata says
	Size     int64
	SavedSeq uint64
	// SavedAt is when the save was recorded (the event's time): a file
	// created before it that is not this save is an older version.
	SavedAt time.Time
	Loads   int
	Rejects int
	// Owner is the principal whose checkpoint it is (from the stored name).
	Owner string
}

// State is every checkpoint name the log knows of and is not deleted, and
// the newest save ever recorded of each name (kept across deletions: it is
// what a file put back is compared with, see CheckFile).
type State struct {
	Checkpoints map[string]Entry
	Newest      map[string]Entry
}

// Apply folds one event into the state. It is pure: the maps are copied,
// not changed in place, so a State handed out never changes under its
// holder.
func Apply(s State, e events.Event) State {
	switch p := e.Payload.(type) {
	case events.CheckpointSaved:
		m := clone(s.Checkpoints)
		owner, _ := Owned(p.Name)
		ent := Entry{Name: p.Name, KernelID: p.KernelID, KeyID: p.KeyID, SHA256: p.SHA256, Size: p.Size, SavedSeq: e.Seq, SavedAt: e.Time, Owner: owner}
		m[p.Name] = ent
		s.Checkpoints = m
		n := clone(s.Newest)
		n[p.Name] = ent
		s.Newest = n
	case events.CheckpointLoaded:
		if c, ok := s.Checkpoints[p.Name]; ok {
			m := clone(s.Checkpoints)
			c.Loads++
			m[p.Name] = c
			s.Checkpoints = m
		}
	case events.CheckpointRejected:
		if c, ok := s.Checkpoints[p.Name]; ok {
			m := clone(s.Checkpoints)
			c.Rejects++
			m[p.Name] = c
			s.Checkpoints = m
		}
	case events.CheckpointDeleted:
		if _, ok := s.Checkpoints[p.Name]; ok {
			m := clone(s.Checkpoints)
			delete(m, p.Name)
			s.Checkpoints = m
		}
	}
	return s
}

// Usage is the bytes of owner's checkpoint files the log recorded, but
// the one stored as except (a save about to replace it).
func (s State) Usage(owner, except string) int64 {
	var n int64
	for stored, e := range s.Checkpoints {
		if o, _ := Owned(stored); o == owner && stored != except {
			n += e.Size
		}
	}
	return n
}

func clone(m map[string]Entry) map[string]Entry {
	out := make(map[string]Entry, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
