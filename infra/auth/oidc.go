package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCConfig is how the server checks OAuth access tokens (JWTs) from one
// issuer. Issuer and Audience are required; the rest has defaults.
type OIDCConfig struct {
	// Issuer is the authorization server's issuer URL (--oidc-issuer):
	// its /.well-known/openid-configuration names the key set, and tokens
	// must carry it as "iss". https, or http on a loopback address.
	Issuer string
	// Audience is what tokens must carry in "aud" (--oidc-audience): this
	// server's identifier at the issuer, so that a token minted for
	// another service is refused here.
	Audience string
	// Leeway is the clock skew tolerated on exp and nbf (default 30 s).
	Leeway time.Duration
	// DiscoveryTimeout bounds one fetch of the discovery document or the
	// key set (default 10 s).
	DiscoveryTimeout time.Duration
	// RetryEvery is the least time between two discovery attempts while
	// the issuer cannot be reached, and between two fetches of its key set
	// (default 5 s): a flood of requests does not become a flood at the
	// issuer.
	RetryEvery time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// AcceptedAlgorithms are the signature algorithms a token may use: only
// asymmetric ones, so that nobody holding the issuer's public key can mint
// a token. "none" and HS* are refused before any key is looked at.
var AcceptedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// MaxJWTBytes bounds a token the verifier will parse. Real access tokens
// are a few KB; a bigger one is refused before it is decoded.
const MaxJWTBytes = 16 << 10

// OIDCNamePrefix starts the name of every OAuth subject ("oidc:<sub>").
const OIDCNamePrefix = "oidc:"

// maxSubjectBytes bounds the "sub" claim kept as a principal's name.
const maxSubjectBytes = 255

// ErrIssuerUnavailable is returned while the issuer's discovery document
// cannot be fetched: the token may well be good, so the edge answers 503
// (retry later), not 401.
var ErrIssuerUnavailable = errors.New("the OAuth issuer cannot be reached")

// TokenError is a presented token refused: Reason says why, for the
// WWW-Authenticate error_description and the response body. It wraps
// ErrRejected.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "invalid token: " + e.Reason }
func (e *TokenError) Unwrap() error { return ErrRejected }

func rejected(format string, args ...any) error {
	return &TokenError{Reason: fmt.Sprintf(format, args...)}
}

// OIDC authenticates requests carrying a JWT access token from one issuer
// as Principal{Name: "oidc:"+sub, Scopes: from "scope" or "scp"}.
//
// Discovery (the issuer's metadata and key set URL) happens on Discover
// or on the first request; while the issuer cannot be reached, requests
// get ErrIssuerUnavailable and discovery is retried at most every
// RetryEvery. The server starts either way: the data dir's token and
// principals' tokens keep working when the issuer is down. Keys are cached
// and fetched again when a token names a key id the cache lacks, at most
// every RetryEvery (jwks.go); go-oidc checks algorithm and claims.
type OIDC struct {
	cfg    OIDCConfig
	client *http.Client
	log    *slog.Logger

	verifier atomic.Pointer[oidc.IDTokenVerifier]
	keys     atomic.Pointer[keySet]
	// discovering holds one token: whoever has it may try discovery.
	discovering chan struct{}
	mu          sync.Mutex
	lastTry     time.Time
	lastErr     error
}

// NewOIDC checks cfg and returns the authenticator. It does not reach the
// issuer: call Discover at start (bounded by its context) to learn early
// whether it answers.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if err := checkIssuerURL(cfg.Issuer); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, errors.New("--oidc-audience is required with --oidc-issuer: give the audience your issuer puts in " +
			"access tokens for this server (often its URL, e.g. https://jupyter.example.com/mcp, or the API's client id)")
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.DiscoveryTimeout <= 0 {
		cfg.DiscoveryTimeout = 10 * time.Second
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &OIDC{
		cfg: cfg, log: log,
		// NB: go-oidc fetches keys with this client from a context that is
		// never cancelled: the timeout is what stops a hung key fetch.
		client:      &http.Client{Timeout: cfg.DiscoveryTimeout},
		discovering: make(chan struct{}, 1),
	}
	o.discovering <- struct{}{}
	return o, nil
}

// Issuer is the issuer URL tokens must come from.
func (o *OIDC) Issuer() string { return o.cfg.Issuer }

