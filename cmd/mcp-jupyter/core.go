package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/actors/checkpoint"
	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/console"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/fault"
	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
	"github.com/mcp-jupyter/mcp-jupyter/projections/executions"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/projections/restores"
)

// core is what serve and stdio share: the log, the read models, the actors
// and the MCP edge. open builds it in dependency order; close tears it down
// in reverse (edges first, the log last). The probes read it while open
// runs: the fields they read are behind mu.
type core struct {
	cfg config
	// confirmMu guards confirming: the kernels whose imported KernelAdopted
	// waits for the leases' confirmation (takeover.go disownConfirmed).
	confirmMu  sync.Mutex
	confirming map[string]bool
	logger     *slog.Logger
	reg        *prometheus.Registry
	metrics    *metrics.Metrics
	procs      *procTable

	// probes is what /health, /livez and /readyz read (probestate.go);
	// stopProbes ends its monitor.
	started time.Time // when newCore ran: the Jupyter API's /api/status "started"

	probes     *probeState
	stopProbes context.CancelFunc
	// beforeCommit is the log's test hook (eventlog.Options.BeforeCommit):
	// tests set it between newCore and open to hold appends.
	beforeCommit func()
	// restoreTimeout bounds one kernel's restore (restore.go; 0:
	// restoreTimeout); tests set it between newCore and open.
	restoreTimeout time.Duration

	mu       sync.RWMutex
	stage    string // what open is doing; "ready" once done
	log      *eventlog.Log
	runner   *projections.Runner
	queue    *queue.Model
	execs    *executions.Model
	kernels  *kernels.Model
	floors   *projections.Floors // what retention must not delete (retention.go)
	lines    cursorFloor         // the event lines follower's position
	sys      *system.System
	launcher *jupyter.Launcher
	pool     *jupyter.Pool // --prewarm's kernels; nil without it
	mcp      *mcpserver.Server
	back     *backend
	token    string
	nats     *natsbus.Server
	pub      *natsbus.Publisher
	history  *natsbus.HistoryPublisher // cluster mode (cluster_history.go)
	importer *natsbus.Importer         // cluster mode
	// route is the cluster's routing (cluster_route.go): it forwards
	// nothing until openRouting ran (cluster mode only).
	route *clusterRoute
	// own is cluster mode's kernel ownership (cluster_owners.go); nil on a
	// single server. stopOwnership ends its heartbeat and takeovers.
	own           *kernelOwnership
	stopOwnership context.CancelFunc
	ckpt          *checkpoint.Client
	// clusterCkpt is the cluster's copy of the checkpoints (checkpoint_cluster.go); zero on a single server.
	clusterCkpt clusterCheckpoints
	auto        autoCheckpoints // checkpoint_auto.go
	nbs         *notebooks
	live        *live
	jupyter     *jupyterapi.Server // the Jupyter Server API, once built (jupyter_api.go)
	console     *console.Handler   // the web console, once built (console.go)
	startSeq    uint64             // the last event before this process started serving (jupyter_channels.go)
	python      error              // the kernel launcher's check; nil when usable
	checked     bool               // the check has finished
	// serverLock is held from before the first kernel starts to the end
	// of close: the kernels' guards end no kernel while it is (kernelguard.go).
	serverLock *guard.Lock

	// principals is the data dir's token directory (the admin token and
	// principals.json, reloaded on change); authn is the chain every
	// authenticated route goes through (principals first, then OAuth).
	principals *auth.TokenDirectory
	authn      auth.Chain

	// oidc and oauth are --oidc-issuer's (oidc.go); nil without it.
	oidc    *auth.OIDC
	oauth   *mcpserver.ResourceServer
	oidcErr error

	// eventsCtx ends the /events followers (`events tail -f`) at shutdown.
	eventsCtx  context.Context
	stopEvents context.CancelFunc

	ready     chan struct{} // closed once replay finished and actors recovered
	checkDone chan struct{} // closed when the launcher check finished
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Stages open goes through, shown by /readyz until ready.
const (
	stageOpening    = "opening the event log"
	stageReplaying  = "replaying the event log"
	stageRecovering = "recovering kernels"
	stageReady      = "ready"
	stageDraining   = "shutting down: finishing running executions, accepting no new work"
)

// newCore allocates a core and its metrics registry; open starts it.
func newCore(cfg config, logger *slog.Logger) *core {
	ectx, stop := context.WithCancel(context.Background())
	c := &core{cfg: cfg, logger: logger, reg: prometheus.NewRegistry(), procs: newProcTable(), started: time.Now(),
		stage: stageOpening, ready: make(chan struct{}), checkDone: make(chan struct{}), eventsCtx: ectx, stopEvents: stop,
		probes: newProbeState(stageOpening, time.Now()), stopProbes: func() {}}
	c.procs.node = cfg.Cluster.NodeName()
	c.oidc, c.oauth, c.oidcErr = newOAuth(cfg, logger)
	// NB: forwards nothing until openRouting ran (cluster mode only).
	c.route = &clusterRoute{c: c}
	return c
}

func openCore(ctx context.Context, cfg config, logger *slog.Logger) (*core, error) {
	c := newCore(cfg, logger)
	if err := c.open(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *core) setStage(s string) {
	c.mu.Lock()
	c.stage = s
	c.mu.Unlock()
	c.probes.setStage(s)
}

// open starts everything; on error what was started is closed.
func (c *core) open(ctx context.Context) (err error) {
	cfg, logger := c.cfg, c.logger
	defer func() {
		if err != nil {
			c.close(context.Background())
		}
	}()
	if c.oidcErr != nil {
		return c.oidcErr
	}
	pctx, stopProbes := context.WithCancel(context.Background())
	c.stopProbes = stopProbes
	c.monitorProbes(pctx)
	if f := checkDataDir(cfg.DataDir); !f.OK {
		return f.err()
	}
	if f := checkResources(cfg.DataDir); f.Warn {
		logger.Warn("preflight", "component", "server", "finding", f.String())
	}
	if f := checkSandbox(cfg); !f.OK {
		return f.err()
	} else if f.Warn {
		logger.Warn("preflight", "component", "kernel", "finding", f.String())
	} else {
		logger.Info("preflight", "component", "kernel", "finding", f.String())
	}
	policy, err := loadPolicy(cfg, logger)
	if err != nil {
		return err
	}
	faults, err := fault.FromEnv()
	if err != nil {
		return err
	}
	if faults != nil {
		logger.Warn("crash injection is on: the server kills itself at a fault point (tests only)", "component", "server",
			"point", faults.Point(), "env", fault.EnvVar)
	}
	started := time.Now()
	l, err := eventlog.Open(filepath.Join(cfg.DataDir, "events"), eventlog.Options{Logger: logger.With("component", "persistence"),
		TruncatedHint: retentionHint(cfg), MinFree: cfg.MinFreeDisk, MinFreeSetting: "--min-free-disk", Faults: faultsOrNil(faults),
		BeforeCommit: c.beforeCommit, Node: cfg.Cluster.NodeName()}) // NB: "" (a single server): hostname-pid
	if err != nil {
		return fmt.Errorf("open event log: %w", err)
	}
	c.mu.Lock()
	c.log = l
	c.launcher = &jupyter.Launcher{RuntimeDir: filepath.Join(cfg.DataDir, "runtime"), DieWithServer: !cfg.KernelsOutlive,
		Logger: logger.With("component", "kernel"), Sandbox: kernelSandbox(cfg), KernelEnv: cfg.KernelEnv,
		OrphanGrace: cfg.OrphanGrace, ServerLock: serverLockPath(cfg.DataDir)}
	c.mu.Unlock()
	if err := c.holdServerLock(); err != nil { // NB: before any kernel starts or is re-attached
		return err
	}
	if err := c.openPool(); err != nil {
		return err
	}
	// The launcher check (a Python start) runs beside the replay.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(c.checkDone)
		f := checkPython(ctx, jupyter.DefaultSearchPath())
		if !f.OK {
			logger.Error("preflight", "component", "kernel", "finding", f.String())
		}
		c.mu.Lock()
		c.python, c.checked = f.err(), true
		c.mu.Unlock()
		c.probes.recheck()
	}()
	if _, err := l.Append(ctx, events.Draft{Stream: events.ServerStream(l.Node()), Payload: events.ServerStarted{Node: l.Node(), Pid: os.Getpid(), Version: version}}); err != nil {
		return fmt.Errorf("record server start: %w", err)
	}
	if err := rememberPolicyAnswers(ctx, l, policy); err != nil {
		return fmt.Errorf("read back --policy answers: %w", err)
	}
	if c.metrics, err = metrics.New(c.reg, l); err != nil {
		return err
	}
	if err = c.registerReadiness(); err != nil {
		return err
	}
	q, xm, km, rm := queue.NewModel(), executions.New(executions.Options{}, l), kernels.New(), restores.New()
	c.floors = &projections.Floors{}
	// NB: this runner is the one that truncates the log (retention.go); the
	// floors hold it back until registerFloors, at the end of open.
	// NB: in a cluster the log also holds the other nodes' records: the
	// metrics describe this node's own work only. (The process table
	// filters by node itself: another node's KernelAdopted retires this
	// node's process of that kernel, procs.go.)
	mp := projections.Projection(c.metrics.Projection())
	if node := c.cfg.Cluster.NodeName(); node != "" {
		mp = projections.WrittenBy(node, mp)
	}
	runner := projections.NewRunner(l, projections.Options{SnapshotEvery: cfg.SnapshotEvery, Logger: logger.With("component", "persistence"),
		Retention: projections.Retention{KeepEvents: cfg.RetainEvents, Floors: c.floors}},
		q, xm, km, rm, mp, c.procs)
	fctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.queue, c.execs, c.kernels, c.cancel, c.stage = q, xm, km, cancel, stageReplaying
	c.mu.Unlock()
	c.probes.setStage(stageReplaying)
	if err := runner.Start(fctx); err != nil {
		return fmt.Errorf("start read models: %w", err)
	}
	c.mu.Lock()
	c.runner = runner // NB: after Start, so /readyz reads a real target
	c.mu.Unlock()
	logger.Info("replaying the event log", "component", "persistence", "events", l.Last())
	select {
	case <-runner.Ready():
	case <-runner.Done():
		return fmt.Errorf("replay the event log: %w", runner.Wait())
	case <-ctx.Done():
		return fmt.Errorf("replay the event log: %w", ctx.Err())
	}
	_, replayed := runner.Progress()
	c.startSeq = replayed // NB: before the stage says ready (read by the Jupyter API's channels)
	replay := time.Since(started)
	logger.Info("read models ready", "component", "persistence", "replay", replay.String())
	c.metrics.Live.ObserveReplay(replay)
	c.setStage(stageRecovering)
	// Orphans of a previous run: processes the log retired that still run.
	c.metrics.Live.ZombiesReaped(reapOrphans(c.procs.Orphans(), logger))
	// Every durable event goes out on the embedded NATS server; the
	// publisher follows the log, so a slow subscriber never slows appends.
	nb, err := natsbus.Open(natsbus.Options{Listen: cfg.NATSListen, Token: cfg.NATSToken, NKeys: splitList(cfg.NATSNKeys),
		InsecureLoopback: cfg.NATSInsecureLoopback, JetStream: cfg.NATSJetStream, StoreDir: filepath.Join(cfg.DataDir, "nats"), Logger: logger.With("component", "nats"),
		Cluster: cfg.Cluster.natsCluster()})
	if err != nil {
		return fmt.Errorf("start embedded NATS: %w", err)
	}
	c.mu.Lock()
	c.nats = nb
	c.mu.Unlock()
	if err := c.registerCluster(nb); err != nil {
		return err
	}
	// NB: before the publisher: the events stream of a cluster is created
	// once the peers are there (cluster.go).
	if err := c.waitCluster(ctx, nb); err != nil {
		return err
	}
	c.setStage(stageRecovering)
	c.mu.Lock()
	c.pub = natsbus.NewPublisher(l, nb, natsbus.PublisherOptions{After: l.Last(), Cursor: "nats-publisher", Node: c.cfg.Cluster.NodeName(), Logger: logger.With("component", "nats")})
	c.mu.Unlock()
	if err := c.pub.Start(fctx); err != nil {
		return fmt.Errorf("start NATS publisher: %w", err)
	}
	if cfg.Cluster.Enabled() {
		if err := c.openHistory(ctx, fctx); err != nil {
			return err
		}
		// NB: before the actors: a kernel leased to another node is not
		// recovered here (system.Config.Owner), and this node's own leases
		// are resumed (cluster_owners.go).
		if err := c.openOwnership(ctx, nb); err != nil {
			return fmt.Errorf("open kernel ownership: %w", err)
		}
	}
	sys, err := system.Open(ctx, system.Config{Log: l, Scanner: l, Launcher: c.launcher, Logger: logger, MaxQueue: cfg.MaxQueue,
		Faults: faultsOrNil(faults), AutoRestore: cfg.AutoRestore, RestoreName: autoCheckpointName, Node: cfg.Cluster.NodeName(),
		Owner: c.leaseOwner(), Held: c.leaseHeld(), ConfirmStarted: c.confirmStarted()})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sys = sys
	c.mu.Unlock()
	c.watchHeld(sys)
	c.releaseStray()
	// Kernel dirs of kernels the log no longer holds (shut down or reaped
	// while no server ran, or a start cut short); before any new start.
	// NB: first the kernels a killed server left in its pool (their
	// markers name them), then their directories with the other stale ones.
	c.reapPool(sys.KernelIDs())
	if err := c.launcher.RemoveStale(sys.KernelIDs()); err != nil {
		logger.Warn("remove stale kernel dirs", "component", "kernel", "err", err)
	}
	if c.pool != nil {
		if err := c.pool.Start(); err != nil {
			return err
		}
	}
	token, created := cfg.Token, false
	if token == "" {
		if token, created, err = mcpserver.LoadOrCreateToken(cfg.DataDir); err != nil {
			return fmt.Errorf("load MCP token: %w", err)
		}
	}
	if created {
		fmt.Fprintf(os.Stderr, "mcp-jupyter: created the MCP bearer token (shown once; kept 0600 in %s):\n  %s\n",
			filepath.Join(cfg.DataDir, mcpserver.TokenFile), token)
		if _, port, err := net.SplitHostPort(cfg.Addr); err == nil && port != "0" {
			// NB: to the terminal (stderr), never to the log.
			fmt.Fprintf(os.Stderr, "mcp-jupyter: open the web console at:\n  %s\n", consoleURL(cfg.Addr, token))
		}
	}
	principals, err := auth.OpenTokenDirectory(auth.DirectoryOptions{DataDir: cfg.DataDir, AdminToken: token, Logger: logger.With("component", "auth")})
	if err != nil {
		return fmt.Errorf("load principals: %w", err)
	}
	// NB: routedAuthenticator answers only requests routed here through a
	// tunnel by another node of the cluster (cluster_http.go).
	authn := auth.Chain{routedAuthenticator{}, principals}
	if c.oidc != nil {
		// NB: after the principals file, which passes JWTs on.
		authn = append(authn, c.oidc)
		c.discoverOIDC(fctx)
	}
	c.mu.Lock()
	c.principals, c.authn = principals, authn
	c.mu.Unlock()
	hosts := splitList(cfg.AllowedHosts)
	lv, err := openLive(ctx, c)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.live = lv
	c.mu.Unlock()
	back := &backend{sys: sys, runner: runner, last: l.Last, space: l.CheckSpace, queue: q, execs: xm, kernels: km, restores: rm, launcher: c.launcher, pool: c.pool,
		access: access{kernels: km}, principals: auth.Store{Dir: cfg.DataDir}.List,
		older: func(id string) error { return truncatedExecution(l, id, false) }, quotas: newQuotas(cfg.MaxKernels, cfg.MaxQueuedPerPrincipal, km, q),
		own: c.own}
	srv := mcpserver.New(back, mcpserver.Options{
		Version: version, OutputBudget: cfg.OutputBudget, ImageBudget: cfg.ImageBudget,
		AssetDir: filepath.Join(cfg.DataDir, "assets"), Assets: lv.assets(c),
		Logger: logger.With("component", "mcp"), Auth: c.authn, OAuth: c.oauth, AllowedHosts: hosts, MaxRequestBytes: cfg.MaxRequestBytes,
		App: appView(cfg.PlotlyJS), RoundTripKey: roundTripKey(token),
		Policy: policy, Decisions: policyRecorder{log: l}, Forward: c.forwarder()})
	srv.AddAssetTools(lv.assets(c))
	c.mu.Lock()
	c.token, c.back, c.mcp = token, back, srv
	c.mu.Unlock()
	if cfg.Cluster.Enabled() {
		// What concerns a kernel another node owns goes there, and what
		// other nodes route here runs (cluster_route.go, cluster_http.go).
		if err := c.openRouting(nb, cfg.Cluster.Node, c.ownerOf, c.placeKernel, cfg.Cluster.Lease); err != nil {
			return fmt.Errorf("open cluster routing: %w", err)
		}
	}
	if err := c.openCheckpoints(ctx); err != nil {
		return err
	}
	nbs, err := openNotebooks(cfg.NotebookRoot, l, sys, c.launcher, c)
	if err != nil {
		return err
	}
	srv.AddNotebookTools(nbs)
	back.notebookPath = nbs.resolve
	c.mu.Lock()
	c.nbs, c.stage = nbs, stageReady
	c.mu.Unlock()
	c.probes.setStage(stageReady)
	c.lines.seq.Store(replayed)
	c.registerFloors()
	close(c.ready)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.lines.stopped.Store(true)
		if err := logEvents(fctx, l, replayed, &c.lines.seq, logger); err != nil {
			logger.Error("event lines stopped", "component", "server", "err", err)
		}
	}()
	c.startRestores(fctx)
	c.startTakeovers(fctx, l, replayed)
	c.startLeaseTakeovers()
	c.startCuller(fctx)
	c.startAutoCheckpoints(fctx)
	logger.Info("ready", "component", "persistence", "events", l.Last(), "kernels", len(sys.KernelIDs()), "replay", replay.String())
	return nil
}

