// Package jupyterapi serves the part of the Jupyter Server REST and
// WebSocket API that frontends use (JupyterLab through a Jupyter Server in
// gateway mode, VS Code's "existing Jupyter server", any
// @jupyterlab/services client), on the server's own port, for the very
// kernels the agents use.
//
// It is an edge: it reads through the interfaces it declares (Kernels,
// Channels, Contents; cmd/mcp-jupyter implements them on the actor system,
// the read models and the notebook actor) and never imports an actor or the
// log. Authentication is the caller's: mount Handler behind mcpserver.Guard,
// which puts the principal in the request context; every backend call
// carries it and the backend decides access.
//
// Files: server.go (routing, errors, ids), kernels.go (/api, /api/status,
// /api/kernelspecs, /kernelspecs/, /api/kernels, /api/sessions, /api/me),
// channels*.go (/api/kernels/<id>/channels: both framings, fan-out, resume),
// contents*.go (/api/contents and its checkpoints).
//
// Ids: kernels are shown in UUID form (events.UUIDForm) and accepted in both
// forms (events.CanonicalID); the backend sees the canonical form.
//
// Channels (channels.go, channels_conn.go, channels_translate.go, wire.go):
// each WebSocket has a reader (frontend requests become Channels calls), a
// feed pump (the kernel's durable events, translated) and a writer, with
// bounded queues; IOPub goes to every connection, replies to the session
// that asked; a (kernel, session_id) cursor makes a reconnect lossless.
// The caller's duties: call CloseChannels before closing what the feeds
// ride on (the /ws hub): it drains every connection and closes it with
// 1001.
package jupyterapi
