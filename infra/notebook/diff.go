package notebook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Diff summarises how b differs from a, cell by cell (by id): cells added,
// removed, whose source or outputs changed, and whether the order changed.
type Diff struct {
	Added, Removed, SourceChanged, OutputsChanged []string
	Reordered                                     bool
	MetadataChanged                               bool
}

// Empty reports whether no cell-level difference was found.
func (d Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.SourceChanged)+len(d.OutputsChanged) == 0 && !d.Reordered && !d.MetadataChanged
}

// String is the summary an agent reads.
func (d Diff) String() string {
	if d.Empty() {
		return "no cell changed (only formatting or whitespace)"
	}
	var parts []string
	add := func(what string, ids []string) {
		if len(ids) > 0 {
			const show = 10
			list := ids
			more := ""
			if len(list) > show {
				list, more = list[:show], fmt.Sprintf(" and %d more", len(ids)-show)
			}
			parts = append(parts, fmt.Sprintf("%s: %s%s", what, strings.Join(list, ", "), more))
		}
	}
	add("cells added", d.Added)
	add("cells removed", d.Removed)
	add("source changed", d.SourceChanged)
	add("outputs changed", d.OutputsChanged)
	if d.Reordered {
		parts = append(parts, "cells reordered")
	}
	if d.MetadataChanged {
		parts = append(parts, "notebook or cell metadata changed")
	}
	return strings.Join(parts, "; ")
}

// Compare returns the Diff from a to b.
func Compare(a, b *Notebook) Diff {
	var d Diff
	ai := make(map[string]int, len(a.Cells))
	for i, c := range a.Cells {
		ai[c.ID] = i
	}
	bi := make(map[string]int, len(b.Cells))
	var common []string
	for i, c := range b.Cells {
		bi[c.ID] = i
		j, ok := ai[c.ID]
		if !ok {
			d.Added = append(d.Added, c.ID)
			continue
		}
		common = append(common, c.ID)
		old := a.Cells[j]
		if old.Source != c.Source || old.Type != c.Type {
			d.SourceChanged = append(d.SourceChanged, c.ID)
		}
		if !sameRaw(old.Outputs, c.Outputs) || !sameCount(old.ExecutionCount, c.ExecutionCount) {
			d.OutputsChanged = append(d.OutputsChanged, c.ID)
		}
		if !bytes.Equal(bytes.TrimSpace(old.Metadata), bytes.TrimSpace(c.Metadata)) {
			d.MetadataChanged = true
		}
	}
	var prev []string
	for _, c := range a.Cells {
		if _, ok := bi[c.ID]; !ok {
			d.Removed = append(d.Removed, c.ID)
		} else {
			prev = append(prev, c.ID)
		}
	}
	for i := range common {
		if common[i] != prev[i] {
			d.Reordered = true
			break
		}
	}
	if len(a.Metadata) != len(b.Metadata) {
		d.MetadataChanged = true
	}
	for k, v := range a.Metadata {
		if !bytes.Equal(v, b.Metadata[k]) {
			d.MetadataChanged = true
		}
	}
	return d
}

func sameRaw(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func sameCount(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}
