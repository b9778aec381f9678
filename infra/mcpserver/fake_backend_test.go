package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// fakeBackend is an in-memory Backend for this package's tests only. Tests
// drive executions with emit and finish; onSubmit decides what a new
// execution does (default: prints its code and finishes ok).
type fakeBackend struct {
	mu       sync.Mutex
	kernels  map[string]KernelView
	execs    map[string]*fakeExec
	order    []string
	seq      uint64
	nextID   int
	changed  chan struct{}
	onSubmit func(b *fakeBackend, id, code string)
	inputs   []string
	// durable, when set, is what Enqueue's Durable waits for (closed: the
	// submit is durable); nil: durable at once.
	durable chan struct{}
	// durableWaits counts calls of Enqueue's Durable.
	durableWaits int
	// handedToKernel: executions the backend already handed to the kernel
	// (pipelined) while its read model still shows them queued, not behind.
	handedToKernel map[string]bool
}

type fakeExec struct {
	x    queue.Execution
	outs []queue.Output
	// settled closes when x settles (Enqueue's Settled).
	settled chan struct{}
}

// settle closes e's settle channel once e settled; b.mu is held.
func (e *fakeExec) settle() {
	if settled(e.x) && e.settled != nil {
		close(e.settled)
		e.settled = nil
	}
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		kernels: map[string]KernelView{"k1": {ID: "k1", Spec: "python3", Notebook: "nb.ipynb",
			State: "running", ExecutionState: "idle"}},
		execs:   map[string]*fakeExec{},
		changed: make(chan struct{}),
		onSubmit: func(b *fakeBackend, id, code string) {
			b.emit(id, "stream", map[string]any{"name": "stdout", "text": code})
			b.finish(id, queue.StatusOK)
		},
	}
}

// notify wakes every waiter; b.mu is held.
func (b *fakeBackend) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *fakeBackend) emit(id, msgType string, content any) {
	raw, _ := json.Marshal(content)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e := b.execs[id]
	e.outs = append(e.outs, queue.Output{Seq: b.seq, MsgType: msgType, Content: raw})
	b.notify()
}

func (b *fakeBackend) setStatus(id string, st queue.Status, prompt string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	x := &b.execs[id].x
	x.Status, x.Prompt, x.LastSeq = st, prompt, b.seq
	b.execs[id].settle()
	b.notify()
}

func (b *fakeBackend) finish(id string, st queue.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	x := &b.execs[id].x
	x.Status, x.LastSeq, x.ExecutionCount = st, b.seq, 1
	b.execs[id].settle()
	b.notify()
}

func (b *fakeBackend) KernelSpecs(context.Context) ([]KernelSpec, error) {
	return []KernelSpec{{Name: "python3", DisplayName: "Python 3", Language: "python"}}, nil
}