// Audience is the audience tokens must carry.
func (o *OIDC) Audience() string { return o.cfg.Audience }

// checkIssuerURL refuses an issuer that is not an absolute https URL (or
// http on loopback, for tests and a local issuer): its keys decide who may
// do anything here, and fetching them in the clear would let anyone on
// the path substitute their own.
func checkIssuerURL(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--oidc-issuer %q: give the issuer's URL exactly as it appears in its tokens' \"iss\", "+
			"e.g. https://keycloak.example.com/realms/main", issuer)
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("--oidc-issuer %q: the issuer must be reached over https (http is accepted only on loopback): "+
				"its keys decide who may use this server", issuer)
		}
	}
	return nil
}

// Discover fetches the issuer's discovery document now, unless it was
// fetched already. It is what the server calls at start, bounded by ctx;
// a failure is logged and retried on later requests.
func (o *OIDC) Discover(ctx context.Context) error {
	_, err := o.verifierFor(ctx, true)
	return err
}

// verifierFor returns the verifier, discovering the issuer first if that
// has not succeeded yet — at most once per RetryEvery, unless force.
func (o *OIDC) verifierFor(ctx context.Context, force bool) (*oidc.IDTokenVerifier, error) {
	if v := o.verifier.Load(); v != nil {
		return v, nil
	}
	select {
	case <-o.discovering:
	default:
		// Someone is discovering: a request does not queue behind it when
		// the last attempt failed already (the answer is the same).
		o.mu.Lock()
		lastErr := o.lastErr
		o.mu.Unlock()
		if lastErr != nil && !force {
			return nil, lastErr
		}
		select {
		case <-o.discovering:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for discovery of %s: %v", ErrIssuerUnavailable, o.cfg.Issuer, ctx.Err())
		}
	}
	defer func() { o.discovering <- struct{}{} }()
	if v := o.verifier.Load(); v != nil {
		return v, nil
	}
	o.mu.Lock()
	recent, lastErr := o.cfg.Now().Sub(o.lastTry) < o.cfg.RetryEvery, o.lastErr
	o.mu.Unlock()
	if recent && lastErr != nil && !force {
		return nil, lastErr
	}
	// NB: a request's discovery runs to its own timeout even if that
	// client hangs up, so that what is recorded is the issuer's answer;
	// the start's (force) stops with the server.
	base := ctx
	if !force {
		base = context.WithoutCancel(ctx)
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(base, o.client), o.cfg.DiscoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(dctx, o.cfg.Issuer)
	if err != nil && base.Err() != nil {
		return nil, fmt.Errorf("%w: discovery of %s cut short: %v", ErrIssuerUnavailable, o.cfg.Issuer, base.Err())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lastTry = o.cfg.Now()
	if err != nil {
		o.lastErr = fmt.Errorf("%w: discovery at %s/.well-known/openid-configuration failed: %v; "+
			"OAuth tokens are refused until it answers (retried at most every %s; other tokens still work)",
			ErrIssuerUnavailable, strings.TrimSuffix(o.cfg.Issuer, "/"), err, o.cfg.RetryEvery)
		o.log.Warn("oidc: issuer discovery failed", "issuer", o.cfg.Issuer, "err", err)
		return nil, o.lastErr
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		o.lastErr = fmt.Errorf("%w: the discovery document of %s names no jwks_uri", ErrIssuerUnavailable, o.cfg.Issuer)
		return nil, o.lastErr
	}
	o.lastErr = nil
	keys := newKeySet(meta.JWKSURI, o.client, o.cfg.RetryEvery, o.cfg.Now)
	v := oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: AcceptedAlgorithms,
		// NB: go-oidc compares exp with no leeway; its clock runs Leeway
		// late so that a token is accepted up to Leeway past exp. nbf is
		// checked again below with the same leeway (go-oidc allows 5 min).
		Now: func() time.Time { return o.cfg.Now().Add(-o.cfg.Leeway) },
	})
	o.keys.Store(keys)
	o.verifier.Store(v)
	o.log.Info("oidc: issuer discovered", "issuer", o.cfg.Issuer)
	return v, nil
}

