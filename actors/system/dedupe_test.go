package system_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
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

// TestSubmitWithCancelledCallerIsNotToldFailure: a caller whose context
// ends while its submit waits for durability (the fsync held) is not told
// failure for an execution the scheduler took and runs.
func TestSubmitWithCancelledCallerIsNotToldFailure(t *testing.T) {
	gate := &testkit.SyncGate{}
	defer gate.Release()
	s := testkit.StartStackWith(t, "", eventlog.Options{FS: gate.FS()})
	k := startKernel(t, s)
	gate.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		x   scheduler.Execution
		err error
	}
	res := make(chan result, 1)
	go func() {
		x, err := s.System.Submit(ctx, k, scheduler.Submit{ExecutionID: "caller-gone", Code: "1"})
		res <- result{x, err}
	}()
	testkit.WaitUntil(t, 30*time.Second, "the submit's append waiting for its fsync", func() (bool, string) {
		return gate.Waiting() > 0, ""
	})
	cancel()
	// NB: not a synchronisation: a Submit that gives up with its caller
	// answers at once; one that waits for durability is still waiting.
	select {
	case r := <-res:
		t.Fatalf("submit answered before its queueing was durable, for a caller that went away: %+v %v", r.x, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	gate.Release()
	r := <-res
	if r.err != nil || r.x.ID != "caller-gone" {
		t.Fatalf("a cancelled caller was told failure for an execution that runs: %+v %v", r.x, r.err)
	}
	if x := s.WaitExecution("caller-gone", 30*time.Second); x.Status != queue.StatusOK {
		t.Fatalf("caller-gone: %+v", x)
	}
}
