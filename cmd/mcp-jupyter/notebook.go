package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	nbactor "github.com/mcp-jupyter/mcp-jupyter/actors/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// notebooks is the notebook part of the core: the per-notebook actors, the
// writer of cell outputs, and the MCP backend over them.
type notebooks struct {
	mgr      *nbactor.Manager
	sys      *system.System
	launcher *jupyter.Launcher
	cancel   context.CancelFunc
	done     chan error
	// closed keeps close's result: a core closed twice (a test that
	// stops a node, then its cleanup) must not wait for done again.
	closeOnce sync.Once
	closeErr  error
	space     func() error // refuses changes while the disk is full
	// access hides kernels the caller may not read (a notebook's bound
	// kernel included).
	access access
}

// openNotebooks starts the notebook actors on the root and the output
// writer following l.
func openNotebooks(root string, l *eventlog.Log, sys *system.System, launcher *jupyter.Launcher, c *core) (*notebooks, error) {
	r, err := nbfile.NewRoot(root)
	if err != nil {
		return nil, fmt.Errorf("--notebook-root: %w", err)
	}
	n := &notebooks{sys: sys, launcher: launcher, done: make(chan error, 1), space: l.CheckSpace,
		access: access{kernels: c.kernels},
		mgr:    nbactor.NewManager(nbactor.Config{Root: r, Log: l, Logger: c.logger, Actors: sys.Actors()})}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	w := &nbactor.OutputWriter{Log: l, Manager: n.mgr, Logger: c.logger.With("component", "notebook"), Node: c.cfg.Cluster.NodeName()}
	go func() { n.done <- w.Run(ctx) }()
	return n, nil
}

// close stops the output writer, then the actors.
func (n *notebooks) close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.closeNow(ctx) })
	return n.closeErr
}

func (n *notebooks) closeNow(ctx context.Context) error {
	n.cancel()
	err := <-n.done
	if errors.Is(err, context.Canceled) || errors.Is(err, eventlog.ErrClosed) {
		err = nil
	}
	if cerr := n.mgr.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

var _ mcpserver.NotebookBackend = (*notebooks)(nil)

// resolve confines path to the caller's notebook root (notebookroot.go)
// and returns the path the notebook actors know it by.
func (n *notebooks) resolve(ctx context.Context, path string) (string, error) {
	r, err := rootFor(ctx, n.mgr.Root())
	if err != nil {
		return "", err
	}
	return r.resolve(path)
}

// kernelFor finds the kernel bound to the notebook that the caller may
// read: start_kernel records the path as the agent gave it, so try the
// forms an agent may have used.
func (n *notebooks) kernelFor(ctx context.Context, rel string) string {
	p, err := auth.Caller(ctx)
	if err != nil {
		return ""
	}
	abs := filepath.Join(n.mgr.Root().Dir(), filepath.FromSlash(rel))
	for _, path := range []string{rel, "./" + rel, abs} {
		if id, ok := n.sys.ResolveNotebook(path); ok && n.access.canRead(p, id) {
			return id
		}
	}
	return ""
}

func (n *notebooks) ReadNotebook(ctx context.Context, path string) (mcpserver.NotebookRead, error) {
	r, err := rootFor(ctx, n.mgr.Root())
	if err != nil {
		return mcpserver.NotebookRead{}, err
	}
	whole, err := r.resolve(path)
	if err != nil {
		return mcpserver.NotebookRead{}, err
	}
	f, rel, err := n.mgr.Read(whole)
	if err != nil {
		return mcpserver.NotebookRead{}, err
	}
	return mcpserver.NotebookRead{Path: r.shown(rel), File: f, Kernel: n.kernelFor(ctx, rel)}, nil
}

func (n *notebooks) ChangeNotebook(ctx context.Context, c mcpserver.NotebookChange) (mcpserver.NotebookChanged, error) {
	if err := n.space(); err != nil {
		return mcpserver.NotebookChanged{}, err
	}
	principal, err := auth.Caller(ctx)
	if err != nil {
		return mcpserver.NotebookChanged{}, err
	}
	r, err := rootFor(ctx, n.mgr.Root())
	if err != nil {
		return mcpserver.NotebookChanged{}, err
	}
	whole, err := r.resolve(c.Path)
	if err != nil {
		return mcpserver.NotebookChanged{}, err
	}
	cmd := nbactor.Command{Path: whole, ExpectedHash: c.ExpectedHash, By: c.By, Principal: principal.Name}
	switch c.Kind {
	case "create":
		op := nbactor.Create{KernelSpec: c.KernelSpec}
		if specs, err := n.launcher.Specs(); err == nil {
			for _, s := range specs.Specs {
				if s.Name == c.KernelSpec {
					op.DisplayName, op.Language = s.DisplayName, s.Language
				}
			}
		}
		if op.Language == "" {
			return mcpserver.NotebookChanged{}, fmt.Errorf("no kernelspec %q is installed: list_kernelspecs shows the names", c.KernelSpec)
		}
		cmd.Op = op
	case "insert":
		cmd.Op = nbactor.Insert{Index: c.Index, CellType: c.CellType, Source: c.Source, CellID: c.CellID}
	case "edit":
		cmd.Op = nbactor.Edit{Cell: c.Cell, Source: c.Source, CellType: c.CellType}
	case "delete":
		cmd.Op = nbactor.Delete{Cell: c.Cell}
	case "move":
		cmd.Op = nbactor.Move{Cell: c.Cell, To: c.To}
	default:
		return mcpserver.NotebookChanged{}, fmt.Errorf("unknown notebook change %q", c.Kind)
	}
	done, err := n.mgr.Do(ctx, cmd)
	if err != nil {
		return mcpserver.NotebookChanged{}, err
	}
	_, rel, _ := n.mgr.Resolve(whole)
	return mcpserver.NotebookChanged{Path: r.shown(rel), SHA256: done.Hash, CellID: done.CellID, Index: done.Index, Cells: len(done.Notebook.Cells)}, nil
}

func (n *notebooks) CellsToRun(ctx context.Context, path, cell string) ([]mcpserver.CellRun, error) {
	r, err := rootFor(ctx, n.mgr.Root())
	if err != nil {
		return nil, err
	}
	whole, err := r.resolve(path)
	if err != nil {
		return nil, err
	}
	f, rel, err := n.mgr.Read(whole)
	if err != nil {
		return nil, err
	}
	k := n.kernelFor(ctx, rel)
	if k == "" {
		return nil, fmt.Errorf("no kernel is bound to %s: call start_kernel with notebook=%q (kernelspec %q), then run again",
			r.shown(rel), r.shown(rel), f.Notebook.KernelName())
	}
	nb := f.Notebook
	if cell != "" {
		i, err := nb.Find(cell)
		if err != nil {
			return nil, err
		}
		if nb.Cells[i].Type != nbfile.TypeCode {
			return nil, fmt.Errorf("cell %s is a %s cell; only code cells run (edit_cell with cell_type=code to change it)", nb.Cells[i].ID, nb.Cells[i].Type)
		}
		return []mcpserver.CellRun{{KernelID: k, Path: rel, CellID: nb.Cells[i].ID, Index: i, Source: nb.Cells[i].Source}}, nil
	}
	var runs []mcpserver.CellRun
	for i, c := range nb.Cells {
		if c.Type == nbfile.TypeCode && c.Source != "" {
			runs = append(runs, mcpserver.CellRun{KernelID: k, Path: rel, CellID: c.ID, Index: i, Source: c.Source})
		}
	}
	return runs, nil
}
