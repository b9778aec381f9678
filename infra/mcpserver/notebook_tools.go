package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// NotebookBackend is what the notebook tools need from the core (the
// notebook actors, wired in cmd/mcp-jupyter). Every method is safe for
// concurrent use; errors meant for the agent say what was wrong and what to
// do, and the edge returns them as isError results.
type NotebookBackend interface {
	// ReadNotebook reads the notebook at path (relative to the notebook
	// root, or absolute inside it).
	ReadNotebook(ctx context.Context, path string) (NotebookRead, error)
	// ChangeNotebook makes one change and returns once it is durable (an
	// event in the log) and in place on disk, or refused (the file changed
	// since ExpectedHash, is locked, is not a notebook...) with the file
	// untouched.
	ChangeNotebook(ctx context.Context, c NotebookChange) (NotebookChanged, error)
	// CellsToRun returns the cells run_cell (one, by id or index) or run_all
	// (cell "": every code cell with source, in order) should submit, and the
	// kernel bound to the notebook.
	CellsToRun(ctx context.Context, path, cell string) ([]CellRun, error)
}

// NotebookRead is a notebook as read, with the kernel bound to it ("" if none).
type NotebookRead struct {
	Path   string // relative to the notebook root
	File   *notebook.File
	Kernel string
}

// NotebookChange is one change to a notebook. Kind is create, insert, edit,
// delete or move.
type NotebookChange struct {
	Kind         string
	Path         string
	ExpectedHash string
	By           string
	KernelSpec   string // create
	Index        int    // insert: where (-1 appends)
	Cell         string // edit, delete, move: a cell id or index
	CellID       string // insert: optional id for the new cell
	CellType     string // insert, edit
	Source       string // insert, edit
	To           int    // move
}

// NotebookChanged is the result of a change.
type NotebookChanged struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	CellID string `json:"cell_id,omitempty"`
	Index  int    `json:"index"`
	Cells  int    `json:"cells"`
}

// CellRun is a cell to submit to the notebook's kernel.
type CellRun struct {
	KernelID string
	Path     string // relative to the notebook root, recorded with the execution
	CellID   string
	Index    int
	Source   string
}

// notebookTools are the notebook tools over b.
type notebookTools struct {
	s *Server
	b NotebookBackend
}

// indexSpan is the range of a cell index or position.
var indexSpan = span{lo: 0, hi: maxIndex}

const (
	pathHelp   = "path of the .ipynb file, relative to the notebook root"
	hashHelp   = "the sha256 that read_notebook (or your last change) returned: the change is refused if the file changed since, so nobody's edits are overwritten"
	cellHelp   = "the cell's id (from read_notebook), or its 0-based index"
	maxReadMax = 500
)

