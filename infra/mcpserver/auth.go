package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// TokenFile is the name of the bearer token file in the data directory.
const TokenFile = "mcp-token"

// Guard protects the HTTP transport. In order, a request must:
//
//  1. carry a Host that is localhost, 127.0.0.1 or [::1] (any port) or one
//     of AllowedHosts — else 403 (DNS rebinding: a web page whose name
//     resolves to 127.0.0.1 must not reach the server);
//  2. carry no Origin, or an Origin whose host passes the same test — else
//     403 (a browser page on another site must not drive the kernels);
//  3. carry "Authorization: Bearer <token>" (or Jupyter's "Authorization:
//     token <token>") that Auth accepts — else 401
//     with WWW-Authenticate: Bearer. With QueryToken, a request without the
//     header may give the token as the "token" query parameter instead
//     (browsers cannot set headers on a WebSocket); the Origin check above
//     still applies.
//
// The principal Auth returns goes into the request's context
// (auth.WithPrincipal): every handler behind the guard, and the MCP tool
// handlers, read it with auth.FromContext.
type Guard struct {
	// Auth decides who a request's token is: the data dir's token and the
	// principals file (auth.TokenDirectory), and OAuth after them in an
	// auth.Chain. Nil: Token alone, as the admin.
	Auth auth.Authenticator
	// Token is the admin token used when Auth is nil. Both empty: every
	// request is refused (fail closed).
	Token        string
	AllowedHosts []string
	QueryToken   bool
	// EndOnRevoke ends a request still running when its principal is
	// revoked or rotated (when Auth is an auth.Directory): /mcp's
	// listening GET and long waits, /events followers. Off for /ws, which
	// closes its streams itself with a close frame saying why.
	EndOnRevoke bool
	Logger      *slog.Logger
	// OAuth (set with --oidc-issuer) makes every 401 name the protected
	// resource metadata (resource_metadata=…) and say why a token was
	// refused (error="invalid_token"), as MCP clients need to log in.
	OAuth *ResourceServer
	// Need is the scopes a principal must hold on this route, else 403
	// error="insufficient_scope". Whatever Need, a principal holding none
	// of the scopes (an OAuth token granted only others) gets 403 asking
	// for read.
	Need auth.Scope
}