func (b *fakeBackend) StartKernel(_ context.Context, req StartKernelRequest) (KernelView, error) {
	if req.Spec != "python3" {
		return KernelView{}, fmt.Errorf("no kernelspec %q; call list_kernelspecs for the installed ones", req.Spec)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	k := KernelView{ID: fmt.Sprintf("k%d", len(b.kernels)+1), Spec: req.Spec, Notebook: req.Notebook,
		Label: req.Label, State: "running", ExecutionState: "idle"}
	b.kernels[k.ID] = k
	return k, nil
}

func (b *fakeBackend) Kernels(_ context.Context, label string) ([]KernelView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []KernelView
	for _, k := range b.kernels {
		if label == "" || k.Label == label {
			out = append(out, k)
		}
	}
	return out, nil
}

func (b *fakeBackend) ResolveKernel(_ context.Context, ref string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.kernels[ref]; ok {
		return ref, nil
	}
	for _, k := range b.kernels {
		if k.Notebook == ref {
			return k.ID, nil
		}
	}
	return "", fmt.Errorf("no kernel or bound notebook %q; call list_kernels or start_kernel", ref)
}

func (b *fakeBackend) kernelOp(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.kernels[id]; !ok {
		return fmt.Errorf("no kernel %q", id)
	}
	return nil
}

func (b *fakeBackend) InterruptKernel(_ context.Context, id string) error { return b.kernelOp(id) }
func (b *fakeBackend) RestartKernel(_ context.Context, id string) error   { return b.kernelOp(id) }
func (b *fakeBackend) ShutdownKernel(_ context.Context, id string) error  { return b.kernelOp(id) }
func (b *fakeBackend) ShareKernel(_ context.Context, id, _ string, _ auth.Access) error {
	return b.kernelOp(id)
}

func (b *fakeBackend) Submit(_ context.Context, req SubmitRequest) (queue.Execution, error) {
	b.mu.Lock()
	if req.ExecutionID != "" {
		if e, ok := b.execs[req.ExecutionID]; ok {
			b.mu.Unlock()
			return e.x, nil
		}
	}
	id := req.ExecutionID
	if id == "" {
		b.nextID++
		id = fmt.Sprintf("x%d", b.nextID)
	}
	b.seq++
	x := queue.Execution{ID: id, KernelID: req.KernelID, Code: req.Code, AllowStdin: req.AllowStdin,
		Notebook: req.Notebook, Status: queue.StatusRunning, QueuedSeq: b.seq, LastSeq: b.seq}
	b.execs[id] = &fakeExec{x: x, settled: make(chan struct{})}
	b.order = append(b.order, id)
	b.notify()
	hook := b.onSubmit
	b.mu.Unlock()
	if hook != nil {
		hook(b, id, req.Code)
	}
	return x, nil
}

func (b *fakeBackend) Enqueue(ctx context.Context, req SubmitRequest) (Submitted, error) {
	x, err := b.Submit(ctx, req)
	if err != nil {
		return Submitted{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := b.execs[x.ID].settled
	if ch == nil {
		done := make(chan struct{})
		close(done)
		ch = done
	}
	durable := b.durable
	return Submitted{ID: x.ID, Settled: ch, Release: func() {},
		Durable: func(ctx context.Context) error {
			b.mu.Lock()
			b.durableWaits++
			b.mu.Unlock()
			if durable == nil {
				return nil
			}
			select {
			case <-durable:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}, nil
}

func (b *fakeBackend) Execution(_ context.Context, id string, since uint64) (ExecutionView, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.execs[id]
	if !ok {
		return ExecutionView{}, fmt.Errorf("no execution %q; call list_executions", id)
	}
	v := ExecutionView{Execution: e.x, Cursor: since, Changed: b.changed}
	for _, o := range e.outs {
		if o.Seq > since {
			v.Outputs = append(v.Outputs, o)
			v.Cursor = o.Seq
		}
	}
	return v, nil
}

func (b *fakeBackend) Executions(_ context.Context, kernelID string, st queue.Status) ([]queue.Execution, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []queue.Execution
	for _, id := range b.order {
		x := b.execs[id].x
		if (kernelID == "" || x.KernelID == kernelID) && (st == "" || x.Status == st) {
			out = append(out, x)
		}
	}
	return out, nil
}

func (b *fakeBackend) CancelExecution(_ context.Context, id string) (CancelPath, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.execs[id]
	if !ok || e.x.Status != queue.StatusQueued {
		return 0, fmt.Errorf("execution %q is not queued", id)
	}
	if b.handedToKernel[id] {
		return CancelAbortRequested, nil // its status follows from the kernel
	}
	e.x.Status = queue.StatusCancelled
	b.notify()
	return CancelWithdrawn, nil
}

func (b *fakeBackend) SendInput(_ context.Context, id, value string) error {
	b.mu.Lock()
	e, ok := b.execs[id]
	if !ok || e.x.Status != queue.StatusInputRequired {
		b.mu.Unlock()
		return fmt.Errorf("execution %q is not waiting for input", id)
	}
	b.inputs = append(b.inputs, value)
	e.x.Status, e.x.Prompt = queue.StatusRunning, ""
	e.settled = make(chan struct{})
	b.notify()
	b.mu.Unlock()
	return nil
}
