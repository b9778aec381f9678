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
//     listed nkey, may read the events (live or from the events stream)
//     and nothing else (subscriber);
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

// ownInbox is the reply-inbox prefix of the server's own connections
// (Server.Connect): their JetStream replies carry leases, checkpoint chunks
// and history, so outside clients may not read it (subscriberHidden).
const ownInbox = routeInbox + ".own"

// subscriberAllowed is all outside clients may publish: what a reader of
// the events stream needs, as nats.go's jetstream and legacy JetStream
// clients send it (account info, the stream's info, creating, reading and
// deleting consumers of the events stream, acks and flow control replies of
// its consumers). Everything else is refused, the rest of the JetStream API
// above all: with it a client could create a stream that republishes onto
// a node's tool subject (a forged tool call), capture the routed calls and
// tunnels in a stream of its own, or read and overwrite the ownership
// leases, the checkpoints and the execution history.
var subscriberAllowed = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.NAMES", // the legacy client's stream lookup by subject
	"$JS.API.STREAM.INFO." + StreamName,
	"$JS.API.STREAM.MSG.GET." + StreamName,
	"$JS.API.DIRECT.GET." + StreamName, "$JS.API.DIRECT.GET." + StreamName + ".>",
	"$JS.API.CONSUMER.CREATE." + StreamName, "$JS.API.CONSUMER.CREATE." + StreamName + ".>",
	"$JS.API.CONSUMER.DURABLE.CREATE." + StreamName + ".*",
	"$JS.API.CONSUMER.INFO." + StreamName + ".*",
	"$JS.API.CONSUMER.DELETE." + StreamName + ".*",
	"$JS.API.CONSUMER.MSG.NEXT." + StreamName + ".*",
	"$JS.API.CONSUMER.NAMES." + StreamName, "$JS.API.CONSUMER.LIST." + StreamName,
	"$JS.ACK." + StreamName + ".>",
	"$JS.FC." + StreamName + ".>",
}

// subscriberHidden is what outside clients may not read: the cluster's
// routed tool calls (code, principals), the tunnels' bytes (HTTP requests
// with their bearer tokens), the router's and the server's reply inboxes
// (route.go, ownInbox), the execution history, the ownership leases ($KV),
// the checkpoints ($O) and the JetStream API traffic of others.
var subscriberHidden = []string{"mcpjupyter.node.>", "mcpjupyter.tunnel.>", routeInbox + ".>",
	HistorySubjectPrefix + ">", "$KV.>", "$O.>", "$JS.>"}

// subscriber is what outside clients may do: publish subscriberAllowed
// only, and read anything but subscriberHidden (the events above all).
// NB: nobody but the server may publish events (EventSubjects is outside
// subscriberAllowed and denied besides).
func subscriber(name string) *server.User {
	return &server.User{Username: name, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: subscriberAllowed, Deny: []string{EventSubjects}},
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
