package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds the issuer's key set document.
const maxJWKSBytes = 1 << 20

// keysMaxAge is how long a fetched key set is trusted without asking the
// issuer again: a key the issuer withdraws (a leaked one) stops working
// within it, though no token names an unknown key. While the issuer
// cannot be reached the last keys stay in use.
const keysMaxAge = 10 * time.Minute

// keySet is the issuer's JWKS, cached, for go-oidc's verifier (which
// checks the claims and the algorithm; this checks the signature).
//
// NB: go-oidc's own RemoteKeySet fetches the key set again for every
// token whose signature fails to verify with a cached key — an unknown
// kid, a tampered payload — so anyone without a token could make the
// server hit the issuer once per request (and get it rate-limited
// there). Here a fetch happens only for a kid the cache does not hold,
// at most once per minGap; a known kid with a bad signature is refused
// from the cache.
type keySet struct {
	url    string
	client *http.Client
	minGap time.Duration
	now    func() time.Time

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	fetched   bool      // keys hold a fetched set
	fetchedAt time.Time // of the keys held
	lastTry   time.Time // of the last fetch, successful or not
	lastErr   error

	// fetching holds one token: whoever has it may fetch. Concurrent
	// callers wait for it (or their context), then find the keys it
	// brought.
	fetching chan struct{}
}

func newKeySet(url string, client *http.Client, minGap time.Duration, now func() time.Time) *keySet {
	k := &keySet{url: url, client: client, minGap: minGap, now: now, fetching: make(chan struct{}, 1)}
	k.fetching <- struct{}{}
	return k
}

// errKeysUnavailable is a key set fetch failing. NB: go-oidc folds the
// key set's error into its own message with %v, so the text "fetching
// keys" is what explain recognises.
var errKeysUnavailable = errors.New("fetching keys")

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, acceptedJOSEAlgs())
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("malformed jwt: not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if k.stale() {
		_ = k.refresh(ctx) // NB: a failure keeps the keys held; the issuer down is not the token's fault
	}
	payload, held := k.verifyCached(jws, kid)
	if payload != nil {
		return payload, nil
	}
	if held {
		return nil, errors.New("the signature does not verify with the issuer's key " + kid)
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if payload, _ := k.verifyCached(jws, kid); payload != nil {
		return payload, nil
	}
	return nil, fmt.Errorf("no key of the issuer's key set verifies the signature (key id %q)", kid)
}

// stale reports whether the keys held were fetched keysMaxAge ago or more.
func (k *keySet) stale() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.fetched && k.now().Sub(k.fetchedAt) >= keysMaxAge
}

// verifyCached verifies jws with the cached keys of kid (every key when
// the token names none). held reports whether such a key is cached.
func (k *keySet) verifyCached(jws *jose.JSONWebSignature, kid string) (payload []byte, held bool) {
	k.mu.RLock()
	keys := k.keys
	k.mu.RUnlock()
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		held = true
		if p, err := jws.Verify(&keys[i]); err == nil {
			return p, true
		}
	}
	return nil, held && kid != ""
}

// refresh fetches the key set, unless one was fetched (or tried) less than
// minGap ago.
func (k *keySet) refresh(ctx context.Context) error {
	select {
	case <-k.fetching:
	case <-ctx.Done():
		return fmt.Errorf("%w from %s: waiting for another fetch: %v", errKeysUnavailable, k.url, ctx.Err())
	}
	defer func() { k.fetching <- struct{}{} }()
	k.mu.RLock()
	recent, lastErr, fetched := k.now().Sub(k.lastTry) < k.minGap, k.lastErr, k.fetched
	k.mu.RUnlock()
	if recent && (fetched || lastErr != nil) {
		if lastErr != nil {
			return lastErr
		}
		return nil // NB: fresh enough: the kid is not the issuer's
	}
	// NB: the fetch runs to the client's timeout even if this caller hangs
	// up: what is recorded is the issuer's answer, and a hanging issuer
	// costs one fetch per minGap, not one per waiting request.
	keys, err := k.fetch(context.WithoutCancel(ctx))
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastTry = k.now()
	if err != nil {
		k.lastErr = fmt.Errorf("%w from %s: %v", errKeysUnavailable, k.url, err)
		return k.lastErr
	}
	k.keys, k.fetched, k.fetchedAt, k.lastErr = keys, true, k.lastTry, nil
	return nil
}

func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("the key set is over %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS keeps the public signing keys of a JWKS document, skipping
// keys of types go-jose does not know, encryption keys and symmetric
// keys (which would let whoever read the set sign).
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("the key set is not JSON: %v", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil {
			continue
		}
		if !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("the key set holds no public signing key")
	}
	return keys, nil
}

func acceptedJOSEAlgs() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(AcceptedAlgorithms))
	for i, a := range AcceptedAlgorithms {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}
