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

func (NotebookCreated) EventType() string        { return TypeNotebookCreated }
func (NotebookCellInserted) EventType() string   { return TypeNotebookCellInserted }
func (NotebookCellEdited) EventType() string     { return TypeNotebookCellEdited }
func (NotebookCellDeleted) EventType() string    { return TypeNotebookCellDeleted }
func (NotebookCellMoved) EventType() string      { return TypeNotebookCellMoved }
func (NotebookOutputsWritten) EventType() string { return TypeNotebookOutputsWritten }