// Check reaches the issuer now, as `mcp-jupyter doctor` does: discovery,
// then one fetch of the key set. It returns how many signing keys the
// set holds.
func (o *OIDC) Check(ctx context.Context) (keys int, err error) {
	if err := o.Discover(ctx); err != nil {
		return 0, err
	}
	ks := o.keys.Load()
	cctx, cancel := context.WithTimeout(ctx, o.cfg.DiscoveryTimeout)
	defer cancel()
	got, err := ks.fetch(cctx)
	if err != nil {
		return 0, fmt.Errorf("%w: the key set at %s: %v", ErrIssuerUnavailable, ks.url, err)
	}
	return len(got), nil
}

// Authenticate reads "Authorization: Bearer <jwt>" and checks the token.
// A request without a bearer token, or with one that is not shaped like a
// JWT (a principal's token, the data dir's token), gets ErrNoCredentials:
// in an auth.Chain the next authenticator decides.
func (o *OIDC) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return Principal{}, fmt.Errorf("%w: send \"Authorization: Bearer <access token>\"", ErrNoCredentials)
	}
	tok := strings.TrimSpace(h[len(prefix):])
	if !LooksLikeJWT(tok) {
		return Principal{}, fmt.Errorf("%w: the bearer token is not a JWT", ErrNoCredentials)
	}
	return o.AuthenticateToken(r.Context(), tok)
}

// AuthenticateToken checks raw, a compact JWT: its shape and algorithm,
// its signature against the issuer's keys, iss, aud, exp and nbf; then
// reads the principal from its claims. Refusals are *TokenError (wrapping
// ErrRejected); an unreachable issuer is ErrIssuerUnavailable.
func (o *OIDC) AuthenticateToken(ctx context.Context, raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, fmt.Errorf("%w: the bearer token is empty", ErrNoCredentials)
	}
	hdr, err := parseJWTHeader(raw)
	if err != nil {
		return Principal{}, err
	}
	if !slices.Contains(AcceptedAlgorithms, hdr.Alg) {
		return Principal{}, rejected("the token is signed with %q; this server accepts only asymmetric signatures (%s)",
			hdr.Alg, strings.Join(AcceptedAlgorithms, ", "))
	}
	v, err := o.verifierFor(ctx, false)
	if err != nil {
		return Principal{}, err
	}
	vctx, cancel := context.WithTimeout(ctx, o.cfg.DiscoveryTimeout)
	defer cancel()
	tok, err := v.Verify(vctx, raw)
	if err != nil {
		return Principal{}, o.explain(raw, err)
	}
	var payload json.RawMessage
	if err := tok.Claims(&payload); err != nil {
		return Principal{}, rejected("the token's claims cannot be read: %v", err)
	}
	c, err := parseAccessClaims(payload)
	if err != nil {
		return Principal{}, err
	}
	if c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(o.cfg.Now().Add(o.cfg.Leeway)) {
		return Principal{}, rejected("the token is not valid before %s", time.Unix(*c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	p := c.principal()
	p.Expires = tok.Expiry // NB: streams end at it (ws, mcpserver.Guard)
	return p, nil
}

// explain turns a verification failure into what the caller must fix.
// The unverified claims only choose the words; the refusal itself is
// go-oidc's.
func (o *OIDC) explain(raw string, err error) error {
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		return rejected("the token expired at %s: get a new one from %s", expired.Expiry.UTC().Format(time.RFC3339), o.cfg.Issuer)
	}
	if strings.Contains(err.Error(), "fetching keys") {
		// NB: the key set could not be fetched: the issuer, not the token.
		return fmt.Errorf("%w: fetching its key set failed: %v", ErrIssuerUnavailable, err)
	}
	if c, perr := unverifiedClaims(raw); perr == nil {
		if c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(o.cfg.Now().Add(o.cfg.Leeway)) &&
			strings.Contains(err.Error(), "nbf") {
			return rejected("the token is not valid before %s", time.Unix(*c.NotBefore, 0).UTC().Format(time.RFC3339))
		}
		if c.Issuer != o.cfg.Issuer {
			return rejected("the token was issued by %q; this server accepts tokens from %q", c.Issuer, o.cfg.Issuer)
		}
		if !slices.Contains(c.Audience, o.cfg.Audience) {
			return rejected("the token is meant for %q, not for this server (audience %q): request a token for this resource",
				strings.Join(c.Audience, " "), o.cfg.Audience)
		}
	}
	if strings.Contains(err.Error(), "malformed") {
		return rejected("the token is not a well-formed signed JWT")
	}
	return rejected("the token's signature does not verify with the issuer's keys")
}

// jwtHeader is the part of a JOSE header read before verification.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

func parseJWTHeader(raw string) (jwtHeader, error) {
	if len(raw) > MaxJWTBytes {
		return jwtHeader{}, rejected("the token is %d bytes, more than the %d accepted", len(raw), MaxJWTBytes)
	}
	if !LooksLikeJWT(raw) {
		return jwtHeader{}, rejected("the token is not a JWT (three base64url parts separated by dots)")
	}
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return jwtHeader{}, rejected("the token's header is not base64url")
	}
	var h jwtHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return jwtHeader{}, rejected("the token's header is not a JSON object")
	}
	return h, nil
}

