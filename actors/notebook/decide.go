package notebook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

var (
	// ErrChanged: the file changed on disk since the version the caller read.
	ErrChanged = errors.New("notebook: changed on disk since you read it")
	// ErrExists: create of a notebook that already exists.
	ErrExists = errors.New("notebook: already exists")
	// ErrNoFile: a rename or delete of a file that is not there.
	ErrNoFile = errors.New("notebook: no such file")
	// ErrNoHash: an edit without the hash of the version it was made on.
	ErrNoHash = errors.New("notebook: expected_hash is required")
)

// ConflictError refuses an edit made on an older version of the file.
type ConflictError struct {
	Path     string
	Expected string
	Current  string
	// Diff says which cells changed between the two versions, when the
	// version the caller read is still known.
	Diff *nbfile.Diff
}

func (e *ConflictError) Error() string {
	what := "the version you read is no longer known to this server, so no diff can be shown"
	if e.Diff != nil {
		what = "what changed: " + e.Diff.String()
	}
	return fmt.Sprintf("%s changed on disk since you read it (you read sha256 %s, it is now %s); %s. "+
		"Nothing was written: call read_notebook again and redo the edit on what it shows.", e.Path, short(e.Expected), short(e.Current), what)
}

func (e *ConflictError) Unwrap() error { return ErrChanged }

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// StreamID is the id of a notebook's event stream: derived from its path
// relative to the notebook root, so that the same file always has the same
// history. NB: must not change (it names streams on disk).
func StreamID(rel string) string {
	s := sha256.Sum256([]byte("notebook:" + rel))
	return hex.EncodeToString(s[:12])
}

// Op is one change to a notebook.
type Op interface{ opName() string }

// The changes a Command can carry.
type (
	// Create makes a new notebook for a kernelspec.
	Create struct{ KernelSpec, DisplayName, Language string }
	// Insert adds a cell at Index (-1, or the number of cells, appends).
	Insert struct {
		Index            int
		CellType, Source string
		CellID           string // optional
	}
	// Edit replaces a cell's source (and type, when CellType is set).
	Edit struct{ Cell, Source, CellType string }
	// Delete removes a cell.
	Delete struct{ Cell string }
	// Move puts a cell at index To.
	Move struct {
		Cell string
		To   int
	}
	// WriteOutputs puts an execution's outputs into a cell. It needs no
	// ExpectedHash: it changes only that cell's outputs, on whatever the file
	// holds now.
	WriteOutputs struct {
		CellID, ExecutionID string
		Outputs             []json.RawMessage
		ExecutionCount      *int
	}
	// Replace writes the whole notebook (a frontend's save, a restore). Its
	// ExpectedHash is optional: when given, the file must be exactly that
	// version (no output-only exception: the new content would drop those
	// outputs). The version it replaces is kept as a checkpoint
	// (infra/notebook ReplacedID), so a save never loses another writer's
	// version silently. Creates the file when there is none.
	Replace struct {
		Bytes []byte // nbformat 4 JSON; written back in nbformat's layout
		// Restored names the checkpoint Bytes came from, for the record.
		Restored string
		// New refuses (ErrExists) when a file is already there: a new
		// untitled notebook or a copy never replaces one.
		New bool
	}
	// Rename moves the notebook to To (relative to the whole root; the
	// manager resolves it). ExpectedHash is optional.
	Rename struct{ To string }
	// Remove deletes the notebook file. ExpectedHash is optional.
	Remove struct{}
)

func (Create) opName() string       { return "create" }
func (Insert) opName() string       { return "insert" }
func (Edit) opName() string         { return "edit" }
func (Delete) opName() string       { return "delete" }
func (Move) opName() string         { return "move" }
func (WriteOutputs) opName() string { return "write outputs" }
func (Replace) opName() string      { return "replace" }
func (Rename) opName() string       { return "rename" }
func (Remove) opName() string       { return "remove" }

// guardedWhole reports whether c's op works on the whole file, with an
// optional hash guard and no need to parse the file it replaces.
func guardedWhole(op Op) bool {
	switch op.(type) {
	case Replace, Rename, Remove:
		return true
	}
	return false
}

// Command asks for one change to the notebook at Path (relative to the root).
type Command struct {
	Path         string
	ExpectedHash string // the sha256 the caller read; required but for Create and WriteOutputs
	By           string // the client's label, recorded in the payload
	// Principal is the authenticated principal asking ("" for the server's
	// own writes): the events carry it in their envelope.
	Principal string
	Op        Op
}