// Wrap returns next behind the guard.
func (g Guard) Wrap(next http.Handler) http.Handler {
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	authn := g.Auth
	if authn == nil {
		authn = auth.AdminToken(g.Token)
	}
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ar := g.credentials(r)
		p, err := authn.Authenticate(ar)
		if err != nil {
			g.refuse(w, r, err, log)
			return
		}
		need := g.Need
		if p.Scopes == 0 {
			need |= auth.ScopeRead // NB: holding nothing, it could call nothing here
		}
		if need != 0 && !p.Scopes.Has(need) {
			log.Info("http: refused scope", "principal", p.Name, "scopes", p.Scopes.String(), "need", need.String(), "path", r.URL.Path)
			g.OAuth.RefuseScope(w, r, p, need)
			return
		}
		ctx := auth.WithPrincipal(r.Context(), p)
		if g.EndOnRevoke && !p.Expires.IsZero() {
			// A request still running when its token expires (an OAuth
			// access token's exp) ends with it, as with a revocation.
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadlineCause(ctx, p.Expires, ErrCredentialsExpired)
			defer cancel()
		}
		// NB: an OAuth principal (its token expires) is never revoked
		// through the directory: watching it, and checking its JWT a
		// second time below, would buy nothing.
		if d, ok := authn.(auth.Directory); ok && g.EndOnRevoke && p.Name != auth.AdminName && p.Expires.IsZero() {
			// A request still running when its principal is revoked or
			// rotated ends with it: a listening GET on /mcp, a long
			// get_execution wait. NB: one map entry while it runs.
			var cancel context.CancelCauseFunc
			ctx, cancel = context.WithCancelCause(ctx)
			defer cancel(nil)
			name := p.Name
			defer d.Watch(func(dead string) {
				if dead == name {
					cancel(ErrCredentialsRevoked)
				}
			})()
			// NB: a revocation reloaded between Authenticate and Watch
			// called no watcher of this request: ask again now that one
			// is registered.
			if _, err := authn.Authenticate(ar); err != nil {
				g.refuse(w, r, err, log)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
	return HostCheck{AllowedHosts: g.AllowedHosts, Logger: log}.Wrap(authed)
}

// credentials is r as the authenticators read it: "Authorization: token
// <t>" (Jupyter's scheme, what jupyter_server and its clients send) and the
// token of ?token= (when QueryToken) moved into a bearer header. NB: the
// authenticators read one place, the bearer header; the handler behind gets
// the request as it came.
func (g Guard) credentials(r *http.Request) *http.Request {
	if tok, ok := jupyterToken(r); ok {
		ar := r.Clone(r.Context())
		ar.Header.Set("Authorization", "Bearer "+tok)
		return ar
	}
	if _, ok := auth.BearerToken(r); !ok && g.QueryToken && r.Header.Get("Authorization") == "" {
		if tok := r.URL.Query().Get("token"); tok != "" {
			ar := r.Clone(r.Context())
			ar.Header.Set("Authorization", "Bearer "+tok)
			return ar
		}
	}
	return r
}

// jupyterToken is the token of r's "Authorization: token <t>" header
// (scheme case-insensitive, as jupyter_server reads it).
func jupyterToken(r *http.Request) (string, bool) {
	const prefix = "token "
	h := r.Header.Get("Authorization")
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}

// Current reports whether the credentials of r, a request that passed the
// guard, still authenticate as the principal the guard put in its context
// (not revoked, not rotated away since). A long-lived handler that cannot
// be ended by its context (/ws: ws.Options.Current) asks it once it is
// registered where a revocation finds it.
func (g Guard) Current(r *http.Request) bool {
	authn := g.Auth
	if authn == nil {
		authn = auth.AdminToken(g.Token)
	}
	was, ok := auth.FromContext(r.Context())
	if !ok {
		return false
	}
	p, err := authn.Authenticate(g.credentials(r))
	if errors.Is(err, auth.ErrIssuerUnavailable) {
		// NB: the OAuth issuer cannot be reached to re-check a JWT the
		// guard accepted a moment ago: no news of a revocation (JWTs have
		// none; their exp ends the stream).
		return true
	}
	return err == nil && p.Name == was.Name
}

// ErrCredentialsExpired is the cause of a request's context that Guard
// ended because its principal's token expired while it ran.
var ErrCredentialsExpired = errors.New("the principal's token expired while the request ran: connect again with a fresh token")

// ErrCredentialsRevoked is the cause of a request's context that Guard
// ended because its principal was revoked or rotated while it ran.
var ErrCredentialsRevoked = errors.New("the principal's token was revoked or rotated while the request ran")

// refuse answers 401 with WWW-Authenticate: Bearer and what to send (503
// while the OAuth issuer cannot be reached: see ResourceServer.RefuseAuth).
func (g Guard) refuse(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	help := "Send the header \"Authorization: Bearer <token>\" with the token from " +
		"<data dir>/" + TokenFile + " or one from `mcp-jupyter principal add`"
	if g.OAuth != nil {
		help += ", or an OAuth access token from " + g.OAuth.Issuer
	}
	help += "."
	if g.QueryToken {
		help += " Browsers may pass it as the token query parameter."
	}
	if !errors.Is(err, auth.ErrNoCredentials) {
		log.Info("http: refused credentials", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
	}
	g.OAuth.RefuseAuth(w, r, err, help)
}

// HostCheck is the first two steps of Guard alone, for routes without a
// token (probes, /metrics) and in front of a whole mux so that no route is
// left out. A request must carry a Host that is localhost, 127.0.0.1 or
// [::1], one of AllowedHosts, or the IP address the connection arrived on
// (what Kubernetes probes and Prometheus send: the pod IP; a DNS-rebinding
// page cannot send it, as its Host is its own name); and no Origin, or an
// Origin whose host is loopback or allowed. Otherwise 403.
type HostCheck struct {
	AllowedHosts []string
	Logger       *slog.Logger
}

// Wrap returns next behind the check.
func (h HostCheck) Wrap(next http.Handler) http.Handler {
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, h.AllowedHosts) && !isLocalAddr(r) {
			log.Warn("http: refused host", "host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("Forbidden: Host %q is not allowed. Connect through localhost, "+
				"or add the host to the server's allowed hosts (--allowed-hosts).", r.Host), http.StatusForbidden)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(origin, h.AllowedHosts) {
			log.Warn("http: refused origin", "origin", origin, "remote", r.RemoteAddr, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("Forbidden: Origin %q is not allowed. Browser pages from other sites "+
				"may not call this server; add the host to the server's allowed hosts if it is yours.", origin),
				http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isLocalAddr reports whether r's Host is the IP literal of the local
// address its connection arrived on (any port).
func isLocalAddr(r *http.Request) bool {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	local, _, err := net.SplitHostPort(la.String())
	if err != nil {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	want, got := net.ParseIP(strings.Trim(local, "[]")), net.ParseIP(strings.Trim(host, "[]"))
	return want != nil && got != nil && !want.IsUnspecified() && want.Equal(got)
}

// hostAllowed reports whether hostport (a Host header or an Origin's host)
// names the loopback interface or an allowed host.
func hostAllowed(hostport string, allowed []string) bool {
	hostport = strings.ToLower(strings.TrimSpace(hostport))
	if hostport == "" {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			continue
		}
		if a == hostport || strings.Trim(a, "[]") == host {
			return true
		}
	}
	return false
}

func originAllowed(origin string, allowed []string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false // includes "null" (sandboxed frames, file://)
	}
	return hostAllowed(u.Host, allowed)
}

// LoadOrCreateToken returns the bearer token kept in <dataDir>/mcp-token,
// generating it (32 random bytes, hex) on first start. The file is mode
// 0600; a readable-by-others file is tightened. created reports a new token
// (the caller tells the user where to find it).
func LoadOrCreateToken(dataDir string) (token string, created bool, err error) {
	path := filepath.Join(dataDir, TokenFile)
	if tok, err := readToken(path); err == nil {
		return tok, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data dir: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("generate mcp token: %w", err)
	}
	tok := hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs.
		tok, err := readToken(path)
		return tok, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.WriteString(tok + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	return tok, true, nil
}

func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read mcp token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read mcp token: %s is empty; delete it to generate a new token", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("restrict %s to 0600: %w", path, err)
		}
	}
	return tok, nil
}
