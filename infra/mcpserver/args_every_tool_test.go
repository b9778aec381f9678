package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// validCalls is, for every tool, a call giving every argument it takes
// under its documented name, with values that reach the backend.
var validCalls = map[string]map[string]any{
	"list_kernelspecs":  {},
	"list_checkpoints":  {},
	"start_kernel":      {"kernelspec": "python3", "notebook": "nb2.ipynb", "label": "L"},
	"list_kernels":      {"label": "L"},
	"interrupt_kernel":  {"kernel": "k1"},
	"restart_kernel":    {"kernel": "k1"},
	"shutdown_kernel":   {"kernel": "k1"},
	"share_kernel":      {"kernel": "k1", "principal": "bob", "access": "read"},
	"execute":           {"kernel": "k1", "code": "print(1)", "timeout_s": 0.01, "execution_id": "e1", "allow_stdin": true},
	"get_execution":     {"execution_id": "x0", "wait_s": 0, "since": 0},
	"list_executions":   {"kernel": "k1", "status": "input_required"},
	"cancel_execution":  {"execution_id": "q0"},
	"send_input":        {"execution_id": "x0", "value": "v", "wait_s": 0},
	"list_assets":       {"kernel": "k1", "execution_id": "x0"},
	"save_environment":  {"kernel": "k1", "name": "cp", "variables": []any{"a"}, "overwrite": true},
	"load_environment":  {"kernel": "k1", "name": "cp", "policy": "refuse", "allow_rollback": true},
	"delete_checkpoint": {"name": "cp"},
	"create_notebook":   {"path": "a.ipynb", "kernelspec": "python3"},
	"read_notebook":     {"path": "a.ipynb", "start": 1, "count": 2, "outputs": false},
	"insert_cell":       {"path": "a.ipynb", "expected_hash": "h", "source": "s", "cell_type": "markdown", "index": 1, "cell_id": "c1"},
	"edit_cell":         {"path": "a.ipynb", "expected_hash": "h", "cell": "c1", "source": "s", "cell_type": "raw"},
	"delete_cell":       {"path": "a.ipynb", "expected_hash": "h", "cell": "c1"},
	"move_cell":         {"path": "a.ipynb", "expected_hash": "h", "cell": "c1", "to": 2},
	"run_cell":          {"path": "a.ipynb", "cell": "c1", "timeout_s": 0.01, "execution_id": "e2"},
	"run_all":           {"path": "a.ipynb", "timeout_s": 0.01},
}

// argWorld is one fresh server over backends that record what reaches
// them: the same call in two worlds leaves the same record.
type argWorld struct {
	mu  sync.Mutex
	log []string
}

func (w *argWorld) record(format string, v ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, fmt.Sprintf(format, v...))
}

func (w *argWorld) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.log, "\n")
}

// callInFreshWorld makes one call through the real in-process client on a
// new server and returns the result's text and what reached the backends.
func callInFreshWorld(t *testing.T, tool string, args map[string]any) (text string, isError bool, record string) {
	t.Helper()
	w := &argWorld{}
	fb := newFakeBackend()
	fb.onSubmit = nil // executions stay running: the record, not the timing, is compared
	fb.execs["x0"] = &fakeExec{x: queue.Execution{ID: "x0", KernelID: "k1", Status: queue.StatusInputRequired, Prompt: "? "}, settled: make(chan struct{})}
	fb.execs["q0"] = &fakeExec{x: queue.Execution{ID: "q0", KernelID: "k1", Status: queue.StatusQueued}, settled: make(chan struct{})}
	fb.order = []string{"x0", "q0"}
	srv := New(&recordingBackend{fakeBackend: fb, w: w}, Options{})
	srv.AddNotebookTools(&worldNotebooks{w: w})
	srv.AddCheckpointTools(&worldCheckpoints{w: w})
	srv.AddAssetTools(&worldAssets{w: w})
	res := call(t, clientFor(t, srv), tool, args)
	return textOf(res), res.IsError, w.String()
}

