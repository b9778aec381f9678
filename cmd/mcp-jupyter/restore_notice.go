package main

import (
	"context"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/projections/restores"
)

// kernelRestoreNotice is what list_kernels tells of k's last restore by
// the server ("" when it has none).
func kernelRestoreNotice(k kernels.Kernel) string {
	if k.Restored == nil {
		return ""
	}
	return mcpserver.RestoreNotice(*k.Restored)
}

// executionRestoreNotice is what execute and get_execution tell with x
// when its kernel's last restore affected it (restores.Restore.Affects),
// "" otherwise. A pure read of the models (kernels: the restore;
// restores: the first execution queued after it): replaying the log tells
// the same.
func (b *backend) executionRestoreNotice(ctx context.Context, x queue.Execution) string {
	if b.restores == nil {
		return ""
	}
	k, ok := b.kernels.Get(x.KernelID)
	if !ok || k.Restored == nil {
		return ""
	}
	a, _ := b.restores.Get(x.KernelID)
	if a.Seq != k.RestoredSeq || a.First == "" && x.QueuedSeq > k.RestoredSeq {
		// NB: the read models apply a run of events side by side: one may
		// show what another has not applied yet. Once every model applied
		// the later of the restore and x's queueing, both agree.
		if b.sync(ctx, max(x.QueuedSeq, k.RestoredSeq)) == nil {
			k, _ = b.kernels.Get(x.KernelID)
			a, _ = b.restores.Get(x.KernelID)
		}
	}
	if k.Restored == nil || a.Seq != k.RestoredSeq {
		return ""
	}
	r := restores.Restore{Seq: k.RestoredSeq, Lost: k.Restored.Lost, FirstAfter: a.First}
	if !r.Affects(x.ID, x.QueuedSeq, x.LastSeq) {
		return ""
	}
	return mcpserver.RestoreNotice(*k.Restored)
}