// unfinished counts the executions queued or running on any kernel.
func (c *core) unfinished() int {
	n := 0
	for _, id := range c.sys.KernelIDs() {
		n += c.queue.Depth(id)
		if _, ok := c.queue.Active(id); ok {
			n++
		}
	}
	return n
}

// drain refuses new work and waits, until ctx ends, for every queued and
// running execution to finish. It returns how many were still unfinished.
// Executions left unfinished stay in the log: the next start resumes the
// queue and re-adopts the running one.
func (c *core) drain(ctx context.Context) int {
	c.setStage(stageDraining)
	c.mu.RLock()
	back, sys := c.back, c.sys
	c.mu.RUnlock()
	if back == nil || sys == nil {
		return 0
	}
	back.draining.Store(true)
	for {
		changed := c.queue.Changed() // NB: before counting, so no change is missed
		n := c.unfinished()
		if n == 0 {
			return 0
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return n
		}
	}
}

// shutdownKernels stops every kernel (with --kernels-outlive=false), each
// recorded KernelShutDown.
func (c *core) shutdownKernels(ctx context.Context) {
	if c.sys == nil {
		return
	}
	for _, id := range c.sys.KernelIDs() {
		if err := c.sys.ShutdownKernel(ctx, id, ""); err != nil && !errors.Is(err, system.ErrUnknownKernel) {
			c.logger.Warn("shut down kernel", "component", "kernel", "kernel_id", id, "err", err)
		}
	}
}

