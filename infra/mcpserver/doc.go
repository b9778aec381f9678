// Package mcpserver is the MCP edge of mcp-jupyter (mcp-go): the tools agents
// call, over stdio and Streamable HTTP, in front of a Backend (the kernel and
// scheduler actors and the read models, wired in cmd/mcp-jupyter).
//
// The edge keeps no execution state. Every handle an agent holds is a
// durable id of the core — kernel_id, execution_id, and the output cursor —
// so a reply never depends on the MCP session, and an agent that reconnects
// (or talks to a restarted server) carries on where it left off.
//
// # Tools
//
// Kernels:
//   - list_kernelspecs (read-only): installed kernelspecs.
//   - start_kernel {kernelspec="python3", notebook?, label?}: starts and
//     returns the kernel once ready.
//   - list_kernels {label?} (read-only): state, busy/idle, queue depth,
//     running execution, bound notebook; restore_notice for a kernel the
//     server relaunched and restored at start (RestoreNotice).
//   - interrupt_kernel {kernel}: KeyboardInterrupt; variables kept.
//   - restart_kernel {kernel} (destructive): variables are lost.
//   - shutdown_kernel {kernel} (destructive).
//
// Executions (`kernel` is a kernel_id or a bound notebook path):
//   - execute {kernel, code, timeout_s=25, execution_id?, allow_stdin=false}:
//     Enqueue (the execution may run before its submit is durable), then
//     wait up to timeout_s on Submitted.Settled: one wake-up, when its end
//     is applied (the end durable implies the submit durable), then one
//     read. A finished execution comes back with status, execution_count
//     and outputs; otherwise (timeout_s passed) status
//     running/queued/input_required, the output so far, the cursor and what
//     to call next — only once the submit is durable (Submitted.Durable). A
//     timeout or a client going away never cancels the execution. With a
//     progressToken, new output is sent as notifications/progress while
//     waiting: then it waits for durability first and follows
//     Backend.Execution from the caller's cursor, each wake-up this
//     execution's own change carrying only what is new (the backend's read
//     model pages from the log only what it no longer holds).
//   - get_execution {execution_id, wait_s=0 (≤ MaxWait), since=0}: status
//     and the outputs after the cursor, waiting up to wait_s.
//   - execute and get_execution of an execution a restore affected (lost by
//     the relaunch, queued before the restore and run after it, the first
//     one queued after it: ExecutionView.RestoreNotice) carry a `notice:`
//     line and restore_notice: the one text RestoreNotice makes.
//   - list_executions {kernel?, status?} (read-only).
//   - cancel_execution {execution_id}: queued executions only. One withdrawn
//     from the server's queue answers status cancelled (it will not run); one
//     already handed to the kernel behind the running one (pipelined)
//     answers cancel_requested — the kernel is asked to abort it and its
//     final status tells whether it ran. The answer follows the path the
//     cancel took (Backend.CancelExecution), not the read model.
//   - send_input {execution_id, value, wait_s=0}: answers input().
//   - execute and get_execution of an execution waiting in input(), for a
//     caller whose request declares elicitation and who holds the execute
//     scope, return an input_required result (input request "stdin") instead;
//     the retry sends the answer to that very input request and follows the
//     execution (input.go). Nothing is kept between the calls: the sealed
//     request state names the execution and its ExecutionInputRequested.
//
// Notebooks (AddNotebookTools over a NotebookBackend; paths are relative to
// the notebook root; every change passes expected_hash, the sha256 the agent
// last read, and is refused with a diff summary if the file changed since):
//   - create_notebook {path, kernelspec="python3"}.
//   - read_notebook {path, start=0, count=50, outputs=true} (read-only):
//     cells with ids, sources and outputs rendered as execute renders them,
//     within the same reply limits; the sha256 and the bound kernel.
//   - insert_cell {path, expected_hash, source, cell_type="code", index?,
//     cell_id?}, edit_cell {path, expected_hash, cell, source, cell_type?},
//     delete_cell {path, expected_hash, cell}, move_cell {path,
//     expected_hash, cell, to}: cell is an nbformat id or a 0-based index.
//   - run_cell {path, cell, timeout_s, execution_id?}: submits the cell's
//     source to the notebook's bound kernel with the cell recorded on the
//     execution; same reply and handles as execute. The core writes the
//     outputs into the cell when it finishes.
//   - run_all {path, timeout_s}: queues every code cell in order.
//
// Bad arguments and Backend errors come back as isError results that name
// the argument or the id and say what to do; only protocol faults are Go
// errors. The server keeps serving after either.
//
// # Outputs
//
// render.go folds IOPub messages as a notebook does (consecutive stream
// chunks of one name merged, clear_output honoured, wait=true clearing at
// the next output) and shows them within budgets: each text keeps its head
// and tail within Options.OutputBudget characters around a marker linking
// the full text; tracebacks lose their ANSI colours; PNG/JPEG up to
// ImageBudget bytes are inline images. Full texts, large images, SVG, HTML
// and Plotly figures are written to AssetDir as <sha256> with a <sha256>.mime
// sidecar and linked as asset://<sha256>, a resource template served from
// AssetDir (only 64-lowercase-hex names are opened). A whole reply holds at
// most 4 texts' worth of characters and 2 images' worth of inline bytes;
// beyond that further images are linked and further outputs are left out
// with a note giving the `since` cursor to read them with get_execution.
//
// # Execution resources and subscriptions (resources.go, subscriptions.go)
//
// execution://<id> reads like get_execution (same budgets and access
// check). Clients follow it with resources/subscribe (2025-11-25) or
// subscriptions/listen (2026-07-28) and get notifications/resources/updated:
// one watcher goroutine per (subscriber, execution) woken by the backend's
// Changed channel, at most one notification per 100 ms and one after the
// last change, stopped on unsubscribe, session end, listen end, the
// execution's end and Close. Bounded per session or listen
// (Options.MaxSubscriptionsPerSession), per principal
// (MaxSubscriptionsPerPrincipal) and per server (MaxSubscriptions).
//
// # HTTP security (Guard, HostCheck, BodyLimit)
//
//  1. Host must be localhost, 127.0.0.1 or [::1] (any port), one of
//     Options.AllowedHosts, or the IP address the connection arrived on
//     (what probes send: the pod IP), else 403: defeats DNS rebinding.
//  2. An Origin header, if present, must name localhost or an allowed
//     host, else 403. Steps 1 and 2 alone are HostCheck, which
//     cmd/mcp-jupyter puts in front of every route.
//  3. "Authorization: Bearer <token>" must match Options.Token (constant
//     time), else 401 with WWW-Authenticate: Bearer. An empty token refuses
//     everything. LoadOrCreateToken keeps the token in <data dir>/mcp-token
//     (0600), generating 32 random bytes on first start.
//  4. The body is at most Options.MaxRequestBytes (BodyLimit): a larger
//     declared length is refused 413 unread, a chunked body stops at the
//     limit; on /mcp the 413 is a JSON-RPC error stating the limit.
//
// # Arguments
//
// args.go reads tool arguments; every number is range-checked as the
// float64 that arrived before it is converted (a span per argument: 1e308
// seconds never reaches time.Duration), and every error names the
// argument, the range and the value.
//
// Names as agents guess them: the schema documents one name per argument;
// aliases.go lists, per tool, the names agents also use (kernel_id for
// kernel, sha256 for expected_hash, cursor for since…), and any spelling of
// either (case, '_', '-') is the same name. checkArguments, the middleware
// right after requireScope, hands the handler the arguments under their
// documented names only, and refuses a name the tool does not take (with a
// "did you mean" and the tool's arguments) or one argument given twice with
// different values. newArgs applies the same table, so argsDigest and any
// other reader see documented names. NB: a new tool or argument needs its
// row in aliases.go (TestArgumentTableMatchesSchemas).
//
// # Approval policy
//
// policy.go loads a --policy file (LoadPolicy: YAML rules, refused whole
// with its line and what to fix); policy_edge.go is the tool-handler
// middleware inside requireScope: deny refuses, confirm asks through an
// input request (InputRequestPolicy; canAsk) whose once-only nonce is
// sealed in the request state, allow runs. Every deny/confirm decision is
// recorded through Options.Decisions (a PolicyDecided event) before the
// call goes on; without a recorder, matched calls are refused.
//
// # MCP Tasks
//
// mcp-go v1.2.1 implements MCP Tasks, but its task table is an in-memory map
// whose ids die with the process. execute is deliberately not a task tool:
// the durable handle is our execution_id, and get_execution is the task
// poll. Mapping tasks/get and tasks/result onto execution ids needs a task
// store hook mcp-go does not offer yet.
//
// # Usage
//
//  1. s := mcpserver.New(backend, mcpserver.Options{AssetDir: dir, Token: tok, Logger: log})
//  2. stdio: s.ServeStdio(ctx, os.Stdin, os.Stdout) — nothing else may
//     write to stdout.
//  3. HTTP: mux.Handle("/mcp", s.HTTPHandler()); on shutdown, stop the
//     http.Server, then s.Close(ctx).
package mcpserver
