package mcpserver

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

func links(cs []mcp.Content) []string {
	var mimes []string
	for _, c := range cs {
		if l, ok := c.(mcp.ResourceLink); ok {
			mimes = append(mimes, l.MIMEType)
		}
	}
	return mimes
}

// TestRenderPrefersLLMText: a display offering text/llm+plain shows that
// text instead of its text/plain; its HTML is linked only when the text is
// marked as the kernel's summary of a larger display (a DataFrame), and
// other rich forms and images are kept.
func TestRenderPrefersLLMText(t *testing.T) {
	cfg := renderConfig{TextBudget: 1000, ImageBudget: 1000, Assets: assetStore{dir: t.TempDir()}}
	for _, tc := range []struct {
		name      string
		data      map[string]any
		metadata  map[string]any
		wantText  []string
		wantLinks string
	}{
		{"object's own text replaces text/plain and HTML",
			map[string]any{"text/plain": "<Model at 0x7f>", "text/llm+plain": "Model: 3 layers, 1.2M parameters", "text/html": "<table>…</table>"},
			nil, []string{"Out[7]: Model: 3 layers, 1.2M parameters"}, ""},
		{"kernel's summary keeps the HTML linked",
			map[string]any{"text/plain": "   a  b\n0  1  2", "text/llm+plain": "pandas.DataFrame: 1 rows × 2 columns", "text/html": "<table>…</table>"},
			map[string]any{"text/llm+plain": map[string]any{"io.mcp-jupyter/summary": true}},
			[]string{"Out[7]: pandas.DataFrame: 1 rows × 2 columns"}, "text/html"},
		{"a false marker is no summary",
			map[string]any{"text/plain": "x", "text/llm+plain": "y", "text/html": "<b>x</b>"},
			map[string]any{"text/llm+plain": map[string]any{"io.mcp-jupyter/summary": false}},
			[]string{"Out[7]: y"}, ""},
		{"SVG still linked beside the text",
			map[string]any{"text/plain": "fig", "text/llm+plain": "a bar chart of sales by month", "image/svg+xml": "<svg/>"},
			nil, []string{"Out[7]: a bar chart of sales by month"}, "image/svg+xml"},
		{"nbformat line list",
			map[string]any{"text/plain": "x", "text/llm+plain": []string{"line 1\n", "line 2"}},
			nil, []string{"Out[7]: line 1\nline 2"}, ""},
		{"without text/llm+plain nothing changes",
			map[string]any{"text/plain": "   a  b\n0  1  2", "text/html": "<table>…</table>"},
			nil, []string{"Out[7]:    a  b\n0  1  2"}, "text/html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := renderOutputs([]queue.Output{out(1, "execute_result", map[string]any{"data": tc.data, "metadata": tc.metadata, "execution_count": 7})}, cfg)
			if got := texts(cs); strings.Join(got, "|") != strings.Join(tc.wantText, "|") {
				t.Errorf("text %q, want %q", got, tc.wantText)
			}
			if got := strings.Join(links(cs), ","); got != tc.wantLinks {
				t.Errorf("links %q, want %q", got, tc.wantLinks)
			}
		})
	}
}

// TestRenderLLMTextKeepsTheBudget: a text/llm+plain longer than the output
// budget is cut like any text, and its whole text stored and linked.
func TestRenderLLMTextKeepsTheBudget(t *testing.T) {
	cfg := renderConfig{TextBudget: 500, ImageBudget: 1000, Assets: assetStore{dir: t.TempDir()}}
	long := strings.Repeat("column_with_a_long_name: float64, ", 1000)
	cs := renderOutputs([]queue.Output{out(1, "display_data", map[string]any{"data": map[string]any{"text/plain": "short", "text/llm+plain": long}})}, cfg)
	got := texts(cs)
	if len(got) != 1 || utf8.RuneCountInString(got[0]) > 500+120 || !strings.Contains(got[0], "characters omitted") {
		t.Fatalf("text not cut to the budget: %d characters", len(strings.Join(got, "")))
	}
	if l := links(cs); len(l) != 1 || l[0] != mimeFullText {
		t.Fatalf("links %v, want the full text", l)
	}
	data, _, err := cfg.Assets.get(strings.TrimPrefix(cs[1].(mcp.ResourceLink).URI, AssetScheme))
	if err != nil || string(data) != long {
		t.Errorf("stored %d bytes (%v), want the whole text/llm+plain", len(data), err)
	}
}
