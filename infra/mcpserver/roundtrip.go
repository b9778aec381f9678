package mcpserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// Multi round-trip requests (MCP 2026-07-28): a tool that needs the
// client's answer (the prompt of an input() call, a policy confirmation)
// returns a result of type input_required with the questions and an opaque
// request state; the client asks its user and calls the tool again with the
// same arguments, the answers and the state. The server keeps nothing
// between the two calls: what it needs to go on is sealed in the state
// (HMAC-signed, so a client can read it but not forge or alter it), and
// what must outlive a restart (the execution, its input request) is in the
// event log, so an answer given after a restart still lands.
//
// Clients on older revisions that declared the elicitation capability get
// the same questions through mcp-go's bridge (a server-initiated
// elicitation/create); those that did not are never sent input_required
// (see canAsk): they get the older reply (send_input, or a refusal that
// says why).

// roundTripTTL bounds how long a request state is accepted: an answer
// given later is refused with what to do instead.
const roundTripTTL = 24 * time.Hour

// The input request ids a tool result may carry; the answer comes back
// under the same id.
const (
	// InputRequestStdin is the prompt of an input() call.
	InputRequestStdin = "stdin"
	// InputRequestPolicy is a --policy confirmation.
	InputRequestPolicy = "policy"
)

// roundTrip is what a request state carries from one call to its retry.
type roundTrip struct {
	// Tool and Args bind the state to the call that minted it: a retry
	// must name the same tool with the same arguments (argsDigest).
	Tool string `json:"t"`
	Args string `json:"a"`
	// Policy is the nonce of the policy confirmation asked (policy.go);
	// Approved says the confirmation was already given for this call (a
	// later round, e.g. an input() prompt, must not ask again).
	Policy   string `json:"p,omitempty"`
	Approved bool   `json:"ok,omitempty"`
	// PolicyCode is the SHA-256 of the code the policy confirmation
	// showed (run_cell's cell may change between the ask and the answer:
	// the answer then counts for nothing).
	PolicyCode string `json:"pc,omitempty"`
	// InputPolicy is the nonce of the policy confirmation asked before an
	// answer to the execution's input() prompt is sent (the answer is a
	// send_input call for the policy: policy_edge.go policyInputAnswer).
	InputPolicy string `json:"ip,omitempty"`
	// Execution is the execution this call created or follows; a retry
	// carrying it never submits the code again.
	Execution string `json:"x,omitempty"`
	// InputSeq is the log sequence of the ExecutionInputRequested the
	// stdin question shows: an answer to an older prompt is not sent to a
	// newer one.
	InputSeq uint64 `json:"i,omitempty"`
	// Since is the output cursor the reply had reached.
	Since uint64 `json:"s,omitempty"`
	// Caller is the principal the state was minted for: another one (a
	// token that saw it, a shared kernel's reader) cannot answer with it.
	Caller string `json:"w"`
	// Expires is when the state stops being accepted (unix seconds).
	Expires int64 `json:"e"`
	// Sealed is when the state was sealed (unix seconds), set only by
	// sealRoundTripTTL: a policy confirmation is claimed only from a state
	// it sealed (short-lived, and refused when sealed before a restart
	// that could not read every answer back: policy_answers.go).
	Sealed int64 `json:"at,omitempty"`
}

// Errors openRoundTrip returns; each message says what to do.
var (
	ErrRoundTripTampered = errors.New("the requestState was not minted by this server or was altered: call the tool again without inputResponses and requestState")
	ErrRoundTripExpired  = errors.New("the requestState has expired: call the tool again without inputResponses and requestState")
	ErrRoundTripMismatch = errors.New("the requestState belongs to another call (tool or arguments differ): retry with exactly the arguments of the call that returned it")
	ErrRoundTripCaller   = errors.New("the requestState was minted for another principal: call the tool again without inputResponses and requestState")
)

// roundTripKey returns the key request states are sealed with: the
// configured one, or one random per process (states then do not survive a
// restart; cmd/mcp-jupyter always configures a durable one).
func (s *Server) roundTripKey() []byte {
	return s.opts.RoundTripKey
}

// randomKey is the fallback RoundTripKey of a Server whose Options gave none.
func randomKey() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("round-trip key: %w", err))
	}
	return b
}

