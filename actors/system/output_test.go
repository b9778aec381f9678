package system_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestDisplayFloodWithSlowLogLosesNothing: ipykernel's PUB socket drops
// past 1,000 queued messages, so the IOPub reader must never wait on a slow
// log. With every commit slowed, a flood of 5x that bound arrives whole (a
// reader waiting on each commit would lose most of it). The 20,000-message
// figure is BenchmarkDisplayFlood20k, measured without other tests
// competing for the CPU.
func TestDisplayFloodWithSlowLogLosesNothing(t *testing.T) {
	const n = 5000
	s := testkit.StartStackWith(t, "", eventlog.Options{BeforeCommit: func() { time.Sleep(2 * time.Millisecond) }})
	k := startKernel(t, s)
	id := submit(t, s, k, fmt.Sprintf("from IPython.display import display\nfor i in range(%d):\n    display({'text/plain': str(i)}, raw=True)", n))
	x := s.WaitExecution(id, 3*time.Minute)
	if x.Status != queue.StatusOK {
		t.Fatalf("execution: %+v", x)
	}
	next := 0
	for _, o := range s.Outputs(id) {
		if o.MsgType != "display_data" {
			continue
		}
		var c struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal(o.Content, &c); err != nil {
			t.Fatal(err)
		}
		if c.Data["text/plain"] != strconv.Itoa(next) {
			t.Fatalf("display %d out of order or missing: got %q", next, c.Data["text/plain"])
		}
		next++
	}
	if next != n {
		t.Fatalf("captured %d of %d display_data", next, n)
	}
	var gaps int
	_ = s.Log.ReadKernel(context.Background(), k, 0, func(e events.Event) error {
		if e.Type == events.TypeIOPubGapRecorded {
			gaps++
		}
		return nil
	})
	if gaps != 0 {
		t.Fatalf("%d gaps recorded", gaps)
	}
}

// TestHundredThousandLinesInOrder: every printed line is captured, in order.
func TestHundredThousandLinesInOrder(t *testing.T) {
	s := testkit.StartStack(t, "")
	k := startKernel(t, s)
	id := submit(t, s, k, "for i in range(100000):\n    print(i)")
	if x := s.WaitExecution(id, 5*time.Minute); x.Status != queue.StatusOK {
		t.Fatalf("execution: %+v", x)
	}
	lines := strings.Split(strings.TrimSuffix(stdout(s, id), "\n"), "\n")
	if len(lines) != 100000 {
		t.Fatalf("captured %d lines", len(lines))
	}
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
}

func TestUnknownKernelSpecListsTheOnesFound(t *testing.T) {
	s := testkit.StartStack(t, "")
	_, err := s.System.StartKernel(context.Background(), "julia-9", "", "", "admin")
	var unknown *jupyter.UnknownKernelSpecError
	if !errors.As(err, &unknown) || !strings.Contains(err.Error(), "python3") {
		t.Fatalf("want the error to list the kernelspecs found, got %v", err)
	}
	if ids := s.System.KernelIDs(); len(ids) != 0 {
		t.Fatalf("a failed start leaves no kernel behind: %v", ids)
	}
}

// TestKernelThatCannotStart: a kernelspec whose process exits at once gives
// an error carrying its stderr, well within 30 s, and leaves no process.
func TestKernelThatCannotStart(t *testing.T) {
	s := testkit.StartStack(t, "")
	testkit.WriteKernelSpec(t, s.SpecDir, "broken", []string{testkit.PythonWithIPyKernel(t), "-c",
		"import sys; sys.stderr.write('No module named ipykernel_launcher_missing\\n'); sys.exit(3)", "{connection_file}"})
	began := time.Now()
	_, err := s.System.StartKernel(context.Background(), "broken", "", "", "admin")
	if err == nil || !strings.Contains(err.Error(), "ipykernel_launcher_missing") {
		t.Fatalf("want the stderr tail in the error, got %v", err)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("failure took %v", took)
	}
	var failed *events.KernelStartFailed
	_ = s.Log.Scan(context.Background(), 0, 0, func(e events.Event) error {
		if e.Type == events.TypeKernelStartFailed {
			p, _ := events.As[events.KernelStartFailed](&e)
			failed = &p
		}
		if e.Type == events.TypeKernelStarted {
			p, err := events.As[events.KernelStarted](&e)
			if err != nil || p.Process.Pid <= 0 {
				t.Errorf("KernelStarted at seq %d names no process: %+v %v", e.Seq, p, err)
			} else if syscall.Kill(p.Process.Pid, 0) == nil {
				t.Errorf("orphan kernel process %d", p.Process.Pid)
			}
		}
		return nil
	})
	if failed == nil || !strings.Contains(failed.StderrTail+failed.Reason, "ipykernel_launcher_missing") {
		t.Fatalf("KernelStartFailed must record why: %+v", failed)
	}
}

// TestKernelsStartedAtOnce: kernels started concurrently never collide on
// ports.
func TestKernelsStartedAtOnce(t *testing.T) {
	s := testkit.StartStack(t, "")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.System.StartKernel(context.Background(), "python3", "", "", "admin"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent start: %v", err)
	}
	if n := len(s.System.KernelIDs()); n != 4 {
		t.Fatalf("%d kernels", n)
	}
}
