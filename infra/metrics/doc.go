// Package metrics exposes mcp-jupyter's Prometheus metrics.
//
// Most metrics are folds of the event log, not instrumentation of actors:
// Projection is a projections.Projection that counts executions, kernels,
// IOPub traffic, assets, leases and checkpoints as their events become
// durable, so the figures survive a restart (they are in the projection's
// snapshot) and agree with what the log says. A few figures are not facts in
// the log (the event log's disk use and commit latency, the replay time, the
// IOPub backlog, WebSocket clients, checkpoint durations, orphaned kernel
// processes reaped at start, the data volume's free space, readiness): Live,
// the log collector (which also reads the log's disk-full level) and the
// ready collector hold them, and the components that know
// them feed them through small observer interfaces those components declare
// (ws.Observer, backlog.Observer), so none of them imports this package and
// nothing is global. A metric nothing feeds is removed, not left at zero:
// each has a test that drives the work and sees the figure move
// (fed_test.go, live_test.go, cmd/mcp-jupyter TestMetricsAfterRealWork).
//
// Metric names: the ones the operations runbook names are kept exactly
// (persistence_db_size_bytes, asset_lease_expiry_count,
// checkpoint_save_duration_seconds, checkpoint_load_duration_seconds,
// checkpoint_size_bytes, missing_dependencies_count,
// security_signature_failures_total, zombie_process_cleanup_count); every
// other one starts with mcp_jupyter_. NB: names and labels are what alerts
// and dashboards match on; they must not change. No label names a kernel,
// an execution, a notebook or a checkpoint: /metrics needs no token, and
// agents' work is not the scraper's business (mcp_jupyter_queue_depth{kernel}
// became mcp_jupyter_queue_depth_max for that reason).
//
// # Caller's duties
//
//  1. New(reg, log) once, with the registry the /metrics handler gathers
//     from (no global registry: tests make their own).
//  2. Hand m.Projection() to the projections.Runner with the other read
//     models; call m.Live.ObserveReplay once the runner is Ready, and
//     m.Live.ZombiesReaped after reaping orphans.
//  3. Hand m.Live.WebSocket() to the WebSocket hub (ws.Options.Observer)
//     and m.Live.Backlog() to the IOPub backlog (backlog.Options.Observer);
//     have the checkpoint actor call m.Live.ObserveCheckpointSave and
//     m.Live.ObserveCheckpointLoad.
//  4. Register NewReadyCollector(func() bool) with what /readyz answers.
//  5. Serve promhttp.HandlerFor(reg, ...) at /metrics.
//
// Issue 18's figures are folds too: mcp_jupyter_kernel_restores_total{outcome}
// of KernelRestored (restored, partial, failed, none),
// mcp_jupyter_kernels_culled_total of KernelShutDown.Culled, and
// mcp_jupyter_auto_checkpoints_saved_total of CheckpointSaved whose name
// (after its owner's "~") starts "auto-".
//
// Usage:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg, log)
//	r := projections.NewRunner(log, opts, queueModel, m.Projection())
//	hub := ws.New(log, ws.Options{Observer: m.Live.WebSocket()})
//	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
package metrics
