package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The Node projects of the outside checks, from this package's directory:
// the official MCP TypeScript SDK (@modelcontextprotocol/sdk, MCP
// 2025-11-25) and its successor (@modelcontextprotocol/client, 2026-07-28).
var (
	outsideSDKDir  = filepath.Join("..", "..", "testkit", "outside", "mcpsdk")
	outsideSDK2Dir = filepath.Join("..", "..", "testkit", "outside", "mcpsdk2")
)

// outsideSDKReady returns node's path, failing the test (run `make deps`)
// unless the pinned @modelcontextprotocol/sdk is installed.
func outsideSDKReady(t testing.TB) string {
	t.Helper()
	return testkit.OutsideNode(t, outsideSDKDir, "@modelcontextprotocol/sdk")
}

// outsideSDK2Ready returns node's path, failing the test (run `make deps`)
// unless the pinned @modelcontextprotocol/client is installed.
func outsideSDK2Ready(t testing.TB) string {
	t.Helper()
	return testkit.OutsideNode(t, outsideSDK2Dir, "@modelcontextprotocol/client")
}

// outsideRevokeRequest is the stderr line with which check.mjs asks for
// bob's token to be revoked (it then waits for "revoked" on stdin).
const outsideRevokeRequest = "check.mjs: revoke bob now"

// outsideResult is the part of check.mjs's JSON the test reads itself
// (testkit.RunNodeJSON checks ok and failed).
type outsideResult struct {
	Alice struct {
		Kernel string `json:"kernel"`
	} `json:"alice"`
	Revoked struct {
		Status int `json:"status"`
	} `json:"revoked"`
	InvalidToken struct {
		Status          int    `json:"status"`
		WWWAuthenticate string `json:"www_authenticate"`
	} `json:"invalid_token"`
}

// TestOutsideSDK proves issue 14 with a client no one here wrote: the
// official MCP TypeScript SDK (pinned in testkit/outside/mcpsdk), over
// Streamable HTTP with each principal's bearer token, against the real
// server with real kernels. Principals come from the CLI (`principal
// add`). check.mjs: alice starts a kernel and runs code; bob (same scopes)
// cannot see it, run on it or read its execution, word for word as for
// ids nobody has; a read-only principal is not offered execute or
// start_kernel and is refused them; shared for read, bob sees the kernel
// and its output 42 but may not execute; a wrong token gets 401 with
// WWW-Authenticate; bob revoked (`principal revoke`) while his SDK
// client is open, its next call gets 401. The server's own read model then shows that the SDK's
// calls ran as the principals they were sent as.
func TestOutsideSDK(t *testing.T) {
	node := outsideSDKReady(t)

	dataDir := testkit.TempDataDir(t)
	tokens := map[string]string{}
	for name, args := range map[string][]string{
		"alice":  {"add", "alice", "--scopes", "read,execute,manage"},
		"bob":    {"add", "bob", "--scopes", "read,execute,manage"},
		"reader": {"add", "reader", "--scopes", "read"},
	} {
		out, err := principalCLI(t, dataDir, args...)
		if err != nil {
			t.Fatalf("principal %v: %v\n%s", args, err, out)
		}
		tokens[name] = printedToken(t, out)
	}
	t.Setenv("MCP_NOTEBOOK_ROOT", t.TempDir())
	cfg := testConfig(t, dataDir)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	port := serveOn(t, c)
	url := "http://127.0.0.1:" + port + pathMCP

	var res outsideResult
	stdout := testkit.RunNodeJSON(t, testkit.NodeCheck{Node: node, Dir: outsideSDKDir, Script: "check.mjs", Args: []string{url},
		// NB: tokens in the environment, not on the command line (ps shows argv).
		Env: append(os.Environ(),
			"MCPJ_ALICE_TOKEN="+tokens["alice"], "MCPJ_BOB_TOKEN="+tokens["bob"],
			"MCPJ_READER_TOKEN="+tokens["reader"], "MCPJ_BOB_NAME=bob", "MCPJ_REVOKE_HANDSHAKE=1"),
		Timeout: 5 * time.Minute,
		// Bob's client is still open in the script: revoke him the way an
		// operator does and wait until the server has reloaded the file.
		Ask: outsideRevokeRequest, OnAsk: func() string {
			if out, err := principalCLI(t, dataDir, "revoke", "bob"); err != nil {
				t.Errorf("principal revoke bob: %v\n%s", err, out)
			}
			testkit.WaitUntil(t, 5*time.Second, "bob's token refused after revoke", func() (bool, string) {
				s := mcpStatus(t, "http://127.0.0.1:"+port, tokens["bob"])
				return s == 401, strconv.Itoa(s)
			})
			return "revoked"
		}}, &res)
	if res.InvalidToken.Status != 401 || res.InvalidToken.WWWAuthenticate == "" {
		t.Fatalf("check.mjs passed without the 401 challenge: %+v", res.InvalidToken)
	}
	if res.Revoked.Status != 401 {
		t.Fatalf("check.mjs passed without bob's open client refused after revoke: %+v", res.Revoked)
	}

	// What the SDK did landed as the principals it authenticated as.
	k, ok := c.back.kernels.Get(res.Alice.Kernel)
	if !ok {
		t.Fatalf("kernel %q that check.mjs started is not in the server's read model", res.Alice.Kernel)
	}
	if k.Owner != "alice" || k.Shares["bob"] != "read" || len(k.Shares) != 1 {
		t.Fatalf("kernel %s: owner %q, shares %v; want alice's, shared with bob for read only", k.ID, k.Owner, k.Shares)
	}
	// NB: the read model follows the log; the shutdown's event may land
	// just after the tool answered.
	testkit.WaitUntil(t, 30*time.Second, "the kernel check.mjs shut down is shut down", func() (bool, string) {
		k, _ := c.back.kernels.Get(res.Alice.Kernel)
		return k.State == kernels.StateShutDown, string(k.State)
	})
	t.Logf("check.mjs:\n%s", stdout)
}
