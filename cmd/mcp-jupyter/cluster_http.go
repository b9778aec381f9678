package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
)

// The HTTP side of the routing: a request about a kernel another node owns
// (the Jupyter API's /api/kernels/<id>…, its channels WebSocket included,
// and the console's steering of a kernel or an execution) goes to that
// node through a tunnel (natsbus.DialNode), by a reverse proxy whose
// connections are pooled per node. The owner serves the tunnel listener
// with its own handler, authentication included: the credential travels
// with the request and is checked again there. Everything else (/ws,
// /events, lists, the history) answers here: the history is the cluster's.

// tunnelledKey marks a request that arrived through a tunnel: it is
// answered here, never routed again (no ping-pong while ownership moves).
type tunnelledKey struct{}

// routeSuffix is the host suffix of a proxied request's URL: the node name
// before it is what the transport dials.
const routeSuffix = ".node.mcp-jupyter.invalid"

// routedHTTP wraps next: requests about a kernel another node owns go to it.
func (c *core) routedHTTP(next http.Handler) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			node, _ := pr.In.Context().Value(routeNodeKey{}).(string)
			pr.SetURL(&url.URL{Scheme: "http", Host: node + routeSuffix})
			pr.Out.Host = pr.In.Host // NB: the owner checks Host as this node did
			pr.SetXForwarded()
			// The principal this node authenticated (the guard below) acts
			// on the owner: the credential itself may be unknown there
			// (principals.json is each node's).
			pr.Out.Header.Del(hdrRoutedPrincipal)
			if p, ok := auth.FromContext(pr.In.Context()); ok {
				if b, err := json.Marshal(p); err == nil {
					pr.Out.Header.Set(hdrRoutedPrincipal, string(b))
				}
			}
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				host, _, _ := net.SplitHostPort(addr)
				node, ok := strings.CutSuffix(host, routeSuffix)
				st := c.route.state.Load()
				if !ok || st == nil {
					return nil, fmt.Errorf("no route to %s", addr)
				}
				return st.router.DialNode(ctx, node)
			},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			// NB: no response header timeout: a long poll or an execute's
			// wait is the owner's to bound, as it is for a direct client.
		},
		FlushInterval: -1, // streams (SSE, chunked) pass as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			node, _ := r.Context().Value(routeNodeKey{}).(string)
			st := c.route.state.Load()
			self, lease := "", time.Duration(0)
			if st != nil {
				self, lease = st.router.Node(), st.lease
			}
			msg := fmt.Sprintf("%s %s concerns a kernel node %s owns, and the request could not be passed to it: %v.", r.Method, r.URL.Path, node, err)
			var unreachable *natsbus.NodeUnreachableError
			if errors.As(err, &unreachable) {
				msg = fmt.Sprintf("%s %s concerns a kernel node %s owns, which cannot be reached from node %s: %v. "+
					"Retry in a few seconds: if node %s is down, another node takes its kernels over within %s (the ownership lease).",
					r.Method, r.URL.Path, node, self, unreachable.Err, node, lease)
			}
			c.logger.Warn("routed HTTP request failed", "component", "cluster", "node", node, "path", r.URL.Path, "err", err)
			w.Header().Set("Retry-After", "2")
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": msg})
		},
	}
	// NB: the caller is checked here too, so that nobody without a
	// credential opens tunnels; the owner checks again what it may do.
	// Built at the first routed request: routing starts after open.
	guarded := sync.OnceValue(func() http.Handler {
		return mcpserver.Guard{Auth: c.authn, AllowedHosts: splitList(c.cfg.AllowedHosts), Logger: c.logger.With("component", "http"),
			OAuth: c.oauth, Need: auth.ScopeRead, QueryToken: true}.Wrap(proxy)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := c.route.state.Load()
		if st == nil || r.Context().Value(tunnelledKey{}) != nil {
			next.ServeHTTP(w, r)
			return
		}
		node := c.route.httpOwner(st, r)
		if node == "" || node == st.router.Node() {
			next.ServeHTTP(w, r)
			return
		}
		guarded().ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routeNodeKey{}, node)))
	})
}

type routeNodeKey struct{}

// hdrRoutedPrincipal carries, through a tunnel, the principal the entry
// node authenticated. NB: believed only on a tunnel (routedAuthenticator):
// only the cluster's own NATS connections can open one.
const hdrRoutedPrincipal = "Mcp-Routed-Principal"

// routedAuthenticator is first in the chain of every authenticated route:
// a request that came through a tunnel acts as the principal the entry
// node authenticated, as a routed tool call does (cluster_route.go).
// Anything else passes on to the tokens and OAuth.
type routedAuthenticator struct{}

func (routedAuthenticator) Authenticate(r *http.Request) (auth.Principal, error) {
	h := r.Header.Get(hdrRoutedPrincipal)
	if h == "" || r.Context().Value(tunnelledKey{}) == nil {
		return auth.Principal{}, auth.ErrNoCredentials
	}
	var p auth.Principal
	if err := json.Unmarshal([]byte(h), &p); err != nil || p.Name == "" {
		return auth.Principal{}, fmt.Errorf("%w: the routed request's principal is unreadable", auth.ErrRejected)
	}
	if !p.Expires.IsZero() && time.Now().After(p.Expires) {
		return auth.Principal{}, fmt.Errorf("%w: the credentials of %q expired", auth.ErrRejected, p.Name)
	}
	return p, nil
}

// httpOwner is the node a request must go to: "" for here.
func (r *clusterRoute) httpOwner(st *routeState, req *http.Request) string {
	p := req.URL.Path
	kernel := ""
	switch {
	case strings.HasPrefix(p, "/api/kernels/"):
		kernel, _, _ = strings.Cut(strings.TrimPrefix(p, "/api/kernels/"), "/")
	case strings.HasPrefix(p, "/ui/api/kernels/"):
		rest := strings.TrimPrefix(p, "/ui/api/kernels/")
		id, what, _ := strings.Cut(rest, "/")
		// NB: steering (interrupt, restart, checkpoints); the kernel's
		// executions are history: answered here.
		if what != "executions" {
			kernel = id
		}
	case strings.HasPrefix(p, "/ui/api/executions/") && strings.HasSuffix(p, "/cancel"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/ui/api/executions/"), "/cancel")
		kernel = r.kernelOfExecution(id)
	}
	if kernel == "" {
		return ""
	}
	if n, ok := st.owner(kernel); ok {
		return n
	}
	// The Jupyter API names kernels in their UUID form.
	if id, ok := events.FromUUIDForm(kernel); ok {
		if n, ok := st.owner(id); ok {
			return n
		}
	}
	return ""
}

// serveTunnels serves this node's handler to the requests other nodes
// route here, until closeRouting; served is closed when Serve returned.
func (c *core) serveTunnels(r *natsbus.Router) (_ *http.Server, served <-chan struct{}, _ error) {
	l, err := r.ListenTunnels()
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: c.httpHandler(), ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, tunnelledKey{}, true)
		}}
	done := make(chan struct{})
	c.wg.Add(1)
	go func() { // owned: closeRouting shuts it down and waits for done
		defer c.wg.Done()
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.logger.Error("routed HTTP: the tunnel listener stopped", "component", "cluster", "err", err)
		}
	}()
	return srv, done, nil
}
