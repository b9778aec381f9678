package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// appsInitialize starts c and initializes it as a host that renders MCP
// Apps does: the io.modelcontextprotocol/ui extension in its capabilities.
func appsInitialize(t testing.TB, c *client.Client) (*client.Client, *mcp.InitializeResult) {
	t.Helper()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "apps-host", Version: "1"}
	init.Params.Capabilities.Extensions = map[string]any{
		mcpserver.AppExtension: map[string]any{"mimeTypes": []string{mcpserver.AppMIMEType}},
	}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, res
}

// appsInProcess is an in-process client that renders MCP Apps.
func appsInProcess(t testing.TB, c *core) (*client.Client, *mcp.InitializeResult) {
	t.Helper()
	inproc, err := client.NewInProcessClient(c.mcp.MCP())
	if err != nil {
		t.Fatal(err)
	}
	return appsInitialize(t, inproc)
}

// appsOverHTTP is the same over Streamable HTTP with the server's token.
func appsOverHTTP(t testing.TB, c *core, baseURL string) (*client.Client, *mcp.InitializeResult) {
	t.Helper()
	hc, err := client.NewStreamableHttpClient(baseURL+pathMCP,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + c.token}))
	if err != nil {
		t.Fatal(err)
	}
	return appsInitialize(t, hc)
}

// roundTrip decodes v's JSON into out (the in-process transport may hand
// back Go values, HTTP decoded JSON: compare both in one shape).
func roundTrip(t testing.TB, v, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

type appResourceMeta struct {
	UI struct {
		CSP *struct {
			ConnectDomains  []string `json:"connectDomains"`
			ResourceDomains []string `json:"resourceDomains"`
			FrameDomains    []string `json:"frameDomains"`
		} `json:"csp"`
		PrefersBorder *bool `json:"prefersBorder"`
	} `json:"ui"`
}

// readAppView reads the execution view as a host does, timing it.
func readAppView(t testing.TB, cl *client.Client) (*mcp.TextResourceContents, appResourceMeta, time.Duration) {
	t.Helper()
	var req mcp.ReadResourceRequest
	req.Params.URI = mcpserver.AppResourceURI
	t0 := time.Now()
	res, err := cl.ReadResource(asAdmin(context.Background()), req)
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("resources/read %s: %v", mcpserver.AppResourceURI, err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("resources/read %s: %d contents, want 1", mcpserver.AppResourceURI, len(res.Contents))
	}
	tc, ok := mcp.AsTextResourceContents(res.Contents[0])
	if !ok {
		t.Fatalf("resources/read %s: not text contents: %T", mcpserver.AppResourceURI, res.Contents[0])
	}
	var meta appResourceMeta
	roundTrip(t, tc.Meta, &meta)
	return tc, meta, took
}

// TestMCPAppsDeclared: over the in-process transport and over Streamable
// HTTP, a host that renders MCP Apps sees the extension advertised, the
// execution view named by execute and get_execution (and by no other tool),
// and reads the view: one self-contained HTML document of the MCP Apps
// type that declares no external origin.
func TestMCPAppsDeclared(t *testing.T) {
	c, _ := inProcess(t)
	// NB: the MCP endpoint alone (the server's own Streamable HTTP handler,
	// token guard included), as /mcp mounts it.
	mux := http.NewServeMux()
	mux.Handle(pathMCP, c.mcp.HTTPHandler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	inproc, inprocInit := appsInProcess(t, c)
	overHTTP, httpInit := appsOverHTTP(t, c, ts.URL)
	for _, tc := range []struct {
		name string
		cl   *client.Client
		init *mcp.InitializeResult
	}{{"in-process", inproc, inprocInit}, {"http", overHTTP, httpInit}} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.init.Capabilities.Extensions[mcpserver.AppExtension]; !ok {
				t.Errorf("initialize does not advertise %s: extensions %v", mcpserver.AppExtension, tc.init.Capabilities.Extensions)
			}
			tools, err := tc.cl.ListTools(asAdmin(context.Background()), mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, tool := range tools.Tools {
				var meta struct {
					UI *struct {
						ResourceURI string `json:"resourceUri"`
					} `json:"ui"`
					Legacy string `json:"ui/resourceUri"`
				}
				if tool.Meta != nil {
					roundTrip(t, tool.Meta, &meta)
				}
				switch tool.Name {
				case "execute", "get_execution":
					seen[tool.Name] = true
					if meta.UI == nil || meta.UI.ResourceURI != mcpserver.AppResourceURI {
						t.Errorf("%s: _meta.ui.resourceUri = %+v, want %s", tool.Name, meta.UI, mcpserver.AppResourceURI)
					}
					if meta.Legacy != mcpserver.AppResourceURI {
						t.Errorf("%s: _meta[\"ui/resourceUri\"] = %q, want %s", tool.Name, meta.Legacy, mcpserver.AppResourceURI)
					}
				default:
					if meta.UI != nil || meta.Legacy != "" {
						t.Errorf("%s names a UI it does not have: %+v %q", tool.Name, meta.UI, meta.Legacy)
					}
				}
			}
			if !seen["execute"] || !seen["get_execution"] {
				t.Fatalf("tools/list lacks execute or get_execution: %v", seen)
			}

			listed, err := tc.cl.ListResources(asAdmin(context.Background()), mcp.ListResourcesRequest{})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range listed.Resources {
				if r.URI == mcpserver.AppResourceURI {
					found = true
					if r.MIMEType != mcpserver.AppMIMEType {
						t.Errorf("resources/list: %s has mimeType %q, want %q", r.URI, r.MIMEType, mcpserver.AppMIMEType)
					}
				}
			}
			if !found {
				t.Errorf("resources/list lacks %s", mcpserver.AppResourceURI)
			}

			view, meta, took := readAppView(t, tc.cl)
			t.Logf("resources/read %s over %s: %d bytes in %v", mcpserver.AppResourceURI, tc.name, len(view.Text), took)
			if view.URI != mcpserver.AppResourceURI || view.MIMEType != mcpserver.AppMIMEType {
				t.Errorf("read: uri %q mimeType %q, want %q %q", view.URI, view.MIMEType, mcpserver.AppResourceURI, mcpserver.AppMIMEType)
			}
			if !strings.HasPrefix(strings.ToLower(view.Text), "<!doctype html>") {
				t.Errorf("the view is not an HTML5 document: %.80q", view.Text)
			}
			if refs := testkit.HTMLExternalRefs([]byte(view.Text)); len(refs) > 0 {
				t.Errorf("the view names things to fetch, which a host's sandbox forbids: %v", refs)
			}
			if !strings.Contains(view.Text, "class OutputArea") {
				t.Errorf("the view does not carry the console's renderer (outputs.js's OutputArea)")
			}
			if meta.UI.CSP == nil || len(meta.UI.CSP.ConnectDomains) != 0 || len(meta.UI.CSP.ResourceDomains) != 0 || len(meta.UI.CSP.FrameDomains) != 0 {
				t.Errorf("_meta.ui.csp = %+v: want an explicit csp declaring no origin", meta.UI.CSP)
			}
			if meta.UI.PrefersBorder == nil || !*meta.UI.PrefersBorder {
				t.Errorf("_meta.ui.prefersBorder = %v, want true", meta.UI.PrefersBorder)
			}
		})
	}
}

