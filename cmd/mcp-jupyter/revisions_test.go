package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// Issue 19: both MCP revisions (2025-11-25 through initialize, 2026-07-28
// stateless through server/discover), on both transports (stdio: the real
// binary; Streamable HTTP: the real handler on a real listener), with
// three clients: mcp-go's (pinned to 2025-11-25, and as it comes), the
// official TypeScript SDK 1.32.2 (2025-11-25) and its successor
// @modelcontextprotocol/client 2.4.0 (2026-07-28). Every cell runs the same
// tool suite (matrixSteps); the test asserts the revision each client
// negotiated (a client that silently fell back fails) and that the answers
// have the same shape everywhere.

// matrixStep is one call of the suite: a tool call, or a resources/read
// of a URI an earlier step saved. The JSON fields are what suite.mjs reads;
// the want* fields are checked here, on every client's answer.
type matrixStep struct {
	Name     string            `json:"name"`
	Tool     string            `json:"tool,omitempty"`
	Args     map[string]any    `json:"args,omitempty"`
	Read     string            `json:"read,omitempty"`
	Save     map[string]string `json:"save,omitempty"`
	SaveText map[string]string `json:"saveText,omitempty"`

	wantError  bool
	wantStatus string
	wantText   string
}

// matrixResult is what a client got for one step.
type matrixResult struct {
	Name       string           `json:"name"`
	IsError    bool             `json:"isError"`
	Content    []matrixContent  `json:"content"`
	Structured map[string]any   `json:"structured"`
	Contents   []matrixResource `json:"contents"`
}

type matrixContent struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	URI      string `json:"uri,omitempty"`
	MIMEType string `json:"mimeType,omitempty"`
}

type matrixResource struct {
	URI      string `json:"uri"`
	MIMEType string `json:"mimeType"`
	Size     int    `json:"size"`
}

