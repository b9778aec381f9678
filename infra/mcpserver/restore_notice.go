package mcpserver

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Bounds of a restore notice: a kernel with thousands of variables still
// gets a notice an agent reads in one glance.
const (
	noticeMaxNames      = 20
	noticeMaxReasonRune = 120
	noticeMaxNameRune   = 64  // a variable or package name, a version
	noticeMaxErrorRune  = 500 // why a restore failed and what to do
)

// RestoreNotice is the plain sentence an agent is told about a kernel the
// server relaunched and restored on its own at start (KernelRestored):
// what came back from which auto-checkpoint, what did not and why, which
// packages differ, and which executions were lost. The one place this
// text is made: list_kernels shows it per kernel, execute and
// get_execution with an execution the restore affected.
//
// NB: the kernel's own code reports the names restored and skipped, their
// reasons and the package versions: what it says is clipped and rid of
// control characters, and a name that is not a plain identifier is shown
// quoted, so a kernel cannot forge lines that read as the server's.
func RestoreNotice(r events.KernelRestored) string {
	var b strings.Builder
	if r.Error != "" {
		fmt.Fprintf(&b, "kernel %s was started afresh by the server (its process was gone when the server started) and not restored: %s",
			r.KernelID, strings.TrimRight(plain(r.Error, noticeMaxErrorRune), ". "))
	} else {
		fmt.Fprintf(&b, "kernel %s was restored from its auto-checkpoint", r.KernelID)
		if !r.SavedAt.IsZero() {
			fmt.Fprintf(&b, " of %s", r.SavedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		if len(r.Restored) == 0 {
			b.WriteString(": restored nothing (it held no variables)")
		} else {
			b.WriteString(": restored " + nameList(r.Restored, varName))
		}
		if len(r.Skipped) > 0 {
			b.WriteString("; not restored: " + nameList(r.Skipped, func(v events.CheckpointVariable) string {
				if v.Reason == "" {
					return varName(v.Name)
				}
				return varName(v.Name) + " (" + plain(v.Reason, noticeMaxReasonRune) + ")"
			}))
		}
		if len(r.Mismatched) > 0 {
			b.WriteString("; packages that differ: " + nameList(r.Mismatched, mismatch))
		}
		if len(r.Missing) > 0 {
			b.WriteString("; packages missing now (as saved): " + nameList(r.Missing, func(s string) string { return plain(s, noticeMaxNameRune) }))
		}
	}
	switch len(r.Lost) {
	case 0:
	case 1:
		fmt.Fprintf(&b, "; execution %s was running when the server stopped and is lost (not run again: run it again if it is safe to)", r.Lost[0])
	default:
		fmt.Fprintf(&b, "; executions %s were running (or sent to the kernel behind it) when the server stopped and are lost (not run again: run them again if it is safe to)",
			nameList(r.Lost, func(s string) string { return s }))
	}
	return b.String()
}

// mismatch turns the kernel's "numpy: saved with 1.26.4, kernel has
// 1.24.2" into "numpy (saved 1.26.4, now 1.24.2)"; any other form is
// shown as it is (plain).
func mismatch(s string) string {
	name, rest, ok := strings.Cut(s, ": saved with ")
	if !ok {
		return plain(s, noticeMaxNameRune)
	}
	saved, now, ok := strings.Cut(rest, ", kernel has ")
	if !ok {
		return plain(s, noticeMaxNameRune)
	}
	return fmt.Sprintf("%s (saved %s, now %s)", plain(name, noticeMaxNameRune), plain(saved, noticeMaxNameRune), plain(now, noticeMaxNameRune))
}

// varName shows a variable name as it is when it is a plain identifier of
// at most noticeMaxNameRune runes, else quoted (Go syntax: a newline or
// an escape shows as \n, \x1b) and clipped.
func varName(s string) string {
	if isIdentifier(s) && len([]rune(s)) <= noticeMaxNameRune {
		return s
	}
	r := []rune(s)
	if len(r) <= noticeMaxNameRune {
		return strconv.Quote(s)
	}
	return strconv.Quote(string(r[:noticeMaxNameRune])) + "…"
}

func isIdentifier(s string) bool {
	for i, c := range s {
		if !(c == '_' || unicode.IsLetter(c) || i > 0 && unicode.IsDigit(c)) {
			return false
		}
	}
	return s != ""
}

// plain is s clipped to n runes, each run of control, format and line or
// paragraph separator characters (a newline, an ANSI escape's ESC, a
// right-to-left override) made one space.
func plain(s string, n int) string {
	var b strings.Builder
	space := false
	for _, c := range s {
		if unicode.In(c, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) || c == unicode.ReplacementChar {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(c)
	}
	return clip(b.String(), n)
}

// nameList joins at most noticeMaxNames items, saying how many more there
// are.
func nameList[T any](items []T, show func(T) string) string {
	n := min(len(items), noticeMaxNames)
	parts := make([]string, 0, n+1)
	for _, it := range items[:n] {
		parts = append(parts, show(it))
	}
	if len(items) > n {
		parts = append(parts, fmt.Sprintf("and %d more", len(items)-n))
	}
	return strings.Join(parts, ", ")
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