// Decision is what Decide returns: the new file and the events recording it.
type Decision struct {
	Notebook *nbfile.Notebook
	Bytes    []byte
	Hash     string
	CellID   string // the cell the change touched
	Index    int    // where that cell is now (-1 when deleted)
	Drafts   []events.Draft
}

// Decide turns a command into the new file and its events, given the file as
// it is on disk (cur is nil when there is none). It is pure.
func Decide(s State, cur *nbfile.File, c Command) (Decision, error) {
	stream := events.NotebookStream(StreamID(c.Path))
	draft := func(p events.Payload) []events.Draft {
		return []events.Draft{{Stream: stream, Principal: c.Principal, Payload: p}}
	}
	if op, ok := c.Op.(Create); ok {
		if cur != nil {
			return Decision{}, fmt.Errorf("%w: %s is already a notebook (sha256 %s); read_notebook it, or choose another path", ErrExists, c.Path, short(cur.Hash))
		}
		nb := nbfile.New(op.KernelSpec, op.DisplayName, op.Language)
		d, err := finish(nb, "", -1)
		if err != nil {
			return Decision{}, err
		}
		d.Drafts = draft(events.NotebookCreated{Path: c.Path, KernelSpec: op.KernelSpec, By: c.By, SHA256: d.Hash})
		return d, nil
	}
	if guardedWhole(c.Op) {
		return decideWhole(cur, c, draft)
	}
	if cur == nil {
		return Decision{}, fmt.Errorf("%s does not exist: create_notebook makes it", c.Path)
	}
	if _, ok := c.Op.(WriteOutputs); !ok {
		if c.ExpectedHash == "" {
			return Decision{}, fmt.Errorf("%w: pass the sha256 that read_notebook returned for %s, so a change made since (by a person or another agent) is never overwritten", ErrNoHash, c.Path)
		}
		if c.ExpectedHash != cur.Hash && !s.onlyOutputsSince(c.ExpectedHash, cur.Hash) {
			return Decision{}, &ConflictError{Path: c.Path, Expected: c.ExpectedHash, Current: cur.Hash}
		}
	}
	nb := cur.Notebook.Clone()
	prev := cur.Hash
	switch op := c.Op.(type) {
	case Insert:
		if op.Index < 0 {
			op.Index = len(nb.Cells) // append to the file as it is now
		}
		id, err := nb.Insert(op.Index, nbfile.Cell{ID: op.CellID, Type: op.CellType, Source: op.Source})
		if err != nil {
			return Decision{}, err
		}
		d, err := finish(nb, id, op.Index)
		if err != nil {
			return Decision{}, err
		}
		d.Drafts = draft(events.NotebookCellInserted{Path: c.Path, CellID: id, CellType: nb.Cells[op.Index].Type, Index: op.Index,
			Source: op.Source, By: c.By, SHA256: d.Hash, PrevSHA256: prev})
		return d, nil
	case Edit:
		i, err := nb.Find(op.Cell)
		if err != nil {
			return Decision{}, err
		}
		typ := ""
		if op.CellType != "" && op.CellType != nb.Cells[i].Type {
			typ = op.CellType
		}
		if err := nb.Edit(i, op.Source, op.CellType); err != nil {
			return Decision{}, err
		}
		d, err := finish(nb, nb.Cells[i].ID, i)
		if err != nil {
			return Decision{}, err
		}
		d.Drafts = draft(events.NotebookCellEdited{Path: c.Path, CellID: d.CellID, Source: op.Source, CellType: typ, By: c.By, SHA256: d.Hash, PrevSHA256: prev})
		return d, nil
	case Delete:
		i, err := nb.Find(op.Cell)
		if err != nil {
			return Decision{}, err
		}
		gone := nb.Cells[i]
		nb.Delete(i)
		d, err := finish(nb, gone.ID, -1)
		if err != nil {
			return Decision{}, err
		}
		d.Drafts = draft(events.NotebookCellDeleted{Path: c.Path, CellID: gone.ID, Index: i, Source: gone.Source, By: c.By, SHA256: d.Hash, PrevSHA256: prev})
		return d, nil
	case Move:
		i, err := nb.Find(op.Cell)
		if err != nil {
			return Decision{}, err
		}
		id := nb.Cells[i].ID
		if err := nb.Move(i, op.To); err != nil {
			return Decision{}, err
		}
		d, err := finish(nb, id, op.To)
		if err != nil {
			return Decision{}, err
		}
		d.Drafts = draft(events.NotebookCellMoved{Path: c.Path, CellID: id, From: i, To: op.To, By: c.By, SHA256: d.Hash, PrevSHA256: prev})
		return d, nil
	case WriteOutputs:
		i, err := nb.Find(op.CellID)
		if err != nil || nb.Cells[i].ID != op.CellID {
			return Decision{}, fmt.Errorf("%w: cell %s was deleted (or its id changed) after execution %s was queued; its outputs are kept in the log (get_execution)",
				nbfile.ErrUnknownCell, op.CellID, op.ExecutionID)
		}
		if err := nb.SetOutputs(i, op.Outputs, op.ExecutionCount); err != nil {
			return Decision{}, err
		}
		d, err := finish(nb, op.CellID, i)
		if err != nil {
			return Decision{}, err
		}
		count := 0
		if op.ExecutionCount != nil {
			count = *op.ExecutionCount
		}
		d.Drafts = draft(events.NotebookOutputsWritten{Path: c.Path, CellID: op.CellID, ExecutionID: op.ExecutionID, Outputs: len(op.Outputs),
			ExecutionCount: count, By: c.By, SHA256: d.Hash, PrevSHA256: prev})
		return d, nil
	}
	return Decision{}, fmt.Errorf("notebook: unknown operation %T", c.Op)
}

