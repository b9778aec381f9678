package system_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestSameIDSubmittedTwiceWithinAnFsyncRunsOnce: a client-chosen id
// submitted twice before its queueing is durable (two concurrent submits,
// and a submit right after one that did not wait for durability, as an
// execute call cancelled by its caller) is queued once and runs once.
func TestSameIDSubmittedTwiceWithinAnFsyncRunsOnce(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	ran := ranFile(t)
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("dup-concurrent-%d", i)
		ids = append(ids, id)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x, err := s.System.Submit(context.Background(), k, scheduler.Submit{ExecutionID: id, Code: marks(ran, fmt.Sprint(i))})
				if err != nil || x.ID != id {
					t.Errorf("submit %s: %+v %v", id, x, err)
				}
			}()
		}
		wg.Wait()
	}
	for i := range 5 {
		id := fmt.Sprintf("dup-after-async-%d", i)
		ids = append(ids, id)
		c := scheduler.Submit{ExecutionID: id, Code: marks(ran, fmt.Sprint(5+i))}
		if _, _, err := s.System.SubmitAsync(context.Background(), k, c); err != nil {
			t.Fatalf("submit %s: %v", id, err)
		}
		if x, err := s.System.Submit(context.Background(), k, c); err != nil || x.ID != id {
			t.Fatalf("resubmit %s: %+v %v", id, x, err)
		}
	}
	for _, id := range ids {
		if x := s.WaitExecution(id, 30*time.Second); x.Status != queue.StatusOK {
			t.Fatalf("%s: %+v", id, x)
		}
		if n := s.Count(id, events.TypeExecutionQueued); n != 1 {
			t.Errorf("%s queued %d times, want 1", id, n)
		}
	}
	if got := readRan(t, ran); got != "0123456789" {
		t.Fatalf("ran %q, want each execution once, in order: 0123456789", got)
	}
}
