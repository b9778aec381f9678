package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrCredentialsRequired: a TCP listener was asked for without a token or
// nkeys (and, on loopback, without Options.InsecureLoopback).
var ErrCredentialsRequired = errors.New("natsbus: a NATS listener requires credentials")

// Options configure the embedded server. The zero value is an in-process
// server without JetStream.
type Options struct {
	// Listen is host:port for a TCP listener ("" = in-process only). Port 0
	// picks a free port. A listener requires Token or NKeys, except on
	// loopback with InsecureLoopback.
	Listen string
	// Token: outside clients presenting it may subscribe (not publish
	// events: see authenticator).
	Token string
	// NKeys are the public user nkeys ("U...") outside clients authenticate
	// with (nats.Nkey / a .nk seed file), instead of Token. Those clients may
	// subscribe to anything but not publish events (mcpjupyter.>): only the
	// server does. Give Token or NKeys, not both.
	NKeys []string
	// InsecureLoopback lets clients without credentials connect to a
	// loopback listener (they may subscribe, not publish events). Anyone
	// on the machine can then read every event.
	InsecureLoopback bool
	// JetStream enables JetStream, storing in StoreDir, and keeps the stream
	// StreamName mirroring every published event, so that a subscriber that
	// was away catches up (a durable consumer) from where it stopped.
	JetStream bool
	StoreDir  string
	// StreamMaxBytes bounds the JetStream stream (default 1 GiB); the oldest
	// events go first. The event log itself keeps everything.
	StreamMaxBytes int64
	// StreamMaxMsgSize bounds one message in the stream (default: the
	// server's max_payload). Larger events are published as references.
	StreamMaxMsgSize int32
	// ReadyTimeout bounds the wait for the server to accept connections
	// (default 10s).
	ReadyTimeout time.Duration
	// Logger receives the server's messages (default: discard).
	Logger *slog.Logger
	// Cluster makes the server a node of a NATS cluster (cluster.go):
	// JetStream is then on whatever JetStream says, stored in StoreDir, and
	// the events stream (JetStream) is created by WaitClusterReady, with
	// Replicas. Nil: a single server.
	Cluster *ClusterOptions
}

// Server is an embedded NATS server and the in-process client the server
// itself uses (stream set-up, readiness).
type Server struct {
	ns        *server.Server
	nc        *nats.Conn
	auth      *authenticator
	streamMax atomic.Int64 // the stream's max message size, 0 = none
	// js is the JetStream API on nc (nil with JetStream off); cluster is
	// Options.Cluster (nil for a single server); eventsStream is the events
	// stream WaitClusterReady creates in cluster mode (nil: none wanted).
	js           jetstream.JetStream
	cluster      *ClusterOptions
	eventsStream *streamLimits
	streamMu     sync.Mutex // guards eventsStream
	logger       *slog.Logger
	closeOnce    sync.Once
	closeErr     error
}

// Open starts the server and waits until it accepts connections.
func Open(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.Token != "" && len(opts.NKeys) > 0 {
		return nil, errors.New("start nats: give a token or nkeys, not both")
	}
	so := &server.Options{DontListen: true, NoSigs: true, JetStream: opts.JetStream, StoreDir: opts.StoreDir,
		AlwaysEnableNonce: true} // NB: nkey clients sign the nonce; the authenticator checks it
	anonymous := false
	if opts.Listen != "" {
		host, port, err := splitListen(opts.Listen)
		if err != nil {
			return nil, err
		}
		if err := CheckListen(opts.Listen, opts.Token != "" || len(opts.NKeys) > 0, opts.InsecureLoopback); err != nil {
			return nil, err
		}
		anonymous = opts.InsecureLoopback && opts.Token == "" && len(opts.NKeys) == 0
		so.DontListen, so.Host, so.Port = false, host, port
	}
	auth, err := newAuthenticator(opts.Token, opts.NKeys, anonymous)
	if err != nil {
		return nil, err
	}
	so.CustomClientAuthentication = auth
	if opts.StreamMaxMsgSize > 0 && opts.StreamMaxMsgSize < 4096 {
		return nil, fmt.Errorf("start nats: a stream max message size of %d bytes cannot hold a reference; give at least 4096", opts.StreamMaxMsgSize)
	}
	var cluster *ClusterOptions
	if opts.Cluster != nil {
		c := *opts.Cluster
		c.Routes = append([]string(nil), c.Routes...)
		cluster = &c
		if err := clusterServerOptions(cluster, so); err != nil {
			return nil, err
		}
		so.JetStream = true // NB: every node: the cluster's state lives in JetStream
		if so.DontListen {
			// NB: nats-server starts routing only once its client listener
			// is up: without Options.Listen, one on a random loopback port
			// that accepts only the server's own credential (no token, no
			// nkeys, not anonymous: the authenticator refuses anyone else).
			so.DontListen, so.Host, so.Port = false, "127.0.0.1", server.RANDOM_PORT
		}
	}
	if so.JetStream && opts.StoreDir == "" {
		return nil, errors.New("start nats: JetStream needs a store dir")
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{opts.Logger}, false, false, false)
	go ns.Start() // NB: owned: Close shuts it down and waits for it
	if !ns.ReadyForConnections(opts.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("start nats: not ready after %s", opts.ReadyTimeout)
	}
	s := &Server{ns: ns, auth: auth, logger: opts.Logger, cluster: cluster}
	nc, err := s.Connect(nats.Name("mcp-jupyter server"))
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	s.nc = nc
	if so.JetStream {
		if s.js, err = jetstream.New(nc); err != nil {
			nc.Close()
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil, fmt.Errorf("start nats: jetstream: %w", err)
		}
	}
	if opts.JetStream {
		limits := &streamLimits{maxBytes: opts.StreamMaxBytes, maxMsgSize: opts.StreamMaxMsgSize}
		if cluster != nil {
			s.eventsStream = limits // NB: an R>1 stream needs the peers: WaitClusterReady
		} else if err := s.createStream(context.Background(), limits.maxBytes, limits.maxMsgSize); err != nil {
			nc.Close()
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil, err
		}
	}
	if cluster != nil {
		opts.Logger.Info("nats cluster node", "node", cluster.Node, "cluster", cluster.Name, "routes_on", s.routeAddr(),
			"routes", len(cluster.Routes), "replicas", s.Replicas(), "tls", so.Cluster.TLSConfig != nil)
	}
	if opts.Listen != "" {
		opts.Logger.Info("nats listening", "url", ns.ClientURL(), "anonymous_subscribers", anonymous)
	}
	return s, nil
}

