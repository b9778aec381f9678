package eventlog_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/fault"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The fault tests re-execute this test binary as a child process that owns
// a log; these variables tell the child what to do.
const (
	childModeEnv = "EVENTLOG_TEST_CHILD"
	childDirEnv  = "EVENTLOG_TEST_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv(childDirEnv)))
	}
	os.Exit(m.Run())
}

// runChild is the child process's main. It reports on stdout, one line per
// fact, and exits non-zero on any error.
func runChild(mode, dir string) int {
	opts := eventlog.Options{Node: "child"}
	inj, err := fault.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	if inj != nil {
		opts.Faults = inj
	}
	l, err := eventlog.Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		return 2
	}
	defer l.Close()
	switch mode {
	case "hold":
		// Own the dir until the parent closes our stdin.
		fmt.Printf("ready %d\n", os.Getpid())
		_, _ = io.Copy(io.Discard, os.Stdin)
		return 0
	case "append", "appendmix":
		// Append forever from several goroutines; print each acknowledged
		// sequence. One Write per append, so lines never interleave. In
		// appendmix, odd goroutines use AppendAsync and print once the
		// Pending is durable.
		drafts := testkit.RealisticDrafts(4096)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; ; i += 8 {
					n := 1 + i%3
					start := (i * 3) % (len(drafts) - 3)
					var evs []events.Event
					var err error
					if mode == "appendmix" && w%2 == 1 {
						var p *events.Pending
						if p, err = l.AppendAsync(context.Background(), drafts[start:start+n]...); err == nil {
							evs, err = p.Wait(context.Background())
						}
					} else {
						evs, err = l.Append(context.Background(), drafts[start:start+n]...)
					}
					if err != nil {
						fmt.Fprintln(os.Stderr, "child: append:", err)
						os.Exit(3)
					}
					var b strings.Builder
					for _, e := range evs {
						fmt.Fprintf(&b, "%d ", e.Seq)
					}
					b.WriteString("\n")
					if _, err := os.Stdout.WriteString(b.String()); err != nil {
						os.Exit(4)
					}
				}
			})
		}
		wg.Wait()
		return 0
	}
	if mode == "foreign" {
		return runForeignChild(l)
	}
	fmt.Fprintln(os.Stderr, "child: unknown mode", mode)
	return 2
}

// child is a re-executed test binary running runChild.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Scanner
	stderr *strings.Builder
}

func startChild(t testing.TB, mode, dir string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childModeEnv+"="+mode, childDirEnv+"="+dir), env...)
	c := &child{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdout = bufio.NewScanner(out)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return c
}

// line returns the child's next stdout line, failing the test if none comes
// within the deadline.
func (c *child) line(t testing.TB, within time.Duration) string {
	t.Helper()
	got := make(chan bool, 1)
	go func() { got <- c.stdout.Scan() }()
	select {
	case ok := <-got:
		if !ok {
			t.Fatalf("child ended its output (%v); stderr:\n%s", c.stdout.Err(), c.stderr)
		}
		return c.stdout.Text()
	case <-time.After(within):
		_ = c.cmd.Process.Kill()
		t.Fatalf("no line from the child within %v; stderr:\n%s", within, c.stderr)
	}
	return ""
}

// readAll reads every event of l, decoded, failing on any error.
func readAll(t testing.TB, l *eventlog.Log) []events.Event {
	t.Helper()
	var out []events.Event
	if err := l.Read(context.Background(), 0, 0, func(e events.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("read log: %v", err)
	}
	return out
}