// accessClaims are the claims a principal is read from.
type accessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"-"`
	NotBefore *int64   `json:"-"`
	Scope     Scope    `json:"-"`
}

// parseAccessClaims reads sub, aud, nbf and the scopes from a JWT
// payload. Scopes come from "scope" (a space-separated string, RFC 8693
// and 9068) and "scp" (a string or an array, as Entra ID and Okta send);
// names other than read, execute, manage and admin (optionally
// "mcp-jupyter:"-prefixed) are ignored, being meant for other resources.
func parseAccessClaims(payload []byte) (accessClaims, error) {
	var raw struct {
		Issuer  string          `json:"iss"`
		Subject json.RawMessage `json:"sub"`
		Aud     json.RawMessage `json:"aud"`
		Nbf     json.RawMessage `json:"nbf"`
		Scope   json.RawMessage `json:"scope"`
		Scp     json.RawMessage `json:"scp"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return accessClaims{}, rejected("the token's claims are not a JSON object")
	}
	c := accessClaims{Issuer: raw.Issuer}
	if err := json.Unmarshal(raw.Subject, &c.Subject); err != nil || c.Subject == "" {
		return accessClaims{}, rejected("the token has no \"sub\" (subject) claim")
	}
	if len(c.Subject) > maxSubjectBytes || !utf8.ValidString(c.Subject) ||
		strings.ContainsFunc(c.Subject, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return accessClaims{}, rejected("the token's \"sub\" claim is longer than %d bytes or holds spaces or control characters", maxSubjectBytes)
	}
	if len(raw.Aud) > 0 {
		var one string
		if json.Unmarshal(raw.Aud, &one) == nil {
			c.Audience = []string{one}
		} else if err := json.Unmarshal(raw.Aud, &c.Audience); err != nil {
			return accessClaims{}, rejected("the token's \"aud\" claim is neither a string nor a list of strings")
		}
	}
	if len(raw.Nbf) > 0 && string(raw.Nbf) != "null" {
		var f float64
		if err := json.Unmarshal(raw.Nbf, &f); err != nil {
			return accessClaims{}, rejected("the token's \"nbf\" claim is not a number")
		}
		n := int64(f)
		c.NotBefore = &n
	}
	var names []string
	for _, field := range []struct {
		name string
		v    json.RawMessage
	}{{"scope", raw.Scope}, {"scp", raw.Scp}} {
		if len(field.v) == 0 || string(field.v) == "null" {
			continue
		}
		var s string
		var list []string
		switch {
		case json.Unmarshal(field.v, &s) == nil:
			names = append(names, s)
		case json.Unmarshal(field.v, &list) == nil:
			for _, l := range list {
				// NB: a name with a separator inside would smuggle two.
				if !strings.ContainsAny(l, " ,\t") {
					names = append(names, l)
				}
			}
		default:
			return accessClaims{}, rejected("the token's %q claim is neither a string nor a list of strings", field.name)
		}
	}
	c.Scope, _ = ParseScopes(strings.Join(names, " "), true)
	return c, nil
}

func (c accessClaims) principal() Principal {
	return Principal{Name: OIDCNamePrefix + c.Subject, Scopes: c.Scope}
}

// unverifiedClaims decodes raw's payload without checking anything: only
// to word a refusal.
func unverifiedClaims(raw string) (accessClaims, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return accessClaims{}, errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return accessClaims{}, err
	}
	return parseAccessClaims(b)
}
