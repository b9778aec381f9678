package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

var errHelp = errors.New("help shown")

// config is every setting of serve and stdio. Each flag has an environment
// variable; the flag wins.
type config struct {
	DataDir        string
	Addr           string
	LogFormat      string
	LogLevel       string
	ShutdownGrace  time.Duration
	MaxQueue       int
	OutputBudget   int
	ImageBudget    int
	AllowedHosts   string
	KernelsOutlive bool
	// AutoCheckpoint (--auto-checkpoint): after a shutdown's drain, and
	// after AutoCheckpointIdle without activity, every kernel whose state
	// changed is saved as its auto-checkpoint (checkpoint_auto.go).
	AutoCheckpoint     bool
	AutoCheckpointIdle time.Duration // 0: only at shutdown (and before a cull)
	// AutoCheckpointKeep (--auto-checkpoint-keep): the auto-checkpoint of a
	// kernel no longer running (culled, died, lost, shut down by the server)
	// is deleted once it is older than this. 0: kept for ever.
	AutoCheckpointKeep time.Duration
	// AutoRestore (--auto-restore): a kernel found gone at start is
	// relaunched under its id and its auto-checkpoint loaded (restore.go).
	AutoRestore bool
	// CullIdle (--cull-idle): kernels idle that long are checkpointed and
	// shut down (cull.go); 0: never.
	CullIdle time.Duration
	// OrphanGrace (--orphan-grace): a kernel whose server has been gone
	// that long ends itself (kernel guard); 0: kernels wait for ever.
	OrphanGrace time.Duration
	NATSListen  string
	NATSToken   string

	CheckpointEncrypt bool
	NATSNKeys         string
	NATSJetStream     bool
	NotebookRoot      string
	AssetTTL          time.Duration
	AssetGCEvery      time.Duration
	// JupyterWriteTimeout bounds one write to a channels WebSocket (jupyter_channels.go).
	JupyterWriteTimeout time.Duration
	BacklogMessages     int
	Token               string
	// MaxRequestBytes bounds an HTTP request body (413 beyond it).
	MaxRequestBytes int64
	// RetainEvents is how many of the newest events the log keeps whatever
	// happens (0: keep everything); older ones go once no reader needs them.
	RetainEvents uint64
	// SnapshotEvery is how many events apart read models are snapshotted
	// (and retention runs).
	SnapshotEvery uint64

	// NATSInsecureLoopback lets NATS clients without credentials subscribe
	// on a loopback --nats-listen.
	NATSInsecureLoopback bool
	// KernelSandbox is how hard kernels are confined (infra/sandbox).
	KernelSandbox sandbox.Mode
	// KernelEnv lists extra names (or PREFIX*) of the server's environment
	// kernels receive.
	KernelEnv []string
	// MinFreeDisk is the free space kept on the data dir's file system:
	// below it new work is refused (infra/eventlog/space.go); 0 turns the
	// check off.
	MinFreeDisk uint64
	// OIDCIssuer turns on OAuth: JWT access tokens from this issuer are
	// accepted beside the data dir's and principals' tokens.
	OIDCIssuer string
	// OIDCAudience is the "aud" those tokens must carry.
	OIDCAudience string
	// OIDCResource is the URL this server advertises as the protected
	// resource ("": the request's scheme and Host plus /mcp).
	OIDCResource string
	// MaxKernels, MaxQueuedPerPrincipal and MaxCheckpointBytes are the
	// per-principal quotas (0: none); a principal's own max_kernels
	// overrides MaxKernels.
	MaxKernels            int
	MaxQueuedPerPrincipal int
	MaxCheckpointBytes    int64
	// Prewarm is how many kernels to keep started ahead of need, per
	// kernelspec (prewarm.go); empty: no pool.
	Prewarm map[string]int
	// Policy (--policy) is the approval policy file: tools and code
	// patterns that need the client's confirmation or are refused
	// (infra/mcpserver/policy.go). Empty: no policy, every call runs.
	Policy string
	// PlotlyJS is the plotly.js the web console serves at
	// /ui/vendor/plotly.js ("" or missing: figures show their fallback).
	PlotlyJS string
	// Cluster is the cluster mode (cluster_config.go); zero: a single server.
	Cluster clusterConfig
}

