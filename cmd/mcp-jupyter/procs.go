package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"syscall"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// proc is a kernel process as the log recorded it: pid and start time name
// it uniquely across pid reuse.
type proc struct {
	Kernel string `json:"kernel"`
	Pid    int    `json:"pid"`
	Start  uint64 `json:"start"`
}

// maxRetired bounds the retired processes remembered. NB: the oldest are
// forgotten first; a process retired thousands of kernel lifetimes ago and
// still alive is beyond what preflight looks for.
const maxRetired = 4096

// procTable folds the log into the kernel processes this server started:
// the current process of every kernel not shut down (recovery re-attaches
// them) and the retired ones (replaced by a restart, or whose kernel was
// shut down, died or was lost), which should be gone. A retired process
// still alive with its recorded start time is an orphan of a previous run.
// It is a projections.Projection (name "procs").
type procTable struct {
	// node is this node's name in a cluster (""; a single server): the
	// records of other nodes name processes on other machines, never
	// this one's; another node's KernelAdopted retires this node's process
	// of the kernel (reaped as an orphan at the next start).
	node    string
	mu      sync.RWMutex
	current map[string]proc
	retired []proc
}

var _ projections.Projection = (*procTable)(nil)

func newProcTable() *procTable { return &procTable{current: map[string]proc{}} }

func (t *procTable) Name() string { return "procs" }

func (t *procTable) Wants(typ string) projections.Interest {
	switch typ {
	case events.TypeKernelStarted, events.TypeKernelRestarted, events.TypeKernelReattached:
		return projections.Payload
	case events.TypeKernelShutDown, events.TypeKernelDied, events.TypeKernelLost, events.TypeKernelAdopted:
		return projections.Envelope
	}
	return projections.Skip
}

func (t *procTable) Apply(e events.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.node != "" && e.Node != t.node {
		if e.Type == events.TypeKernelAdopted {
			t.retire(e.Kernel)
		}
		return nil
	}
	switch p := e.Payload.(type) {
	case events.KernelStarted:
		t.retire(p.KernelID)
		t.current[p.KernelID] = proc{Kernel: p.KernelID, Pid: p.Process.Pid, Start: p.Process.StartTime}
		return nil
	case events.KernelRestarted:
		t.retire(p.KernelID)
		t.current[p.KernelID] = proc{Kernel: p.KernelID, Pid: p.Process.Pid, Start: p.Process.StartTime}
		return nil
	case events.KernelReattached:
		return nil
	}
	switch e.Type {
	case events.TypeKernelShutDown, events.TypeKernelDied, events.TypeKernelLost:
		t.retire(e.Kernel)
	}
	return nil
}

func (t *procTable) retire(kernel string) {
	p, ok := t.current[kernel]
	if !ok {
		return
	}
	delete(t.current, kernel)
	if p.Pid <= 1 {
		return
	}
	t.retired = append(t.retired, p)
	if over := len(t.retired) - maxRetired; over > 0 {
		t.retired = append(t.retired[:0:0], t.retired[over:]...)
	}
}

type procSnapshot struct {
	Current []proc `json:"current"`
	Retired []proc `json:"retired"`
}

func (t *procTable) Snapshot() ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return json.Marshal(procSnapshot{Current: t.currentLocked(), Retired: t.retired})
}

func (t *procTable) Restore(data []byte) error {
	var s procSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("restore procs snapshot: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.current = map[string]proc{}
	for _, p := range s.Current {
		t.current[p.Kernel] = p
	}
	t.retired = s.Retired
	return nil
}

func (t *procTable) currentLocked() []proc {
	out := make([]proc, 0, len(t.current))
	for _, p := range t.current {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kernel < out[j].Kernel })
	return out
}

// Current returns the process of every kernel not shut down, by kernel id.
func (t *procTable) Current() []proc {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.currentLocked()
}

// Orphans returns the retired processes still running with their recorded
// start time (a pid reused by another process is not one).
func (t *procTable) Orphans() []proc {
	t.mu.RLock()
	retired := append([]proc(nil), t.retired...)
	t.mu.RUnlock()
	var out []proc
	for _, p := range retired {
		if alive(p) {
			out = append(out, p)
		}
	}
	return out
}

// alive: pid runs (not a zombie) and started when the log says it did.
func alive(p proc) bool {
	st, err := jupyter.ProcessStartTime(p.Pid)
	if err != nil || st != p.Start {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X' // NB: a zombie only waits for its parent to reap it
}

// reapOrphans kills each orphan's process group (SIGKILL, after checking
// the start time again) and returns how many it reaped.
func reapOrphans(orphans []proc, logger *slog.Logger) int {
	n := 0
	for _, p := range orphans {
		err := jupyter.SignalGroup(p.Pid, p.Start, syscall.SIGKILL)
		if err != nil {
			logger.Warn("orphaned kernel process not reaped", "component", "kernel", "kernel_id", p.Kernel, "pid", p.Pid, "err", err)
			continue
		}
		logger.Info("reaped an orphaned kernel process of a previous run", "component", "kernel", "kernel_id", p.Kernel, "pid", p.Pid)
		n++
	}
	return n
}
