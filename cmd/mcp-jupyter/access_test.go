package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

var assetPattern = regexp.MustCompile(`asset://[0-9a-f]{64}`)

// principalsServer is one real server (real kernels, the real HTTP handler)
// with principals from the token store, and an MCP client over HTTP per
// token.
type principalsServer struct {
	c        *core
	root     string // the notebook root
	connect  func(token string) *client.Client
	tokens   map[string]string
	clients  map[string]*client.Client
	dataDir  string
	hostPort string
}

// openPrincipalsServer adds the principals (name → scopes) to a fresh data
// dir's token store, opens the server on it and connects one client per
// principal, and one with the admin token ("admin").
func openPrincipalsServer(t testing.TB, principals map[string]auth.Scope) *principalsServer {
	t.Helper()
	dataDir := testkit.TempDataDir(t)
	ps := &principalsServer{tokens: map[string]string{}, clients: map[string]*client.Client{}, dataDir: dataDir, root: t.TempDir()}
	store := auth.Store{Dir: dataDir}
	for name, scopes := range principals {
		tok, err := store.Add(name, scopes, 0)
		if err != nil {
			t.Fatalf("principal add %s: %v", name, err)
		}
		ps.tokens[name] = tok
	}
	t.Setenv("MCP_NOTEBOOK_ROOT", ps.root)
	cfg := testConfig(t, dataDir)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	ps.c = c
	ps.tokens["admin"] = c.token
	ps.hostPort = "127.0.0.1:" + serveOn(t, c)
	ps.connect = func(token string) *client.Client {
		hc, err := client.NewStreamableHttpClient("http://"+ps.hostPort+pathMCP,
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		if err != nil {
			t.Fatal(err)
		}
		cl := mcpClient(t, hc)
		t.Cleanup(func() { _ = cl.Close() })
		return cl
	}
	for name, tok := range ps.tokens {
		ps.clients[name] = ps.connect(tok)
	}
	return ps
}

// errorText is the text of a tool call that must fail (isError).
func errorText(t testing.TB, cl *client.Client, tool string, args map[string]any) string {
	t.Helper()
	_, text := callTool(t, cl, tool, args)
	msg, ok := strings.CutPrefix(text, "ERROR: ")
	if !ok {
		t.Fatalf("%s %v succeeded, want a refusal: %s", tool, args, text)
	}
	return msg
}

// kernelIDs is what list_kernels shows cl.
func kernelIDs(t testing.TB, cl *client.Client) []string {
	t.Helper()
	sc := must(t, cl, "list_kernels", map[string]any{})
	var ids []string
	list, _ := sc["kernels"].([]any)
	for _, k := range list {
		ids = append(ids, k.(map[string]any)["kernel_id"].(string))
	}
	return ids
}

// executionIDs is what list_executions shows cl.
func executionIDs(t testing.TB, cl *client.Client) []string {
	t.Helper()
	sc := must(t, cl, "list_executions", map[string]any{})
	var ids []string
	list, _ := sc["executions"].([]any)
	for _, x := range list {
		ids = append(ids, x.(map[string]any)["execution_id"].(string))
	}
	return ids
}

// sameAsUnknown asserts that a refusal about a hidden id reads, byte for
// byte, as the refusal about an id nobody knows (with the id swapped).
func sameAsUnknown(t testing.TB, cl *client.Client, tool, arg, hidden, unknown string, args map[string]any) {
	t.Helper()
	with := func(id string) map[string]any {
		m := map[string]any{arg: id}
		for k, v := range args {
			m[k] = v
		}
		return m
	}
	got := errorText(t, cl, tool, with(hidden))
	want := strings.ReplaceAll(errorText(t, cl, tool, with(unknown)), unknown, hidden)
	if got != want {
		t.Errorf("%s on a kernel bob may not see tells it exists:\n got  %q\n want %q (as for an unknown id)", tool, got, want)
	}
}

// TestTwoPrincipalsOverHTTP: alice and bob, each with a token from the
// store, on one server. Bob cannot see, run on, interrupt, shut down, read
// the outputs of or load into alice's kernel — every refusal reads as for
// an id nobody knows; a share makes exactly the granted part visible, and
// withdrawing it hides the kernel again.
func TestTwoPrincipalsOverHTTP(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice, bob, admin := ps.clients["alice"], ps.clients["bob"], ps.clients["admin"]

	k := startKernelTool(t, alice)
	sc, text := callTool(t, alice, "execute", map[string]any{"kernel": k, "code": "secret = 42\nprint('alice-out')"})
	if sc["status"] != "ok" || !strings.Contains(text, "alice-out") {
		t.Fatalf("alice's execute: %v %s", sc, text)
	}
	x := sc["execution_id"].(string)
	if !slices.Contains(kernelIDs(t, alice), k) || !slices.Contains(kernelIDs(t, admin), k) {
		t.Fatalf("alice's kernel %s is not listed to alice (%v) or the admin (%v)", k, kernelIDs(t, alice), kernelIDs(t, admin))
	}

	// A long output is stored as an asset of alice's kernel.
	_, long := callTool(t, alice, "execute", map[string]any{"kernel": k, "code": "print('A' * 20000)"})
	asset := assetPattern.FindString(long)
	if asset == "" {
		t.Fatalf("no asset:// link in a 20,000-character output: %s", long)
	}
	readAsset := func(cl *client.Client, uri string) (string, error) {
		var rr mcp.ReadResourceRequest
		rr.Params.URI = uri
		res, err := cl.ReadResource(context.Background(), rr)
		if err != nil {
			return "", err
		}
		if len(res.Contents) == 0 {
			return "", nil
		}
		tc, _ := mcp.AsTextResourceContents(res.Contents[0])
		return tc.Text, nil
	}
	if body, err := readAsset(alice, asset); err != nil || !strings.Contains(body, "AAAA") {
		t.Fatalf("alice reads her own asset %s: %v", asset, err)
	}

	// Bob: alice's kernel does not exist.
	if sc := must(t, bob, "list_assets", map[string]any{}); sc["count"] != float64(0) {
		t.Fatalf("bob's list_assets shows alice's assets: %v", sc)
	}
	unknownAsset := "asset://" + strings.Repeat("0", 64)
	_, hiddenErr := readAsset(bob, asset)
	_, unknownErr := readAsset(bob, unknownAsset)
	if hiddenErr == nil || unknownErr == nil ||
		hiddenErr.Error() != strings.ReplaceAll(unknownErr.Error(), strings.TrimPrefix(unknownAsset, "asset://"), strings.TrimPrefix(asset, "asset://")) {
		t.Fatalf("bob reading alice's asset: %v, want as for an unknown one: %v", hiddenErr, unknownErr)
	}
	if ids := kernelIDs(t, bob); slices.Contains(ids, k) {
		t.Fatalf("bob's list_kernels shows alice's kernel: %v", ids)
	}
	if ids := executionIDs(t, bob); slices.Contains(ids, x) {
		t.Fatalf("bob's list_executions shows alice's execution: %v", ids)
	}
	unknownK := strings.Repeat("f", len(k))
	unknownX := strings.Repeat("e", len(x))
	sameAsUnknown(t, bob, "get_execution", "execution_id", x, unknownX, nil)
	sameAsUnknown(t, bob, "send_input", "execution_id", x, unknownX, map[string]any{"value": "y"})
	sameAsUnknown(t, bob, "cancel_execution", "execution_id", x, unknownX, nil)
	sameAsUnknown(t, bob, "execute", "kernel", k, unknownK, map[string]any{"code": "print(secret)"})
	sameAsUnknown(t, bob, "interrupt_kernel", "kernel", k, unknownK, nil)
	sameAsUnknown(t, bob, "restart_kernel", "kernel", k, unknownK, nil)
	sameAsUnknown(t, bob, "shutdown_kernel", "kernel", k, unknownK, nil)
	sameAsUnknown(t, bob, "share_kernel", "kernel", k, unknownK, map[string]any{"principal": "bob", "access": "execute"})
	sameAsUnknown(t, bob, "list_executions", "kernel", k, unknownK, nil)
	sameAsUnknown(t, bob, "load_environment", "kernel", k, unknownK, map[string]any{"name": "x"})
	sameAsUnknown(t, bob, "save_environment", "kernel", k, unknownK, map[string]any{"name": "x"})
	if msg := errorText(t, bob, "get_execution", map[string]any{"execution_id": x}); !strings.Contains(msg, "unknown execution") {
		t.Errorf("get_execution of alice's execution by bob: %q, want the unknown-execution error", msg)
	}

	// A share names a principal of the token store (a typo shares with
	// nobody), not the admin or the owner; OAuth subjects are taken as given.
	for who, want := range map[string]string{"bobb": `no principal "bobb"`, "admin": "the admin reads and manages every kernel already",
		"alice": "alice owns kernel", "Bob": "not allowed"} {
		if msg := errorText(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": who, "access": "read"}); !strings.Contains(msg, want) {
			t.Errorf("share with %q: %q, want %q", who, msg, want)
		}
	}
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "oidc:someone", "access": "read"})

	// Shared for read: bob sees it and its outputs, but may not run code.
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	if ids := kernelIDs(t, bob); !slices.Contains(ids, k) {
		t.Fatalf("shared for read, alice's kernel is not listed to bob: %v", ids)
	}
	if _, text := callTool(t, bob, "get_execution", map[string]any{"execution_id": x}); !strings.Contains(text, "alice-out") {
		t.Fatalf("shared for read, bob does not get alice's output: %s", text)
	}
	if ids := executionIDs(t, bob); !slices.Contains(ids, x) {
		t.Fatalf("shared for read, bob's list_executions lacks %s: %v", x, ids)
	}
	if sc := must(t, bob, "list_assets", map[string]any{"kernel": k}); sc["count"] != float64(1) {
		t.Fatalf("shared for read, bob's list_assets: %v", sc)
	}
	if body, err := readAsset(bob, asset); err != nil || !strings.Contains(body, "AAAA") {
		t.Fatalf("shared for read, bob reads alice's asset: %v", err)
	}
	readOnly := "kernel " + k + " is shared with you for read only; ask its owner (alice) for execute"
	for tool, args := range map[string]map[string]any{"execute": {"kernel": k, "code": "print(secret)"}, "interrupt_kernel": {"kernel": k}} {
		if msg := errorText(t, bob, tool, args); !strings.Contains(msg, readOnly) {
			t.Errorf("%s on a kernel shared for read: %q, want %q", tool, msg, readOnly)
		}
	}
	if msg := errorText(t, bob, "shutdown_kernel", map[string]any{"kernel": k}); !strings.Contains(msg, "only its owner or an admin") {
		t.Errorf("shutdown_kernel on a kernel shared for read: %q", msg)
	}

	// Shared for execute: bob runs code in alice's kernel, but does not own it.
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "execute"})
	if sc, text := callTool(t, bob, "execute", map[string]any{"kernel": k, "code": "print(secret)"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("shared for execute, bob's execute: %v %s", sc, text)
	}
	for _, tool := range []string{"shutdown_kernel", "restart_kernel"} {
		if msg := errorText(t, bob, tool, map[string]any{"kernel": k}); !strings.Contains(msg, "belongs to alice") {
			t.Errorf("%s by bob with execute: %q, want it refused as alice's", tool, msg)
		}
	}
	if msg := errorText(t, bob, "share_kernel", map[string]any{"kernel": k, "principal": "carol", "access": "read"}); !strings.Contains(msg, "only its owner or an admin") {
		t.Errorf("bob re-sharing alice's kernel: %q", msg)
	}

	// Withdrawn: gone again, word for word.
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "none"})
	if ids := kernelIDs(t, bob); slices.Contains(ids, k) {
		t.Fatalf("after share none, bob still sees alice's kernel: %v", ids)
	}
	sameAsUnknown(t, bob, "get_execution", "execution_id", x, unknownX, nil)
	sameAsUnknown(t, bob, "execute", "kernel", k, unknownK, map[string]any{"code": "1"})

	// Alice's kernel is untouched and still hers.
	if sc, text := callTool(t, alice, "execute", map[string]any{"kernel": k, "code": "print(secret)"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("alice's kernel after bob's attempts: %v %s", sc, text)
	}
}