// AddNotebookTools registers create_notebook, read_notebook, insert_cell,
// edit_cell, delete_cell, move_cell, run_cell and run_all over b.
func (s *Server) AddNotebookTools(b NotebookBackend) {
	t := &notebookTools{s: s, b: s.policyNotebookBackend(b)}
	maxT, defT := int(s.opts.MaxTimeout.Seconds()), int(s.opts.DefaultTimeout.Seconds())
	write := []mcp.ToolOption{mcp.WithReadOnlyHintAnnotation(false), mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)}
	tool := func(name, desc string, opts ...mcp.ToolOption) mcp.Tool {
		return mcp.NewTool(name, append([]mcp.ToolOption{mcp.WithDescription(desc)}, opts...)...)
	}

	s.mcp.AddTool(tool("create_notebook", "Create a new, empty Jupyter notebook (.ipynb, nbformat 4.5) for a kernelspec. "+
		"Refused if the file exists. Returns its sha256: pass it as expected_hash to the first insert_cell.",
		append([]mcp.ToolOption{mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
			mcp.WithString("kernelspec", mcp.DefaultString("python3"), mcp.Description("Kernelspec recorded in the notebook (see list_kernelspecs)."))}, write...)...), t.create)

	s.mcp.AddTool(tool("read_notebook", "Read a notebook's cells (ids, types, sources, execution counts) and their outputs, "+
		"summarised within the same budgets as execute. Returns the file's sha256: every edit must pass it as expected_hash. "+
		"Large notebooks are read a range at a time (start, count).",
		mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
		mcp.WithInteger("start", mcp.DefaultNumber(0), mcp.Min(0), mcp.Description("Index of the first cell to show.")),
		mcp.WithInteger("count", mcp.DefaultNumber(50), mcp.Min(1), mcp.Max(maxReadMax), mcp.Description("How many cells to show.")),
		mcp.WithBoolean("outputs", mcp.DefaultBool(true), mcp.Description("Show outputs (false: sources only).")),
		mcp.WithReadOnlyHintAnnotation(true), mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)), t.read)

	s.mcp.AddTool(tool("insert_cell", "Insert a cell into a notebook. Returns the new cell's id and the notebook's new sha256.",
		append([]mcp.ToolOption{mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
			mcp.WithString("expected_hash", mcp.Required(), mcp.Description(hashHelp)),
			mcp.WithString("source", mcp.Required(), mcp.Description("The cell's source.")),
			mcp.WithString("cell_type", mcp.DefaultString("code"), mcp.Enum("code", "markdown", "raw")),
			mcp.WithInteger("index", mcp.Min(0), mcp.Description("0-based position; leave out to append.")),
			mcp.WithString("cell_id", mcp.Description("Optional id for the new cell (1-64 letters, digits, - or _)."))}, write...)...), t.change("insert"))

	s.mcp.AddTool(tool("edit_cell", "Replace a cell's source (and optionally its type). Outputs stay until the cell runs again.",
		append([]mcp.ToolOption{mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
			mcp.WithString("expected_hash", mcp.Required(), mcp.Description(hashHelp)),
			mcp.WithString("cell", mcp.Required(), mcp.Description(cellHelp)),
			mcp.WithString("source", mcp.Required(), mcp.Description("The new source.")),
			mcp.WithString("cell_type", mcp.Enum("code", "markdown", "raw"), mcp.Description("Optional new type."))}, write...)...), t.change("edit"))

	s.mcp.AddTool(tool("delete_cell", "Delete a cell from a notebook (its source is kept in the event log).",
		mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
		mcp.WithString("expected_hash", mcp.Required(), mcp.Description(hashHelp)),
		mcp.WithString("cell", mcp.Required(), mcp.Description(cellHelp)),
		mcp.WithReadOnlyHintAnnotation(false), mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false), mcp.WithOpenWorldHintAnnotation(false)), t.change("delete"))

	s.mcp.AddTool(tool("move_cell", "Move a cell to another position.",
		append([]mcp.ToolOption{mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
			mcp.WithString("expected_hash", mcp.Required(), mcp.Description(hashHelp)),
			mcp.WithString("cell", mcp.Required(), mcp.Description(cellHelp)),
			mcp.WithInteger("to", mcp.Required(), mcp.Min(0), mcp.Description("The 0-based index the cell ends up at."))}, write...)...), t.change("move"))

	s.mcp.AddTool(tool("run_cell", "Run a code cell on the kernel bound to the notebook (start_kernel with notebook=path binds one). "+
		"Same handles as execute: if it does not finish within timeout_s the reply has the execution_id and it KEEPS RUNNING; "+
		"follow it with get_execution. When it finishes, its outputs and execution_count are written into the cell, "+
		"as Jupyter writes them. Writing outputs does not invalidate your expected_hash.",
		append([]mcp.ToolOption{mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
			mcp.WithString("cell", mcp.Required(), mcp.Description(cellHelp)),
			mcp.WithNumber("timeout_s", mcp.DefaultNumber(defT), mcp.Min(0), mcp.Max(maxT),
				mcp.Description("Seconds to wait for the result; it never stops the execution.")),
			mcp.WithString("execution_id", mcp.Description("Optional id you choose, to make the call idempotent."))}, write...)...), t.runCell)

	s.mcp.AddTool(tool("run_all", "Queue every code cell of the notebook, in order, on its bound kernel, and wait up to timeout_s "+
		"for them. Each cell's outputs are written into it when it finishes. Cells after a failing one still run.",
		append([]mcp.ToolOption{mcp.WithString("path", mcp.Required(), mcp.Description(pathHelp)),
			mcp.WithNumber("timeout_s", mcp.DefaultNumber(defT), mcp.Min(0), mcp.Max(maxT),
				mcp.Description("Seconds to wait for the last cell; it never stops the executions."))}, write...)...), t.runAll)
}

// by names the agent behind a call: the MCP client's name and session.
func by(ctx context.Context) string {
	if rc, ok := routedFrom(ctx); ok && rc.By != "" {
		return rc.By // the client is another node's (forward.go)
	}
	sess := server.ClientSessionFromContext(ctx)
	if sess == nil {
		return "mcp"
	}
	name := "mcp"
	if ci, ok := sess.(server.SessionWithClientInfo); ok {
		if n := ci.GetClientInfo().Name; n != "" {
			name = n
		}
	}
	if id := sess.SessionID(); id != "" {
		return name + "/" + id
	}
	return name
}