func (r matrixResult) text() string {
	var parts []string
	for _, c := range r.Content {
		if c.Type == "text" {
			parts = append(parts, c.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// shape is what must not differ between revisions and clients: whether the
// call was refused, the structured result's keys and the content blocks'
// types (a resources/read: the contents' MIME types).
//
// NB: the keys in loadDependentKeys are left out: they say what the server
// observed of the kernel's message counters, which depends on timing, not
// on the revision or the client (an abort_request answered by the kernel's
// control thread while the interrupted execution ends can arrive after that
// execution's idle status and be counted a hole under load).
func (r matrixResult) shape() string {
	keys := make([]string, 0, len(r.Structured))
	for k := range r.Structured {
		if loadDependentKeys[k] {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var types []string
	for _, c := range r.Content {
		types = append(types, c.Type)
	}
	var mimes []string
	for _, c := range r.Contents {
		mimes = append(mimes, c.MIMEType)
	}
	return fmt.Sprintf("isError=%v structured=%v content=%v resources=%v", r.IsError, keys, types, mimes)
}

// loadDependentKeys are structured keys the shape comparison ignores (see
// shape).
var loadDependentKeys = map[string]bool{"outputs_incomplete": true, "outputs_lost": true}

// assetURIPattern finds an asset link in a reply (its text or a
// resource_link block).
const assetURIPattern = `asset://[0-9a-f]{64}`

// matrixSteps is the tool suite every cell runs; tag keeps names (label,
// checkpoint, notebook) apart when cells share a server.
func matrixSteps(tag string) []matrixStep {
	nb := "matrix-" + tag + ".ipynb"
	return []matrixStep{
		{Name: "list_kernelspecs", Tool: "list_kernelspecs", wantText: "python3"},
		{Name: "start_kernel", Tool: "start_kernel", Args: map[string]any{"kernelspec": "python3", "label": "matrix-" + tag},
			Save: map[string]string{"kernel": "kernel_id"}},
		{Name: "list_kernels", Tool: "list_kernels", Args: map[string]any{"label": "matrix-" + tag}, wantText: "matrix-" + tag},
		{Name: "execute 1+1", Tool: "execute", Args: map[string]any{"kernel": "${kernel}", "code": "a = 41\n1+1"},
			Save: map[string]string{"first": "execution_id"}, wantStatus: "ok", wantText: "2"},
		{Name: "execute error", Tool: "execute", Args: map[string]any{"kernel": "${kernel}", "code": "1/0"},
			wantStatus: "error", wantText: "ZeroDivisionError"},
		{Name: "execute long text", Tool: "execute", Args: map[string]any{"kernel": "${kernel}", "code": "print('x' * 20000)"},
			SaveText: map[string]string{"asset": assetURIPattern}, wantStatus: "ok"},
		{Name: "read asset", Read: "${asset}"},
		{Name: "list_assets", Tool: "list_assets", Args: map[string]any{"kernel": "${kernel}"}},
		{Name: "get_execution", Tool: "get_execution", Args: map[string]any{"execution_id": "${first}"}, wantStatus: "ok", wantText: "2"},
		{Name: "list_executions", Tool: "list_executions", Args: map[string]any{"kernel": "${kernel}"}},
		{Name: "execute running", Tool: "execute", Args: map[string]any{"kernel": "${kernel}",
			"code": "import time\nprint('started', flush=True)\ntime.sleep(120)", "timeout_s": 2},
			Save: map[string]string{"long": "execution_id"}, wantStatus: "running"},
		{Name: "execute queued", Tool: "execute", Args: map[string]any{"kernel": "${kernel}", "code": "print('never')", "timeout_s": 1},
			Save: map[string]string{"queued": "execution_id"}, wantStatus: "queued"},
		{Name: "cancel_execution", Tool: "cancel_execution", Args: map[string]any{"execution_id": "${queued}"}},
		{Name: "interrupt_kernel", Tool: "interrupt_kernel", Args: map[string]any{"kernel": "${kernel}"}},
		{Name: "get_execution interrupted", Tool: "get_execution", Args: map[string]any{"execution_id": "${long}", "wait_s": 50},
			wantStatus: "interrupted", wantText: "started"},
		{Name: "execute input", Tool: "execute", Args: map[string]any{"kernel": "${kernel}",
			"code": "v = input('name? ')\nprint('hello', v)", "allow_stdin": true, "timeout_s": 60},
			Save: map[string]string{"asked": "execution_id"}, wantStatus: "input_required", wantText: "name?"},
		{Name: "send_input", Tool: "send_input", Args: map[string]any{"execution_id": "${asked}", "value": "matrix", "wait_s": 50},
			wantStatus: "ok", wantText: "hello matrix"},
		{Name: "save_environment", Tool: "save_environment", Args: map[string]any{"kernel": "${kernel}", "name": "matrix-" + tag, "variables": []any{"a"}}},
		{Name: "list_checkpoints", Tool: "list_checkpoints", wantText: "matrix-" + tag},
		{Name: "restart_kernel", Tool: "restart_kernel", Args: map[string]any{"kernel": "${kernel}"}},
		{Name: "load_environment", Tool: "load_environment", Args: map[string]any{"kernel": "${kernel}", "name": "matrix-" + tag}},
		{Name: "execute after load", Tool: "execute", Args: map[string]any{"kernel": "${kernel}", "code": "print(a + 1)"}, wantStatus: "ok", wantText: "42"},
		{Name: "delete_checkpoint", Tool: "delete_checkpoint", Args: map[string]any{"name": "matrix-" + tag}},
		{Name: "create_notebook", Tool: "create_notebook", Args: map[string]any{"path": nb}, Save: map[string]string{"hash": "sha256"}},
		{Name: "insert_cell", Tool: "insert_cell", Args: map[string]any{"path": nb, "expected_hash": "${hash}", "source": "print(6 * 7)", "cell_id": "answer"}},
		{Name: "start_kernel notebook", Tool: "start_kernel", Args: map[string]any{"kernelspec": "python3", "notebook": nb},
			Save: map[string]string{"nbkernel": "kernel_id"}},
		{Name: "run_cell", Tool: "run_cell", Args: map[string]any{"path": nb, "cell": "answer"}, wantStatus: "ok", wantText: "42"},
		{Name: "read_notebook", Tool: "read_notebook", Args: map[string]any{"path": nb, "outputs": false}, wantText: "print(6 * 7)"},
		{Name: "share_kernel", Tool: "share_kernel", Args: map[string]any{"kernel": "${kernel}", "principal": "bob", "access": "read"}},
		{Name: "unknown kernel refused", Tool: "execute", Args: map[string]any{"kernel": "no-such-kernel", "code": "1"}, wantError: true, wantText: "list_kernels"},
		{Name: "shutdown_kernel notebook", Tool: "shutdown_kernel", Args: map[string]any{"kernel": "${nbkernel}"}},
		{Name: "shutdown_kernel", Tool: "shutdown_kernel", Args: map[string]any{"kernel": "${kernel}"}},
	}
}

// substitute replaces ${name} in v's strings with what saved holds.
func substitute(t testing.TB, v any, saved map[string]string) any {
	switch x := v.(type) {
	case string:
		return regexp.MustCompile(`\$\{([a-z_0-9]+)\}`).ReplaceAllStringFunc(x, func(m string) string {
			k := m[2 : len(m)-1]
			s, ok := saved[k]
			if !ok {
				t.Fatalf("a step uses %s, which no earlier step saved", m)
			}
			return s
		})
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = substitute(t, e, saved)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substitute(t, e, saved)
		}
		return out
	}
	return v
}

// runMatrixGo runs steps through an mcp-go client, as suite.mjs does
// through the TypeScript ones.
func runMatrixGo(t testing.TB, cl *client.Client, steps []matrixStep) []matrixResult {
	t.Helper()
	saved := map[string]string{}
	var out []matrixResult
	for _, st := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		r := matrixResult{Name: st.Name}
		if st.Read != "" {
			var req mcp.ReadResourceRequest
			req.Params.URI = substitute(t, st.Read, saved).(string)
			res, err := cl.ReadResource(asAdmin(ctx), req)
			cancel()
			if err != nil {
				t.Fatalf("step %s: resources/read %s: %v", st.Name, req.Params.URI, err)
			}
			for _, c := range res.Contents {
				switch x := c.(type) {
				case mcp.TextResourceContents:
					r.Contents = append(r.Contents, matrixResource{URI: x.URI, MIMEType: x.MIMEType, Size: len(x.Text)})
				case mcp.BlobResourceContents:
					r.Contents = append(r.Contents, matrixResource{URI: x.URI, MIMEType: x.MIMEType, Size: len(x.Blob)})
				}
			}
			out = append(out, r)
			continue
		}
		var req mcp.CallToolRequest
		req.Params.Name = st.Tool
		req.Params.Arguments = substitute(t, map[string]any(st.Args), saved)
		if st.Args == nil {
			req.Params.Arguments = map[string]any{}
		}
		res, err := cl.CallTool(asAdmin(ctx), req)
		cancel()
		if err != nil {
			t.Fatalf("step %s: tools/call %s failed as a protocol error: %v", st.Name, st.Tool, err)
		}
		r.IsError = res.IsError
		for _, c := range res.Content {
			switch x := c.(type) {
			case mcp.TextContent:
				r.Content = append(r.Content, matrixContent{Type: "text", Text: x.Text})
			case mcp.ResourceLink:
				r.Content = append(r.Content, matrixContent{Type: "resource_link", URI: x.URI, MIMEType: x.MIMEType})
			case mcp.ImageContent:
				r.Content = append(r.Content, matrixContent{Type: "image", MIMEType: x.MIMEType})
			default:
				r.Content = append(r.Content, matrixContent{Type: fmt.Sprintf("%T", c)})
			}
		}
		if res.StructuredContent != nil {
			b, _ := json.Marshal(res.StructuredContent)
			_ = json.Unmarshal(b, &r.Structured)
		}
		for k, key := range st.Save {
			v, _ := r.Structured[key].(string)
			if v == "" {
				t.Fatalf("step %s: no structuredContent.%s to save as %s: %s", st.Name, key, k, r.text())
			}
			saved[k] = v
		}
		for k, re := range st.SaveText {
			raw, _ := json.Marshal(r.Content)
			m := regexp.MustCompile(re).FindStringSubmatch(r.text() + "\n" + string(raw))
			if m == nil {
				t.Fatalf("step %s: nothing matches /%s/ to save as %s: %s", st.Name, re, k, raw)
			}
			saved[k] = m[len(m)-1]
		}
		out = append(out, r)
	}
	return out
}

// checkMatrixResults applies each step's expectations to one client's
// answers.
func checkMatrixResults(t testing.TB, cell string, steps []matrixStep, got []matrixResult) {
	t.Helper()
	if len(got) != len(steps) {
		t.Fatalf("%s: %d answers for %d steps", cell, len(got), len(steps))
	}
	for i, st := range steps {
		r := got[i]
		if r.IsError != st.wantError {
			t.Errorf("%s, step %s: isError=%v, want %v: %s", cell, st.Name, r.IsError, st.wantError, r.text())
			continue
		}
		if st.Read != "" {
			if len(r.Contents) == 0 || r.Contents[0].Size == 0 {
				t.Errorf("%s, step %s: resources/read returned nothing: %+v", cell, st.Name, r.Contents)
			}
			continue
		}
		if !st.wantError && r.Structured == nil {
			t.Errorf("%s, step %s: no structuredContent: %s", cell, st.Name, r.text())
		}
		if st.wantStatus != "" && r.Structured["status"] != st.wantStatus {
			t.Errorf("%s, step %s: status %v, want %s: %s", cell, st.Name, r.Structured["status"], st.wantStatus, r.text())
		}
		if st.wantText != "" && !strings.Contains(r.text(), st.wantText) {
			t.Errorf("%s, step %s: the reply lacks %q: %s", cell, st.Name, st.wantText, r.text())
		}
	}
}

// matrixCell is one client on one transport asking for one revision.
type matrixCell struct {
	name        string
	wantVersion string
	run         func(t *testing.T, steps []matrixStep) (version string, results []matrixResult)
}

// goClient opens an mcp-go client on tr: pinned to 2025-11-25 when legacy,
// otherwise as it comes (it probes server/discover and takes the newest).
func goClient(t testing.TB, tr transport.Interface, legacy bool) *client.Client {
	t.Helper()
	var opts []client.ClientOption
	if legacy {
		opts = append(opts, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	}
	cl := client.NewClient(tr, opts...)
	// NB: Start's context is the stdio server process's lifetime.
	if err := cl.Start(context.Background()); err != nil {
		t.Fatalf("start mcp-go client: %v", err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var init mcp.InitializeRequest
	init.Params.ClientInfo = mcp.Implementation{Name: "matrix", Version: "1"}
	if _, err := cl.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return cl
}

// matrixServers is what the cells connect to: the real binary (one server
// per stdio cell, each on its own data dir) and one in-process core
// serving its real HTTP handler on a real listener.
type matrixServers struct {
	bin, specDir, notebookRoot string
	url, token                 string
}

func newMatrixServers(t *testing.T) *matrixServers {
	t.Helper()
	m := &matrixServers{bin: buildBinary(t), specDir: testkit.KernelSpecDir(t), notebookRoot: t.TempDir()}
	t.Setenv("MCP_NOTEBOOK_ROOT", m.notebookRoot)
	dataDir := testkit.TempDataDir(t)
	addMatrixPrincipal(t, dataDir)
	cfg := testConfig(t, dataDir)
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	m.url = "http://127.0.0.1:" + serveOn(t, c) + pathMCP
	m.token = c.token
	return m
}

// addMatrixPrincipal adds the principal share_kernel shares with.
func addMatrixPrincipal(t testing.TB, dataDir string) {
	t.Helper()
	if out, err := principalCLI(t, dataDir, "add", "bob", "--scopes", "read"); err != nil {
		t.Fatalf("principal add bob: %v\n%s", err, out)
	}
}

// stdioEnv is the environment of a stdio server on a fresh data dir.
func (m *matrixServers) stdioEnv(t *testing.T) []string {
	t.Helper()
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	addMatrixPrincipal(t, dataDir)
	return append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+m.specDir, "MCP_NOTEBOOK_ROOT="+m.notebookRoot)
}

func (m *matrixServers) goStdio(legacy bool) func(t *testing.T, steps []matrixStep) (string, []matrixResult) {
	return func(t *testing.T, steps []matrixStep) (string, []matrixResult) {
		tr := transport.NewStdio(m.bin, m.stdioEnv(t), "stdio")
		cl := goClient(t, tr, legacy)
		return cl.ProtocolVersion(), runMatrixGo(t, cl, steps)
	}
}

func (m *matrixServers) goHTTP(legacy bool) func(t *testing.T, steps []matrixStep) (string, []matrixResult) {
	return func(t *testing.T, steps []matrixStep) (string, []matrixResult) {
		tr, err := transport.NewStreamableHTTP(m.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + m.token}))
		if err != nil {
			t.Fatal(err)
		}
		cl := goClient(t, tr, legacy)
		return cl.ProtocolVersion(), runMatrixGo(t, cl, steps)
	}
}

// nodeSuite runs suite.mjs with one TypeScript SDK ("1": 1.32.2, "2":
// 2.4.0) and returns the revision it negotiated and its answers.
func (m *matrixServers) nodeSuite(sdk, transportKind string, extraEnv ...string) func(t *testing.T, steps []matrixStep) (string, []matrixResult) {
	return func(t *testing.T, steps []matrixStep) (string, []matrixResult) {
		node := outsideSDKReady(t)
		outsideSDK2Ready(t)
		suite := filepath.Join(t.TempDir(), "steps.json")
		b, err := json.Marshal(steps)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(suite, b, 0o600); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "MCPJ_SUITE="+suite, "MCPJ_SDK="+sdk, "MCPJ_TRANSPORT="+transportKind)
		if transportKind == "stdio" {
			env = append(m.stdioEnv(t), "MCPJ_SUITE="+suite, "MCPJ_SDK="+sdk, "MCPJ_TRANSPORT=stdio", "MCPJ_COMMAND="+m.bin)
		} else {
			// NB: the token in the environment, not on the command line.
			env = append(env, "MCPJ_URL="+m.url, "MCPJ_TOKEN="+m.token)
		}
		var res struct {
			SDK             string         `json:"sdk"`
			ProtocolVersion string         `json:"protocol_version"`
			Steps           []matrixResult `json:"steps"`
		}
		testkit.RunNodeJSON(t, testkit.NodeCheck{Node: node, Dir: outsideSDK2Dir, Script: "suite.mjs",
			Env: append(env, extraEnv...), Timeout: 8 * time.Minute}, &res)
		if want := map[string]string{"1": "@modelcontextprotocol/sdk 1.32.2", "2": "@modelcontextprotocol/client 2.4.0"}[sdk]; res.SDK != want {
			t.Fatalf("suite.mjs ran %q, want %s", res.SDK, want)
		}
		t.Logf("%s negotiated %s", res.SDK, res.ProtocolVersion)
		return res.ProtocolVersion, res.Steps
	}
}

func lastChars(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestRevisionMatrix runs the whole tool suite on {2025-11-25,
// 2026-07-28} × {stdio, Streamable HTTP} × {mcp-go, TypeScript SDK 1.32.2,
// @modelcontextprotocol/client 2.4.0}, as a user's agent would call it;
// each cell must negotiate the revision it is meant to and get answers of
// the same shape as every other cell.
func TestRevisionMatrix(t *testing.T) {
	m := newMatrixServers(t)
	legacy, modern := mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728
	cells := []matrixCell{
		{"mcp-go/http/pinned-2025-11-25", legacy, m.goHTTP(true)},
		{"mcp-go/http/default", modern, m.goHTTP(false)},
		{"mcp-go/stdio/pinned-2025-11-25", legacy, m.goStdio(true)},
		{"mcp-go/stdio/default", modern, m.goStdio(false)},
		{"ts-sdk-1.32.2/http", legacy, m.nodeSuite("1", "http")},
		{"ts-sdk-1.32.2/stdio", legacy, m.nodeSuite("1", "stdio")},
		{"ts-client-2.4.0/http/auto", modern, m.nodeSuite("2", "http", "MCPJ_NEGOTIATION=auto")},
		{"ts-client-2.4.0/stdio/auto", modern, m.nodeSuite("2", "stdio", "MCPJ_NEGOTIATION=auto")},
		{"ts-client-2.4.0/http/legacy", legacy, m.nodeSuite("2", "http", "MCPJ_NEGOTIATION=legacy")},
	}
	shapes := map[string][]string{} // step -> shape per cell, in cell order
	texts := map[string][]string{}
	var ref string
	for i, cell := range cells {
		ok := t.Run(cell.name, func(t *testing.T) {
			steps := matrixSteps(fmt.Sprintf("c%d", i))
			version, results := cell.run(t, steps)
			if version != cell.wantVersion {
				t.Fatalf("negotiated %q, want %q (a client that fell back to another revision fails the matrix)", version, cell.wantVersion)
			}
			checkMatrixResults(t, cell.name, steps, results)
			for j, r := range results {
				shapes[steps[j].Name] = append(shapes[steps[j].Name], cell.name+": "+r.shape())
				texts[steps[j].Name] = append(texts[steps[j].Name], r.text())
			}
		})
		if ok && ref == "" {
			ref = cell.name
		}
	}
	// Same shape everywhere: compared with the first cell that passed.
	for step, byCell := range shapes {
		first := byCell[0][strings.Index(byCell[0], ": ")+2:]
		for i, s := range byCell[1:] {
			if got := s[strings.Index(s, ": ")+2:]; got != first {
				t.Errorf("step %s answers in another shape:\n  %s\n  %s\nfirst text:\n%s\nthis one:\n%s", step, byCell[0], s, texts[step][0], texts[step][i+1])
			}
		}
	}
}
