package events

// Approval-policy events (--policy), on stream policy/<principal>.
// NB: type strings must not change.
const (
	TypePolicyDecided = "PolicyDecided"
)

// The decisions a policy rule makes about one tool call.
const (
	// PolicyRefused: a deny rule matched; the call did nothing.
	PolicyRefused = "refused"
	// PolicyAsked: a confirm rule matched; the client was asked (an input
	// request on 2026-07-28, elicitation on older revisions).
	PolicyAsked = "asked"
	// PolicyConfirmed: the client's user accepted; the call ran.
	PolicyConfirmed = "confirmed"
	// PolicyDeclined: the client's user declined or cancelled; the call did nothing.
	PolicyDeclined = "declined"
	// PolicyUnconfirmable: a confirm rule matched but the client cannot be
	// asked (an older revision without elicitation); the call did nothing.
	PolicyUnconfirmable = "unconfirmable"
)

// PolicyDecided records what a --policy rule decided about one tool call
// (calls no rule matches are not recorded). The caller is the event's
// Principal.
type PolicyDecided struct {
	Tool       string `json:"tool"`
	Rule       string `json:"rule"`     // the matching rule's name
	Action     string `json:"action"`   // the rule's action: deny or confirm
	Decision   string `json:"decision"` // PolicyRefused, PolicyAsked, ...
	KernelID   string `json:"kernel_id,omitempty"`
	CodeSHA256 string `json:"code_sha256,omitempty"` // of the code the call carried, if any
	Code       string `json:"code,omitempty"`        // what the user was shown: its size and the lines the rule matched (at most 20 of 200 bytes)
	// Request ties an ask to its answer: the nonce sealed in the request
	// state (one answer per ask; a replayed answer is refused).
	Request string `json:"request,omitempty"`
	Reason  string `json:"reason,omitempty"` // the rule's reason, shown to the client
	// CodeBytes is the size of the code the call carried (what the
	// server's log line says of it, with CodeSHA256).
	CodeBytes int `json:"code_bytes,omitempty"`
}

func (PolicyDecided) EventType() string { return TypePolicyDecided }

// PolicyStream is the stream of a principal's policy decisions.
func PolicyStream(principal string) string { return "policy/" + principal }
