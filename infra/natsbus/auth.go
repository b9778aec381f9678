package natsbus

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// EventSubjects is every subject events are published on. Only the
// server's own connections may publish there. NB: public API.
const EventSubjects = "mcpjupyter.>"

// authenticator decides who may connect and what they may do. It is the
// embedded server's only authentication (server.Options.CustomClientAuthentication):
//
//   - the server's own connections (the publisher, the stream set-up, the
//     in-process clients of Server.Connect) present an internal token
//     generated for this run and kept only in memory: they may do anything;
//   - outside clients presenting Options.Token, or signing the nonce with a
//     listed nkey, may subscribe to anything and publish anything but
//     events (request/reply and the JetStream API keep working);
//   - clients without credentials get the same subscribe-only rights, but
//     only when anonymous is set (--nats-insecure-loopback).
//
// NB: nobody but the server may publish on EventSubjects, whatever their
// credential: a token holder cannot forge events either.
type authenticator struct {
	internal  string
	token     string
	nkeys     map[string]bool
	anonymous bool
}

func newAuthenticator(token string, public []string, anonymous bool) (*authenticator, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("start nats: generate the server's own credential: %w", err)
	}
	a := &authenticator{internal: hex.EncodeToString(secret), token: token, nkeys: map[string]bool{}, anonymous: anonymous}
	for _, pk := range public {
		if !nkeys.IsValidPublicUserKey(pk) {
			return nil, fmt.Errorf("start nats: %q is not a public user nkey (it starts with U; generate one with `nk -gen user -pubout`)", pk)
		}
		a.nkeys[pk] = true
	}
	return a, nil
}

// subscriberDenied is what outside clients may not publish: events, and the
// JetStream API requests that would change or empty the events stream
// (reading it with consumers stays open).
var subscriberDenied = []string{EventSubjects,
	"$JS.API.STREAM.DELETE." + StreamName, "$JS.API.STREAM.PURGE." + StreamName,
	"$JS.API.STREAM.UPDATE." + StreamName, "$JS.API.STREAM.MSG.DELETE." + StreamName}

// subscriberHidden is what outside clients may not read: the cluster's
// routed tool calls (code, principals), the tunnels' bytes (HTTP requests
// with their bearer tokens) and the router's reply inboxes (route.go).
var subscriberHidden = []string{"mcpjupyter.node.>", "mcpjupyter.tunnel.>", routeInbox + ".>"}

// subscriber is what outside clients may do: everything but subscriberDenied
// and reading subscriberHidden.
func subscriber(name string) *server.User {
	return &server.User{Username: name, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Deny: subscriberDenied},
		Subscribe: &server.SubjectPermission{Deny: subscriberHidden}}}
}

// Check implements server.Authentication.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	switch {
	case o.Token != "" && same(o.Token, a.internal):
		c.RegisterUser(&server.User{Username: "mcp-jupyter"}) // no permissions: all allowed
		return true
	case o.Token != "" && a.token != "" && same(o.Token, a.token):
		c.RegisterUser(subscriber("token"))
		return true
	case o.Nkey != "":
		if !a.nkeys[o.Nkey] || !signed(o.Nkey, o.Sig, c.GetNonce()) {
			return false
		}
		c.RegisterUser(subscriber(o.Nkey))
		return true
	case a.anonymous && o.Token == "" && o.Username == "" && o.Password == "" && o.JWT == "":
		c.RegisterUser(subscriber("anonymous"))
		return true
	}
	return false
}

func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// signed reports whether sig is the nonce signed by the nkey's seed, as
// nats.Nkey clients send it.
func signed(public, sig string, nonce []byte) bool {
	if len(nonce) == 0 || sig == "" {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	kp, err := nkeys.FromPublicKey(public)
	if err != nil {
		return false
	}
	return kp.Verify(nonce, raw) == nil
}
