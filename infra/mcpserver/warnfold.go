package mcpserver

import (
	"fmt"
	"regexp"
	"strings"
)

// warningHeader matches the first line of a warning as Python's warnings
// module writes it to stderr (warnings.formatwarning):
// "<file>:<line>: <Category>: <message>". The source line it quotes, when
// there is one, follows indented.
var warningHeader = regexp.MustCompile(`^.+:\d+: [A-Za-z_]\w*Warning: `)

// warningFold folds the repeats of identical warnings within one reply. A
// loop that warns on each pass (warnings.simplefilter("always"), or a
// library that resets the registry) prints the same two lines thousands of
// times: an agent needs them once, and how many times they came.
//
// Identical means the same warning record — header and quoted source line
// — byte for byte: a message that differs (a loop counter in it) is not
// folded. The first occurrence stays where it was, followed by a line
// giving the number of repeats; the repeats are left out, across every
// stderr output of the reply (consecutive chunks are already one output;
// stdout printed between warnings makes several). Anything that is not a
// warning is never touched. It runs before the output budget, so the folded
// text is what counts against it.
type warningFold struct {
	total map[string]int  // warning record → occurrences in the reply's stderr
	shown map[string]bool // records already written once
}

// newWarningFold counts the warning records of every stderr output in list.
func newWarningFold(list []shown) warningFold {
	w := warningFold{}
	for _, s := range list {
		if s.msgType != "stream" || s.name != "stderr" {
			continue
		}
		text := StripANSI(s.text.String())
		if !strings.Contains(text, "Warning: ") {
			continue
		}
		eachRecord(text, func(rec string, warning bool) {
			if warning {
				if w.total == nil {
					w.total, w.shown = map[string]int{}, map[string]bool{}
				}
				w.total[rec]++
			}
		})
	}
	return w
}

// apply returns a stderr text with the repeats of each warning counted in
// newWarningFold left out and the first occurrence followed by their count.
func (w warningFold) apply(text string) string {
	if len(w.total) == 0 || !strings.Contains(text, "Warning: ") {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	eachRecord(text, func(rec string, warning bool) {
		n := w.total[rec]
		switch {
		case !warning || n < 2:
			b.WriteString(rec)
		case !w.shown[rec]:
			w.shown[rec] = true
			b.WriteString(rec)
			if !strings.HasSuffix(rec, "\n") {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "… (×%d more of this warning)\n", n-1)
		}
	})
	return b.String()
}

// eachRecord splits text into lines (each keeping its newline) and calls
// each with every line, except that a warning header and the indented lines
// after it (the source line Python quotes) come as one record with
// warning=true.
func eachRecord(text string, each func(rec string, warning bool)) {
	for len(text) > 0 {
		line, rest := cutLine(text)
		if !strings.Contains(line, "Warning: ") || !warningHeader.MatchString(line) {
			each(line, false)
			text = rest
			continue
		}
		end := len(line)
		for rest := rest; len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t'); {
			next, after := cutLine(rest)
			end += len(next)
			rest = after
		}
		each(text[:end], true)
		text = text[end:]
	}
}

// cutLine returns text's first line with its newline, and the rest.
func cutLine(text string) (line, rest string) {
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		return text[:i+1], text[i+1:]
	}
	return text, ""
}
