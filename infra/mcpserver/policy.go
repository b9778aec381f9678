package mcpserver

import (
	"context"
	"errors"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Policy is a --policy file's rules: which tool calls need the client's
// confirmation and which are refused. (Contract stub: helper "policy"
// implements loading, matching and the middleware.)
type Policy struct{}

// LoadPolicy reads and checks a --policy file.
func LoadPolicy(path string) (*Policy, error) {
	return nil, errors.New("--policy: not implemented yet")
}

// PolicyRecorder records a policy decision durably (a PolicyDecided event
// on the caller's policy stream) before the call goes on.
type PolicyRecorder interface {
	RecordPolicy(ctx context.Context, principal string, d events.PolicyDecided) error
}
