package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Run submits code to a kernel of the stack as an ordinary execution,
// waits (bounded by ctx) until it finished, and returns its stdout; an
// execution that did not end ok is an error naming the exception. It
// implements checkpoint.Runner for tests, and follows the stack across
// Restart.
func (s *Stack) Run(ctx context.Context, kernelID, code string) (string, error) {
	sx, err := s.System.Submit(ctx, kernelID, scheduler.Submit{Code: code})
	if err != nil {
		return "", err
	}
	x := queue.Execution{ID: sx.ID}
	for {
		changed := s.Queue.Changed() // NB: taken before reading, so no change is missed
		if cur, ok := s.Queue.Get(x.ID); ok && cur.Status.Done() {
			x = cur
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for execution %s: %w", x.ID, ctx.Err())
		}
	}
	var out strings.Builder
	for _, p := range s.Outputs(x.ID) {
		var c struct {
			Name string `json:"name"`
			Text string `json:"text"`
		}
		if p.MsgType == "stream" && json.Unmarshal(p.Content, &c) == nil && c.Name == "stdout" {
			out.WriteString(c.Text)
		}
	}
	if x.Status != queue.StatusOK {
		return out.String(), fmt.Errorf("execution %s ended %s: %s: %s %s", x.ID, x.Status, x.ErrorName, x.ErrorValue, x.Reason)
	}
	return out.String(), nil
}