type setting struct {
	name, env, def, help string
}

// settings are every flag: the server's (coreSettings), then the cluster
// mode's (cluster_config.go).
var settings = slices.Concat(coreSettings, clusterSettings)

var coreSettings = []setting{
	{"data-dir", "MCP_DATA_DIR", "./.mcp-jupyter", "where the event log, checkpoints, assets, kernel runtime files and the MCP token live"},
	{"addr", "MCP_ADDR", "127.0.0.1:3000", "HTTP listen address for /mcp, /health, /livez and /readyz (serve only)"},
	{"log-format", "MCP_LOG_FORMAT", "", "log format: text or json (default: text on a terminal, json otherwise)"},
	{"log-level", "MCP_LOG_LEVEL", "info", "log level: debug, info, warn or error"},
	{"shutdown-grace", "MCP_SHUTDOWN_GRACE", "25s", "how long a SIGTERM shutdown may take (under Kubernetes' 30 s)"},
	{"max-queue", "MCP_MAX_QUEUE", "1000", "executions that may wait per kernel before submits get 'queue full'"},
	{"max-kernels", "MCP_MAX_KERNELS", "0", "kernels each principal may have running at once (a principal's own --max-kernels from `principal add` overrides it; 0: no limit)"},
	{"max-queued-per-principal", "MCP_MAX_QUEUED_PER_PRINCIPAL", "0", "executions each principal may have waiting (not yet started) across all its kernels (0: no limit)"},
	{"prewarm", "MCP_PREWARM", "0", "kernels kept started and idle so start_kernel hands one over at once, refilled in the background: N of the default kernelspec (python3), or per kernelspec, e.g. python3=2,julia=1 (each costs an idle kernel's memory, about 50-70 MiB for ipykernel)"},
	{"max-checkpoint-bytes", "MCP_MAX_CHECKPOINT_BYTES", "0", "bytes of checkpoint files each principal may keep, e.g. 2GiB; a save past it is refused and leaves nothing behind (0: no limit)"},
	{"output-budget", "MCP_OUTPUT_BUDGET", "3000", "characters of one text output put in a tool reply (the full text is kept as an asset)"},
	{"image-budget", "MCP_IMAGE_BUDGET", "1048576", "bytes of an image sent inline in a tool reply (larger ones are linked)"},
	{"allowed-hosts", "MCP_ALLOWED_HOSTS", "", "comma-separated extra Host/Origin names accepted on every route (localhost and the IP address a client dialled are always accepted)"},
	{"kernels-outlive", "MCP_KERNELS_OUTLIVE", "true", "kernels keep running when the server stops, and are re-attached at the next start"},
	{"auto-checkpoint", "MCP_AUTO_CHECKPOINT", "true", "save every kernel whose variables changed as its auto-checkpoint (auto-<kernel id>, the newest only) after a shutdown's drain, before a cull, and after --auto-checkpoint-idle without activity"},
	{"auto-checkpoint-idle", "MCP_AUTO_CHECKPOINT_IDLE", "5m", "also save a kernel's auto-checkpoint once it has been idle this long after a change, so a server killed without a shutdown loses at most what ran since (0: only at shutdown and before a cull)"},
	{"auto-checkpoint-keep", "MCP_AUTO_CHECKPOINT_KEEP", "720h", "delete the auto-checkpoint of a kernel no longer running (culled, died, lost, shut down by the server) once it is older than this, so they do not fill --max-checkpoint-bytes (0: keep them for ever)"},
	{"auto-restore", "MCP_AUTO_RESTORE", "true", "at start, a kernel whose process is gone (the pod was replaced) is started afresh under the same id and its auto-checkpoint loaded before its queued executions run"},
	{"cull-idle", "MCP_CULL_IDLE", "", "shut down kernels idle this long (no execution, no connected frontend), saving their auto-checkpoint first, like jupyter_server's cull_idle_timeout (default: 0, never, for serve; 1h for stdio)"},
	{"orphan-grace", "MCP_ORPHAN_GRACE", "10m", "a kernel whose server has been gone this long ends itself (its guard process stops it); a server started within it re-attaches the kernel (0: kernels wait for a server for ever)"},
	{"nats-listen", "MCP_NATS_LISTEN", "", "host:port for the embedded NATS server to accept outside subscribers (default: in-process only); needs --nats-token or --nats-nkeys, or --nats-insecure-loopback on loopback"},
	{"checkpoint-encrypt", "MCP_CHECKPOINT_ENCRYPT", "false", "encrypt new checkpoints at rest with AES-256-GCM (the signing secret is MCP_CHECKPOINT_SECRET or a generated key in <data-dir>/checkpoint-keys)"},
	{"nats-token", "MCP_NATS_TOKEN", "", "token NATS clients must present to subscribe (this or --nats-nkeys is required with --nats-listen, unless --nats-insecure-loopback)"},
	{"nats-nkeys", "MCP_NATS_NKEYS", "", "comma-separated public user nkeys (U...) NATS clients may authenticate with, instead of a token; they may subscribe, not publish events"},
	{"nats-insecure-loopback", "MCP_NATS_INSECURE_LOOPBACK", "false", "let NATS clients without credentials subscribe on a loopback --nats-listen (anyone on this machine then reads every event; nobody outside the server may publish events either way)"},
	{"nats-jetstream", "MCP_NATS_JETSTREAM", "false", "keep a JetStream stream (MCPJUPYTER_EVENTS, in <data dir>/nats) mirroring the events, so subscribers catch up"},
	{"notebook-root", "MCP_NOTEBOOK_ROOT", ".", "directory notebook tools may read and write .ipynb files in (paths outside it are refused)"},
	{"asset-ttl", "MCP_ASSET_TTL", "24h", "how long a stored output (asset) is kept after it was produced, read or referenced"},
	{"asset-gc-every", "MCP_ASSET_GC_EVERY", "1h", "how often the asset GC collects assets whose leases expired"},
	{"jupyter-write-timeout", "MCP_JUPYTER_WRITE_TIMEOUT", "30s", "longest a write to a Jupyter frontend's channels WebSocket may take: a frontend that reads nothing for that long is dropped (it resumes losslessly when it reconnects with its session_id)"},
	{"backlog-messages", "MCP_BACKLOG_MESSAGES", "1000", "recent IOPub messages kept in memory per kernel for late WebSocket subscribers"},
	{"retain-events", "MCP_RETAIN_EVENTS", "1000000", "how many of the newest events the event log keeps; older ones are deleted once no kernel, unfinished execution, read model or subscriber needs them (0 keeps everything)"},
	{"snapshot-every", "MCP_SNAPSHOT_EVERY", "50000", "how many events apart the read models are snapshotted; a restart replays at most this many, and retention runs this often"},
	{"kernel-sandbox", "MCP_KERNEL_SANDBOX", "auto", "confine kernels so agents' code cannot read the data dir (token, checkpoint keys, event log) or the server's /proc files: auto (confine where the machine allows, warn loudly where not), required (refuse to start kernels unconfined) or off"},
	{"kernel-env", "MCP_KERNEL_ENV", "", "comma-separated extra names (or PREFIX*) of the server's environment that kernels receive, beyond PATH, HOME, LANG, LC_*, TZ, TMPDIR, PYTHON*, JUPYTER*, VIRTUAL_ENV, CONDA_*... (MCP_* is refused: the server's secrets never reach kernels)"},
	{"max-request-bytes", "MCP_MAX_REQUEST_BYTES", "8388608", "largest HTTP request body accepted, in bytes (/mcp and every other route); larger ones get 413 before they are read. The default fits execute's 1 MiB of code however it is escaped"},
	{"min-free-disk", "MCP_MIN_FREE_DISK", "256MiB", "free space kept on the data dir's file system: below it new work is refused (reads go on), below 3/4 of it output of running executions is recorded as lost, below a quarter nothing is written; the server resumes when space returns (0 turns the check off)"},
	{"oidc-issuer", "MCP_OIDC_ISSUER", "", "OAuth 2.1 authorization server (OpenID issuer URL, https) whose JWT access tokens are accepted beside the tokens of the data dir and `principal add`; its subjects are principals named oidc:<sub> with the read/execute/manage/admin scopes the token carries (docs/identity.md)"},
	{"oidc-audience", "MCP_OIDC_AUDIENCE", "", "the audience (aud) access tokens must carry for this server, required with --oidc-issuer: often this server's /mcp URL or the API identifier registered at the issuer"},
	{"oidc-resource", "MCP_OIDC_RESOURCE", "", "this server's MCP URL as clients reach it (e.g. https://jupyter.example.com/mcp), advertised in /.well-known/oauth-protected-resource (default: the request's scheme and Host plus /mcp; set it behind a proxy)"},
	{"plotly-js", "MCP_PLOTLY_JS", "/usr/share/python3-plotly/plotly.js", "plotly.js file the web console (/ui/) draws Plotly figures with, served at /ui/vendor/plotly.js (Debian's python3-plotly ships it; \"\" or a missing file: figures show their image or HTML fallback)"},
	{"policy", "MCP_POLICY", "", "approval policy file (YAML): tools and code patterns that need the client's confirmation (an input request on MCP 2026-07-28, elicitation before it) or are refused outright, each decision recorded as a PolicyDecided event (docs/mcp.md; default: none, every call runs)"},
	{"token", "MCP_TOKEN", "", "bearer token clients must send to /mcp (default: generated on first start and kept 0600 in <data dir>/mcp-token); set it from a secret store, not on the command line"},
}

