package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// outsideSDKDir is the Node project of the official MCP TypeScript SDK
// check, from this package's directory.
var outsideSDKDir = filepath.Join("..", "..", "testkit", "outside", "mcpsdk")

// outsideSDKReady fails the test unless node is on PATH and the pinned SDK
// is installed in outsideSDKDir (by `make deps`), and returns node's path.
func outsideSDKReady(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): the outside check needs Node.js >= 18 with npm; run `make deps`, which installs them and the SDK", err)
	}
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := os.ReadFile(filepath.Join(outsideSDKDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pinned); err != nil {
		t.Fatalf("%s/package.json: %v", outsideSDKDir, err)
	}
	var installed struct {
		Version string `json:"version"`
	}
	data, err = os.ReadFile(filepath.Join(outsideSDKDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the MCP TypeScript SDK is not installed in %s/node_modules: run `make deps` (npm ci from the committed lock)", outsideSDKDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &installed); err != nil {
		t.Fatal(err)
	}
	if want := pinned.Dependencies["@modelcontextprotocol/sdk"]; installed.Version != want {
		t.Fatalf("%s/node_modules holds @modelcontextprotocol/sdk %s, package.json pins %s: run `make deps`", outsideSDKDir, installed.Version, want)
	}
	return node
}

// outsideResult is the part of check.mjs's JSON the test reads itself.
type outsideResult struct {
	OK     bool   `json:"ok"`
	Failed string `json:"failed"`
	Alice  struct {
		Kernel string `json:"kernel"`
	} `json:"alice"`
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
// WWW-Authenticate. The server's own read model then shows that the SDK's
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
	url := "http://127.0.0.1:" + serveOn(t, c) + pathMCP

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs", url)
	cmd.Dir = outsideSDKDir
	// NB: tokens in the environment, not on the command line (ps shows argv).
	cmd.Env = append(os.Environ(),
		"MCPJ_ALICE_TOKEN="+tokens["alice"], "MCPJ_BOB_TOKEN="+tokens["bob"],
		"MCPJ_READER_TOKEN="+tokens["reader"], "MCPJ_BOB_NAME=bob")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if runErr != nil {
		t.Fatalf("node check.mjs: %v (context: %v)\nstderr:\n%s\nstdout:\n%s", runErr, ctx.Err(), stderr.String(), stdout.String())
	}
	var res outsideResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("check.mjs printed no JSON object: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !res.OK || res.Failed != "" {
		t.Fatalf("check.mjs exited 0 but reports ok=%v failed=%q:\n%s", res.OK, res.Failed, stdout.String())
	}
	if res.InvalidToken.Status != 401 || res.InvalidToken.WWWAuthenticate == "" {
		t.Fatalf("check.mjs passed without the 401 challenge: %+v", res.InvalidToken)
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
	t.Logf("check.mjs:\n%s", stdout.String())
}
