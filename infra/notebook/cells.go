package notebook

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Find returns the index of the cell ref names: a cell id, or (when no cell
// has that id) a decimal index, 0-based. Ids win, so a notebook whose cells
// have numeric ids is still addressed by id.
func (nb *Notebook) Find(ref string) (int, error) {
	for i := range nb.Cells {
		if nb.Cells[i].ID == ref {
			return i, nil
		}
	}
	if n, err := strconv.Atoi(ref); err == nil {
		if n >= 0 && n < len(nb.Cells) {
			return n, nil
		}
		return 0, fmt.Errorf("%w: index %d is out of range, the notebook has %d cells (0 to %d); read_notebook lists them",
			ErrUnknownCell, n, len(nb.Cells), len(nb.Cells)-1)
	}
	return 0, fmt.Errorf("%w: no cell has id %q; read_notebook lists the cell ids (or give a 0-based index)", ErrUnknownCell, ref)
}

// Insert puts c at index (len(Cells) appends) with a fresh id when c has
// none, and returns the id.
func (nb *Notebook) Insert(index int, c Cell) (string, error) {
	if index < 0 || index > len(nb.Cells) {
		return "", fmt.Errorf("%w: index %d is out of range; give 0 to %d (%d appends)", ErrBadCell, index, len(nb.Cells), len(nb.Cells))
	}
	switch c.Type {
	case "":
		c.Type = TypeCode
	case TypeCode, TypeMarkdown, TypeRaw:
	default:
		return "", fmt.Errorf("%w: cell_type %q; use code, markdown or raw", ErrBadCell, c.Type)
	}
	seen := make(map[string]struct{}, len(nb.Cells))
	for _, x := range nb.Cells {
		seen[x.ID] = struct{}{}
	}
	if c.ID == "" {
		c.ID = newCellID(seen)
	} else if !ValidCellID(c.ID) {
		return "", fmt.Errorf("%w: id %q; use 1-64 letters, digits, '-' or '_', or leave it out", ErrBadCell, c.ID)
	} else if _, dup := seen[c.ID]; dup {
		return "", fmt.Errorf("%w: a cell with id %q already exists; choose another id or leave it out", ErrBadCell, c.ID)
	}
	if c.Type != TypeCode {
		c.Outputs, c.ExecutionCount = nil, nil
	}
	nb.Cells = append(nb.Cells, Cell{})
	copy(nb.Cells[index+1:], nb.Cells[index:])
	nb.Cells[index] = c
	return c.ID, nil
}

// Edit replaces cell i's source and, when cellType is not "", its type.
// A code cell whose source changes keeps its outputs, as Jupyter does until
// the cell is run again.
func (nb *Notebook) Edit(i int, source, cellType string) error {
	c := nb.Cells[i]
	switch cellType {
	case "", c.Type:
	case TypeCode:
		c.Type, c.Outputs, c.ExecutionCount, c.Attachments = TypeCode, nil, nil, nil
	case TypeMarkdown, TypeRaw:
		c.Type, c.Outputs, c.ExecutionCount = cellType, nil, nil
	default:
		return fmt.Errorf("%w: cell_type %q; use code, markdown or raw", ErrBadCell, cellType)
	}
	c.Source = source
	nb.Cells[i] = c
	return nil
}

// Delete removes cell i.
func (nb *Notebook) Delete(i int) {
	nb.Cells = append(nb.Cells[:i], nb.Cells[i+1:]...)
}

// Move puts cell from at index to (counted after the removal).
func (nb *Notebook) Move(from, to int) error {
	if to < 0 || to >= len(nb.Cells) {
		return fmt.Errorf("%w: target index %d is out of range; give 0 to %d", ErrBadCell, to, len(nb.Cells)-1)
	}
	c := nb.Cells[from]
	nb.Delete(from)
	nb.Cells = append(nb.Cells, Cell{})
	copy(nb.Cells[to+1:], nb.Cells[to:])
	nb.Cells[to] = c
	return nil
}

// SetOutputs replaces cell i's outputs and execution count (code cells).
func (nb *Notebook) SetOutputs(i int, outs []json.RawMessage, count *int) error {
	if nb.Cells[i].Type != TypeCode {
		return fmt.Errorf("%w: cell %s is a %s cell and has no outputs", ErrBadCell, nb.Cells[i].ID, nb.Cells[i].Type)
	}
	nb.Cells[i].Outputs, nb.Cells[i].ExecutionCount = outs, count
	return nil
}
