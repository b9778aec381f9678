// Package kernels is the kernels read model: for each kernel the server
// has started, its spec, label, notebook, lifecycle state, pid and whether
// it is busy, folded from the log by a projections.Runner.
//
// # Contract
//
//  1. State follows the kernel lifecycle events: KernelStarted,
//     KernelRestarted and KernelReattached make a kernel running;
//     KernelDied and KernelStartFailed make it dead; KernelLost lost;
//     KernelShutDown shut down. A kernel first seen through its IOPub
//     traffic (before KernelStarted is durable) is starting. A kernel the
//     server relaunched at start (--auto-restore: its process was gone) is
//     running, with RestartReason and, until its KernelRestored, Restoring
//     (the checkpoint being loaded); the last KernelRestored is kept
//     (Restored, RestoredSeq) for the agent's next call.
//  2. Busy follows IOPub status messages (msg_type "status",
//     content.execution_state busy/idle/starting). They are the bulk of the
//     log, so the model reads them from the raw payload (Interest Envelope)
//     with a small scanner instead of a full JSON decode.
//  3. Query methods (Get, List, Len) are safe while the runner applies: the
//     model guards itself with a RWMutex and returns copies.
//  4. For Jupyter frontends (infra/jupyterapi): per kernel the Jupyter
//     sessions open (KernelSessionOpened/Closed; a session opened on
//     another kernel moves; KernelShutDown closes them all without an
//     event; at most MaxSessions), the frontend sessions attached with the
//     seq of their last FrontendAttached (at most MaxFrontends, the oldest
//     go), and LastActivity, the time of the last event about the kernel
//     (jupyter_server's last_activity). FindSession, SessionsByPath,
//     AllSessions and Frontend answer from an index, not a scan of the log.
//  5. Get and Ownership take a kernel id in either form (events.UUIDForm).
//
// Usage:
//
//	km := kernels.New()
//	r := projections.NewRunner(log, opts, km)
//	...
//	k, ok := km.Get(kernelID)
package kernels
