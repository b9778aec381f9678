package mcpserver

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

func TestStripANSI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b[0;31mZeroDivisionError\x1b[0m: division by zero", "ZeroDivisionError: division by zero"},
		{"\x1b[1;32m---> 1\x1b[39m 1/0", "---> 1 1/0"},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"\x1b]0;title\x07text", "text"},
		{"a\x1b[2Kb\x1b[1Ac", "abc"},
		{"\x1b(Bok", "ok"},
	} {
		if got := StripANSI(tc.in); got != tc.want {
			t.Errorf("StripANSI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		budget    int
		wantCut   bool
		wantParts []string
	}{
		{"fits", "hello", 10, false, []string{"hello"}},
		{"exact", "hello", 5, false, []string{"hello"}},
		{"no budget", "hello", 0, false, []string{"hello"}},
		{"cut", strings.Repeat("a", 50) + strings.Repeat("b", 50), 30, true, []string{strings.Repeat("a", 20) + "\n… 70 characters omitted, full text at asset://x …\n" + strings.Repeat("b", 10)}},
		{"runes", strings.Repeat("é", 100), 10, true, []string{"éééééé\n… 90 characters omitted", "…\néééé"}},
		{"multibyte fits", strings.Repeat("é", 10), 10, false, []string{strings.Repeat("é", 10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := Truncate(tc.in, tc.budget, "asset://x")
			if cut != tc.wantCut {
				t.Errorf("cut = %v", cut)
			}
			for _, p := range tc.wantParts {
				if !strings.Contains(got, p) {
					t.Errorf("got %q, want it to contain %q", got, p)
				}
			}
			if !utf8.ValidString(got) {
				t.Error("cut inside a character")
			}
		})
	}
}

func out(seq uint64, msgType string, content any) queue.Output {
	b, _ := json.Marshal(content)
	return queue.Output{Seq: seq, MsgType: msgType, Content: b}
}

func stream(seq uint64, name, text string) queue.Output {
	return out(seq, "stream", map[string]any{"name": name, "text": text})
}

func texts(cs []mcp.Content) []string {
	var out []string
	for _, c := range cs {
		if tc, ok := c.(mcp.TextContent); ok {
			out = append(out, tc.Text)
		}
	}
	return out
}

func TestRenderFoldsStreamsAndClears(t *testing.T) {
	cfg := renderConfig{TextBudget: 1000, ImageBudget: 1000}
	for _, tc := range []struct {
		name string
		outs []queue.Output
		want []string
	}{
		{"merge same stream", []queue.Output{stream(1, "stdout", "a"), stream(2, "stdout", "b"), stream(3, "stderr", "c"), stream(4, "stdout", "d")},
			[]string{"ab", "[stderr]\nc", "d"}},
		{"clear now", []queue.Output{stream(1, "stdout", "old"), out(2, "clear_output", map[string]any{"wait": false}), stream(3, "stdout", "new")},
			[]string{"new"}},
		{"clear wait keeps until next output", []queue.Output{stream(1, "stdout", "old"), out(2, "clear_output", map[string]any{"wait": true})},
			[]string{"old"}},
		{"clear wait then output", []queue.Output{stream(1, "stdout", "10%"), out(2, "clear_output", map[string]any{"wait": true}),
			out(3, "status", map[string]any{"execution_state": "busy"}), stream(4, "stdout", "20%")},
			[]string{"20%"}},
		{"result", []queue.Output{out(1, "execute_result", map[string]any{"data": map[string]any{"text/plain": "42"}, "execution_count": 3})},
			[]string{"Out[3]: 42"}},
		{"error stripped", []queue.Output{out(1, "error", map[string]any{"ename": "ZeroDivisionError", "evalue": "division by zero",
			"traceback": []string{"\x1b[0;31m---------\x1b[0m", "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"}})},
			[]string{"Error: ZeroDivisionError: division by zero\n---------\nZeroDivisionError: division by zero"}},
		{"nbformat line lists", []queue.Output{out(1, "display_data", map[string]any{"data": map[string]any{"text/plain": []string{"a\n", "b"}}})},
			[]string{"a\nb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := texts(renderOutputs(tc.outs, cfg))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderHugeOutputStaysInBudget(t *testing.T) {
	dir := t.TempDir()
	cfg := renderConfig{TextBudget: 3000, ImageBudget: 1 << 20, Assets: assetStore{dir: dir}}
	huge := strings.Repeat("line of output\n", 10<<20/15)
	var outs []queue.Output
	for i := 0; i < 100; i++ { // 10 MB in 100 chunks, merged into one output
		n := len(huge) / 100
		outs = append(outs, stream(uint64(i+1), "stdout", huge[i*n:(i+1)*n]))
	}
	cs := renderOutputs(outs, cfg)
	total := 0
	for _, s := range texts(cs) {
		total += len(s)
	}
	if total > 3300 {
		t.Errorf("reply text is %d bytes for a 3000-character budget", total)
	}
	var link mcp.ResourceLink
	for _, c := range cs {
		if l, ok := c.(mcp.ResourceLink); ok {
			link = l
		}
	}
	sum := strings.TrimPrefix(link.URI, AssetScheme)
	if !validSum(sum) {
		t.Fatalf("link %q is not an asset URI", link.URI)
	}
	data, mime, err := cfg.Assets.get(sum)
	if err != nil || mime != mimeFullText || len(data) != len(huge[:len(huge)/100*100]) {
		t.Errorf("asset: %d bytes, %q, %v", len(data), mime, err)
	}
}

func pngOf(n int) string {
	b := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, n)...)
	return base64.StdEncoding.EncodeToString(b)
}

func TestRenderImages(t *testing.T) {
	dir := t.TempDir()
	cfg := renderConfig{TextBudget: 100, ImageBudget: 1000, Assets: assetStore{dir: dir}}
	small := out(1, "display_data", map[string]any{"data": map[string]any{"image/png": pngOf(100) + "\n", "text/plain": "<Figure>"}})
	big := out(2, "display_data", map[string]any{"data": map[string]any{"image/png": pngOf(5000)}})
	rich := out(3, "display_data", map[string]any{"data": map[string]any{"text/html": "<b>x</b>", "image/svg+xml": "<svg/>",
		"application/vnd.plotly.v1+json": map[string]any{"data": []any{}}, "text/plain": "fig"}})

	cs := renderOutputs([]queue.Output{small}, cfg)
	img, ok := cs[0].(mcp.ImageContent)
	if !ok || img.MIMEType != "image/png" || strings.Contains(img.Data, "\n") {
		t.Fatalf("small PNG not inline: %#v", cs[0])
	}
	if got := texts(cs); len(got) != 1 || got[0] != "<Figure>" {
		t.Errorf("text/plain beside image: %q", got)
	}

	cs = renderOutputs([]queue.Output{big}, cfg)
	l, ok := cs[0].(mcp.ResourceLink)
	if !ok || l.MIMEType != "image/png" {
		t.Fatalf("big PNG not linked: %#v", cs[0])
	}
	data, mime, err := cfg.Assets.get(strings.TrimPrefix(l.URI, AssetScheme))
	if err != nil || mime != "image/png" || len(data) != 5008 {
		t.Errorf("big PNG asset: %d bytes %q %v", len(data), mime, err)
	}

	cs = renderOutputs([]queue.Output{rich}, cfg)
	var mimes []string
	for _, c := range cs {
		if l, ok := c.(mcp.ResourceLink); ok {
			mimes = append(mimes, l.MIMEType)
		}
	}
	if strings.Join(mimes, ",") != "image/svg+xml,text/html,application/vnd.plotly.v1+json" {
		t.Errorf("linked %v", mimes)
	}
	if got := texts(cs); len(got) != 1 || got[0] != "fig" {
		t.Errorf("text/plain of rich display: %q", got)
	}

	// Without an asset dir, a big image says it could not be stored.
	cs = renderOutputs([]queue.Output{big}, renderConfig{TextBudget: 100, ImageBudget: 1000})
	if got := texts(cs); len(got) != 1 || !strings.Contains(got[0], "could not be stored") {
		t.Errorf("no asset dir: %q", got)
	}
}

func TestAssetStore(t *testing.T) {
	dir := t.TempDir()
	a := assetStore{dir: dir}
	uri, err := a.put([]byte("hello"), "text/html")
	if err != nil {
		t.Fatal(err)
	}
	const sum = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if uri != "asset://"+sum {
		t.Errorf("uri = %s", uri)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, sum+".mime")); string(b) != "text/html" {
		t.Errorf("sidecar = %q", b)
	}
	if _, err := a.put([]byte("hello"), "text/html"); err != nil {
		t.Errorf("second put: %v", err)
	}
	for _, bad := range []string{"", "../" + sum[3:], strings.ToUpper(sum), sum + "0", sum[:63] + "g", "..%2f..%2fetc%2fpasswd"} {
		if validSum(bad) {
			t.Errorf("validSum(%q)", bad)
		}
		if _, _, err := a.get(bad); err == nil {
			t.Errorf("get(%q) succeeded", bad)
		}
	}
	data, mime, err := a.get(sum)
	if err != nil || string(data) != "hello" || mime != "text/html" {
		t.Errorf("get = %q %q %v", data, mime, err)
	}
}

func TestRenderReplyLimit(t *testing.T) {
	cfg := renderConfig{TextBudget: 100, ImageBudget: 1000, Assets: assetStore{dir: t.TempDir()}}
	var outs []queue.Output
	for i := 1; i <= 1000; i++ { // alternating names: nothing merges
		name := "stdout"
		if i%2 == 0 {
			name = "stderr"
		}
		outs = append(outs, stream(uint64(i), name, strings.Repeat("x", 50)))
	}
	got := texts(renderOutputs(outs, cfg))
	total := 0
	for _, s := range got {
		total += len(s)
	}
	if total > 4*100+200 {
		t.Errorf("1000 small outputs gave %d bytes of text", total)
	}
	if last := got[len(got)-1]; !strings.Contains(last, "more outputs not shown") || !strings.Contains(last, "since=") {
		t.Errorf("last content: %q", last)
	}

	// Three images within the per-image budget: the third is linked.
	img := out(1, "display_data", map[string]any{"data": map[string]any{"image/png": pngOf(800)}})
	cs := renderOutputs([]queue.Output{img, img, img}, cfg)
	inline, linked := 0, 0
	for _, c := range cs {
		switch c.(type) {
		case mcp.ImageContent:
			inline++
		case mcp.ResourceLink:
			linked++
		}
	}
	if inline != 2 || linked != 1 {
		t.Errorf("inline %d, linked %d", inline, linked)
	}
}
