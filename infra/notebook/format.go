package notebook

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Cell types nbformat 4 knows.
const (
	TypeCode     = "code"
	TypeMarkdown = "markdown"
	TypeRaw      = "raw"
)

var (
	// ErrFormat marks a file that is not a readable nbformat 4 notebook.
	ErrFormat = errors.New("notebook: not an nbformat 4 notebook")
	// ErrUnknownCell: no cell with that id or index.
	ErrUnknownCell = errors.New("notebook: unknown cell")
	// ErrBadCell: a cell argument is not acceptable (type, index, id).
	ErrBadCell = errors.New("notebook: bad cell")
)

// FormatError says why a file is not a notebook this package reads.
type FormatError struct {
	Path   string
	Reason string
	Hint   string
	Err    error
}

func (e *FormatError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

func (e *FormatError) Unwrap() []error { return []error{ErrFormat, e.Err} }

// Notebook is an nbformat 4 notebook. Metadata is kept as read; a cell's
// metadata and outputs too, so what this package does not touch round-trips.
type Notebook struct {
	Metadata map[string]json.RawMessage
	Minor    int // nbformat_minor as read; Marshal writes at least 5
	Cells    []Cell
}

// Cell is one nbformat cell.
type Cell struct {
	ID       string
	Type     string // code, markdown or raw
	Source   string
	Metadata json.RawMessage // a JSON object; nil is written as {}
	// ExecutionCount and Outputs belong to code cells only.
	ExecutionCount *int
	Outputs        []json.RawMessage
	// Attachments belong to markdown and raw cells (nil: none).
	Attachments json.RawMessage
}

type fileNB struct {
	Cells    []fileCell                 `json:"cells"`
	Metadata map[string]json.RawMessage `json:"metadata"`
	Format   *int                       `json:"nbformat"`
	Minor    *int                       `json:"nbformat_minor"`
}

type fileCell struct {
	ID             *string           `json:"id,omitempty"`
	CellType       string            `json:"cell_type"`
	Source         json.RawMessage   `json:"source"`
	Metadata       json.RawMessage   `json:"metadata"`
	ExecutionCount *int              `json:"execution_count,omitempty"`
	Outputs        []json.RawMessage `json:"outputs,omitempty"`
	Attachments    json.RawMessage   `json:"attachments,omitempty"`
}

// Hash is the sha256 of a file's bytes, in lowercase hex: the version an
// agent read and must name when it edits.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Parse reads an .ipynb file's bytes. Cells without ids (nbformat < 4.5)
// get fresh ones, as nbformat's upgrade gives them.
func Parse(b []byte) (*Notebook, error) {
	fp, err := scanFile(b)
	if err != nil {
		// NB: the slow path gives the exact error (and accepts what the
		// fast scanner is too strict for).
		fp = &fileNB{}
		err = json.Unmarshal(b, fp)
	}
	if f := fp; err != nil || f == nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, &FormatError{Reason: fmt.Sprintf("not JSON (at byte %d)", se.Offset), Err: err,
				Hint: "the file is not a notebook or is damaged; open it in a text editor, or choose another path"}
		case errors.As(err, &te):
			return nil, &FormatError{Reason: fmt.Sprintf("not an nbformat notebook (field %q has the wrong type)", te.Field), Err: err,
				Hint: "an .ipynb file is a JSON object with cells, metadata, nbformat and nbformat_minor"}
		}
		return nil, &FormatError{Reason: "not a notebook", Err: err, Hint: "an .ipynb file is a JSON object"}
	}
	f := *fp
	if f.Format == nil {
		return nil, &FormatError{Reason: "not an nbformat notebook (no \"nbformat\" field)",
			Hint: "an .ipynb file is a JSON object with cells, metadata, nbformat and nbformat_minor"}
	}
	if *f.Format != 4 {
		return nil, &FormatError{Reason: fmt.Sprintf("nbformat %d is not supported, only 4", *f.Format),
			Hint: "convert it with `jupyter nbconvert --to notebook --nbformat 4`"}
	}
	nb := &Notebook{Metadata: f.Metadata, Cells: make([]Cell, 0, len(f.Cells))}
	if f.Minor != nil {
		nb.Minor = *f.Minor
	}
	if nb.Metadata == nil {
		nb.Metadata = map[string]json.RawMessage{}
	}
	seen := make(map[string]struct{}, len(f.Cells))
	for i, fc := range f.Cells {
		c := Cell{Type: fc.CellType, Metadata: fc.Metadata, ExecutionCount: fc.ExecutionCount, Outputs: fc.Outputs, Attachments: fc.Attachments}
		switch c.Type {
		case TypeCode, TypeMarkdown, TypeRaw:
		default:
			return nil, &FormatError{Reason: fmt.Sprintf("cell %d has cell_type %q", i, c.Type),
				Hint: "nbformat 4 cells are code, markdown or raw; fix the cell in Jupyter"}
		}
		src, err := multiline(fc.Source)
		if err != nil {
			return nil, &FormatError{Reason: fmt.Sprintf("cell %d source is not a string or a list of strings", i), Err: err,
				Hint: "fix the cell in Jupyter"}
		}
		c.Source = src
		if fc.ID != nil {
			c.ID = *fc.ID
			if !ValidCellID(c.ID) {
				return nil, &FormatError{Reason: fmt.Sprintf("cell %d has an invalid id %q", i, c.ID),
					Hint: "nbformat 4.5 ids are 1-64 letters, digits, '-' or '_'; save the notebook again in Jupyter to repair it"}
			}
			if _, dup := seen[c.ID]; dup {
				return nil, &FormatError{Reason: fmt.Sprintf("cell %d repeats the id %q", i, c.ID),
					Hint: "cell ids must be unique; save the notebook again in Jupyter to repair it"}
			}
			seen[c.ID] = struct{}{}
		}
		nb.Cells = append(nb.Cells, c)
	}
	for i := range nb.Cells {
		if nb.Cells[i].ID == "" {
			nb.Cells[i].ID = newCellID(seen)
		}
	}
	return nb, nil
}