func (t *notebookTools) create(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	path := a.str("path", true, pathHelp)
	spec := a.str("kernelspec", false, "a kernelspec name")
	if a.err != nil {
		return failed("create notebook", a.err), nil
	}
	if spec == "" {
		spec = "python3"
	}
	r, err := t.b.ChangeNotebook(ctx, NotebookChange{Kind: "create", Path: path, KernelSpec: spec, By: by(ctx)})
	if err != nil {
		return failed("create notebook "+path, err), nil
	}
	res := structured(r)
	res.Content = append([]mcp.Content{mcp.NewTextContent(fmt.Sprintf("Created %s (kernelspec %s). sha256: %s — pass it as expected_hash to insert_cell. "+
		"Bind a kernel with start_kernel(notebook=%q) before run_cell.", r.Path, spec, r.SHA256, r.Path))}, res.Content...)
	return res, nil
}

func (t *notebookTools) change(kind string) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := newArgs(req)
		c := NotebookChange{Kind: kind, By: by(ctx), Index: -1}
		c.Path = a.str("path", true, pathHelp)
		c.ExpectedHash = a.str("expected_hash", true, hashHelp)
		switch kind {
		case "insert":
			c.Source = a.str("source", false, "the cell's source")
			if _, ok := a.m["source"]; !ok && a.err == nil {
				a.fail("missing required argument %q: the cell's source (may be empty)", "source")
			}
			c.CellType = a.str("cell_type", false, "code, markdown or raw")
			c.CellID = a.str("cell_id", false, "an id for the new cell")
			if _, ok := a.m["index"]; ok {
				c.Index = int(a.integer("index", 0, indexSpan))
			}
		case "edit":
			c.Cell = a.cell("cell", cellHelp)
			if _, ok := a.m["source"]; !ok && a.err == nil {
				a.fail("missing required argument %q: the new source (may be empty)", "source")
			}
			c.Source = a.str("source", false, "the new source")
			c.CellType = a.str("cell_type", false, "code, markdown or raw")
		case "delete":
			c.Cell = a.cell("cell", cellHelp)
		case "move":
			c.Cell = a.cell("cell", cellHelp)
			if _, ok := a.m["to"]; !ok && a.err == nil {
				a.fail("missing required argument %q: the 0-based index the cell ends up at", "to")
			}
			c.To = int(a.integer("to", 0, indexSpan))
		}
		if a.err != nil {
			return failed(kind+" cell", a.err), nil
		}
		r, err := t.b.ChangeNotebook(ctx, c)
		if err != nil {
			return failed(kind+" cell in "+c.Path, err), nil
		}
		var what string
		switch kind {
		case "insert":
			what = fmt.Sprintf("Inserted cell %s at index %d", r.CellID, r.Index)
		case "edit":
			what = fmt.Sprintf("Edited cell %s (index %d)", r.CellID, r.Index)
		case "delete":
			what = fmt.Sprintf("Deleted cell %s", r.CellID)
		case "move":
			what = fmt.Sprintf("Moved cell %s to index %d", r.CellID, r.Index)
		}
		res := structured(r)
		res.Content = append([]mcp.Content{mcp.NewTextContent(fmt.Sprintf("%s of %s (%d cells). New sha256: %s — pass it as expected_hash to your next change.",
			what, r.Path, r.Cells, r.SHA256))}, res.Content...)
		return res, nil
	}
}

// cellSummary is one row of read_notebook's structured content.
type cellSummary struct {
	Index          int    `json:"index"`
	ID             string `json:"id"`
	Type           string `json:"cell_type"`
	ExecutionCount *int   `json:"execution_count,omitempty"`
	Outputs        int    `json:"outputs"`
}

func (t *notebookTools) read(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	path := a.str("path", true, pathHelp)
	start := a.integer("start", 0, indexSpan)
	count := a.integer("count", 50, span{lo: 1, hi: maxReadMax, hint: "read the rest with a later start"})
	showOutputs := a.boolean("outputs", true)
	if a.err != nil {
		return failed("read notebook", a.err), nil
	}
	r, err := t.b.ReadNotebook(ctx, path)
	if err != nil {
		return failed("read notebook "+path, err), nil
	}
	return t.s.notebookReply(r, int(start), int(count), showOutputs), nil
}

