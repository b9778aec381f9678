package mcpserver

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Realm names this server in WWW-Authenticate challenges.
const Realm = "mcp-jupyter"

// ScopesSupported are the OAuth scopes this server understands, as the
// protected resource metadata lists them.
var ScopesSupported = []string{"read", "execute", "manage", "admin"}

// ResourceServer is the OAuth 2.1 protected-resource side of the HTTP
// layer, as the MCP authorization spec asks: the metadata document of RFC
// 9728 at /.well-known/oauth-protected-resource, and WWW-Authenticate
// challenges (RFC 6750) that point MCP clients at it, so they learn where
// to log in. A nil *ResourceServer (no --oidc-issuer) challenges with a
// bare Bearer realm.
type ResourceServer struct {
	// Issuer is the authorization server tokens come from (--oidc-issuer).
	Issuer string
	// Resource is the URL clients know this server's MCP endpoint by
	// (--oidc-resource). Empty: derived from each request's scheme and
	// Host (already checked by HostCheck) plus MCPPath.
	Resource string
	// MCPPath is where the MCP endpoint is mounted ("/mcp").
	MCPPath string
}

// resource is the resource identifier r reaches.
func (rs *ResourceServer) resource(r *http.Request) string {
	if rs.Resource != "" {
		return rs.Resource
	}
	scheme := "http"
	// NB: behind a TLS-terminating proxy the request arrives in the clear;
	// the proxy says so. A client forging it changes only what it is told.
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + rs.MCPPath
}

// MetadataURL is the URL of the metadata document for the resource r
// reaches: the resource's origin, the well-known path, the resource's path
// (RFC 9728 section 3.1).
func (rs *ResourceServer) MetadataURL(r *http.Request) string {
	res := rs.resource(r)
	u, err := url.Parse(res)
	if err != nil || u.Host == "" {
		return server.WellKnownProtectedResourcePath
	}
	return u.Scheme + "://" + u.Host + server.ProtectedResourceMetadataPath(res)
}

// MetadataPaths are the paths the metadata document is served at: the
// path-suffixed form for the MCP endpoint, the bare form clients fall back
// to, and the one --oidc-resource's path gives, if different.
func (rs *ResourceServer) MetadataPaths() []string {
	paths := []string{server.WellKnownProtectedResourcePath, server.WellKnownProtectedResourcePath + rs.MCPPath}
	if rs.Resource != "" {
		if p := server.ProtectedResourceMetadataPath(rs.Resource); p != paths[0] && p != paths[1] {
			paths = append(paths, p)
		}
	}
	return paths
}

// MetadataHandler serves the metadata document, without a token (clients
// read it before they have one). The resource in it is the one the
// request reaches, so the document and the challenges agree.
func (rs *ResourceServer) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		server.NewProtectedResourceMetadataHandler(server.ProtectedResourceMetadataConfig{
			Resource:               rs.resource(r),
			AuthorizationServers:   []string{rs.Issuer},
			ScopesSupported:        ScopesSupported,
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "mcp-jupyter",
		}).ServeHTTP(w, r)
	})
}

// Challenge is one WWW-Authenticate: Bearer challenge (RFC 6750 section 3).
type Challenge struct {
	// Error is "invalid_token" (a token was presented and refused),
	// "insufficient_scope" (403), or "" (no token was presented).
	Error       string
	Description string
	// Scope lists, space-separated, the scopes the request needs (with
	// insufficient_scope).
	Scope string
}

// Header renders c for r: realm, resource_metadata when OAuth is on, then
// error, error_description and scope.
func (rs *ResourceServer) Header(r *http.Request, c Challenge) string {
	parts := []string{`realm="` + Realm + `"`}
	if rs != nil {
		parts = append(parts, `resource_metadata="`+quotable(rs.MetadataURL(r))+`"`)
	}
	if c.Error != "" {
		parts = append(parts, `error="`+quotable(c.Error)+`"`)
	}
	if c.Description != "" {
		parts = append(parts, `error_description="`+quotable(c.Description)+`"`)
	}
	if c.Scope != "" {
		parts = append(parts, `scope="`+quotable(c.Scope)+`"`)
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// quotable keeps what RFC 6750 allows inside a quoted value of error,
// error_description and scope (%x20-21 / %x23-5B / %x5D-7E): no quote, no
// backslash, nothing outside printable ASCII — so a refusal's reason,
// which may quote a token's claims, cannot break the header.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return '\''
		case r < 0x20 || r > 0x7e:
			return -1
		}
		return r
	}, s)
}

// RefuseAuth answers a request whose credentials err refused: 503 when
// the issuer cannot be reached (the token may be good), else 401 with a
// challenge — error="invalid_token" for a token presented and refused by
// the OAuth authenticator. help is the body's advice for a request
// without a token.
func (rs *ResourceServer) RefuseAuth(w http.ResponseWriter, r *http.Request, err error, help string) {
	if errors.Is(err, auth.ErrIssuerUnavailable) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "Service Unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	var c Challenge
	msg := "Unauthorized: " + help
	var te *auth.TokenError
	switch {
	case errors.As(err, &te):
		c = Challenge{Error: "invalid_token", Description: te.Reason}
		msg = "Unauthorized: " + te.Reason + "."
	case !errors.Is(err, auth.ErrNoCredentials):
		c = Challenge{Error: "invalid_token", Description: "the bearer token is wrong, revoked or rotated"}
		msg = "Unauthorized: the bearer token is wrong, revoked or rotated. " + help
	}
	w.Header().Set("WWW-Authenticate", rs.Header(r, c))
	http.Error(w, msg, http.StatusUnauthorized)
}

// RefuseScope answers 403 insufficient_scope: p was authenticated but
// holds none of the scopes in need.
func (rs *ResourceServer) RefuseScope(w http.ResponseWriter, r *http.Request, p auth.Principal, need auth.Scope) {
	scope := strings.ReplaceAll(need.String(), ",", " ")
	desc := fmt.Sprintf("principal %q holds scopes [%s]; this needs %s", p.Name, p.Scopes, scope)
	w.Header().Set("WWW-Authenticate", rs.Header(r, Challenge{Error: "insufficient_scope", Description: desc, Scope: scope}))
	http.Error(w, "Forbidden: "+desc+": ask for a token with that scope (or an admin for a principal that holds it).", http.StatusForbidden)
}