// TestReadOnlyPrincipalSeesNoExecuteTools: a principal with only the read
// scope is not listed execute or start_kernel, and calling them anyway is
// refused naming the scope — over the real HTTP transport.
func TestReadOnlyPrincipalSeesNoExecuteTools(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"viewer": auth.ScopeRead})
	viewer := ps.clients["viewer"]
	res, err := viewer.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	for _, hidden := range []string{"execute", "start_kernel", "shutdown_kernel", "share_kernel", "save_environment", "insert_cell"} {
		if slices.Contains(names, hidden) {
			t.Errorf("tools/list shows %s to a read-only principal: %v", hidden, names)
		}
	}
	for _, shown := range []string{"list_kernels", "get_execution", "read_notebook", "list_checkpoints"} {
		if !slices.Contains(names, shown) {
			t.Errorf("tools/list hides %s from a read-only principal: %v", shown, names)
		}
	}
	for _, tool := range []string{"execute", "start_kernel"} {
		msg := errorText(t, viewer, tool, map[string]any{"kernel": "k", "code": "1"})
		if !strings.Contains(msg, "needs the execute scope") || !strings.Contains(msg, `principal "viewer" has read`) {
			t.Errorf("%s by a read-only principal: %q", tool, msg)
		}
	}
	if ids := kernelIDs(t, ps.clients["admin"]); len(ids) != 0 {
		t.Fatalf("a refused start_kernel started a kernel: %v", ids)
	}
}