// notebookReply renders cells [start, start+count) of a notebook: sources
// within the text budget, outputs through the execute renderer, and the
// whole within the execute reply's limits.
func (s *Server) notebookReply(r NotebookRead, start, count int, showOutputs bool) *mcp.CallToolResult {
	nb := r.File.Notebook
	n := len(nb.Cells)
	start = min(start, n)
	end := min(start+count, n)
	var h strings.Builder
	fmt.Fprintf(&h, "notebook: %s\nsha256: %s\ncells: %d (showing %d to %d)\n", r.Path, r.File.Hash, n, start, max(end-1, start))
	if k := nb.KernelName(); k != "" {
		fmt.Fprintf(&h, "kernelspec: %s\n", k)
	}
	if r.Kernel != "" {
		fmt.Fprintf(&h, "kernel_id: %s (bound: run_cell runs cells on it)\n", r.Kernel)
	} else {
		fmt.Fprintf(&h, "No kernel is bound: start_kernel(notebook=%q) before run_cell.\n", r.Path)
	}
	h.WriteString("Pass the sha256 as expected_hash to insert_cell, edit_cell, delete_cell and move_cell.")
	cs := []mcp.Content{mcp.NewTextContent(h.String())}
	textLeft, imageLeft := replyTextBudgets*s.render.TextBudget, replyImageBudgets*s.render.ImageBudget
	rows := make([]cellSummary, 0, end-start)
	for i := start; i < end; i++ {
		c := nb.Cells[i]
		rows = append(rows, cellSummary{Index: i, ID: c.ID, Type: c.Type, ExecutionCount: c.ExecutionCount, Outputs: len(c.Outputs)})
		head := fmt.Sprintf("── [%d] id=%s %s", i, c.ID, c.Type)
		if c.Type == notebook.TypeCode {
			if c.ExecutionCount != nil {
				head += fmt.Sprintf(" In[%d]", *c.ExecutionCount)
			} else {
				head += " (not run)"
			}
		}
		src, cut := Truncate(c.Source, s.render.TextBudget, "")
		if cut {
			src += fmt.Sprintf("\n(source cut: %d characters in all)", utf8.RuneCountInString(c.Source))
		}
		text := head + "\n" + src
		textLeft -= utf8.RuneCountInString(text)
		cs = append(cs, mcp.NewTextContent(text))
		if !showOutputs || len(c.Outputs) == 0 {
			continue
		}
		if textLeft <= 0 {
			cs = append(cs, mcp.NewTextContent(fmt.Sprintf("(%d outputs not shown: this reply is full; read_notebook with start=%d shows them)", len(c.Outputs), i)))
			continue
		}
		cfg := s.render
		cfg.TextBudget = min(cfg.TextBudget, textLeft)
		cfg.ImageBudget = min(cfg.ImageBudget, max(imageLeft, 0))
		before := len(cs)
		cs = append(cs, renderOutputs(outputsAsMessages(c.Outputs), cfg)...)
		for _, c := range cs[before:] {
			switch c := c.(type) {
			case mcp.TextContent:
				textLeft -= utf8.RuneCountInString(c.Text)
			case mcp.ImageContent:
				imageLeft -= len(c.Data) * 3 / 4
			}
		}
	}
	if end < n {
		cs = append(cs, mcp.NewTextContent(fmt.Sprintf("… %d more cells: read_notebook with start=%d.", n-end, end)))
	}
	sc := map[string]any{"path": r.Path, "sha256": r.File.Hash, "cells": n, "start": start, "end": end, "cell_list": rows}
	if r.Kernel != "" {
		sc["kernel_id"] = r.Kernel
	}
	return &mcp.CallToolResult{Content: cs, StructuredContent: sc}
}

// outputsAsMessages turns nbformat outputs back into IOPub-shaped messages
// so the execute renderer shows them (stream text may be a list of lines).
func outputsAsMessages(outs []json.RawMessage) []queue.Output {
	msgs := make([]queue.Output, 0, len(outs))
	for i, o := range outs {
		var head struct {
			OutputType string          `json:"output_type"`
			Name       string          `json:"name"`
			Text       json.RawMessage `json:"text"`
		}
		if err := json.Unmarshal(o, &head); err != nil {
			continue
		}
		content := o
		if head.OutputType == "stream" {
			content, _ = json.Marshal(map[string]string{"name": head.Name, "text": bundleString(head.Text)})
		}
		msgs = append(msgs, queue.Output{Seq: uint64(i + 1), MsgType: head.OutputType, Content: content})
	}
	return msgs
}