// close stops everything open started, in order; it is idempotent (an open
// that failed closes what it started, and its caller may close again).
func (c *core) close(ctx context.Context) error {
	c.closeOnce.Do(func() { c.closeErr = c.closeAll(ctx) })
	return c.closeErr
}

func (c *core) closeAll(ctx context.Context) error {
	c.stopEvents()
	c.stopProbes()
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	keep(c.closeRouting(ctx)) // NB: first: routed calls run on the edges below
	if c.mcp != nil {
		keep(c.mcp.Close(ctx))
	}
	c.mu.RLock()
	japi := c.jupyter
	c.mu.RUnlock()
	if japi != nil {
		keep(japi.CloseChannels(ctx)) // NB: before the hub: their feeds ride it
	}
	c.mu.RLock()
	ui := c.console
	c.mu.RUnlock()
	if ui != nil {
		keep(ui.Close(ctx)) // its plotly.js compression
	}
	if c.live != nil {
		keep(c.live.closeEdges(ctx))
	}
	if c.principals != nil {
		keep(c.principals.Close())
	}
	if c.nbs != nil {
		keep(c.nbs.close(ctx))
	}
	if c.ckpt != nil {
		keep(c.ckpt.Close(ctx)) // waits for a save or load in progress
	}
	if c.pool != nil {
		keep(c.pool.Close(ctx)) // NB: its kernels are nobody's: they stop with the server
	}
	keep(c.closeOwnership(ctx)) // NB: before the actors: takeovers start kernels
	if c.sys != nil {
		keep(c.sys.Close(ctx))
	}
	if c.pub != nil {
		keep(c.pub.Close(ctx))
	}
	keep(c.closeHistory(ctx))
	if c.nats != nil {
		keep(c.nats.Close(ctx))
	}
	if c.runner != nil {
		keep(c.runner.Close(ctx)) // final snapshots, before the log closes
	}
	if c.live != nil {
		keep(c.live.closeModels(ctx))
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.log != nil {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.log.Append(actx, events.Draft{Stream: events.ServerStream(c.log.Node()), Payload: events.ServerStopped{Node: c.log.Node(), Reason: "shutdown"}})
		cancel()
		if !errors.Is(err, eventlog.ErrClosed) {
			keep(err)
		}
		keep(c.log.Close())
	}
	if c.launcher != nil {
		keep(c.launcher.Close()) // stops reaping the kernels' guards; they keep guarding
	}
	keep(c.releaseServerLock())
	return first
}

// splitList splits a comma-separated setting, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// faultsOrNil keeps a nil injector a nil interface, so that production's
// fault points cost one nil check.
func faultsOrNil(f *fault.Injector) interface{ Hit(string) } {
	if f == nil {
		return nil
	}
	return f
}
