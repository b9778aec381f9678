package main

import (
	"context"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// kernelRestoreNotice is what list_kernels tells of kernel id's last
// restore by the server ("" when it has none).
func (b *backend) kernelRestoreNotice(id string) string {
	if b.restores == nil {
		return ""
	}
	r, ok := b.restores.Get(id)
	if !ok {
		return ""
	}
	return mcpserver.RestoreNotice(r.KernelRestored)
}

// executionRestoreNotice is what execute and get_execution tell with x
// when its kernel's restore affected it (restores.Restore.Affects), ""
// otherwise. A pure read of the models: replaying the log tells the same.
func (b *backend) executionRestoreNotice(ctx context.Context, x queue.Execution) string {
	if b.restores == nil {
		return ""
	}
	r, ok := b.restores.Get(x.KernelID)
	if !ok {
		return ""
	}
	if r.FirstAfter == "" && x.QueuedSeq > r.Seq {
		// NB: the read models apply a run of events side by side: the
		// executions model may show x before the restores model saw it
		// queued. Once every model applied x's queueing, FirstAfter is
		// known.
		if b.sync(ctx, x.QueuedSeq) == nil {
			r, _ = b.restores.Get(x.KernelID)
		}
	}
	if !r.Affects(x.ID, x.QueuedSeq, x.LastSeq) {
		return ""
	}
	return mcpserver.RestoreNotice(r.KernelRestored)
}
