package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// outsideRevokeRequest is the stderr line with which check.mjs asks for
// bob's token to be revoked (it then waits for "revoked" on stdin).
const outsideRevokeRequest = "check.mjs: revoke bob now"

// outsideResult is the part of check.mjs's JSON the test reads itself.
type outsideResult struct {
	OK     bool   `json:"ok"`
	Failed string `json:"failed"`
	Alice  struct {
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

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs", url)
	cmd.Dir = outsideSDKDir
	// NB: tokens in the environment, not on the command line (ps shows argv).
	cmd.Env = append(os.Environ(),
		"MCPJ_ALICE_TOKEN="+tokens["alice"], "MCPJ_BOB_TOKEN="+tokens["bob"],
		"MCPJ_READER_TOKEN="+tokens["reader"], "MCPJ_BOB_NAME=bob", "MCPJ_REVOKE_HANDSHAKE=1")
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	revokeAsked, scanned := make(chan struct{}), make(chan struct{})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The scanner owns stderr until the script closes it (exits or is
	// killed with ctx); revokeAsked fires on the script's request line.
	var stderr strings.Builder
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(nil, 1<<20)
		asked := false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if sc.Text() == outsideRevokeRequest && !asked {
				asked = true
				close(revokeAsked)
			}
		}
		// NB: after a line over the limit, drain so the script never
		// blocks writing.
		_, _ = io.Copy(io.Discard, stderrPipe)
	}()
	waited := false
	// NB: also on a Fatal below: the script is killed and reaped, the
	// scanner has ended.
	t.Cleanup(func() {
		cancel()
		<-scanned
		if !waited {
			_ = cmd.Wait()
		}
	})
	select {
	case <-revokeAsked:
		// Bob's client is still open in the script: revoke him the way an
		// operator does and wait until the server has reloaded the file.
		if out, err := principalCLI(t, dataDir, "revoke", "bob"); err != nil {
			t.Errorf("principal revoke bob: %v\n%s", err, out)
		}
		testkit.WaitUntil(t, 5*time.Second, "bob's token refused after revoke", func() (bool, string) {
			s := mcpStatus(t, "http://127.0.0.1:"+port, tokens["bob"])
			return s == 401, strconv.Itoa(s)
		})
		_, _ = io.WriteString(stdin, "revoked\n")
	case <-scanned:
	}
	_ = stdin.Close()
	<-scanned
	runErr := cmd.Wait()
	waited = true
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
	t.Logf("check.mjs:\n%s", stdout.String())
}
