package eventlog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestHealthyFollowsTheLogsState: healthy while open, ErrFailed after a
// failed fsync (with nothing more written to find out), ErrClosed after
// Close.
func TestHealthyFollowsTheLogsState(t *testing.T) {
	toggle, fs := walFault(errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo)
	l, err := eventlog.Open(testkit.TempDataDir(t), eventlog.Options{FS: fs, Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	drafts := testkit.RealisticDrafts(2)
	testkit.AppendAll(t, l, drafts[:1])
	if err := l.Healthy(); err != nil {
		t.Fatalf("a working log: Healthy = %v", err)
	}
	toggle.On()
	if _, err := l.Append(context.Background(), drafts[1]); err == nil {
		t.Fatal("append with a failing fsync succeeded")
	}
	if err := l.Healthy(); !errors.Is(err, eventlog.ErrFailed) {
		t.Fatalf("after a failed fsync: Healthy = %v, want ErrFailed", err)
	}
	l.Close()
	if err := l.Healthy(); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("after Close: Healthy = %v, want ErrClosed", err)
	}
}