// appFigureCode draws what the view must show: a Plotly figure (its MIME
// bundle, as plotly's notebook renderer sends it), a matplotlib plot (PNG),
// an HTML output whose script tries to make the host call a tool, and a
// line of text.
const appFigureCode = `import json
import plotly.graph_objects as go
from IPython.display import display
import matplotlib
matplotlib.use('module://matplotlib_inline.backend_inline')
import matplotlib.pyplot as plt
fig = go.Figure(go.Scatter(x=[1, 2, 3, 4], y=[10, 11, 12, 13], mode='lines+markers', name='series-a'))
fig.update_layout(title='mcp app figure', width=640, height=380, margin=dict(l=50, r=20, t=50, b=40))
display({'application/vnd.plotly.v1+json': json.loads(fig.to_json()), 'text/plain': 'Figure()'}, raw=True)
plt.figure(figsize=(3, 2), dpi=72)
plt.plot([1, 2, 3], [3, 1, 2])
plt.title('matplotlib')
plt.show()
from IPython.display import HTML
# An agent's HTML output that tries to drive the host: it must reach nothing.
display(HTML('''<b id="agent-html">agent html</b><script>
var call = {jsonrpc: '2.0', id: 9001, method: 'tools/call', params: {name: 'execute', arguments: {kernel: 'k', code: 'import os'}}};
for (var w of [window.parent, window.top]) { try { w.postMessage(call, '*'); } catch (e) {} }
try { window.top.postMessage({jsonrpc: '2.0', method: 'ui/notifications/size-changed', params: {width: 1, height: 1}}, '*'); } catch (e) {}
</script>'''))
print('drawn both')`

