package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// principalCLI runs `mcp-jupyter principal args...` on dataDir and
// returns its output.
func principalCLI(t testing.TB, dataDir string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runPrincipal(append(args, "--data-dir", dataDir), &out)
	return out.String(), err
}

// printedToken is the token line of `principal add` or `rotate`.
func printedToken(t testing.TB, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, auth.TokenPrefix) {
			return l
		}
	}
	t.Fatalf("no token printed in %q", out)
	return ""
}

// mcpStatus posts an initialize to /mcp with tok and returns the status.
func mcpStatus(t testing.TB, url, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+pathMCP, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func httpMCPClient(t testing.TB, url, tok string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url+pathMCP, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return mcpClient(t, c)
}

// TestPrincipalTokensOnRunningServer drives principals the way an operator
// does: `principal add|revoke|rotate` on the data dir of a running server,
// agents connecting with mcp-go's client over Streamable HTTP. Revoke and
// rotate take effect without a restart, well before the re-stat period
// (inotify), and the data dir's token stays the admin.
func TestPrincipalTokensOnRunningServer(t *testing.T) {
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	dir := c.cfg.DataDir

	out, err := principalCLI(t, dir, "add", "alice", "--scopes", "read,execute", "--max-kernels", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "shown this once") {
		t.Errorf("add does not say the token is shown once: %q", out)
	}
	alice := printedToken(t, out)
	bobOut, err := principalCLI(t, dir, "add", "--scopes", "read", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob := printedToken(t, bobOut)

	// Stored: 0600, hashes only.
	path := filepath.Join(dir, auth.PrincipalsFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	for _, tok := range []string{alice, bob} {
		if bytes.Contains(data, []byte(tok)) || bytes.Contains(data, []byte(strings.TrimPrefix(tok, auth.TokenPrefix))) {
			t.Fatalf("the principals file holds a token in clear:\n%s", data)
		}
	}
	list, err := principalCLI(t, dir, "list")
	if err != nil || !strings.Contains(list, "alice") || !strings.Contains(list, "read,execute") || bytes.Contains([]byte(list), []byte(auth.HashToken(alice).String())) {
		t.Errorf("list: %v\n%s", err, list)
	}

	// Connect (the principals were added after the server started).
	testkit.WaitUntil(t, 5*time.Second, "alice's token accepted", func() (bool, string) {
		s := mcpStatus(t, ts.URL, alice)
		return s == 200, fmt.Sprint(s)
	})
	ca := httpMCPClient(t, ts.URL, alice)
	if _, text := callTool(t, ca, "list_kernelspecs", nil); !strings.Contains(text, "python3") {
		t.Fatalf("alice's list_kernelspecs: %s", text)
	}
	if s := mcpStatus(t, ts.URL, "mcpj_"+strings.Repeat("0", 64)); s != 401 {
		t.Errorf("a wrong token: %d, want 401", s)
	}
	if s := mcpStatus(t, ts.URL, c.token); s != 200 {
		t.Errorf("the admin token: %d, want 200", s)
	}

	// Revoke while the server runs: the next call is refused.
	if out, err := principalCLI(t, dir, "revoke", "alice"); err != nil {
		t.Fatalf("revoke: %v %s", err, out)
	}
	// NB: 1.5 s is under the re-stat period (auth.DefaultPollEvery): only
	// the inotify reload can pass it.
	testkit.WaitUntil(t, 1500*time.Millisecond, "alice's token refused after revoke", func() (bool, string) {
		s := mcpStatus(t, ts.URL, alice)
		return s == 401, fmt.Sprint(s)
	})
	var req = func(cl *client.Client) error {
		_, err := cl.ListTools(context.Background(), mcp.ListToolsRequest{})
		return err
	}
	if err := req(ca); err == nil {
		t.Error("alice's open client still lists tools after revoke")
	}

	// Rotate: the old token stops, the new one works.
	out, err = principalCLI(t, dir, "rotate", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob2 := printedToken(t, out)
	testkit.WaitUntil(t, 1500*time.Millisecond, "bob's old token refused after rotate", func() (bool, string) {
		s := mcpStatus(t, ts.URL, bob)
		return s == 401, fmt.Sprint(s)
	})
	if s := mcpStatus(t, ts.URL, bob2); s != 200 {
		t.Errorf("bob's new token: %d, want 200", s)
	}
	cb := httpMCPClient(t, ts.URL, bob2)
	if err := req(cb); err != nil {
		t.Errorf("bob's new token: %v", err)
	}
	if s := mcpStatus(t, ts.URL, c.token); s != 200 {
		t.Errorf("the admin token after the changes: %d, want 200", s)
	}
	// The other routes go through the same check.
	for _, p := range []string{"/events", "/ws", "/assets/" + strings.Repeat("0", 64)} {
		r, _ := http.NewRequest("GET", ts.URL+p, nil)
		r.Header.Set("Authorization", "Bearer "+alice)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("GET %s with a revoked token: %d, want 401", p, resp.StatusCode)
		}
	}
}

// TestKernelCannotReadPrincipals: an agent holding a principal's token
// runs code in a real kernel that tries to read principals.json (and its
// lock): the sandbox hides the data dir.
func TestKernelCannotReadPrincipals(t *testing.T) {
	c, _ := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	out, err := principalCLI(t, c.cfg.DataDir, "add", "mallory")
	if err != nil {
		t.Fatal(err)
	}
	tok := printedToken(t, out)
	testkit.WaitUntil(t, 5*time.Second, "mallory's token accepted", func() (bool, string) {
		s := mcpStatus(t, ts.URL, tok)
		return s == 200, fmt.Sprint(s)
	})
	cl := httpMCPClient(t, ts.URL, tok)
	k := startKernelTool(t, cl)
	path := filepath.Join(c.cfg.DataDir, auth.PrincipalsFile)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the file to attack is not there: %v", err)
	}
	code := fmt.Sprintf(`
for p in [%q, %q]:
    try:
        print("READ", p, len(open(p, "rb").read()))
    except (PermissionError, FileNotFoundError) as e:
        print("REFUSED", type(e).__name__)
`, path, path+".lock")
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": code, "timeout_s": 60})
	if sc["status"] != "ok" {
		t.Fatalf("execute: %v\n%s", sc, text)
	}
	if strings.Contains(text, "READ") || strings.Count(text, "REFUSED") != 2 {
		t.Fatalf("a kernel read the principals file:\n%s", text)
	}
}

// TestPrincipalCLIErrors: each mistake says what was wrong and what to do.
func TestPrincipalCLIErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := principalCLI(t, dir, "add", "alice"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "alice"}, "principal rotate alice"},
		{[]string{"add", "admin"}, "reserved"},
		{[]string{"add", "oidc:x"}, "reserved"},
		{[]string{"add", "Bad Name"}, "a-z"},
		{[]string{"add", "carol", "--scopes", "read,fly"}, "the scopes are read, execute, manage and admin"},
		{[]string{"add", "carol", "--scopes", ""}, "at least one"},
		{[]string{"add", "carol", "--max-kernels", "-1"}, "0 (the server's"},
		{[]string{"add"}, "exactly one NAME"},
		{[]string{"revoke", "nobody"}, "principal list"},
		{[]string{"rotate", "nobody"}, "unknown principal"},
		{[]string{"frobnicate"}, "add, list, revoke or rotate"},
	} {
		_, err := principalCLI(t, dir, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("principal %v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
	out, err := principalCLI(t, dir, "list")
	if err != nil || strings.Count(out, "\n") != 2 {
		t.Errorf("list after refused changes: %v\n%s", err, out)
	}
}

// TestDoctorReadsThePrincipalsFile: a broken file, which would stop the
// server's start, is a doctor failure naming the fault.
func TestDoctorReadsThePrincipalsFile(t *testing.T) {
	dir := t.TempDir()
	if f := checkPrincipals(dir); !f.OK || !strings.Contains(f.Detail, "0 active") {
		t.Errorf("no file: %v", f)
	}
	if _, err := principalCLI(t, dir, "add", "alice"); err != nil {
		t.Fatal(err)
	}
	if f := checkPrincipals(dir); !f.OK || !strings.Contains(f.Detail, "1 active, 0 revoked") {
		t.Errorf("one principal: %v", f)
	}
	if err := os.WriteFile(filepath.Join(dir, auth.PrincipalsFile), []byte(`{"version":1,"principals":[{"name":"x","token_sha256":"00"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if f := checkPrincipals(dir); f.OK || !strings.Contains(f.Detail, "token_sha256") || f.Fix == "" {
		t.Errorf("a broken file: %v", f)
	}
	cfg := testConfig(t, dir)
	if _, err := openCore(context.Background(), cfg, discard()); err == nil || !strings.Contains(err.Error(), "token_sha256") {
		t.Errorf("the server started on a broken principals file: %v", err)
	}
}
