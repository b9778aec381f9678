// Package system is the root of mcp-jupyter's actors: it spawns a kernel
// actor and its scheduler for every kernel, finds them by id, recovers every
// kernel the log knows of when the server starts, and offers the Go API the
// edges call (each call is a message with a timeout, never shared state).
package system
