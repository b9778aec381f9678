package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The descriptions of the metrics folded from the log. NB: names and labels
// must not change (see the package doc).
var (
	descExecutions  = prometheus.NewDesc("mcp_jupyter_executions", "Executions not finished, by state (queued, running).", []string{"state"}, nil)
	descOutcomes    = prometheus.NewDesc("mcp_jupyter_executions_finished_total", "Executions finished, by outcome (ok, error, aborted, interrupted, cancelled, lost, other).", []string{"outcome"}, nil)
	descQueueDepth  = prometheus.NewDesc("mcp_jupyter_queue_depth_max", "Executions waiting (queued, not started) on the kernel with the longest queue. NB: no kernel label: /metrics names no kernel, execution or notebook (the total waiting is mcp_jupyter_executions{state=\"queued\"}).", nil, nil)
	descLatency     = prometheus.NewDesc("mcp_jupyter_execution_duration_seconds", "Time from an execution's start on the kernel to its final event, from the log's timestamps.", nil, nil)
	descKernels     = prometheus.NewDesc("mcp_jupyter_kernels", "Kernels not shut down, by state (running, dead, lost).", []string{"state"}, nil)
	descShutDown    = prometheus.NewDesc("mcp_jupyter_kernels_shut_down_total", "Kernels shut down on request.", nil, nil)
	descRestarts    = prometheus.NewDesc("mcp_jupyter_kernel_restarts_total", "Kernel restarts (variables lost).", nil, nil)
	descDeaths      = prometheus.NewDesc("mcp_jupyter_kernel_deaths_total", "Kernels that died without being asked to.", nil, nil)
	descLost        = prometheus.NewDesc("mcp_jupyter_kernels_lost_total", "Kernels not found again after a server restart.", nil, nil)
	descStartFails  = prometheus.NewDesc("mcp_jupyter_kernel_start_failures_total", "Kernel starts that failed.", nil, nil)
	descIOPub       = prometheus.NewDesc("mcp_jupyter_iopub_messages_total", "IOPub messages recorded in the log.", nil, nil)
	descIOPubGaps   = prometheus.NewDesc("mcp_jupyter_iopub_gaps_total", "IOPub gaps recorded (the kernel reader's bounded queue overflowed).", nil, nil)
	descIOPubDrop   = prometheus.NewDesc("mcp_jupyter_iopub_dropped_messages_total", "IOPub messages lost in recorded gaps.", nil, nil)
	descAssets      = prometheus.NewDesc("mcp_jupyter_assets", "Assets stored and not collected.", nil, nil)
	descAssetBytes  = prometheus.NewDesc("mcp_jupyter_asset_bytes", "Bytes of the assets stored and not collected.", nil, nil)
	descExpiries    = prometheus.NewDesc("asset_lease_expiry_count", "Asset leases that ran out.", nil, nil)
	descGCDeleted   = prometheus.NewDesc("mcp_jupyter_gc_deletions_total", "Asset files deleted by the garbage collector.", nil, nil)
	descGCBytes     = prometheus.NewDesc("mcp_jupyter_gc_deleted_bytes_total", "Bytes of asset files deleted by the garbage collector.", nil, nil)
	descCkSaved     = prometheus.NewDesc("mcp_jupyter_checkpoints_saved_total", "Checkpoints saved.", nil, nil)
	descCkLoaded    = prometheus.NewDesc("mcp_jupyter_checkpoints_loaded_total", "Checkpoints loaded into a kernel.", nil, nil)
	descCkRejected  = prometheus.NewDesc("mcp_jupyter_checkpoints_rejected_total", "Checkpoints refused (verification or policy).", nil, nil)
	descSigFails    = prometheus.NewDesc("security_signature_failures_total", "Checkpoints refused because their signature did not verify.", nil, nil)
	descMissing     = prometheus.NewDesc("missing_dependencies_count", "Packages missing in the kernel at the last checkpoint load, summed over kernels.", nil, nil)
	descRestores    = prometheus.NewDesc("mcp_jupyter_kernel_restores_total", "Restores of kernels the server relaunched at start because their process was gone (--auto-restore), by outcome: restored (everything back), partial (variables skipped, packages missing or different), failed (an auto-checkpoint was saved and nothing of it is back), none (no auto-checkpoint of the kernel was ever saved: nothing to load).", []string{"outcome"}, nil)
	descCulled      = prometheus.NewDesc("mcp_jupyter_kernels_culled_total", "Kernels the server shut down after --cull-idle without activity (also counted in mcp_jupyter_kernels_shut_down_total).", nil, nil)
	descAutoSaved   = prometheus.NewDesc("mcp_jupyter_auto_checkpoints_saved_total", "Auto-checkpoints saved (auto-<kernel>: at shutdown, before a cull, after --auto-checkpoint-idle); also counted in mcp_jupyter_checkpoints_saved_total.", nil, nil)
	descEvents      = prometheus.NewDesc("mcp_jupyter_metrics_events_folded_total", "Events the metrics projection has folded.", nil, nil)
	descLastSeq     = prometheus.NewDesc("mcp_jupyter_metrics_last_seq", "Sequence of the last event the metrics reflect.", nil, nil)
	projectionDescs = []*prometheus.Desc{descExecutions, descOutcomes, descQueueDepth, descLatency, descKernels, descShutDown,
		descRestarts, descDeaths, descLost, descStartFails, descIOPub, descIOPubGaps, descIOPubDrop, descAssets, descAssetBytes,
		descExpiries, descGCDeleted, descGCBytes, descCkSaved, descCkLoaded, descCkRejected, descSigFails,
		descMissing, descRestores, descCulled, descAutoSaved, descEvents, descLastSeq}
	outcomes     = []string{"ok", "error", "aborted", "interrupted", "cancelled", "lost", "other"}
	kernelStates = []string{"running", "dead", "lost"}
	counter      = prometheus.CounterValue
	gauge        = prometheus.GaugeValue
	mustConst    = prometheus.MustNewConstMetric
)

