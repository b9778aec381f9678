package mcpserver

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ansiEscape matches the terminal escape sequences kernels put in tracebacks
// and coloured logs: CSI (colours, cursor moves), OSC (titles, hyperlinks,
// ended by BEL or ST), charset designations and the two-byte escapes.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+][0-9A-Za-z]|\x1b[@-Z\\-_]`)

// StripANSI removes terminal escape sequences from s: an agent reads text, not
// colours.
func StripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	return ansiEscape.ReplaceAllString(s, "")
}

// Truncate keeps s within budget characters (runes): when s is longer, its
// head and tail are kept around a marker saying how much was left out and
// where the full text is (link, may be empty). The result has at most budget
// characters of s plus the marker. ok reports whether s was cut.
func Truncate(s string, budget int, link string) (out string, ok bool) {
	if budget <= 0 || len(s) <= budget {
		return s, false
	}
	n := utf8.RuneCountInString(s)
	if n <= budget {
		return s, false
	}
	// NB: keep more head than tail: the start of an output says what it is,
	// the end says how it finished.
	headRunes := budget * 2 / 3
	tailRunes := budget - headRunes
	head := s[:runeOffset(s, headRunes)]
	tail := s[runeOffset(s, n-tailRunes):]
	where := ""
	if link != "" {
		where = ", full text at " + link
	}
	marker := fmt.Sprintf("\n… %d characters omitted%s …\n", n-headRunes-tailRunes, where)
	return head + marker + tail, true
}

// runeOffset returns the byte offset of the n-th rune of s.
func runeOffset(s string, n int) int {
	if n <= 0 {
		return 0
	}
	i := 0
	for off := range s {
		if i == n {
			return off
		}
		i++
	}
	return len(s)
}
