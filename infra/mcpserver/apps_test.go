package mcpserver

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

var testAppView = &AppView{HTML: func() ([]byte, error) { return []byte("<!doctype html><title>v</title>"), nil }}

func appDataIn(t *testing.T, res *mcp.CallToolResult) (appResultData, bool) {
	t.Helper()
	if res.Meta == nil {
		return appResultData{}, false
	}
	raw, ok := res.Meta.AdditionalFields[AppResultMetaKey]
	if !ok {
		return appResultData{}, false
	}
	b, _ := json.Marshal(raw)
	var d appResultData
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d, true
}

// connectAs is an in-process client of srv negotiating version, declaring
// extensions at initialize (which mcp-go's client then also sends with every
// request on a 2026-07-28 connection).
func connectAs(t *testing.T, srv *Server, version string, extensions map[string]any) (*client.Client, *mcp.InitializeResult) {
	t.Helper()
	c, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "host", Version: "1"}
	init.Params.Capabilities.Extensions = extensions
	res, err := c.Initialize(context.Background(), init)
	if err != nil {
		t.Fatal(err)
	}
	return c, res
}

// TestAppDataFollowsTheCallersCapabilities: the view's outputs go into
// _meta only for a caller that advertised MCP Apps — per request on a
// 2026-07-28 connection, at initialize (kept by the session) on an older
// one; a caller that did not gets the reply it always got.
func TestAppDataFollowsTheCallersCapabilities(t *testing.T) {
	srv := New(newFakeBackend(), Options{App: testAppView})
	ui := map[string]any{AppExtension: map[string]any{"mimeTypes": []string{AppMIMEType}}}
	for _, tc := range []struct {
		name       string
		version    string
		extensions map[string]any
		want       bool
	}{
		{"2026-07-28 host", mcp.ProtocolVersion20260728, ui, true},
		{"2025-11-25 host", mcp.ProtocolVersion20251125, ui, true},
		{"2026-07-28 agent", mcp.ProtocolVersion20260728, nil, false},
		{"2025-11-25 agent", mcp.ProtocolVersion20251125, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, init := connectAs(t, srv, tc.version, tc.extensions)
			if _, ok := init.Capabilities.Extensions[AppExtension]; !ok {
				t.Errorf("the server does not advertise %s to a %s client: %v", AppExtension, tc.version, init.Capabilities.Extensions)
			}
			res := call(t, c, "execute", map[string]any{"kernel": "k1", "code": "print(2)"})
			id := res.StructuredContent.(map[string]any)["execution_id"].(string)
			again := call(t, c, "get_execution", map[string]any{"execution_id": id})
			for name, r := range map[string]*mcp.CallToolResult{"execute": res, "get_execution": again} {
				d, ok := appDataIn(t, r)
				if ok != tc.want {
					t.Fatalf("%s: view data present = %v, want %v", name, ok, tc.want)
				}
				if ok && (d.Execution.ID != id || d.Execution.Status != "ok" || d.Execution.Code != "print(2)" ||
					len(d.Outputs) != 1 || d.Outputs[0].MsgType != "stream") {
					t.Fatalf("%s: view data %+v, want execution %s with its code and stream output", name, d, id)
				}
			}
		})
	}
}

// TestNoAppWithoutAView: a server built without Options.App advertises no
// extension, names no view and lists no ui:// resource.
func TestNoAppWithoutAView(t *testing.T) {
	c := startClient(t, newFakeBackend(), Options{})
	tools, err := c.ListTools(asAdmin(context.Background()), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		if tool.Meta != nil && tool.Meta.AdditionalFields["ui"] != nil {
			t.Errorf("%s names a view the server does not have", tool.Name)
		}
	}
	res, err := c.ListResources(asAdmin(context.Background()), mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Resources {
		if r.URI == AppResourceURI {
			t.Errorf("%s is listed without a view", AppResourceURI)
		}
	}
}
