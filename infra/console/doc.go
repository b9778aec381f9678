// Package console is the web console the binary serves at /ui: a page,
// embedded with go:embed (no CDN, no build step), that shows what every
// kernel and execution is doing now (live from /ws with since= resume),
// what they were at any past moment (the server's own replay of the
// event log), and lets a person steer them (interrupt, restart, cancel,
// checkpoints), each step a durable event attributed to that person.
//
// Two handlers, mounted by cmd/mcp-jupyter:
//
//   - Static (GET /ui/...): the shell, its scripts and styles, and
//     /ui/vendor/plotly.js (Debian's python3-plotly, read from disk). They
//     hold nothing of the kernels and need no token; the page takes the
//     token from ?token= once, keeps it in the tab (sessionStorage) and
//     drops it from the address bar.
//   - API (/ui/api/...): JSON the page reads and the steering commands it
//     sends, behind mcpserver.Guard (bearer token; the principal is in the
//     request context and every read and command is checked with it, as
//     MCP calls are).
//
// What the API reads and does comes through small interfaces (Source,
// Steerer, Replayer) that cmd/mcp-jupyter implements on the MCP backend,
// the read models and the log: this package imports no actor and no log.
package console
