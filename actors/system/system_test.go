package system_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func TestExecuteThroughActors(t *testing.T) {
	s := testkit.StartStack(t, "")
	ctx := context.Background()
	k, err := s.System.StartKernel(ctx, "python3", "test", "")
	if err != nil {
		t.Fatalf("start kernel: %v", err)
	}
	x, err := s.System.Submit(ctx, k.ID, scheduler.Submit{Code: "print('hello')\n1+1"})
	if err != nil {
		t.Fatal(err)
	}
	done := s.WaitExecution(x.ID, 30*time.Second)
	if done.Status != queue.StatusOK || done.ExecutionCount != 1 {
		t.Fatalf("execution: %+v", done)
	}
	var text []string
	for _, o := range s.Outputs(x.ID) {
		text = append(text, o.MsgType+":"+string(o.Content))
	}
	joined := strings.Join(text, "\n")
	if !strings.Contains(joined, `hello`) || !strings.Contains(joined, `"text/plain":"2"`) {
		t.Fatalf("outputs:\n%s", joined)
	}
}
