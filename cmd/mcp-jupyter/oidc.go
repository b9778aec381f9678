package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// oidcDiscoveryTimeout bounds the start's attempt to reach the issuer.
const oidcDiscoveryTimeout = 10 * time.Second

// newOAuth builds the OAuth resource server of --oidc-issuer: the JWT
// authenticator and the metadata and challenges of the HTTP layer. Both
// nil without --oidc-issuer. Nothing is fetched here.
func newOAuth(cfg config, logger *slog.Logger) (*auth.OIDC, *mcpserver.ResourceServer, error) {
	if cfg.OIDCIssuer == "" {
		return nil, nil, nil
	}
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience,
		DiscoveryTimeout: oidcDiscoveryTimeout, Logger: logger.With("component", "auth")})
	if err != nil {
		return nil, nil, err
	}
	return o, &mcpserver.ResourceServer{Issuer: cfg.OIDCIssuer, Resource: cfg.OIDCResource, MCPPath: pathMCP}, nil
}

// discoverOIDC reaches the issuer once at start, in the background and
// bounded, so that a wrong or unreachable --oidc-issuer shows in the log
// at once. The server starts whatever happens: while the issuer cannot be
// reached, OAuth tokens get 503 and discovery is retried on later
// requests; the data dir's and principals' tokens keep working.
func (c *core) discoverOIDC(ctx context.Context) {
	if c.oidc == nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		dctx, cancel := context.WithTimeout(ctx, oidcDiscoveryTimeout)
		defer cancel()
		if err := c.oidc.Discover(dctx); err != nil {
			c.logger.Warn("OAuth issuer unreachable at start: OAuth tokens get 503 until it answers (other tokens work)",
				"component", "auth", "issuer", c.cfg.OIDCIssuer, "err", err)
		}
	}()
}

// oauthRoutes serves the protected resource metadata (RFC 9728) without a
// token, at the bare and the /mcp-suffixed well-known paths; the Host and
// Origin checks in front of the mux still apply.
func (c *core) oauthRoutes(mux *http.ServeMux) {
	if c.oauth == nil {
		return
	}
	h := c.oauth.MetadataHandler()
	for _, p := range c.oauth.MetadataPaths() {
		mux.Handle(p, h)
	}
}

// checkOAuth is doctor's line for --oidc-issuer: the issuer answers its
// discovery document and serves signing keys.
func checkOAuth(ctx context.Context, cfg config) finding {
	if cfg.OIDCIssuer == "" {
		return finding{Check: "oauth", OK: true, Detail: "off (no --oidc-issuer): only the data dir's and principals' tokens"}
	}
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, DiscoveryTimeout: oidcDiscoveryTimeout})
	if err != nil {
		return finding{Check: "oauth", Detail: err.Error(), Fix: "correct --oidc-issuer / --oidc-audience"}
	}
	n, err := o.Check(ctx)
	if err != nil {
		return finding{Check: "oauth", Detail: err.Error(),
			Fix: "check that --oidc-issuer is the tokens' \"iss\" exactly and that this machine reaches it over https; " +
				"serve starts anyway, answering 503 to OAuth tokens until it does"}
	}
	return finding{Check: "oauth", OK: true, Detail: fmt.Sprintf("issuer %s answers, %d signing key(s); tokens must carry aud %q",
		cfg.OIDCIssuer, n, cfg.OIDCAudience)}
}
