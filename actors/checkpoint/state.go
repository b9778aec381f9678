package checkpoint

import (
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
	Loads    int
	Rejects  int
}

// State is every checkpoint name the log knows of and is not deleted.
type State struct {
	Checkpoints map[string]Entry
}

// Apply folds one event into the state. It is pure: the map is copied, not
// changed in place, so a State handed out never changes under its holder.
func Apply(s State, e events.Event) State {
	switch p := e.Payload.(type) {
	case events.CheckpointSaved:
		m := clone(s.Checkpoints)
		m[p.Name] = Entry{Name: p.Name, KernelID: p.KernelID, KeyID: p.KeyID, SHA256: p.SHA256, Size: p.Size, SavedSeq: e.Seq}
		s.Checkpoints = m
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

func clone(m map[string]Entry) map[string]Entry {
	out := make(map[string]Entry, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