func (t *notebookTools) runCell(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	path := a.str("path", true, pathHelp)
	cell := a.cell("cell", cellHelp)
	timeout := a.duration("timeout_s", t.s.opts.DefaultTimeout, t.s.timeoutSpan())
	execID := a.str("execution_id", false, "an id of your choosing")
	if a.err != nil {
		return failed("run cell", a.err), nil
	}
	runs, err := t.b.CellsToRun(ctx, path, cell)
	if err != nil {
		return failed("run cell "+cell+" of "+path, err), nil
	}
	c := runs[0]
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	x, err := t.s.backend.Submit(sctx, SubmitRequest{KernelID: c.KernelID, Code: c.Source, ExecutionID: execID, Notebook: c.Path, CellID: c.CellID})
	cancel()
	if err != nil {
		return failed("run cell "+c.CellID+" on kernel "+c.KernelID, err), nil
	}
	f, err := t.s.follow(ctx, x.ID, 0, timeout, t.s.progressFor(ctx, req))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return failed(fmt.Sprintf("read execution %s (it was queued and runs on; call get_execution)", x.ID), err), nil
	}
	res := t.s.executionReply(f, 0)
	note := fmt.Sprintf("notebook: %s\ncell_id: %s (index %d)", c.Path, c.CellID, c.Index)
	if f.Execution.Status.Done() {
		note += "\nThe outputs are being written into the cell (read_notebook shows them); your expected_hash stays valid."
	} else {
		note += "\nThe outputs are written into the cell when the execution finishes."
	}
	res.Content = append([]mcp.Content{mcp.NewTextContent(note)}, res.Content...)
	if sc, ok := res.StructuredContent.(map[string]any); ok {
		sc["notebook"], sc["cell_id"] = c.Path, c.CellID
	}
	return res, nil
}

func (t *notebookTools) runAll(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	path := a.str("path", true, pathHelp)
	timeout := a.duration("timeout_s", t.s.opts.DefaultTimeout, t.s.timeoutSpan())
	if a.err != nil {
		return failed("run all", a.err), nil
	}
	runs, err := t.b.CellsToRun(ctx, path, "")
	if err != nil {
		return failed("run all cells of "+path, err), nil
	}
	type row struct {
		Index       int          `json:"index"`
		CellID      string       `json:"cell_id"`
		ExecutionID string       `json:"execution_id"`
		Status      queue.Status `json:"status"`
		Error       string       `json:"error,omitempty"`
	}
	rows := make([]row, 0, len(runs))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	defer cancel()
	for _, c := range runs {
		x, err := t.s.backend.Submit(sctx, SubmitRequest{KernelID: c.KernelID, Code: c.Source, Notebook: c.Path, CellID: c.CellID})
		if err != nil {
			return failed(fmt.Sprintf("run all: queue cell %s (%d of %d queued before it; they run)", c.CellID, len(rows), len(runs)), err), nil
		}
		rows = append(rows, row{Index: c.Index, CellID: c.CellID, ExecutionID: x.ID, Status: x.Status})
	}
	if len(rows) > 0 {
		if _, err := t.s.follow(ctx, rows[len(rows)-1].ExecutionID, 0, timeout, nil); err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "notebook: %s — %d code cells queued on kernel %s.\n", path, len(rows), firstKernel(runs))
	for i := range rows {
		v, err := t.s.backend.Execution(ctx, rows[i].ExecutionID, math.MaxUint64)
		if err == nil {
			rows[i].Status = v.Execution.Status
			if v.Execution.ErrorName != "" {
				rows[i].Error = v.Execution.ErrorName + ": " + StripANSI(v.Execution.ErrorValue)
			}
		}
		fmt.Fprintf(&b, "[%d] %s %s %s", rows[i].Index, rows[i].CellID, rows[i].ExecutionID, rows[i].Status)
		if rows[i].Error != "" {
			fmt.Fprintf(&b, " (%s)", rows[i].Error)
		}
		b.WriteString("\n")
	}
	b.WriteString("Outputs are written into each cell as it finishes: read_notebook shows them; get_execution follows one that is still running.")
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(b.String())},
		StructuredContent: map[string]any{"notebook": path, "cells": rows}}, nil
}

func firstKernel(runs []CellRun) string {
	if len(runs) == 0 {
		return "(none)"
	}
	return runs[0].KernelID
}