// TestNotebookRootsPerPrincipal: each principal's notebook paths are its
// own root, users/<name>/ (0700); no path — "..", absolute, or through a
// symlink planted in its root — reaches another principal's notebook; the
// admin sees the whole root.
func TestNotebookRootsPerPrincipal(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice, bob, admin := ps.clients["alice"], ps.clients["bob"], ps.clients["admin"]

	sc := must(t, alice, "create_notebook", map[string]any{"path": "secret.ipynb"})
	if sc["path"] != "secret.ipynb" {
		t.Errorf("alice's notebook is shown as %v, want the path in her own root", sc["path"])
	}
	aliceRoot := filepath.Join(ps.root, "users", "alice")
	fi, err := os.Stat(aliceRoot)
	if err != nil {
		t.Fatalf("alice's root: %v", err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("alice's root is %v, want 0700", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(aliceRoot, "secret.ipynb")); err != nil {
		t.Fatalf("alice's notebook is not in her root: %v", err)
	}
	must(t, alice, "read_notebook", map[string]any{"path": "secret.ipynb"})
	must(t, admin, "read_notebook", map[string]any{"path": "users/alice/secret.ipynb"})

	// Bob's root exists once he used it; plant links in it, as a process
	// of his could.
	if _, text := callTool(t, bob, "read_notebook", map[string]any{"path": "secret.ipynb"}); !strings.HasPrefix(text, "ERROR") {
		t.Fatalf("bob reads alice's notebook by its name: %s", text)
	}
	bobRoot := filepath.Join(ps.root, "users", "bob")
	if err := os.Symlink(filepath.Join(aliceRoot, "secret.ipynb"), filepath.Join(bobRoot, "link.ipynb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(aliceRoot, filepath.Join(bobRoot, "dir")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../alice/secret.ipynb", "../../users/alice/secret.ipynb", "users/alice/secret.ipynb",
		filepath.Join(aliceRoot, "secret.ipynb"), "link.ipynb", "dir/secret.ipynb", "./dir/../../alice/secret.ipynb"} {
		for _, tool := range []string{"read_notebook", "insert_cell"} {
			_, text := callTool(t, bob, tool, map[string]any{"path": p, "source": "print(1)", "expected_hash": "x"})
			if !strings.HasPrefix(text, "ERROR") {
				t.Errorf("bob's %s of %q reached alice's notebook: %s", tool, p, text)
			}
		}
	}
	// A kernel bound to alice's notebook is not found through bob's path.
	must(t, alice, "start_kernel", map[string]any{"notebook": "secret.ipynb"})
	sameAsUnknown(t, bob, "execute", "kernel", "secret.ipynb", "other.ipynb", map[string]any{"code": "1"})
	sameAsUnknown(t, bob, "execute", "kernel", "users/alice/secret.ipynb", "users/alice/other.ipynb", map[string]any{"code": "1"})
}
