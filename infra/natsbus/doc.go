// Package natsbus embeds a NATS server in mcp-jupyter and publishes every
// durable event of the log on it, so that other programs (dashboards,
// notifiers, other servers) can subscribe by kernel, stream or type.
//
// # Contract
//
//  1. Open starts the embedded server. By default it does not listen: only
//     in-process clients reach it. Options.Listen opens a TCP listener,
//     which requires Options.Token or Options.NKeys (Open refuses to start
//     without), except on loopback with Options.InsecureLoopback. Outside
//     clients may subscribe, never publish events: only the server's own
//     connections (Server.Connect, with a credential generated per run and
//     kept in memory) may (auth.go).
//  2. A Publisher follows the log (FollowRaw) and publishes each event after
//     it is durable — never before — as its public JSON form (see package
//     events) on events.Subject(e), with header Mcp-Seq carrying the
//     sequence. Events are published in log order. An event too large for
//     NATS (Bus.MaxMessage: max_payload, or the stream's max message size)
//     goes out as a Reference (header Mcp-Ref = RefPath(seq), the /events
//     path serving it whole), so no event can stop the bus.
//  3. Publishing is decoupled from appending by construction: the publisher
//     reads the log, writers never wait for it. A slow subscriber is the
//     NATS server's concern (it becomes a slow consumer and loses messages);
//     it never slows the log.
//  4. Delivery is at least once across restarts when the publisher keeps a
//     cursor (PublisherOptions.Cursor): after a crash it republishes from
//     the last saved position. Subscribers deduplicate by Mcp-Seq.
//  5. A failure (connection lost, flush, cursor save, log read) never ends
//     the publisher: Healthy reports it, and it reconnects with a bounded
//     backoff and resumes after the last event the server confirmed.
//
// # Caller's duties
//
//  1. Open the server, NewPublisher(log, srv, opts), Start(ctx).
//  2. Report Publisher.Healthy on readiness.
//  3. On shutdown: Publisher.Close(ctx) (flushes, saves the cursor), then
//     Server.Close(ctx).
//
// Usage:
//
//	srv, err := natsbus.Open(natsbus.Options{Logger: logger})
//	pub := natsbus.NewPublisher(log, srv, natsbus.PublisherOptions{Cursor: "natsbus"})
//	err = pub.Start(ctx)
//	...
//	err = pub.Close(ctx)
//	err = srv.Close(ctx)
package natsbus
