package main

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// callToolResult is callTool returning the whole result: its links matter.
func callToolResult(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := c.CallTool(asAdmin(ctx), req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s refused: %v", name, res.Content)
	}
	return res
}

// replyParts splits a reply into its texts (the header first) and its
// resource links.
func replyParts(res *mcp.CallToolResult) (texts []string, links []mcp.ResourceLink) {
	for _, c := range res.Content {
		switch c := c.(type) {
		case mcp.TextContent:
			texts = append(texts, c.Text)
		case mcp.ResourceLink:
			links = append(links, c)
		}
	}
	return texts, links
}

// TestOutputsShapedForModels drives a real kernel with real pandas through
// the MCP client as an agent would: a 100,000 × 50 DataFrame comes back as
// its shape, dtypes and first rows (not pandas' wide text table), within
// the output budget, with its HTML as a resource link that reads back; a
// Series likewise; an object offering text/llm+plain is shown by that text
// and its HTML is not linked; 100 identical warnings come once with their
// count. The wrapper that teaches the kernel this runs no execution (the
// first is number 1), survives a checkpoint save and a restart (a new
// process), and a checkpoint loaded into it brings a DataFrame that is
// summarised again.
func TestOutputsShapedForModels(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	if jupyter.MIMELLMText != "text/llm+plain" || jupyter.LLMSummaryMetadata != "io.mcp-jupyter/summary" {
		t.Fatal("the kernels' MIME type or marker changed: change infra/mcpserver/render.go's copies with them")
	}

	res := callToolResult(t, cl, "execute", map[string]any{"kernel": k, "code": `import pandas as pd, numpy as np
df = pd.DataFrame(np.random.default_rng(7).random((100_000, 50)), columns=[f"col{i}" for i in range(50)])
df["col1"] = np.arange(100_000, dtype="int64")
df["col2"] = pd.Categorical(["red", "green"] * 50_000)
df`, "timeout_s": 60})
	texts, links := replyParts(res)
	if sc, _ := res.StructuredContent.(map[string]any); sc["execution_count"] != float64(1) {
		t.Errorf("the first execution has count %v: the kernel's wrapper ran one of its own", sc["execution_count"])
	}
	body := strings.Join(texts[1:], "\n")
	for _, want := range []string{"Out[1]: pandas.DataFrame: 100000 rows × 50 columns", "float64 (48): col0, col3, col4,", "int64 (1): col1",
		"category (1): col2", "first 5 rows:", "green"} {
		if !strings.Contains(body, want) {
			t.Errorf("reply lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "[100000 rows x 50 columns]") {
		t.Errorf("pandas' text/plain table is shown too:\n%s", body)
	}
	if n := utf8.RuneCountInString(body); n > mcpserver.DefaultOutputBudget+100 {
		t.Errorf("the DataFrame took %d characters, budget %d", n, mcpserver.DefaultOutputBudget)
	}
	if len(links) != 1 || links[0].MIMEType != "text/html" {
		t.Fatalf("links %+v, want the DataFrame's HTML", links)
	}
	var rr mcp.ReadResourceRequest
	rr.Params.URI = links[0].URI
	read, err := cl.ReadResource(asAdmin(context.Background()), rr)
	if err != nil || len(read.Contents) == 0 {
		t.Fatalf("read %s: %v", links[0].URI, err)
	}
	if html, _ := mcp.AsTextResourceContents(read.Contents[0]); html == nil || !strings.Contains(html.Text, "<table") || !strings.Contains(html.Text, "col49") {
		t.Errorf("the linked HTML is not the DataFrame's table")
	}

	texts, links = replyParts(callToolResult(t, cl, "execute", map[string]any{"kernel": k, "code": "df['col1'].rename('ids')"}))
	if body := strings.Join(texts[1:], "\n"); !strings.Contains(body, "pandas.Series 'ids': 100000 values, dtype int64") || !strings.Contains(body, "first 5 values:") {
		t.Errorf("Series reply:\n%s", body)
	}

	texts, links = replyParts(callToolResult(t, cl, "execute", map[string]any{"kernel": k, "code": `class Model:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": "<Model object at 0x7f00>", "text/html": "<div>12 widgets</div>",
                "text/llm+plain": "Model with 3 layers; call .summary() for details"}
Model()`}))
	if body := strings.Join(texts[1:], "\n"); body != "Out[3]: Model with 3 layers; call .summary() for details" {
		t.Errorf("an object's text/llm+plain is not what is shown: %q", body)
	}
	if len(links) != 0 {
		t.Errorf("an object that describes itself for models still had %d links (its HTML)", len(links))
	}

	texts, _ = replyParts(callToolResult(t, cl, "execute", map[string]any{"kernel": k, "code": `import warnings
warnings.simplefilter("always")
for i in range(100):
    warnings.warn("the old API is deprecated")
print("done")`}))
	body = strings.Join(texts[1:], "\n")
	if strings.Count(body, "UserWarning: the old API is deprecated") != 1 || !strings.Contains(body, "… (×99 more of this warning)") || !strings.Contains(body, "done") {
		t.Errorf("100 identical warnings not folded into one with its count:\n%s", body)
	}

	// A checkpoint, a restart (a new kernel process), then the checkpoint
	// loaded: the DataFrame is back, and summarised by the new process.
	if sc, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "shaped"}); sc == nil {
		t.Fatalf("save_environment: %s", text)
	}
	if sc, text := callTool(t, cl, "restart_kernel", map[string]any{"kernel": k}); sc == nil {
		t.Fatalf("restart_kernel: %s", text)
	}
	if sc, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "shaped"}); sc == nil {
		t.Fatalf("load_environment: %s", text)
	}
	texts, links = replyParts(callToolResult(t, cl, "execute", map[string]any{"kernel": k, "code": "df.iloc[:3, :4]"}))
	if body := strings.Join(texts[1:], "\n"); !strings.Contains(body, "pandas.DataFrame: 3 rows × 4 columns") || len(links) != 1 {
		t.Errorf("after restart and load: %q, %d links", body, len(links))
	}
}

// TestShapedOutputsAfterServerKill9: the kernel keeps its formatter when
// the server is killed with SIGKILL and the next one re-attaches to it (it
// is the same process; nothing is sent to it again), so a DataFrame is
// still summarised through the real binary.
func TestShapedOutputsAfterServerKill9(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+testkit.KernelSpecDir(t))

	first, cl := startStdioServer(t, bin, env)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import pandas as pd\ndf = pd.DataFrame({'price': [1.5, 2.5], 'qty': [3, 4]})"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	second, err := client.NewStdioMCPClient(bin, env, "stdio")
	if err != nil {
		t.Fatal(err)
	}
	cl2 := mcpClient(t, second)
	defer cl2.Close()
	sc, text := callTool(t, cl2, "execute", map[string]any{"kernel": k, "code": "df"})
	if sc["status"] != "ok" || !strings.Contains(text, "pandas.DataFrame: 2 rows × 2 columns") || !strings.Contains(text, "float64 (1): price; int64 (1): qty") {
		t.Fatalf("after kill -9 and re-attach, the DataFrame is not summarised: %v\n%s", sc, text)
	}
}
