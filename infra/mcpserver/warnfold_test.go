package mcpserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// pyWarning is a warning as Python's warnings module prints it from a cell.
func pyWarning(line int, msg string) string {
	return fmt.Sprintf("/tmp/ipykernel_4242/3090.py:%d: UserWarning: %s\n  warnings.warn(%q)\n", line, msg, msg)
}

// TestRenderFoldsRepeatedWarnings: identical warnings on stderr come once,
// with the number of repeats, across stream chunks and across the stderr
// outputs that stdout splits; different warnings and other lines are kept.
func TestRenderFoldsRepeatedWarnings(t *testing.T) {
	cfg := renderConfig{TextBudget: 3000, ImageBudget: 1000}
	same := pyWarning(3, "x is deprecated")
	t.Run("one warning 100 times in chunks cut mid-record", func(t *testing.T) {
		all := strings.Repeat(same, 100)
		var outs []queue.Output
		for i, n := 0, 0; n < len(all); i++ { // chunks of 97 bytes: records split across them
			end := min(n+97, len(all))
			outs = append(outs, stream(uint64(i+1), "stderr", all[n:end]))
			n = end
		}
		got := texts(renderOutputs(outs, cfg))
		want := "[stderr]\n" + same + "… (×99 more of this warning)\n"
		if len(got) != 1 || got[0] != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("across stderr outputs split by stdout", func(t *testing.T) {
		var outs []queue.Output
		for i := 0; i < 10; i++ {
			outs = append(outs, stream(uint64(2*i+1), "stdout", fmt.Sprintf("step %d\n", i)), stream(uint64(2*i+2), "stderr", same))
		}
		got := texts(renderOutputs(outs, cfg))
		if len(got) != 11 {
			t.Fatalf("%d outputs, want 10 stdout and the first stderr: %q", len(got), got)
		}
		if got[1] != "[stderr]\n"+same+"… (×9 more of this warning)\n" {
			t.Errorf("first stderr %q", got[1])
		}
		for _, s := range got[2:] {
			if strings.Contains(s, "Warning") {
				t.Errorf("a repeat shown again: %q", s)
			}
		}
	})
	t.Run("different warnings and plain lines are kept", func(t *testing.T) {
		text := pyWarning(3, "x 1") + pyWarning(3, "x 2") + "progress\nprogress\n" + same + "Traceback: not a warning\n" + same
		got := texts(renderOutputs([]queue.Output{stream(1, "stderr", text)}, cfg))
		want := "[stderr]\n" + pyWarning(3, "x 1") + pyWarning(3, "x 2") + "progress\nprogress\n" + same + "… (×1 more of this warning)\nTraceback: not a warning\n"
		if len(got) != 1 || got[0] != want {
			t.Errorf("got %q\nwant %q", got, want)
		}
	})
	t.Run("stdout is never folded", func(t *testing.T) {
		got := texts(renderOutputs([]queue.Output{stream(1, "stdout", same+same)}, cfg))
		if len(got) != 1 || got[0] != same+same {
			t.Errorf("stdout changed: %q", got)
		}
	})
}

// TestFoldedWarningsCountAgainstTheBudget: 20,000 identical warnings (1.4
// MB of stderr) fold into a reply far below the output budget, with no
// full-text asset needed: the budget applies to the folded text.
func TestFoldedWarningsCountAgainstTheBudget(t *testing.T) {
	cfg := renderConfig{TextBudget: 3000, ImageBudget: 1000} // no asset dir: a cut would say "not stored"
	cs := renderOutputs([]queue.Output{stream(1, "stderr", strings.Repeat(pyWarning(3, "slow path"), 20_000))}, cfg)
	got := texts(cs)
	if len(got) != 1 || len(got[0]) > 200 || !strings.Contains(got[0], "×19999 more") || strings.Contains(got[0], "omitted") {
		t.Fatalf("got %q", got)
	}
}

// FuzzWarningFold: records always add up to the text; a text in which no
// warning repeats comes back unchanged; folding never lengthens a text by
// more than one note per distinct warning, and is idempotent.
func FuzzWarningFold(f *testing.F) {
	for _, seed := range []string{
		"", "\n", "plain\n", pyWarning(1, "a"), pyWarning(1, "a") + pyWarning(1, "a"),
		"f.py:1: Warning: x", "f.py:1: Warning: x\n\t  src\n  more\nnext\n",
		"a:1: UserWarning: m\n  s\n" + "a:1: UserWarning: m\n  s",
		":1: Warning: ", "x:1: 1Warning: no\n", "é:9: DeprecationWarning: ü\n  ß\n" + "é:9: DeprecationWarning: ü\n  ß\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var b strings.Builder
		distinct := map[string]bool{}
		eachRecord(text, func(rec string, warning bool) {
			if rec == "" {
				t.Fatal("empty record")
			}
			if warning {
				distinct[rec] = true
			}
			b.WriteString(rec)
		})
		if b.String() != text {
			t.Fatalf("records %q do not add up to %q", b.String(), text)
		}
		list := foldOutputs([]queue.Output{stream(1, "stderr", text)})
		if len(list) == 0 {
			return
		}
		stripped := StripANSI(list[0].text.String())
		folded := newWarningFold(list).apply(stripped)
		if len(folded) > len(stripped)+len(distinct)*64 {
			t.Fatalf("folded %d bytes from %d", len(folded), len(stripped))
		}
		repeats := false
		w := newWarningFold(list)
		for _, n := range w.total {
			repeats = repeats || n > 1
		}
		if !repeats && folded != stripped {
			t.Fatalf("no repeat, yet %q became %q", stripped, folded)
		}
		again := newWarningFold([]shown{{msgType: "stream", name: "stderr", text: builder(folded)}}).apply(folded)
		if again != folded {
			t.Fatalf("folding twice changed %q into %q", folded, again)
		}
	})
}

func builder(s string) *strings.Builder {
	b := &strings.Builder{}
	b.WriteString(s)
	return b
}
