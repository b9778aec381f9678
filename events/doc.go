// Package events is the contract of mcp-jupyter's durable history: the
// envelope every state change travels in, the catalog of event types, and the
// binary record format the log stores.
//
// # The contract
//
//  1. Every event is a past-tense fact (KernelStarted, ExecutionQueued) with an
//     explicit type string and schema version listed in registry.go. Type
//     strings and versions live on disk and on NATS. NB: they must not change,
//     and retired ones are never reused.
//  2. The envelope (sequence, time, stream, kernel, node, type, version) is
//     filled in by the log at append time. Producers hand the log Drafts.
//  3. A record that does not decode, fails its checksum, or carries a type or
//     version this binary does not know is a *DecodeError naming the sequence
//     and how to inspect it. Nothing is skipped silently and nothing panics.
//  4. Additive, optional payload fields keep the version. A breaking change
//     bumps the version and adds an upcaster in upgrade.go, so older records
//     keep decoding.
//
// # JSON form (public API)
//
// Every event prints as one JSON object for people and programs (events tail
// --json, the WebSocket edge, NATS):
//
//	{"seq":42,"time":"2026-11-27T12:00:00.000001Z","stream":"execution/01J...",
//	 "kernel":"01J...","node":"host-1a2b","type":"ExecutionQueued","version":1,
//	 "payload":{...}}
//
// # NATS subjects (public API)
//
//	mcpjupyter.ev.<kernel id or "-">.<stream kind>.<stream id>.<type>
//
// so that one wildcard selects all events of one kernel
// (mcpjupyter.ev.<kernel>.>), all executions finishing
// (mcpjupyter.ev.*.execution.*.ExecutionFinished) or all checkpoint
// rejections (mcpjupyter.ev.*.checkpoint.*.CheckpointRejected). See Subject.
//
// An event whose JSON form is too large for NATS goes out on its subject as
// a reference (header Mcp-Ref: /events/<seq>; body: the envelope without
// the payload, plus "size" and "ref"): fetch it whole from the server's
// /events API (docs/nats.md, natsbus.Reference).
//
// In a cluster (docs/cluster.md) every node publishes there only the events
// it wrote, and also its records, raw (the record format above), on the
// replicated JetStream stream MCPJUPYTER_HISTORY:
//
//	mcpjupyter.history.<node>   headers Nats-Msg-Id <node>:<seq>, Mcp-Node, Mcp-Seq
//
// Each node imports the other nodes' kernel/, execution/ and server/
// records into its own log with a new sequence, keeping their envelope
// (Node names the writer): a node's log holds the whole cluster's history
// of those streams, in the stream's order.
package events
