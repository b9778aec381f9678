package notebook

import "github.com/mcp-jupyter/mcp-jupyter/events"

// maxOutputSteps bounds the chain of output-only versions State remembers.
const maxOutputSteps = 64

// Step is one version this server made by writing outputs only.
type Step struct{ From, To string }

// State is one notebook as its event stream has it.
type State struct {
	Path    string // relative to the notebook root
	Hash    string // sha256 of the file after the last recorded change
	Changes int
	// OutputSteps are the latest output-only writes, oldest first (at most
	// maxOutputSteps).
	OutputSteps []Step
	LastSeq     uint64
}

// Apply folds one event of the notebook's stream. It is pure.
func Apply(s State, e events.Event) State {
	switch p := e.Payload.(type) {
	case events.NotebookCreated:
		s = State{Path: p.Path, Hash: p.SHA256}
	case events.NotebookCellInserted:
		s.Path, s.Hash = p.Path, p.SHA256
	case events.NotebookCellEdited:
		s.Path, s.Hash = p.Path, p.SHA256
	case events.NotebookCellDeleted:
		s.Path, s.Hash = p.Path, p.SHA256
	case events.NotebookCellMoved:
		s.Path, s.Hash = p.Path, p.SHA256
	case events.NotebookReplaced:
		// NB: a whole new version: no output-only chain leads across it.
		s = State{Path: p.Path, Hash: p.SHA256, Changes: s.Changes}
	case events.NotebookRenamed, events.NotebookRemoved:
		// The file is gone from this path; a file made here later starts
		// a new chain.
		s = State{Path: s.Path, Changes: s.Changes}
	case events.NotebookOutputsWritten:
		s.Path, s.Hash = p.Path, p.SHA256
		if p.PrevSHA256 != "" {
			steps := append(s.OutputSteps[:len(s.OutputSteps):len(s.OutputSteps)], Step{From: p.PrevSHA256, To: p.SHA256})
			if len(steps) > maxOutputSteps {
				steps = steps[len(steps)-maxOutputSteps:]
			}
			s.OutputSteps = steps
		}
	default:
		return s
	}
	s.Changes++
	s.LastSeq = e.Seq
	return s
}

// onlyOutputsSince reports whether the file at hash cur differs from the
// version at hash base only by outputs this server wrote.
func (s State) onlyOutputsSince(base, cur string) bool {
	for range len(s.OutputSteps) + 1 {
		if cur == base {
			return true
		}
		found := false
		for i := len(s.OutputSteps) - 1; i >= 0; i-- {
			if s.OutputSteps[i].To == cur {
				cur, found = s.OutputSteps[i].From, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return false
}