func multiline(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err != nil {
		return "", err
	}
	return strings.Join(lines, ""), nil
}

// ValidCellID reports whether id is a valid nbformat 4.5 cell id.
func ValidCellID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newCellID returns an id not in seen (8 hex digits, as nbformat makes
// them) and adds it.
func newCellID(seen map[string]struct{}) string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:]) // never fails on Linux
		id := hex.EncodeToString(b[:])
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			return id
		}
	}
}

// New returns an empty nbformat 4.5 notebook for a kernelspec.
func New(kernelName, displayName, language string) *Notebook {
	if displayName == "" {
		displayName = kernelName
	}
	ks := map[string]string{"name": kernelName, "display_name": displayName}
	if language != "" {
		ks["language"] = language
	}
	md := map[string]json.RawMessage{"kernelspec": mustJSON(ks)}
	if language != "" {
		md["language_info"] = mustJSON(map[string]string{"name": language})
	}
	return &Notebook{Metadata: md, Minor: 5}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps of strings
	}
	return b
}

// KernelName returns metadata.kernelspec.name, or "".
func (nb *Notebook) KernelName() string {
	var ks struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(nb.Metadata["kernelspec"], &ks)
	return ks.Name
}

// Marshal renders the notebook as nbformat.write does (nbformat 4.5).
func (nb *Notebook) Marshal() ([]byte, error) {
	type outCell struct {
		Attachments    json.RawMessage    `json:"attachments,omitempty"`
		CellType       string             `json:"cell_type"`
		ExecutionCount *int               `json:"execution_count"`
		ID             string             `json:"id"`
		Metadata       json.RawMessage    `json:"metadata"`
		Outputs        *[]json.RawMessage `json:"outputs,omitempty"`
		Source         []string           `json:"source"`
	}
	type outNB struct {
		Cells    []any                      `json:"cells"`
		Metadata map[string]json.RawMessage `json:"metadata"`
		Format   int                        `json:"nbformat"`
		Minor    int                        `json:"nbformat_minor"`
	}
	type textCell struct { // markdown and raw: no execution_count, no outputs
		Attachments json.RawMessage `json:"attachments,omitempty"`
		CellType    string          `json:"cell_type"`
		ID          string          `json:"id"`
		Metadata    json.RawMessage `json:"metadata"`
		Source      []string        `json:"source"`
	}
	out := outNB{Cells: make([]any, 0, len(nb.Cells)), Metadata: nb.Metadata, Format: 4, Minor: max(nb.Minor, 5)}
	if out.Metadata == nil {
		out.Metadata = map[string]json.RawMessage{}
	}
	for _, c := range nb.Cells {
		md := c.Metadata
		if len(bytes.TrimSpace(md)) == 0 || string(bytes.TrimSpace(md)) == "null" {
			md = json.RawMessage("{}")
		}
		if c.Type == TypeCode {
			outs := c.Outputs
			if outs == nil {
				outs = []json.RawMessage{}
			}
			out.Cells = append(out.Cells, outCell{CellType: c.Type, ExecutionCount: c.ExecutionCount, ID: c.ID,
				Metadata: md, Outputs: &outs, Source: SplitLines(c.Source)})
			continue
		}
		out.Cells = append(out.Cells, textCell{Attachments: c.Attachments, CellType: c.Type, ID: c.ID, Metadata: md, Source: SplitLines(c.Source)})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // NB: Python's json.dumps(ensure_ascii=False) leaves <, >, & alone
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode notebook: %w", err)
	}
	return buf.Bytes(), nil // Encode ends with the newline nbformat writes
}

// SplitLines splits s after each newline, as Python's str.splitlines(True)
// does for "\n" (the form nbformat stores multi-line strings in).
func SplitLines(s string) []string {
	lines := make([]string, 0, strings.Count(s, "\n")+1)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// Clone returns a copy whose cell list can be changed without touching nb.
// Cell contents (raw JSON) are shared: they are never mutated in place.
func (nb *Notebook) Clone() *Notebook {
	c := *nb
	c.Cells = append([]Cell(nil), nb.Cells...)
	c.Metadata = make(map[string]json.RawMessage, len(nb.Metadata))
	for k, v := range nb.Metadata {
		c.Metadata[k] = v
	}
	return &c
}
