package testkit

import (
	"context"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

// OpenLog opens the event log in dir with test defaults and closes it when
// the test ends. Closing twice is harmless, so the test may close it itself.
func OpenLog(t testing.TB, dir string) *eventlog.Log {
	t.Helper()
	return OpenLogWith(t, dir, eventlog.Options{Node: "test-node"})
}

// OpenLogWith is OpenLog with explicit options (fault injection, hooks).
func OpenLogWith(t testing.TB, dir string, opts eventlog.Options) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(dir, opts)
	if err != nil {
		t.Fatalf("open event log: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close event log: %v", err)
		}
	})
	return l
}

// appendChunk is how many drafts LogWithEvents hands to one Append: big
// enough that syncs do not dominate, small enough for one group commit.
const appendChunk = 1000

// LogWithEvents returns a log in a fresh data dir holding n events of the
// given mix (sequences 1..n), closed when the test ends.
func LogWithEvents(t testing.TB, n int, mix Mix) *eventlog.Log {
	t.Helper()
	l := OpenLog(t, TempDataDir(t))
	AppendAll(t, l, mix.Drafts(n))
	return l
}

// AppendAll appends drafts in big batches and fails the test on error.
func AppendAll(t testing.TB, l *eventlog.Log, drafts []events.Draft) {
	t.Helper()
	ctx := context.Background()
	for len(drafts) > 0 {
		n := min(appendChunk, len(drafts))
		if _, err := l.Append(ctx, drafts[:n]...); err != nil {
			t.Fatalf("append %d events after sequence %d: %v", n, l.Last(), err)
		}
		drafts = drafts[n:]
	}
}
