package mcpserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Defaults for Options fields left zero.
const (
	DefaultOutputBudget   = 3000
	DefaultImageBudget    = 1 << 20
	DefaultTimeout        = 25 * time.Second
	DefaultMaxTimeout     = 600 * time.Second
	DefaultMaxWait        = 55 * time.Second
	DefaultMaxCodeBytes   = 1 << 20
	defaultServerVersion  = "dev"
	defaultServerInstruct = "Run code in Jupyter kernels. Start with list_kernels (or start_kernel), then execute. " +
		"An execute that outlives its timeout keeps running: call get_execution with its execution_id to follow it. " +
		"Kernel state survives between calls, and executions survive a server restart."
)

// Options configure a Server. Zero fields take the defaults above.
type Options struct {
	// Version is reported to clients as the server version.
	Version string
	// OutputBudget is how many characters of one text output go into a
	// reply; the rest is stored in AssetDir and linked.
	OutputBudget int
	// ImageBudget is the largest PNG/JPEG in bytes sent inline; larger
	// images are stored in AssetDir and linked.
	ImageBudget int
	// AssetDir is where full texts, HTML, SVG, Plotly figures and large
	// images are written as content-addressed files. Empty: they are cut
	// or left out, and the reply says so.
	AssetDir string
	// Assets, when set, stores and serves the assets instead of AssetDir
	// (actors/lease: leased, collected by the GC).
	Assets AssetStore
	// Logger receives the edge's diagnostics; nil discards them.
	Logger *slog.Logger
	// DefaultTimeout is execute's timeout_s when the agent gives none.
	DefaultTimeout time.Duration
	// MaxTimeout is the largest timeout_s execute accepts.
	MaxTimeout time.Duration
	// MaxWait is the largest wait_s get_execution accepts.
	MaxWait time.Duration
	// MaxCodeBytes is the largest code execute accepts.
	MaxCodeBytes int
	// Auth decides who an HTTP request is (see Guard); its principal
	// reaches the tool handlers' context. Nil: Token alone, as the admin.
	Auth auth.Authenticator
	// Token is the bearer token HTTPHandler requires when Auth is nil.
	// Both empty: every HTTP request is refused (fail closed); see
	// LoadOrCreateToken.
	Token string
	// OAuth, when set, makes HTTP refusals point MCP clients at the
	// protected resource metadata (see Guard).
	OAuth *ResourceServer
	// MaxRequestBytes bounds a request body on HTTPHandler (413 beyond it);
	// zero means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// App, when set, is the MCP Apps view of execute and get_execution
	// (apps.go): the extension is advertised, both tools name the view, and
	// callers that render MCP Apps get the raw outputs in the result's _meta.
	App *AppView
	// AllowedHosts are accepted as Host and Origin in addition to
	// localhost, 127.0.0.1 and [::1] (any port). An entry without a port
	// matches any port.
	AllowedHosts []string
	// RoundTripKey seals the request states of multi round-trip results
	// (roundtrip.go). Give one that survives a restart (cmd/mcp-jupyter
	// derives it from the MCP token), or an input() answered after a
	// restart is refused; nil: random per process.
	RoundTripKey []byte
	// Policy, when set, is the --policy file's rules (policy.go): tools
	// and code that need the client's confirmation or are refused.
	Policy *Policy
	// Decisions records each policy decision as a PolicyDecided event;
	// required with Policy.
	Decisions PolicyRecorder
	// MaxSubscriptionsPerSession bounds the executions one session (or
	// one subscriptions/listen stream) follows; MaxSubscriptions those the
	// whole server follows, MaxSubscriptionsPerPrincipal those one
	// principal follows over all its sessions and listens, reservations
	// included (so one token cannot take the whole server's bound)
	// (subscriptions.go). Zero: the defaults.
	MaxSubscriptionsPerSession   int
	MaxSubscriptions             int
	MaxSubscriptionsPerPrincipal int
	// Forward, in cluster mode, sends a call for a kernel another node
	// owns to that node (forward.go); nil: every call runs here.
	Forward Forwarder
}

