package main

import (
	"encoding/json"
	"fmt"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
)

// Probe paths. NB: the Dockerfile's HEALTHCHECK and the Kubernetes
// manifests in docs/kubernetes point at them (tests check it).
const (
	pathHealth  = "/health"
	pathLivez   = "/livez"
	pathReadyz  = "/readyz"
	pathMetrics = "/metrics"
	pathMCP     = "/mcp"
	// pathJupyterAPI is the Jupyter Server API's version probe (the rest
	// of that API is under /api/ and /kernelspecs/, behind the token).
	pathJupyterAPI = "/api"
	// pathConsole is the web console's page (infra/console; no token).
	pathConsole = "/ui/"
)

// servedPaths lists every path the HTTP server answers.
var servedPaths = []string{pathHealth, pathLivez, pathReadyz, pathMetrics, pathMCP, pathJupyterAPI, pathConsole}

// livenessTimeout bounds the actor system's answer to one ping of the
// probe monitor.
const livenessTimeout = 2 * time.Second

// routes registers the probes, /metrics and /mcp. They answer from the first
// moment the port is open: /readyz and /mcp say what the start is doing
// until it is done.
func (c *core) routes(mux *http.ServeMux) {
	// NB: /health reads nothing: the process serving HTTP is its answer
	// (the old deployment matches this body).
	mux.HandleFunc("GET "+pathHealth, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+pathLivez, c.livez)
	mux.HandleFunc("GET "+pathReadyz, c.readyz)
	mux.Handle("GET "+pathMetrics, promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.Handle(pathMCP, c.whenReady(func() http.Handler { return c.mcp.HTTPHandler() }))
	c.oauthRoutes(mux)
	// The read API of the log (`mcp-jupyter events` against a running
	// server), the WebSocket stream and the assets go through the same
	// authentication as /mcp: the principal lands in the request context.
	guard := func() mcpserver.Guard {
		return mcpserver.Guard{Auth: c.authn, AllowedHosts: splitList(c.cfg.AllowedHosts), Logger: c.logger.With("component", "http"),
			OAuth: c.oauth, Need: auth.ScopeRead}
	}
	events := c.whenReady(func() http.Handler {
		g := guard()
		g.EndOnRevoke = true // a follower (`events tail -f`) stops with its token
		return g.Wrap(eventsHandler(c.eventsCtx, c.log, c.edgeAccess().eventFilter))
	})
	mux.Handle("GET /events", events)
	mux.Handle("GET /events/", events)
	mux.Handle("GET /ws", c.whenReady(func() http.Handler {
		g := guard()
		g.QueryToken = true
		return g.Wrap(c.live.hub.Handler())
	}))
	mux.Handle("/assets/", c.whenReady(func() http.Handler {
		g := guard()
		g.QueryToken = true
		return g.Wrap(c.live.assetsHandler())
	}))
	// The Jupyter Server API (jupyter_api.go): GET /api answers its version
	// without a token, as jupyter_server does; the rest takes the token as
	// "Authorization: token|bearer" or ?token= (no cookies, so no XSRF).
	mux.Handle("GET "+pathJupyterAPI, jupyterapi.VersionHandler(jupyterAPIVersion))
	api := sync.OnceValue(func() http.Handler { return c.jupyterAPI().Handler() })
	jupyter := c.whenReady(func() http.Handler {
		g := guard()
		g.QueryToken = true
		return g.Wrap(api())
	})
	mux.Handle("/api/", jupyter)
	// NB: the same Server: a channels WebSocket ends (4001) when its token
	// is revoked or expires, as /ws.
	mux.Handle("GET /api/kernels/{id}/channels", c.whenReady(func() http.Handler {
		g := guard()
		g.QueryToken = true
		g.EndOnRevoke = true
		return g.Wrap(api())
	}))
	mux.Handle("/kernelspecs/", jupyter)
	// The web console (infra/console, console.go): the page and its scripts
	// hold nothing of the kernels and need no token; its API is behind the
	// guard like /mcp (the page sends the token as a bearer header).
	consoleH := sync.OnceValue(c.consoleHandler)
	// NB: "/ui/", not "GET /ui/": a method pattern there conflicts with
	// "/ui/api/" (the mux panics); Static answers 405 to anything but GET/HEAD.
	mux.Handle("/ui/", c.whenReady(func() http.Handler { return consoleH().Static() }))
	// NB: the mux itself redirects /ui to /ui/, keeping the query (?token=).
	mux.Handle("/ui/api/", c.whenReady(func() http.Handler {
		g := guard()
		return g.Wrap(consoleH().API())
	}))
}

// whenReady answers 503 with the stage until the core is ready, then
// serves the handler build makes (once, when first needed).
func (c *core) whenReady(build func() http.Handler) http.Handler {
	var once sync.Once
	var h http.Handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.RLock()
		ready, stage := c.stage == stageReady || c.stage == stageDraining, c.stage
		c.mu.RUnlock()
		if !ready {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the server is starting (" + stage + "); retry when " + pathReadyz + " says ready"})
			return
		}
		once.Do(func() { h = build() })
		h.ServeHTTP(w, r)
	})
}