func parseConfig(cmd string, args []string) (config, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	vals := map[string]*string{}
	for _, s := range settings {
		def := s.def
		if v, ok := os.LookupEnv(s.env); ok {
			def = v
		}
		vals[s.name] = fs.String(s.name, def, s.help+" ($"+s.env+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mcp-jupyter %s [flags]\n\nFlags (each also read from the environment variable shown):\n", cmd)
		for _, s := range settings {
			def := s.def
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(fs.Output(), "  --%-16s %s\n  %-18s env %s, default %s\n", s.name, s.help, "", s.env, def)
		}
		fmt.Fprintf(fs.Output(), "\nOther environment:\n  JUPYTER_PATH, JUPYTER_DATA_DIR   where kernelspecs are found, as Jupyter does\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, errHelp
		}
		return config{}, err
	}
	var c config
	var err error
	get := func(n string) string { return strings.TrimSpace(*vals[n]) }
	c.DataDir, c.Addr, c.LogFormat, c.LogLevel = get("data-dir"), get("addr"), get("log-format"), get("log-level")
	c.AllowedHosts, c.NATSListen, c.NATSToken, c.NATSNKeys = get("allowed-hosts"), get("nats-listen"), get("nats-token"), get("nats-nkeys")
	if c.NATSInsecureLoopback, err = strconv.ParseBool(get("nats-insecure-loopback")); err != nil {
		return c, fmt.Errorf("--nats-insecure-loopback %q: give true or false", get("nats-insecure-loopback"))
	}
	if c.NATSListen != "" { // NB: before the log is replayed, not after
		if err := natsbus.CheckListen(c.NATSListen, c.NATSToken != "" || c.NATSNKeys != "", c.NATSInsecureLoopback); err != nil {
			return c, err
		}
	}
	if c.NATSJetStream, err = strconv.ParseBool(get("nats-jetstream")); err != nil {
		return c, fmt.Errorf("--nats-jetstream %q: give true or false", get("nats-jetstream"))
	}
	c.OIDCIssuer, c.OIDCAudience, c.OIDCResource = get("oidc-issuer"), get("oidc-audience"), get("oidc-resource")
	if err := c.checkOIDC(); err != nil {
		return c, err
	}
	c.NotebookRoot = get("notebook-root")
	c.PlotlyJS = get("plotly-js")
	c.Policy = get("policy")
	c.Token = get("token")
	if c.Token != "" && len(c.Token) < 16 {
		return c, errors.New("--token / MCP_TOKEN is shorter than 16 characters: use a long random value, e.g. openssl rand -hex 32")
	}
	if strings.Contains(strings.ToLower(c.Token), checkpointfile.PlaceholderMarker) {
		return c, errors.New("--token / MCP_TOKEN is the documentation's placeholder, which anyone can read: set it to a random value, e.g. openssl rand -hex 32")
	}
	if c.Cluster, err = parseCluster(get, c.Token); err != nil {
		return c, err
	}
	if c.Cluster.Enabled() && c.NATSInsecureLoopback {
		// Kernels run on this host: in a cluster they would read routed
		// calls' answers and the events of every node without a credential.
		return c, errors.New("--nats-insecure-loopback cannot be used in cluster mode (--cluster-listen): kernels on this host could connect without a credential; give outside NATS clients --nats-token or --nats-nkeys")
	}
	if c.ShutdownGrace, err = time.ParseDuration(get("shutdown-grace")); err != nil || c.ShutdownGrace <= 0 {
		return c, fmt.Errorf("--shutdown-grace %q: give a positive duration such as 25s", get("shutdown-grace"))
	}
	if c.AssetTTL, err = time.ParseDuration(get("asset-ttl")); err != nil || c.AssetTTL <= 0 {
		return c, fmt.Errorf("--asset-ttl %q: give a positive duration such as 24h", get("asset-ttl"))
	}
	if c.AssetGCEvery, err = time.ParseDuration(get("asset-gc-every")); err != nil || c.AssetGCEvery <= 0 {
		return c, fmt.Errorf("--asset-gc-every %q: give a positive duration such as 1h", get("asset-gc-every"))
	}
	if c.JupyterWriteTimeout, err = time.ParseDuration(get("jupyter-write-timeout")); err != nil || c.JupyterWriteTimeout <= 0 {
		return c, fmt.Errorf("--jupyter-write-timeout %q: give a positive duration such as 30s", get("jupyter-write-timeout"))
	}
	ints := []struct {
		name string
		dst  *int
	}{{"max-queue", &c.MaxQueue}, {"output-budget", &c.OutputBudget}, {"image-budget", &c.ImageBudget}, {"backlog-messages", &c.BacklogMessages}}
	for _, i := range ints {
		if *i.dst, err = strconv.Atoi(get(i.name)); err != nil || *i.dst <= 0 {
			return c, fmt.Errorf("--%s %q: give a positive whole number", i.name, get(i.name))
		}
	}
	if c.RetainEvents, err = strconv.ParseUint(get("retain-events"), 10, 64); err != nil {
		return c, fmt.Errorf("--retain-events %q: give a whole number of events (0 keeps everything)", get("retain-events"))
	}
	if c.SnapshotEvery, err = strconv.ParseUint(get("snapshot-every"), 10, 64); err != nil || c.SnapshotEvery == 0 {
		return c, fmt.Errorf("--snapshot-every %q: give a positive whole number of events", get("snapshot-every"))
	}
	if c.MaxRequestBytes, err = strconv.ParseInt(get("max-request-bytes"), 10, 64); err != nil || c.MaxRequestBytes < 64<<10 {
		return c, fmt.Errorf("--max-request-bytes %q: give a whole number of bytes, at least 65536 (default 8388608)", get("max-request-bytes"))
	}
	for _, i := range []struct {
		name string
		dst  *int
	}{{"max-kernels", &c.MaxKernels}, {"max-queued-per-principal", &c.MaxQueuedPerPrincipal}} {
		if *i.dst, err = strconv.Atoi(get(i.name)); err != nil || *i.dst < 0 {
			return c, fmt.Errorf("--%s %q: give a whole number (0: no limit)", i.name, get(i.name))
		}
	}
	if size, err := parseSize(get("max-checkpoint-bytes")); err != nil || size > 1<<62 {
		return c, fmt.Errorf("--max-checkpoint-bytes %q: give a size such as 2GiB, or 0 for no limit", get("max-checkpoint-bytes"))
	} else {
		c.MaxCheckpointBytes = int64(size)
	}
	if c.Prewarm, err = parsePrewarm(get("prewarm")); err != nil {
		return c, err
	}
	if c.MinFreeDisk, err = parseSize(get("min-free-disk")); err != nil {
		return c, fmt.Errorf("--min-free-disk %q: give a size such as 256MiB, 1GiB or 0 to turn the check off", get("min-free-disk"))
	}
	if c.KernelsOutlive, err = strconv.ParseBool(get("kernels-outlive")); err != nil {
		return c, fmt.Errorf("--kernels-outlive %q: give true or false", get("kernels-outlive"))
	}
	if c.AutoCheckpoint, err = strconv.ParseBool(get("auto-checkpoint")); err != nil {
		return c, fmt.Errorf("--auto-checkpoint %q: give true or false", get("auto-checkpoint"))
	}
	if c.AutoRestore, err = strconv.ParseBool(get("auto-restore")); err != nil {
		return c, fmt.Errorf("--auto-restore %q: give true or false", get("auto-restore"))
	}
	cull := get("cull-idle")
	if cull == "" {
		cull = "0"
		if cmd == "stdio" {
			cull = "1h" // NB: a stdio session's kernels have nobody else to end them
		}
	}
	for _, d := range []struct {
		name, val, example string
		dst                *time.Duration
	}{{"auto-checkpoint-idle", get("auto-checkpoint-idle"), "5m", &c.AutoCheckpointIdle},
		{"auto-checkpoint-keep", get("auto-checkpoint-keep"), "720h", &c.AutoCheckpointKeep}, {"cull-idle", cull, "1h", &c.CullIdle},
		{"orphan-grace", get("orphan-grace"), "10m", &c.OrphanGrace}} {
		if *d.dst, err = time.ParseDuration(d.val); err != nil || *d.dst < 0 {
			return c, fmt.Errorf("--%s %q: give a duration such as %s, or 0 to turn it off", d.name, d.val, d.example)
		}
	}
	if c.CheckpointEncrypt, err = strconv.ParseBool(get("checkpoint-encrypt")); err != nil {
		return c, fmt.Errorf("--checkpoint-encrypt %q: give true or false", get("checkpoint-encrypt"))
	}
	if c.KernelSandbox, err = sandbox.ParseMode(get("kernel-sandbox")); err != nil {
		return c, fmt.Errorf("--kernel-sandbox: %w", err)
	}
	c.KernelEnv = splitList(get("kernel-env"))
	if err := jupyter.CheckKernelEnvAllow(c.KernelEnv); err != nil {
		return c, err
	}
	if c.DataDir == "" {
		return c, errors.New("--data-dir is empty: give a directory")
	}
	return c, nil
}

func (c config) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: give debug, info, warn or error", c.LogLevel)
	}
	format := c.LogFormat
	if format == "" {
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text" // a terminal
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "json":
		return slog.New(withOneComponent(slog.NewJSONHandler(os.Stderr, opts))), nil
	case "text":
		return slog.New(withOneComponent(slog.NewTextHandler(os.Stderr, opts))), nil
	}
	return nil, fmt.Errorf("--log-format %q: give text or json", c.LogFormat)
}