// TestEveryAliasOfEveryTool goes through every tool and every alias the
// table gives, through the real mcp-go client:
//   - the alias (and its camelCase spelling) does what the documented name
//     does: the same calls reach the backend, the same reply comes back;
//   - a value of the wrong type under the alias is refused naming the
//     documented argument (the reader read it as that argument);
//   - the alias and the documented name with different values are refused,
//     naming both.
func TestEveryAliasOfEveryTool(t *testing.T) {
	for tool, names := range toolArguments {
		base, ok := validCalls[tool]
		if !ok {
			t.Errorf("validCalls has no call of %s", tool)
			continue
		}
		wantText, wantErr, wantRecord := callInFreshWorld(t, tool, base)
		if wantErr {
			t.Errorf("%s%v: the valid call failed: %s", tool, base, wantText)
			continue
		}
		if wantRecord == "" && tool != "list_kernelspecs" {
			t.Errorf("%s: the valid call reached no backend", tool)
		}
		for _, an := range names {
			for _, alias := range an.aliases {
				for _, spelled := range []string{alias, camel(alias)} {
					t.Run(tool+"/"+an.name+"="+spelled, func(t *testing.T) {
						args := renamed(base, an.name, spelled, base[an.name])
						text, isErr, record := callInFreshWorld(t, tool, args)
						if isErr || text != wantText || record != wantRecord {
							t.Errorf("%s with %q for %q differs from the documented name:\nreply (error %v): %s\nwant: %s\nbackend: %s\nwant: %s",
								tool, spelled, an.name, isErr, text, wantText, record, wantRecord)
						}
						text, isErr, record = callInFreshWorld(t, tool, renamed(base, an.name, spelled, map[string]any{"wrong": true}))
						if !isErr || !strings.Contains(text, fmt.Sprintf("%q", an.name)) || record != "" {
							t.Errorf("a wrong value under %q was not refused as argument %q: %s (backend: %s)", spelled, an.name, text, record)
						}
						both := renamed(base, an.name, spelled, "other")
						both[an.name] = base[an.name]
						text, isErr, record = callInFreshWorld(t, tool, both)
						if !isErr || !strings.Contains(text, fmt.Sprintf("%q", an.name)) || !strings.Contains(text, fmt.Sprintf("%q", spelled)) ||
							!strings.Contains(text, "different values") || record != "" {
							t.Errorf("%q and %q with different values were not refused naming both: %s (backend: %s)", an.name, spelled, text, record)
						}
					})
				}
			}
		}
	}
}

// renamed is base with name given as as, holding v.
func renamed(base map[string]any, name, as string, v any) map[string]any {
	out := map[string]any{}
	for k, x := range base {
		if k != name {
			out[k] = x
		}
	}
	out[as] = v
	return out
}

// camel is snake_case as camelCase: kernel_id → kernelId.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// recordingBackend records every Backend call with its arguments.
type recordingBackend struct {
	*fakeBackend
	w *argWorld
}

func (b *recordingBackend) StartKernel(ctx context.Context, r StartKernelRequest) (KernelView, error) {
	b.w.record("StartKernel %+v", r)
	return b.fakeBackend.StartKernel(ctx, r)
}

func (b *recordingBackend) Kernels(ctx context.Context, label string) ([]KernelView, error) {
	b.w.record("Kernels %q", label)
	return b.fakeBackend.Kernels(ctx, label)
}

func (b *recordingBackend) ResolveKernel(ctx context.Context, ref string) (string, error) {
	b.w.record("ResolveKernel %q", ref)
	return b.fakeBackend.ResolveKernel(ctx, ref)
}

func (b *recordingBackend) InterruptKernel(ctx context.Context, id string) error {
	b.w.record("InterruptKernel %q", id)
	return b.fakeBackend.InterruptKernel(ctx, id)
}

func (b *recordingBackend) RestartKernel(ctx context.Context, id string) error {
	b.w.record("RestartKernel %q", id)
	return b.fakeBackend.RestartKernel(ctx, id)
}

func (b *recordingBackend) ShutdownKernel(ctx context.Context, id string) error {
	b.w.record("ShutdownKernel %q", id)
	return b.fakeBackend.ShutdownKernel(ctx, id)
}

func (b *recordingBackend) ShareKernel(ctx context.Context, id, who string, a auth.Access) error {
	b.w.record("ShareKernel %q %q %v", id, who, a)
	return b.fakeBackend.ShareKernel(ctx, id, who, a)
}

