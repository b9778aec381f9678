package events

// Notebook edits, on stream notebook/<id>.
// NB: type strings must not change.
const (
	TypeNotebookCreated        = "NotebookCreated"
	TypeNotebookCellInserted   = "NotebookCellInserted"
	TypeNotebookCellEdited     = "NotebookCellEdited"
	TypeNotebookCellDeleted    = "NotebookCellDeleted"
	TypeNotebookCellMoved      = "NotebookCellMoved"
	TypeNotebookOutputsWritten = "NotebookOutputsWritten"
	TypeNotebookReplaced       = "NotebookReplaced"
	TypeNotebookRenamed        = "NotebookRenamed"
	TypeNotebookRemoved        = "NotebookRemoved"
)

// Every notebook event names the notebook by its path relative to the
// notebook root, who made the change (By: the MCP client and session, or
// "mcp-jupyter" for outputs the server wrote) and the sha256 of the file
// after the change; PrevSHA256 (optional, added later) is the hash of the
// file the change was made on, so the history reads as a chain of versions.
// The stream id is derived from the path (see actors/notebook.StreamID).

// NotebookCreated: a new .ipynb file was written.
type NotebookCreated struct {
	Path       string `json:"path"`
	KernelSpec string `json:"kernelspec"`
	By         string `json:"by,omitempty"`
	SHA256     string `json:"sha256"`
}

// NotebookCellInserted: a cell was added at Index.
type NotebookCellInserted struct {
	Path     string `json:"path"`
	CellID   string `json:"cell_id"`
	CellType string `json:"cell_type"`
	Index    int    `json:"index"`
	Source   string `json:"source"`
	By       string `json:"by,omitempty"`
	SHA256   string `json:"sha256"` // of the file after the change
	// PrevSHA256 is the hash of the file the change was made on.
	PrevSHA256 string `json:"prev_sha256,omitempty"`
}

// NotebookCellEdited: a cell's source changed.
type NotebookCellEdited struct {
	Path   string `json:"path"`
	CellID string `json:"cell_id"`
	Source string `json:"source"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
	// CellType is set when the edit changed the cell's type.
	CellType   string `json:"cell_type,omitempty"`
	PrevSHA256 string `json:"prev_sha256,omitempty"`
}

// NotebookCellDeleted: a cell was removed.
type NotebookCellDeleted struct {
	Path   string `json:"path"`
	CellID string `json:"cell_id"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
	// Index is where the cell was; Source what it held (so the history can
	// show, and a person can restore, what was deleted).
	Index      int    `json:"index,omitempty"`
	Source     string `json:"source,omitempty"`
	PrevSHA256 string `json:"prev_sha256,omitempty"`
}

// NotebookCellMoved: a cell changed position.
type NotebookCellMoved struct {
	Path       string `json:"path"`
	CellID     string `json:"cell_id"`
	From       int    `json:"from"`
	To         int    `json:"to"`
	By         string `json:"by,omitempty"`
	SHA256     string `json:"sha256"`
	PrevSHA256 string `json:"prev_sha256,omitempty"`
}

// NotebookOutputsWritten: an execution's outputs were written into a cell.
type NotebookOutputsWritten struct {
	Path        string `json:"path"`
	CellID      string `json:"cell_id"`
	ExecutionID string `json:"execution_id"`
	Outputs     int    `json:"outputs"`
	SHA256      string `json:"sha256"`
	// Optional, added later: the execution_count written into the cell,
	// who wrote it, and the hash of the file the outputs were written on.
	ExecutionCount int    `json:"execution_count,omitempty"`
	By             string `json:"by,omitempty"`
	PrevSHA256     string `json:"prev_sha256,omitempty"`
}

// NotebookReplaced: the whole notebook was written at once — a frontend's
// save (PUT /api/contents), a restore of a checkpoint, or a new notebook
// uploaded whole (PrevSHA256 empty).
type NotebookReplaced struct {
	Path       string `json:"path"`
	By         string `json:"by,omitempty"`
	SHA256     string `json:"sha256"`
	PrevSHA256 string `json:"prev_sha256,omitempty"`
	Cells      int    `json:"cells"`
	// Kept names the checkpoint (GET /api/contents/<path>/checkpoints) that
	// holds the version this save replaced, so a save never loses an
	// agent's or another person's version silently.
	Kept string `json:"kept,omitempty"`
	// Restored names the checkpoint the new version came from, when it was
	// a restore.
	Restored string `json:"restored,omitempty"`
}

// NotebookRenamed: the notebook moved to To (relative to the notebook
// root). Recorded on the stream of the old path; the new path's stream
// starts with the next change made there.
type NotebookRenamed struct {
	Path   string `json:"path"`
	To     string `json:"to"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
}

// NotebookRemoved: the notebook file was deleted (DELETE /api/contents);
// SHA256 is the version that was removed.
type NotebookRemoved struct {
	Path   string `json:"path"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
}

func (NotebookReplaced) EventType() string { return TypeNotebookReplaced }
func (NotebookRenamed) EventType() string  { return TypeNotebookRenamed }
func (NotebookRemoved) EventType() string  { return TypeNotebookRemoved }

func (NotebookCreated) EventType() string        { return TypeNotebookCreated }
func (NotebookCellInserted) EventType() string   { return TypeNotebookCellInserted }
func (NotebookCellEdited) EventType() string     { return TypeNotebookCellEdited }
func (NotebookCellDeleted) EventType() string    { return TypeNotebookCellDeleted }
func (NotebookCellMoved) EventType() string      { return TypeNotebookCellMoved }
func (NotebookOutputsWritten) EventType() string { return TypeNotebookOutputsWritten }
