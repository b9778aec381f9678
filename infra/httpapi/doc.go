// Package httpapi holds mcp-jupyter's plain HTTP endpoints: the probes a
// supervisor (Docker HEALTHCHECK, Kubernetes, systemd) polls.
//
// # Contract
//
//  1. /health and /livez answer 200 {"status":"ok"} while the process
//     serves HTTP at all.
//  2. /readyz answers 200 {"status":"ready"} when the ready function returns
//     nil, otherwise 503 {"status":"not ready","reason":"..."}, the reason
//     being the function's error text.
//  3. Handlers never block: ready must be cheap and non-blocking.
//
// Usage:
//
//	mux := http.NewServeMux()
//	httpapi.Probes(mux, func() error { ... })
package httpapi
