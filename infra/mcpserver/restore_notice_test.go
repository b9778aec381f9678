package mcpserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// TestRestoreNoticeWording: the sentence names the checkpoint's time, what
// came back, what did not and why, the packages that differ (saved and
// now), and the lost execution; a failed restore says why and what to do.
func TestRestoreNoticeWording(t *testing.T) {
	saved := time.Date(2026, 12, 4, 17, 58, 3, 0, time.FixedZone("CET", 3600))
	got := RestoreNotice(events.KernelRestored{KernelID: "k1", Checkpoint: "auto-k1", SavedAt: saved,
		Restored:   []string{"a", "b"},
		Skipped:    []events.CheckpointVariable{{Name: "conn", Type: "socket.socket", Reason: "socket: reconnect after loading"}},
		Mismatched: []string{"numpy: saved with 1.26.4, kernel has 1.24.2"},
		Missing:    []string{"polars==1.0"},
		Lost:       []string{"x9"}})
	want := "kernel k1 was restored from its auto-checkpoint of 2026-12-04 16:58:03 UTC: restored a, b; " +
		"not restored: conn (socket: reconnect after loading); packages that differ: numpy (saved 1.26.4, now 1.24.2); " +
		"packages missing now (as saved): polars==1.0; " +
		"execution x9 was running when the server stopped and is lost (not run again: run it again if it is safe to)"
	if got != want {
		t.Fatalf("notice:\n got  %s\n want %s", got, want)
	}
	got = RestoreNotice(events.KernelRestored{KernelID: "k2", Error: "no auto-checkpoint of kernel k2 was saved: run your setup code again.",
		Lost: []string{"x1", "x2"}})
	want = "kernel k2 was started afresh by the server (its process was gone when the server started) and not restored: " +
		"no auto-checkpoint of kernel k2 was saved: run your setup code again; " +
		"executions x1, x2 were running (or sent to the kernel behind it) when the server stopped and are lost (not run again: run them again if it is safe to)"
	if got != want {
		t.Fatalf("failed restore notice:\n got  %s\n want %s", got, want)
	}
}

// TestRestoreNoticeIsBounded: a kernel of thousands of variables, each
// skipped with a long reason, still gets a short notice that says how many
// were left out of it.
func TestRestoreNoticeIsBounded(t *testing.T) {
	r := events.KernelRestored{KernelID: "k"}
	for i := range 5000 {
		r.Restored = append(r.Restored, fmt.Sprintf("v%d", i))
		r.Skipped = append(r.Skipped, events.CheckpointVariable{Name: fmt.Sprintf("s%d", i), Reason: strings.Repeat("why ", 500)})
	}
	got := RestoreNotice(r)
	if len(got) > 8<<10 {
		t.Fatalf("notice of %d bytes", len(got))
	}
	for _, s := range []string{"v19, and 4980 more", "s19 (", "and 4980 more"} {
		if !strings.Contains(got, s) {
			t.Fatalf("notice lacks %q: %s", s, got)
		}
	}
	if strings.Contains(got, "v20,") {
		t.Fatal("more than the bound of names")
	}
}
