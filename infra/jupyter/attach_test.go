package jupyter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// A later server re-attaches to a kernel by connection info, pid and start
// time; the kernel keeps its state.
func TestAttachAfterClose(t *testing.T) {
	k := testkit.StartKernel(t)
	execute(t, k.Client, "x = 41", 30*time.Second)
	info, pid, st := k.Info, k.Process.Pid, k.Process.StartTime
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := jupyter.Attach(context.Background(), info, pid, st+1, 5*time.Second, jupyter.ClientOptions{}); !errors.Is(err, jupyter.ErrProcessGone) {
		t.Fatalf("attach with wrong start time: %v", err)
	}
	k2, err := jupyter.Attach(context.Background(), info, pid, st, 10*time.Second, jupyter.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := execute(t, k2.Client, "x + 1", 30*time.Second)
	var result string
	for _, m := range res.Outputs {
		if m.Header.MsgType == "execute_result" {
			result = content(t, m)["data"].(map[string]any)["text/plain"].(string)
		}
	}
	if result != "42" {
		t.Fatalf("state lost across attach: %q", result)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := k2.Shutdown(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := jupyter.SignalGroup(pid, st, 0); !errors.Is(err, jupyter.ErrProcessGone) {
		t.Fatalf("kernel still there after Shutdown: %v", err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Messages with a bad signature are dropped, counted, logged once and never
// delivered: a second client with the wrong key listens to IOPub while the
// real one executes.
func TestBadSignatureDroppedAndCounted(t *testing.T) {
	k := testkit.StartKernel(t)
	info := k.Info
	info.Key = "not-the-key"
	var logs lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad, err := jupyter.Dial(ctx, info, jupyter.ClientOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	// The subscription joins asynchronously: run cells until the bad
	// client has seen several messages.
	deadline := time.Now().Add(30 * time.Second)
	for bad.Stats().BadSignature < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("bad client saw nothing: %+v", bad.Stats())
		}
		execute(t, k.Client, "print('x')", 30*time.Second)
	}
	select {
	case r := <-bad.Messages():
		t.Fatalf("badly signed message delivered: %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
	if st := bad.Stats(); st.Received != st.BadSignature {
		t.Fatalf("every message read was badly signed and none may count as good: stats = %+v", st)
	}
	if n := strings.Count(logs.String(), "dropped undecodable message"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
}

// Close releases every goroutine the client started and closes Messages.
func TestClientCloseReleasesGoroutines(t *testing.T) {
	k := testkit.StartKernel(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := jupyter.Dial(ctx, k.Info, jupyter.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	// Leave unread output queued at Close.
	recv0 := c.Stats().Received
	if _, err := c.Send(jupyter.Shell, "execute_request", jupyter.NewExecuteRequest("for i in range(500): print(i)")); err != nil {
		t.Fatal(err)
	}
	// Wait until output is arriving (it then queues, unread), not a guess.
	testkit.WaitUntil(t, 30*time.Second, "the kernel's output arrives", func() (bool, string) {
		// busy, execute_input, then the prints (ipykernel coalesces them)
		return c.Stats().Received >= recv0+3, fmt.Sprint(c.Stats().Received-recv0, " received since the request")
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := <-c.Messages(); ok {
		// Drain: items may have been in flight; the channel must close.
		for range c.Messages() {
		}
	}
	if _, err := c.Send(jupyter.Shell, "kernel_info_request", nil); !errors.Is(err, jupyter.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after Close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