// Describe implements prometheus.Collector.
func (p *Projection) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range projectionDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It holds the read lock only to
// copy the figures out: a scrape never waits on more than one Apply.
func (p *Projection) Collect(ch chan<- prometheus.Metric) {
	p.mu.RLock()
	f := &p.f
	var queued, running float64
	depth := map[string]float64{}
	for _, x := range f.Live {
		if x.Running {
			running++
			continue
		}
		queued++
		depth[x.Kernel]++
	}
	var deepest float64
	for _, n := range depth {
		deepest = max(deepest, n)
	}
	byState := map[string]float64{}
	for _, st := range f.Kernels {
		byState[st]++
	}
	outs := make([]float64, len(outcomes))
	for i, o := range outcomes {
		outs[i] = float64(f.Outcomes[o])
	}
	var assetBytes float64
	for _, n := range f.Assets {
		assetBytes += float64(n)
	}
	missing := 0
	for _, n := range f.Missing {
		missing += n
	}
	restores := make([]float64, len(restoreOutcomes))
	for i, o := range restoreOutcomes {
		restores[i] = float64(f.Restores[o])
	}
	latency := f.Latency.metric(descLatency, LatencyBuckets)
	scalars := []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v float64
	}{
		{descShutDown, counter, float64(f.ShutDown)}, {descRestarts, counter, float64(f.Restarts)},
		{descDeaths, counter, float64(f.Deaths)}, {descLost, counter, float64(f.Lost)},
		{descStartFails, counter, float64(f.StartFails)}, {descIOPub, counter, float64(f.IOPub)},
		{descIOPubGaps, counter, float64(f.IOPubGaps)}, {descIOPubDrop, counter, float64(f.IOPubDrop)},
		{descAssets, gauge, float64(len(f.Assets))}, {descAssetBytes, gauge, assetBytes},
		{descExpiries, counter, float64(f.Expiries)}, {descGCDeleted, counter, float64(f.GCDeleted)},
		{descGCBytes, counter, float64(f.GCBytes)}, {descCkSaved, counter, float64(f.CkSaved)},
		{descCkLoaded, counter, float64(f.CkLoaded)}, {descCkRejected, counter, float64(f.CkRejected)},
		{descSigFails, counter, float64(f.SigFails)}, {descMissing, gauge, float64(missing)},
		{descCulled, counter, float64(f.Culled)}, {descAutoSaved, counter, float64(f.AutoSave)},
		{descEvents, counter, float64(f.Events)}, {descLastSeq, gauge, float64(f.LastSeq)},
	}
	p.mu.RUnlock()

	ch <- mustConst(descExecutions, gauge, queued, stateQueued)
	ch <- mustConst(descExecutions, gauge, running, stateRunning)
	for i, o := range outcomes {
		ch <- mustConst(descOutcomes, counter, outs[i], o)
	}
	ch <- mustConst(descQueueDepth, gauge, deepest)
	for i, o := range restoreOutcomes {
		ch <- mustConst(descRestores, counter, restores[i], o)
	}
	for _, st := range kernelStates {
		ch <- mustConst(descKernels, gauge, byState[st], st)
	}
	ch <- latency
	for _, s := range scalars {
		ch <- mustConst(s.d, s.t, s.v)
	}
}
