package system_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/system"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

func TestPingAnswersUntilClose(t *testing.T) {
	s := testkit.StartStack(t, "")
	for range 3 {
		if err := s.System.Ping(5 * time.Second); err != nil {
			t.Fatalf("ping a running system: %v", err)
		}
	}
	if err := s.System.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.System.Ping(time.Second); !errors.Is(err, system.ErrClosed) {
		t.Fatalf("ping after Close: %v, want ErrClosed", err)
	}
}