func (o Options) withDefaults() Options {
	if o.Version == "" {
		o.Version = defaultServerVersion
	}
	if o.OutputBudget <= 0 {
		o.OutputBudget = DefaultOutputBudget
	}
	if o.ImageBudget <= 0 {
		o.ImageBudget = DefaultImageBudget
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = DefaultTimeout
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.MaxCodeBytes <= 0 {
		o.MaxCodeBytes = DefaultMaxCodeBytes
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if len(o.RoundTripKey) == 0 {
		o.RoundTripKey = randomKey()
	}
	return o
}

// Server is the MCP edge: the tools and the asset resources over a Backend.
// It holds no execution state of its own: every handle an agent keeps
// (kernel_id, execution_id) is the core's durable id.
type Server struct {
	backend Backend
	opts    Options
	log     *slog.Logger
	mcp     *server.MCPServer
	render  renderConfig
	// notebooks is AddNotebookTools' backend: --policy reads the cells
	// run_cell and run_all would run (policy_edge.go).
	notebooks NotebookBackend

	http *server.StreamableHTTPServer
	// subs: who follows which execution:// (subscriptions.go).
	subs *subscriptions
}

// New builds the MCP server with every tool and the asset:// resource
// template registered.
func New(backend Backend, opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		backend: backend,
		opts:    opts,
		log:     opts.Logger,
		render: renderConfig{TextBudget: opts.OutputBudget, ImageBudget: opts.ImageBudget,
			Assets: assetStore{dir: opts.AssetDir, managed: opts.Assets}},
	}
	s.subs = newSubscriptions(s, opts.MaxSubscriptionsPerSession, opts.MaxSubscriptions, opts.MaxSubscriptionsPerPrincipal)
	s.mcp = server.NewMCPServer("mcp-jupyter", opts.Version, append([]server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(true, false), // subscribe: execution:// (subscriptions.go)
		server.WithHooks(s.subs.hooks()),
		server.WithRecovery(),
		server.WithResourceRecovery(),
		server.WithInstructions(defaultServerInstruct),
		// Who calls: tools the caller's scopes do not allow are not listed
		// and are refused when called (scopes.go).
		server.WithToolFilter(listableTools),
		server.WithToolHandlerMiddleware(requireScope),
		// Arguments under the names agents guess, and none the tool
		// does not take (args.go).
		server.WithToolHandlerMiddleware(s.checkArguments),
		// Cluster: a call for a kernel another node owns runs there
		// (forward.go), its policy and handler included.
		server.WithToolHandlerMiddleware(s.forward),
		// --policy (policy_edge.go), inside requireScope.
		server.WithToolHandlerMiddleware(s.applyPolicy),
		server.WithResourceHandlerMiddleware(resourceCaller),
	}, appServerOptions(opts.App)...)...)
	s.addKernelTools()
	s.addExecutionTools()
	s.addAppResource()
	s.mcp.AddResourceTemplates(s.render.Assets.resourceTemplate(), s.executionResourceTemplate())
	s.http = server.NewStreamableHTTPServer(s.mcp,
		server.WithEndpointPath("/mcp"),
		// NB: Guard checks Host on every request, loopback or not, against
		// our allow-list; mcp-go's own check would refuse configured hosts.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPLogger(s.log),
		// NB: mcp-go derives the tool handlers' context from the request's
		// today; carried across explicitly so that a change there cannot
		// drop the principal Guard put in.
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			if p, ok := auth.FromContext(r.Context()); ok {
				return auth.WithPrincipal(ctx, p)
			}
			return ctx
		}),
	)
	return s
}

// MCP returns the underlying mcp-go server (for in-process clients and
// other transports).
func (s *Server) MCP() *server.MCPServer { return s.mcp }

// ServeStdio serves one client over in and out until ctx is cancelled or in
// ends. NB: out is the protocol channel; nothing else may write to it.
// The client is the local user who started the server: its tool calls run
// as auth.Admin().
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	stdio := server.NewStdioServer(s.mcp)
	stdio.SetContextFunc(func(ctx context.Context) context.Context { return auth.WithPrincipal(ctx, auth.Admin()) })
	stdio.SetErrorLogger(slog.NewLogLogger(s.log.Handler(), slog.LevelError))
	return stdio.Listen(ctx, in, out)
}

// HTTPHandler returns the Streamable HTTP transport, guarded by the bearer
// token and the Host/Origin checks (see Guard), its request bodies bounded
// by MaxRequestBytes (see BodyLimit). The caller mounts it at /mcp.
func (s *Server) HTTPHandler() http.Handler {
	limited := BodyLimit{Max: s.opts.MaxRequestBytes, JSONRPC: true, Setting: "--max-request-bytes", Logger: s.log}.Wrap(s.http)
	return Guard{Auth: s.opts.Auth, Token: s.opts.Token, EndOnRevoke: true, OAuth: s.opts.OAuth, AllowedHosts: s.opts.AllowedHosts, Logger: s.log}.Wrap(limited)
}

// Close stops the resource subscriptions' watchers and ends the HTTP
// transport's open sessions. The caller shuts down its own http.Server.
// Close is idempotent.
func (s *Server) Close(ctx context.Context) error {
	return errors.Join(s.subs.close(ctx), s.http.Shutdown(ctx))
}
