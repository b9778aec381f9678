package mcpserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestStreamableHTTPEndToEnd(t *testing.T) {
	s := New(newFakeBackend(), Options{Token: "tok"})
	mux := http.NewServeMux()
	mux.Handle("/mcp", s.HTTPHandler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	connect := func(token string) (*client.Client, error) {
		c, err := client.NewStreamableHttpClient(ts.URL+"/mcp",
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = c.Close() })
		if err := c.Start(context.Background()); err != nil {
			return nil, err
		}
		var init mcp.InitializeRequest
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
		_, err = c.Initialize(context.Background(), init)
		return c, err
	}

	c, err := connect("tok")
	if err != nil {
		t.Fatalf("connect with token: %v", err)
	}
	wantOK(t, call(t, c, "list_kernelspecs", nil), `"name": "python3"`)
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "print(1)"}), "status: ok")

	if c, err := connect("wrong"); err == nil {
		var req mcp.CallToolRequest
		req.Params.Name = "list_kernelspecs"
		if _, err := c.CallTool(context.Background(), req); err == nil {
			t.Fatal("a wrong token reached the tools")
		}
	}
}