// parseSize reads a byte count with an optional unit: B, KB/KiB, MB/MiB,
// GB/GiB, TB/TiB (decimal or binary, as written).
func parseSize(v string) (uint64, error) {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size: %q", v)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 1 << 10, "m": 1e6, "mb": 1e6, "mib": 1 << 20,
		"g": 1e9, "gb": 1e9, "gib": 1 << 30, "t": 1e12, "tb": 1e12, "tib": 1 << 40}[strings.ToLower(unit)]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	return uint64(n * mult), nil
}

// checkOIDC refuses OAuth settings that cannot work, before anything
// starts: an issuer without audience, a non-https issuer, a resource that
// is not an absolute URL, audience or resource without an issuer.
func (c config) checkOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCAudience != "" || c.OIDCResource != "" {
			return errors.New("--oidc-audience and --oidc-resource need --oidc-issuer: give the issuer whose tokens to accept")
		}
		return nil
	}
	if _, err := auth.NewOIDC(auth.OIDCConfig{Issuer: c.OIDCIssuer, Audience: c.OIDCAudience}); err != nil {
		return err
	}
	if c.OIDCResource != "" {
		u, err := url.Parse(c.OIDCResource)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("--oidc-resource %q: give the absolute URL clients reach /mcp at, e.g. https://jupyter.example.com/mcp", c.OIDCResource)
		}
	}
	return nil
}