// livez: the process serves HTTP, and the actor system answered a ping
// (the probe monitor's, every pingEvery) within livenessStale. It reads
// c.probes only: never the log, the actors or c.mu.
func (c *core) livez(w http.ResponseWriter, r *http.Request) {
	if err := c.probes.live(time.Now()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failing", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "stage": *c.probes.stage.Load()})
}

// readiness is /readyz's body.
type readiness struct {
	Status string            `json:"status"` // ready or not ready
	Reason string            `json:"reason,omitempty"`
	Stage  string            `json:"stage"`
	Events uint64            `json:"events"`
	Checks map[string]string `json:"checks"` // replay, log, disk, nats, kernels: "ok" or why not
}

// readiness works out: replay finished and the actors recovered, the
// log writable (not failed, not closed), the disk not full (new work would
// be refused: --min-free-disk), NATS connected, the kernel
// launcher usable (a kernelspec whose Python imports ipykernel and dill).
func (c *core) readiness() readiness {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rd := readiness{Stage: c.stage, Checks: map[string]string{}}
	fail := func(check, why string) {
		rd.Checks[check] = why
		if rd.Reason == "" {
			rd.Reason = check + ": " + why
		}
	}
	switch {
	case c.runner == nil:
		fail("replay", c.stage)
	default:
		select {
		case <-c.runner.Ready():
			if c.stage == stageReady {
				rd.Checks["replay"] = "ok"
			} else {
				fail("replay", c.stage)
			}
		default:
			applied, target := c.runner.Progress()
			fail("replay", fmt.Sprintf("replaying the event log: %d of %d events applied", applied, target))
		}
	}
	if c.log == nil {
		fail("log", "not open yet")
	} else if err := c.log.Healthy(); err != nil {
		fail("log", err.Error())
	} else {
		rd.Checks["log"] = "ok"
		rd.Events = c.log.Last()
	}
	if c.log != nil {
		// NB: CheckSpace looks again (statfs) only while short of space, so
		// a probe sees space come back at once.
		if err := c.log.CheckSpace(); err != nil {
			fail("disk", err.Error())
		} else {
			rd.Checks["disk"] = "ok"
		}
	}
	switch {
	case c.nats == nil:
		fail("nats", "not started yet")
	case !c.nats.Conn().IsConnected():
		fail("nats", "the embedded NATS connection is "+c.nats.Conn().Status().String())
	case c.pub == nil:
		fail("nats", "the event publisher is not started yet")
	case c.pub.Healthy() != nil:
		fail("nats", c.pub.Healthy().Error()) // NB: a stopped publisher means subscribers miss events
	default:
		rd.Checks["nats"] = "ok"
	}
	if c.cfg.Cluster.Enabled() {
		if why := c.clusterReadiness(); why != "" {
			fail("cluster", why)
		} else {
			rd.Checks["cluster"] = "ok"
		}
		// NB: a stopped publisher keeps this node's events from the others
		// (a takeover would miss them); a stopped importer leaves this
		// node's answers about the cluster behind.
		switch {
		case c.history == nil || c.importer == nil:
			fail("history", "the cluster history is not started yet")
		case c.history.Healthy() != nil:
			fail("history", c.history.Healthy().Error())
		case c.importer.Healthy() != nil:
			fail("history", c.importer.Healthy().Error())
		default:
			rd.Checks["history"] = "ok"
		}
	}
	switch {
	case !c.checked:
		fail("kernels", "checking the kernelspecs and their Python")
	case c.python != nil:
		fail("kernels", c.python.Error())
	default:
		rd.Checks["kernels"] = "ok"
	}
	rd.Status = "ready"
	if rd.Reason != "" {
		rd.Status = "not ready"
	}
	return rd
}

// readyz answers the probe monitor's last run of the readiness checks
// (every readinessEvery, and at once on a change of stage): it reads
// c.probes only, never the log, the actors or c.mu.
func (c *core) readyz(w http.ResponseWriter, r *http.Request) {
	rd := c.probes.ready(time.Now())
	code := http.StatusOK
	if rd.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

// kernelIDs are the kernels the server knows (none before the start).
func (c *core) kernelIDs() []string {
	c.mu.RLock()
	sys := c.sys
	c.mu.RUnlock()
	if sys == nil {
		return nil
	}
	return sys.KernelIDs()
}

// idLike matches what names an agent's work in a message: event-log ids
// (26-character ULIDs) and stream names (kernel/<id>, execution/<id>,
// notebook/<path>, checkpoint/<name>, asset/<sha256>).
var idLike = regexp.MustCompile(`\b(kernel|execution|notebook|checkpoint|asset)/[^\s"',;:)]+|\b[0-9a-hjkmnp-tv-z]{26}\b`)

// withoutIDs is rd as /readyz shows it: what is wrong, said without the ids
// of kernels, executions, notebooks or checkpoints (the probe has no token:
// whoever reaches the port must not learn what agents work on).
func (rd readiness) withoutIDs(kernels []string) readiness {
	scrub := func(s string) string {
		for _, id := range kernels {
			if id != "" {
				s = strings.ReplaceAll(s, id, "<kernel>")
			}
		}
		return idLike.ReplaceAllStringFunc(s, func(m string) string {
			if stream, _, ok := strings.Cut(m, "/"); ok {
				return stream + "/<id>"
			}
			return "<id>"
		})
	}
	out := rd
	out.Reason = scrub(rd.Reason)
	out.Checks = make(map[string]string, len(rd.Checks))
	for k, v := range rd.Checks {
		out.Checks[k] = scrub(v)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
