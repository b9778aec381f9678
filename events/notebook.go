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
}

// NotebookCellEdited: a cell's source changed.
type NotebookCellEdited struct {
	Path   string `json:"path"`
	CellID string `json:"cell_id"`
	Source string `json:"source"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
}

// NotebookCellDeleted: a cell was removed.
type NotebookCellDeleted struct {
	Path   string `json:"path"`
	CellID string `json:"cell_id"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
}

// NotebookCellMoved: a cell changed position.
type NotebookCellMoved struct {
	Path   string `json:"path"`
	CellID string `json:"cell_id"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	By     string `json:"by,omitempty"`
	SHA256 string `json:"sha256"`
}

// NotebookOutputsWritten: an execution's outputs were written into a cell.
type NotebookOutputsWritten struct {
	Path        string `json:"path"`
	CellID      string `json:"cell_id"`
	ExecutionID string `json:"execution_id"`
	Outputs     int    `json:"outputs"`
	SHA256      string `json:"sha256"`
}

func (NotebookCreated) EventType() string        { return TypeNotebookCreated }
func (NotebookCellInserted) EventType() string   { return TypeNotebookCellInserted }
func (NotebookCellEdited) EventType() string     { return TypeNotebookCellEdited }
func (NotebookCellDeleted) EventType() string    { return TypeNotebookCellDeleted }
func (NotebookCellMoved) EventType() string      { return TypeNotebookCellMoved }
func (NotebookOutputsWritten) EventType() string { return TypeNotebookOutputsWritten }