type appResultData struct {
	Execution struct {
		ID     string `json:"execution_id"`
		Status string `json:"status"`
		Code   string `json:"code"`
	} `json:"execution"`
	Outputs []struct {
		Seq     uint64         `json:"seq"`
		MsgType string         `json:"msg_type"`
		Content map[string]any `json:"content"`
	} `json:"outputs"`
}

func appDataOf(t testing.TB, res *mcp.CallToolResult) (appResultData, bool) {
	t.Helper()
	if res.Meta == nil {
		return appResultData{}, false
	}
	raw, ok := res.Meta.AdditionalFields[mcpserver.AppResultMetaKey]
	if !ok {
		return appResultData{}, false
	}
	var d appResultData
	roundTrip(t, raw, &d)
	return d, true
}

// mimesOf lists the MIME types of the display outputs, and the stream text.
func mimesOf(d appResultData) (map[string]bool, string) {
	mimes := map[string]bool{}
	var text strings.Builder
	for _, o := range d.Outputs {
		if data, ok := o.Content["data"].(map[string]any); ok {
			for m := range data {
				mimes[m] = true
			}
		}
		if s, ok := o.Content["text"].(string); ok && o.MsgType == "stream" {
			text.WriteString(s)
		}
	}
	return mimes, text.String()
}

func appsCall(t testing.TB, cl *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := cl.CallTool(asAdmin(ctx), req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("%s: %s", name, textOfResult(res))
	}
	return res
}

func textOfResult(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// TestMCPAppsResultCarriesOutputs: a host that renders MCP Apps gets, in
// execute's and get_execution's result _meta, the execution's raw outputs
// (the Plotly JSON and the PNG included), which its view draws; an agent
// that does not render apps is not sent them twice, and the text,
// structuredContent and images every agent reads are unchanged.
func TestMCPAppsResultCarriesOutputs(t *testing.T) {
	c, connect := inProcess(t)
	plain := connect()
	host, _ := appsInProcess(t, c)
	kernel := startKernelTool(t, plain)

	res := appsCall(t, host, "execute", map[string]any{"kernel": kernel, "code": appFigureCode, "timeout_s": 90})
	d, ok := appDataOf(t, res)
	if !ok {
		t.Fatalf("execute for an MCP Apps host: no _meta[%q]; _meta = %+v", mcpserver.AppResultMetaKey, res.Meta)
	}
	mimes, text := mimesOf(d)
	if d.Execution.Status != "ok" || !mimes["application/vnd.plotly.v1+json"] || !mimes["image/png"] || !strings.Contains(text, "drawn both") {
		t.Fatalf("the view's data lacks the figure, the plot or the text: status %s, mimes %v, text %q", d.Execution.Status, mimes, text)
	}
	if d.Execution.Code != appFigureCode {
		t.Errorf("the view's data lacks the code")
	}
	sc, _ := res.StructuredContent.(map[string]any)
	if _, leaked := sc["outputs"]; leaked {
		t.Errorf("structuredContent carries the outputs: they are for the view only (_meta)")
	}

	again := appsCall(t, host, "get_execution", map[string]any{"execution_id": d.Execution.ID})
	if g, ok := appDataOf(t, again); !ok || len(g.Outputs) != len(d.Outputs) {
		t.Fatalf("get_execution for an MCP Apps host: outputs %d (present %v), want %d", len(g.Outputs), ok, len(d.Outputs))
	}

	other := appsCall(t, plain, "get_execution", map[string]any{"execution_id": d.Execution.ID})
	if _, ok := appDataOf(t, other); ok {
		t.Errorf("an agent that does not render MCP Apps was sent the view's data")
	}
	osc, _ := other.StructuredContent.(map[string]any)
	if osc["status"] != "ok" || osc["execution_id"] != d.Execution.ID {
		t.Errorf("structuredContent changed: %v", osc)
	}
	images := 0
	for _, ct := range other.Content {
		if _, ok := mcp.AsImageContent(ct); ok {
			images++
		}
	}
	if images != 1 || !strings.Contains(textOfResult(other), "drawn both") {
		t.Errorf("the agent's reply lost its image or text: %d images, text %q", images, textOfResult(other))
	}
}
