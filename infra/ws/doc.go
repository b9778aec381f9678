// Package ws is the live WebSocket edge: GET /ws streams every durable event
// the caller's principal may read as JSON (events.Event's public form, with
// its seq), and GET /ws?kernel=<id> only the events about one kernel.
//
// Framing: each text message holds one or more events, one JSON object per
// line ("\n"-separated), in seq order. A client that fell behind gets what
// queued up in few messages (at most 64 KiB each, or one event if larger)
// instead of one per event: fewer writes is what lets one server feed many
// clients.
//
// # Contract
//
//  1. Resume: with since=<seq> a client gets exactly the events after seq,
//     in order, no gap and no duplicate, across server restarts too: up to
//     the point it joined the live fan-out it is served from the backlog
//     read model (Options.Backlog, projections/backlog), and from the event
//     log only for what the backlog no longer holds (seqs older than its
//     bound); then from the fan-out. Without since it gets the events
//     appended after it connected.
//
//  2. Fan-out: one goroutine follows the log (the hub is a follower like the
//     projections runner: it reads each committed event once, in order,
//     woken by commits; it never reads history for a client), encodes each event once and
//     offers it to every client's send queue without ever blocking. A queue
//     is bounded in messages and in bytes; a client that falls behind past
//     it is closed with code 4008 and the reason "slow consumer: resume with
//     since=<last seq sent>". Nothing is dropped silently, no event is
//     merged into another: MIME bundles (Plotly JSON, HTML, images) go out exactly as
//     the kernel sent them.
//
//  3. Clients may send nothing but {"type":"ping"} (answered with
//     {"type":"pong","seq":<last seq sent>}), at most Options.ReadLimit bytes
//     per message. A larger message closes the connection with 1009, a
//     malformed one with 1007, a binary one with 1003, each with a reason.
//
//  4. Auth is the caller's: mount the handler behind mcpserver.Guard with
//     QueryToken (browsers cannot set headers on a WebSocket), which checks
//     Host, Origin and the bearer token before the upgrade and puts the
//     principal in the request context. The handler skips the library's own
//     same-origin check for that reason.
//
//  5. By principal (Options.Access; the server uses KernelReaders): a client
//     gets the events of kernels its principal can read (owner, shares)
//     and the events it caused; admins every event. The hub routes by an
//     index (kernel -> readers -> their clients, kernel -> ?kernel=
//     followers, and the clients that read everything), so an event costs
//     its readers, not a pass over every client (BenchmarkFanOutPrincipals).
//     The readers change in log order, with the events that change them
//     (KernelStarted's owner, KernelShared), before the event is offered.
//     A resuming client's history (backlog or log) is filtered with the
//     readers as they are now. A principal without the read scope gets 403;
//     with Access set, a request without a principal 401.
//
//  6. Revocation: ClosePrincipal(name) closes every client of a principal at
//     once with CloseTokenRevoked (4001) and a reason saying so; the server
//     calls it from the token store's Watch.
//
//  7. Subscriptions (Subscribe, subscription.go): an edge of this process
//     (the Jupyter channels WebSocket, infra/jupyterapi) gets one kernel's
//     durable events after a seq, or from now, on the same fan-out: what
//     is recorded already from the backlog (the log for what it no longer
//     holds, a page at a time), then live, no gap and no duplicate. Each
//     subscription's queue is bounded in events and bytes; one that falls
//     behind ends with a *SlowError (ErrSlowSubscriber) naming the seq to
//     resume after, and never slows the hub or anyone else. Access is the
//     subscriber's to check.
//
// The caller's duties:
//
//  1. New(log, opts) with Options.Backlog and BacklogWait (the backlog's
//     runner's WaitFor), then Start(ctx) before serving.
//  2. Mount Handler() at /ws behind the guard.
//  3. Close(ctx) before closing the log: it closes every client with 1001
//     and a resume hint, and waits for their goroutines.
package ws
