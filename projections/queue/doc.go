// Package queue is the read model of executions: for every execution its
// status and result, and for every kernel its FIFO of queued executions.
//
// It is a pure fold of execution events (Apply), used three ways with the
// same code: by the scheduler actor to rebuild its queue after a restart, by
// the projections runner to serve the MCP and WebSocket edges, and by
// `mcp-jupyter events replay` to show the queue as it was at any moment.
//
// Outputs are not held here: they are the IOPubMessageReceived events on the
// execution's own stream in the log, read with Outputs.
package queue
