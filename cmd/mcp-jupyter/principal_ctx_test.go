package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// asAdmin is ctx carrying the admin principal, as the data dir's token and
// stdio do: in-process clients have no HTTP middleware to put it there.
func asAdmin(ctx context.Context) context.Context { return auth.WithPrincipal(ctx, auth.Admin()) }

// TestCommandWithoutPrincipalIsRefused: a call that reaches the backend
// with no principal in its context (an edge that skipped authentication)
// does nothing and says so, instead of acting as someone; with the admin's
// principal the kernel it starts is owned by the admin.
func TestCommandWithoutPrincipalIsRefused(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "start_kernel", map[string]any{"kernelspec": "python3"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cl.CallTool(ctx, req) // NB: no asAdmin
	if err != nil {
		t.Fatal(err)
	}
	text := ""
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text += tc.Text
		}
	}
	if !res.IsError || !strings.Contains(text, "no authenticated principal") {
		t.Fatalf("start_kernel without a principal: isError %v, %q", res.IsError, text)
	}
	if ids := c.sys.KernelIDs(); len(ids) != 0 {
		t.Fatalf("a kernel was started without a principal: %v", ids)
	}
	id := startKernelTool(t, cl)
	if k, ok := c.back.kernels.Get(id); !ok || k.Owner != auth.AdminName {
		t.Fatalf("kernel started as the admin has owner %q", k.Owner)
	}
}