func finish(nb *nbfile.Notebook, cellID string, index int) (Decision, error) {
	b, err := nb.Marshal()
	if err != nil {
		// NB: Parse's fast scanner does not check escapes inside outputs;
		// Marshal does, so invalid JSON is refused here, never written.
		return Decision{}, &nbfile.FormatError{Reason: "holds JSON this server cannot write back (inside an output or metadata)", Err: err,
			Hint: "open and save the notebook in Jupyter to repair it, or clear its outputs"}
	}
	return Decision{Notebook: nb, Bytes: b, Hash: nbfile.Hash(b), CellID: cellID, Index: index}, nil
}

// decideWhole decides Replace, Rename and Remove: cur may be a file that is
// not a readable notebook (cur.Notebook nil).
func decideWhole(cur *nbfile.File, c Command, draft func(events.Payload) []events.Draft) (Decision, error) {
	if c.ExpectedHash != "" {
		if cur == nil {
			return Decision{}, &ConflictError{Path: c.Path, Expected: c.ExpectedHash, Current: "(no file)"}
		}
		if c.ExpectedHash != cur.Hash {
			return Decision{}, &ConflictError{Path: c.Path, Expected: c.ExpectedHash, Current: cur.Hash}
		}
	}
	switch op := c.Op.(type) {
	case Replace:
		if op.New && cur != nil {
			return Decision{}, fmt.Errorf("%w: %s is already there", ErrExists, c.Path)
		}
		nb, err := nbfile.Parse(op.Bytes)
		if err != nil {
			return Decision{}, err
		}
		if err := nb.StripTransient(); err != nil {
			return Decision{}, &nbfile.FormatError{Reason: "has cell metadata that is not a JSON object", Err: err}
		}
		d, err := finish(nb, "", -1)
		if err != nil {
			return Decision{}, err
		}
		p := events.NotebookReplaced{Path: c.Path, By: c.By, SHA256: d.Hash, Cells: len(nb.Cells), Restored: op.Restored}
		if cur != nil {
			p.PrevSHA256 = cur.Hash
			if cur.Hash != d.Hash {
				p.Kept = nbfile.ReplacedID(cur.Hash)
			}
		}
		d.Drafts = draft(p)
		return d, nil
	case Rename:
		if cur == nil {
			return Decision{}, fmt.Errorf("%w: %s does not exist", ErrNoFile, c.Path)
		}
		if op.To == c.Path {
			return Decision{}, fmt.Errorf("%s is already named so", c.Path)
		}
		return Decision{Hash: cur.Hash, Index: -1, Drafts: draft(events.NotebookRenamed{Path: c.Path, To: op.To, By: c.By, SHA256: cur.Hash})}, nil
	case Remove:
		if cur == nil {
			return Decision{}, fmt.Errorf("%w: %s does not exist", ErrNoFile, c.Path)
		}
		return Decision{Hash: cur.Hash, Index: -1, Drafts: draft(events.NotebookRemoved{Path: c.Path, By: c.By, SHA256: cur.Hash})}, nil
	}
	return Decision{}, fmt.Errorf("notebook: unknown operation %T", c.Op)
}