// sealRoundTrip encodes rt (its Expires set from now, its Caller from ctx)
// as a request state.
func (s *Server) sealRoundTrip(ctx context.Context, rt roundTrip, now time.Time) string {
	rt.Expires = now.Add(roundTripTTL).Unix()
	rt.Caller = callerName(ctx)
	body, err := json.Marshal(rt)
	if err != nil {
		panic(fmt.Errorf("seal request state: %w", err)) // a struct of strings and numbers
	}
	mac := hmac.New(sha256.New, s.roundTripKey())
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sealRoundTripTTL is sealRoundTrip for a state accepted for ttl only (a
// policy confirmation: minutes, not the day an input() prompt may wait),
// stamped with when it was sealed.
func (s *Server) sealRoundTripTTL(ctx context.Context, rt roundTrip, now time.Time, ttl time.Duration) string {
	rt.Expires = now.Add(ttl).Unix()
	rt.Sealed = now.Unix()
	rt.Caller = callerName(ctx)
	body, err := json.Marshal(rt)
	if err != nil {
		panic(fmt.Errorf("seal request state: %w", err)) // a struct of strings and numbers
	}
	mac := hmac.New(sha256.New, s.roundTripKey())
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// openRoundTrip checks a request state the client echoed back for req (by
// the caller in ctx) and returns what it carries. ok is false when req
// carries no state (a first call).
func (s *Server) openRoundTrip(ctx context.Context, req mcp.CallToolRequest, now time.Time) (rt roundTrip, ok bool, err error) {
	state := req.Params.RequestState
	if state == "" {
		return roundTrip{}, false, nil
	}
	b64body, b64mac, found := strings.Cut(state, ".")
	body, err1 := base64.RawURLEncoding.DecodeString(b64body)
	sum, err2 := base64.RawURLEncoding.DecodeString(b64mac)
	if !found || err1 != nil || err2 != nil {
		return roundTrip{}, true, ErrRoundTripTampered
	}
	mac := hmac.New(sha256.New, s.roundTripKey())
	mac.Write(body)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return roundTrip{}, true, ErrRoundTripTampered
	}
	if err := json.Unmarshal(body, &rt); err != nil {
		return roundTrip{}, true, ErrRoundTripTampered
	}
	if now.Unix() > rt.Expires {
		return roundTrip{}, true, ErrRoundTripExpired
	}
	if rt.Tool != req.Params.Name || rt.Args != argsDigest(req) {
		return roundTrip{}, true, ErrRoundTripMismatch
	}
	if rt.Caller != callerName(ctx) {
		return roundTrip{}, true, ErrRoundTripCaller
	}
	return rt, true, nil
}

// callerName is the principal a request runs as ("" when none is known:
// in-process callers without one).
func callerName(ctx context.Context) string {
	if p, err := auth.Caller(ctx); err == nil {
		return p.Name
	}
	return ""
}

// argsDigest is a digest of a call's tool name and arguments, independent
// of key order.
func argsDigest(req mcp.CallToolRequest) string {
	h := sha256.New()
	h.Write([]byte(req.Params.Name))
	h.Write([]byte{0})
	writeCanonical(h, newArgs(req).m)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func writeCanonical(h interface{ Write([]byte) (int, error) }, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h.Write([]byte{'{'})
		for _, k := range keys {
			b, _ := json.Marshal(k)
			h.Write(b)
			h.Write([]byte{':'})
			writeCanonical(h, x[k])
			h.Write([]byte{','})
		}
		h.Write([]byte{'}'})
	case []any:
		h.Write([]byte{'['})
		for _, e := range x {
			writeCanonical(h, e)
			h.Write([]byte{','})
		}
		h.Write([]byte{']'})
	default:
		b, _ := json.Marshal(x)
		h.Write(b)
	}
}

// canAsk reports whether the caller can be sent an input_required result:
// its client declared the elicitation capability. On 2026-07-28 a request
// carries the client's capabilities in its _meta (a client that declared
// none there cannot answer: mcp-go's client then fails the whole call, "no
// elicitation handler configured"); older revisions declared them at
// initialize, and mcp-go asks them through elicitation/create.
func canAsk(ctx context.Context) bool {
	if rc, ok := routedFrom(ctx); ok {
		return rc.CanAsk // the client is another node's (forward.go)
	}
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.ClientCapabilities != nil && info.ClientCapabilities.Elicitation != nil
	}
	if mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
		return false // a modern request whose capabilities are unknown cannot be relied on
	}
	session := server.ClientSessionFromContext(ctx)
	if info, ok := session.(server.SessionWithClientInfo); ok {
		return info.GetClientCapabilities().Elicitation != nil
	}
	return false
}
