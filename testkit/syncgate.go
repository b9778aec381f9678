package testkit

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// SyncGate holds the event log's WAL fsyncs while held: appends then sit in
// the write path, written but not durable, as on a slow disk. Pass FS() as
// eventlog.Options.FS; the zero value lets every sync pass.
type SyncGate struct {
	mu      sync.Mutex
	gate    chan struct{} // nil: syncs pass
	waiting atomic.Int32  // fsyncs held right now
}

// Hold makes the next WAL fsyncs wait until Release.
func (g *SyncGate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

// Release lets the held fsyncs, and every later one, through.
func (g *SyncGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

// Waiting is how many fsyncs are held right now.
func (g *SyncGate) Waiting() int32 { return g.waiting.Load() }

// FS is the file system the gate watches: the real one, with fsyncs of the
// WAL (*.log) held while the gate is.
func (g *SyncGate) FS() vfs.FS {
	return errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".log") ||
			(op.Kind != errorfs.OpFileSync && op.Kind != errorfs.OpFileSyncData && op.Kind != errorfs.OpFileSyncTo) {
			return nil
		}
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		if gate != nil {
			g.waiting.Add(1)
			<-gate
			g.waiting.Add(-1)
		}
		return nil
	}))
}