func (b *recordingBackend) Submit(ctx context.Context, r SubmitRequest) (queue.Execution, error) {
	b.w.record("Submit %+v", r)
	return b.fakeBackend.Submit(ctx, r)
}

func (b *recordingBackend) Enqueue(ctx context.Context, r SubmitRequest) (Submitted, error) {
	b.w.record("Enqueue %+v", r)
	return b.fakeBackend.Enqueue(ctx, r)
}

func (b *recordingBackend) Execution(ctx context.Context, id string, since uint64) (ExecutionView, error) {
	b.w.record("Execution %q %d", id, since)
	return b.fakeBackend.Execution(ctx, id, since)
}

func (b *recordingBackend) Executions(ctx context.Context, kernelID string, st queue.Status) ([]queue.Execution, error) {
	b.w.record("Executions %q %q", kernelID, st)
	return b.fakeBackend.Executions(ctx, kernelID, st)
}

func (b *recordingBackend) CancelExecution(ctx context.Context, id string) (CancelPath, error) {
	b.w.record("CancelExecution %q", id)
	return b.fakeBackend.CancelExecution(ctx, id)
}

func (b *recordingBackend) SendInput(ctx context.Context, id, value string) error {
	b.w.record("SendInput %q %q", id, value)
	return b.fakeBackend.SendInput(ctx, id, value)
}

// worldNotebooks records every notebook request and refuses it, except
// CellsToRun, which answers one cell on k1 (so run_cell submits).
type worldNotebooks struct{ w *argWorld }

func (n *worldNotebooks) ReadNotebook(_ context.Context, path string) (NotebookRead, error) {
	n.w.record("ReadNotebook %q", path)
	one := 1
	out := json.RawMessage(`{"output_type":"stream","name":"stdout","text":"out"}`)
	cells := []notebook.Cell{{ID: "a", Type: "code", Source: "A"}, {ID: "b", Type: "code", Source: "B", ExecutionCount: &one, Outputs: []json.RawMessage{out}},
		{ID: "c", Type: "markdown", Source: "C"}, {ID: "d", Type: "code", Source: "D"}}
	return NotebookRead{Path: path, File: &notebook.File{Path: path, Hash: "h", Notebook: &notebook.Notebook{Cells: cells}}}, nil
}

func (n *worldNotebooks) ChangeNotebook(_ context.Context, c NotebookChange) (NotebookChanged, error) {
	c.By = "" // the client's session id: another in every world
	n.w.record("ChangeNotebook %+v", c)
	return NotebookChanged{Path: c.Path, SHA256: "h2", CellID: c.CellID}, nil
}

func (n *worldNotebooks) CellsToRun(_ context.Context, path, cell string) ([]CellRun, error) {
	n.w.record("CellsToRun %q %q", path, cell)
	return []CellRun{{KernelID: "k1", Path: path, CellID: "c1", Source: "print(2)"}}, nil
}

type worldCheckpoints struct{ w *argWorld }

func (c *worldCheckpoints) ResolveKernel(_ context.Context, ref string) (string, error) {
	c.w.record("checkpoint ResolveKernel %q", ref)
	return ref, nil
}

func (c *worldCheckpoints) SaveEnvironment(_ context.Context, r SaveEnvironmentRequest) (CheckpointReply, error) {
	c.w.record("SaveEnvironment %+v", r)
	return CheckpointReply{Summary: "saved"}, nil
}

func (c *worldCheckpoints) LoadEnvironment(_ context.Context, r LoadEnvironmentRequest) (CheckpointReply, error) {
	c.w.record("LoadEnvironment %+v", r)
	return CheckpointReply{Summary: "loaded"}, nil
}

func (c *worldCheckpoints) Checkpoints(context.Context) (CheckpointReply, error) {
	c.w.record("Checkpoints")
	return CheckpointReply{Summary: "none"}, nil
}

func (c *worldCheckpoints) DeleteCheckpoint(_ context.Context, name string) (CheckpointReply, error) {
	c.w.record("DeleteCheckpoint %q", name)
	return CheckpointReply{Summary: "deleted"}, nil
}

type worldAssets struct{ w *argWorld }

func (a *worldAssets) ListAssets(_ context.Context, kernelID, executionID string) ([]AssetInfo, error) {
	a.w.record("ListAssets %q %q", kernelID, executionID)
	return nil, nil
}