// CheckListen says whether a listener on listen may start: it needs
// credentials (a token or nkeys), except on loopback with insecureLoopback.
// The error says what to pass. The server's start calls it; so can a
// command line, before doing anything slow.
func CheckListen(listen string, credentials, insecureLoopback bool) error {
	host, _, err := splitListen(listen)
	if err != nil {
		return err
	}
	switch {
	case insecureLoopback && !isLoopback(host):
		return fmt.Errorf("%w: --nats-insecure-loopback only applies to a loopback --nats-listen, and %s is reachable from other machines; set --nats-token (MCP_NATS_TOKEN) or --nats-nkeys (MCP_NATS_NKEYS)", ErrCredentialsRequired, listen)
	case !credentials && !isLoopback(host):
		return fmt.Errorf("%w: %s is reachable from other machines; set --nats-token (MCP_NATS_TOKEN) or --nats-nkeys (MCP_NATS_NKEYS), or listen on 127.0.0.1", ErrCredentialsRequired, listen)
	case !credentials && !insecureLoopback:
		return fmt.Errorf("%w: anyone on this machine could connect to %s; set --nats-token (MCP_NATS_TOKEN) or --nats-nkeys (MCP_NATS_NKEYS), or pass --nats-insecure-loopback (MCP_NATS_INSECURE_LOOPBACK) to let local clients subscribe without credentials", ErrCredentialsRequired, listen)
	}
	return nil
}

// MaxMessage is the largest message (headers and body) a publisher may
// send: the server's max_payload, or the stream's max message size when
// smaller.
func (s *Server) MaxMessage() int64 {
	m := s.nc.MaxPayload()
	if sm := s.streamMax.Load(); sm > 0 && sm < m {
		m = sm
	}
	return m
}

// Conn returns the server's own in-process client. The server owns it.
func (s *Server) Conn() *nats.Conn { return s.nc }

// Connect returns a new in-process client with the server's own
// credential (it may publish events); the caller closes it.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	// ownInbox first, so that a caller's own prefix (the router's) wins.
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.CustomInboxPrefix(ownInbox)}, opts...)
	opts = append(opts, nats.Token(s.auth.internal))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats in process: %w", err)
	}
	return nc, nil
}

// ClientURL returns the URL TCP clients connect to ("" when not listening).
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Close drains the server's client, shuts the server down and waits for it
// (bounded by ctx). It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if err := flush(ctx, s.nc); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.closeErr = fmt.Errorf("close nats: flush: %w", err)
		}
		s.nc.Close()
		s.ns.Shutdown()
		done := make(chan struct{})
		go func() { s.ns.WaitForShutdown(); close(done) }() // ends when the server is down
		select {
		case <-done:
		case <-ctx.Done():
			if s.closeErr == nil {
				s.closeErr = fmt.Errorf("close nats: %w", ctx.Err())
			}
		}
	})
	return s.closeErr
}

func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("nats listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("nats listen address %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// slogAdapter routes the NATS server's log to slog. NB: Fatalf must not
// exit the process from library code; it logs at error level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }

// flush waits for the server to have everything published on nc, bounded
// by ctx or, when ctx has no deadline, 10 seconds.
func flush(ctx context.Context, nc *nats.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}
