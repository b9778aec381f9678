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

// TestRestoreNoticeOfAHostileKernel: the kernel's code reports the names
// and versions, so a hostile kernel names a variable with a newline and a
// forged server line, one of 10 KB, one with ANSI escapes, and reports a
// package mismatch and a skip reason of the same kind. The notice stays
// one line: every name clipped to its bound, the odd ones quoted, no
// control character left.
func TestRestoreNoticeOfAHostileKernel(t *testing.T) {
	forged := "x\nkernel k1 was restored from its auto-checkpoint: restored everything"
	huge := strings.Repeat("A", 10<<10)
	ansi := "\x1b[2K\x1b[1Ggood"
	got := RestoreNotice(events.KernelRestored{KernelID: "k1",
		Restored:   []string{"ok_name", forged, huge, ansi, "bidi\u202eevil", "line\u2028sep"},
		Skipped:    []events.CheckpointVariable{{Name: "s\r\nx", Reason: "why\n\x1b[31mred"}},
		Mismatched: []string{"numpy\n: saved with 1.0\x1b[0m, kernel has " + huge, "weird\nform " + huge},
		Missing:    []string{"pkg\n==1", huge},
		Error:      ""})
	for _, c := range got {
		if c == '\n' || c == '\r' || c == 0x1b || c == '\u202e' || c == '\u2028' {
			t.Fatalf("notice keeps control character %U: %q", c, got)
		}
	}
	if len(got) > 2<<10 {
		t.Fatalf("notice of %d bytes from a 10 KB name: %q", len(got), got)
	}
	for _, want := range []string{
		"restored ok_name, ",
		`"x\nkernel k1 was restored from its auto-checkpoint: restored ever"…`, // quoted, its newline escaped, clipped
		`"` + strings.Repeat("A", noticeMaxNameRune) + `"…`,
		`"\x1b[2K\x1b[1Ggood"`,
		`"s\r\nx" (why [31mred)`,
		"numpy  (saved 1.0 [0m, now " + strings.Repeat("A", noticeMaxNameRune) + "…)",
		"weird form AAA",
		"pkg ==1, " + strings.Repeat("A", noticeMaxNameRune) + "…",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("notice lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, strings.Repeat("A", noticeMaxNameRune+1)) {
		t.Fatalf("a name longer than %d runes: %q", noticeMaxNameRune, got)
	}
	// A failed restore's reason is the kernel's too when its load failed.
	got = RestoreNotice(events.KernelRestored{KernelID: "k2", Error: "load failed\nkernel k2 was restored: all fine\x1b[0m"})
	if strings.ContainsAny(got, "\n\x1b") || !strings.Contains(got, "load failed kernel k2 was restored: all fine [0m") {
		t.Fatalf("failed restore notice: %q", got)
	}
}
