package mcpserver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

func startClient(t testing.TB, b Backend, opts Options) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(New(b, opts).MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c)
	return c
}

func initialize(t testing.TB, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
}

func call(t testing.TB, c *client.Client, name string, args any) *mcp.CallToolResult {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(asAdmin(context.Background()), req)
	if err != nil {
		t.Fatalf("%s: protocol error (the server should answer with isError): %v", name, err)
	}
	return res
}

func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func wantOK(t testing.TB, res *mcp.CallToolResult, contains ...string) string {
	t.Helper()
	txt := textOf(res)
	if res.IsError {
		t.Fatalf("unexpected isError: %s", txt)
	}
	for _, s := range contains {
		if !strings.Contains(txt, s) {
			t.Errorf("reply lacks %q:\n%s", s, txt)
		}
	}
	return txt
}

func wantError(t testing.TB, res *mcp.CallToolResult, contains ...string) {
	t.Helper()
	txt := textOf(res)
	if !res.IsError {
		t.Fatalf("want isError, got: %s", txt)
	}
	for _, s := range contains {
		if !strings.Contains(txt, s) {
			t.Errorf("error lacks %q:\n%s", s, txt)
		}
	}
}

// stillUp checks the server answers after an error.
func stillUp(t testing.TB, c *client.Client) {
	t.Helper()
	wantOK(t, call(t, c, "list_kernelspecs", nil), "python3")
}

func TestToolsListedWithAnnotations(t *testing.T) {
	c := startClient(t, newFakeBackend(), Options{})
	res, err := c.ListTools(asAdmin(context.Background()), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]mcp.Tool{}
	for _, tl := range res.Tools {
		got[tl.Name] = tl
	}
	for _, name := range []string{"list_kernelspecs", "start_kernel", "list_kernels", "interrupt_kernel",
		"restart_kernel", "shutdown_kernel", "execute", "get_execution", "list_executions",
		"cancel_execution", "send_input"} {
		if _, ok := got[name]; !ok {
			t.Errorf("tool %s missing", name)
		}
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(got["list_kernelspecs"].Annotations.ReadOnlyHint) || !isTrue(got["list_kernels"].Annotations.ReadOnlyHint) {
		t.Error("list tools should be read-only")
	}
	if !isTrue(got["restart_kernel"].Annotations.DestructiveHint) || !isTrue(got["shutdown_kernel"].Annotations.DestructiveHint) {
		t.Error("restart/shutdown should be destructive")
	}
	req := got["execute"].InputSchema.Required
	if strings.Join(req, ",") != "kernel,code" {
		t.Errorf("execute required = %v", req)
	}
}

func TestMalformedArguments(t *testing.T) {
	c := startClient(t, newFakeBackend(), Options{})
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"execute", map[string]any{"kernel": "k1"}, `"code"`},
		{"execute", map[string]any{"kernel": "k1", "code": 42}, `"code" must be a string`},
		{"execute", map[string]any{"code": "1"}, `"kernel"`},
		{"execute", map[string]any{"kernel": "k1", "code": "1", "timeout_s": "soon"}, `"timeout_s" must be a number`},
		{"execute", map[string]any{"kernel": "k1", "code": "1", "allow_stdin": "yes"}, `"allow_stdin" must be true or false`},
		{"get_execution", map[string]any{}, `"execution_id"`},
		{"get_execution", map[string]any{"execution_id": "x", "since": -1}, `"since"`},
		{"get_execution", map[string]any{"execution_id": "x", "wait_s": 1000}, "wait_s"},
		{"send_input", map[string]any{"execution_id": "x"}, `"value"`},
		{"interrupt_kernel", map[string]any{"kernel": []any{"k1"}}, `"kernel" must be a string`},
		{"list_executions", map[string]any{"status": "finished"}, "unknown status"},
	} {
		t.Run(tc.tool+"/"+tc.want, func(t *testing.T) {
			wantError(t, call(t, c, tc.tool, tc.args), tc.want)
			stillUp(t, c)
		})
	}
}

func TestUnknownIDs(t *testing.T) {
	c := startClient(t, newFakeBackend(), Options{})
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"execute", map[string]any{"kernel": "nope", "code": "1"}},
		{"interrupt_kernel", map[string]any{"kernel": "nope"}},
		{"restart_kernel", map[string]any{"kernel": "nope"}},
		{"shutdown_kernel", map[string]any{"kernel": "nope"}},
		{"list_executions", map[string]any{"kernel": "nope"}},
		{"get_execution", map[string]any{"execution_id": "nope"}},
		{"cancel_execution", map[string]any{"execution_id": "nope"}},
		{"send_input", map[string]any{"execution_id": "nope", "value": ""}},
		{"start_kernel", map[string]any{"kernelspec": "cobol"}},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			wantError(t, call(t, c, tc.tool, tc.args))
			stillUp(t, c)
		})
	}
}

func TestExecuteRejectsBadTimeoutAndHugeCode(t *testing.T) {
	b := newFakeBackend()
	c := startClient(t, b, Options{})
	for _, ts := range []float64{0, -1, 86400} {
		wantError(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "1", "timeout_s": ts}),
			`"timeout_s" must be more than 0 and at most 600 seconds`)
	}
	huge := strings.Repeat("x = 1\n", 10<<20/6)
	wantError(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": huge}),
		"limit of 1048576 bytes", "Split it")
	stillUp(t, c)
	if len(b.order) != 0 {
		t.Errorf("rejected calls submitted %d executions", len(b.order))
	}
}

func TestExecuteFinishes(t *testing.T) {
	c := startClient(t, newFakeBackend(), Options{})
	res := call(t, c, "execute", map[string]any{"kernel": "nb.ipynb", "code": "print('hi')"})
	wantOK(t, res, "status: ok", "print('hi')", "execution_count: 1")
	sc, _ := res.StructuredContent.(map[string]any)
	if sc["status"] != "ok" || sc["execution_id"] == "" {
		t.Errorf("structured content = %v", sc)
	}
	// Idempotency: the same execution_id returns the same execution.
	r1 := call(t, c, "execute", map[string]any{"kernel": "k1", "code": "a", "execution_id": "mine"})
	r2 := call(t, c, "execute", map[string]any{"kernel": "k1", "code": "a", "execution_id": "mine"})
	wantOK(t, r1, "execution_id: mine")
	wantOK(t, r2, "execution_id: mine")
}

func TestExecuteOutlivesTimeoutThenGetExecution(t *testing.T) {
	b := newFakeBackend()
	b.onSubmit = func(b *fakeBackend, id, code string) {
		b.emit(id, "stream", map[string]any{"name": "stdout", "text": "partial\n"})
	}
	c := startClient(t, b, Options{})
	res := call(t, c, "execute", map[string]any{"kernel": "k1", "code": "slow()", "timeout_s": 0.2})
	txt := wantOK(t, res, "status: running", "execution_id: x1", "partial", "get_execution", "cursor: ")
	if strings.Contains(txt, "finished") {
		t.Errorf("running reply: %s", txt)
	}
	if got := b.execs["x1"].x.Status; got != queue.StatusRunning {
		t.Fatalf("a timeout changed the execution: %s", got)
	}

	timer := time.AfterFunc(200*time.Millisecond, func() {
		b.emit("x1", "stream", map[string]any{"name": "stdout", "text": "done\n"})
		b.emit("x1", "execute_result", map[string]any{"data": map[string]any{"text/plain": "42"}, "execution_count": 1})
		b.finish("x1", queue.StatusOK)
	})
	defer timer.Stop()
	start := time.Now()
	res = call(t, c, "get_execution", map[string]any{"execution_id": "x1", "wait_s": 30})
	wantOK(t, res, "status: ok", "partial\ndone\n", "Out[1]: 42")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("get_execution took %v: it should wake on the change, not the timeout", d)
	}
	// since: only newer outputs.
	sc := res.StructuredContent.(map[string]any)
	cursor := sc["cursor"]
	res = call(t, c, "get_execution", map[string]any{"execution_id": "x1", "since": cursor})
	if txt := wantOK(t, res, "status: ok"); strings.Contains(txt, "partial") {
		t.Errorf("since %v still shows old output: %s", cursor, txt)
	}
}

func TestExecuteSurvivesClientGoingAway(t *testing.T) {
	b := newFakeBackend()
	b.onSubmit = func(*fakeBackend, string, string) {}
	c := startClient(t, b, Options{})
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 200*time.Millisecond)
	defer cancel()
	var req mcp.CallToolRequest
	req.Params.Name = "execute"
	req.Params.Arguments = map[string]any{"kernel": "k1", "code": "slow()", "timeout_s": 60}
	if _, err := c.CallTool(ctx, req); err == nil {
		t.Fatal("want the call to end with the caller's context")
	}
	wantOK(t, call(t, c, "get_execution", map[string]any{"execution_id": "x1"}), "status: running")
	b.finish("x1", queue.StatusOK)
	wantOK(t, call(t, c, "get_execution", map[string]any{"execution_id": "x1"}), "status: ok")
}

func TestExecuteSendsProgress(t *testing.T) {
	b := newFakeBackend()
	b.onSubmit = func(b *fakeBackend, id, code string) {
		b.emit(id, "stream", map[string]any{"name": "stdout", "text": "step 1\n"})
		time.AfterFunc(100*time.Millisecond, func() {
			b.emit(id, "stream", map[string]any{"name": "stdout", "text": "step 2\n"})
			b.finish(id, queue.StatusOK)
		})
	}
	s := New(b, Options{})
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var mu sync.Mutex
	var msgs []string
	got := make(chan struct{}, 16)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != "notifications/progress" || n.Params.AdditionalFields["progressToken"] != "tok" {
			return
		}
		mu.Lock()
		msgs = append(msgs, n.Params.AdditionalFields["message"].(string))
		mu.Unlock()
		got <- struct{}{}
	})
	initialize(t, c)

	var req mcp.CallToolRequest
	req.Params.Name = "execute"
	req.Params.Arguments = map[string]any{"kernel": "k1", "code": "run()"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "tok"}
	res, err := c.CallTool(asAdmin(context.Background()), req)
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, res, "step 1\nstep 2\n")

	deadline := time.After(5 * time.Second)
	for {
		mu.Lock()
		all := strings.Join(msgs, "")
		mu.Unlock()
		if strings.Contains(all, "step 1") && strings.Contains(all, "step 2") {
			return
		}
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("progress notifications: %q", all)
		}
	}
}

func TestInputRequiredAndSendInput(t *testing.T) {
	b := newFakeBackend()
	b.onSubmit = func(b *fakeBackend, id, code string) { b.setStatus(id, queue.StatusInputRequired, "Name? ") }
	c := startClient(t, b, Options{})
	start := time.Now()
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "input('Name? ')", "allow_stdin": true}),
		"status: input_required", `"Name? "`, "send_input")
	if time.Since(start) > 10*time.Second {
		t.Error("execute waited for its timeout although only the agent can unblock the execution")
	}
	wantError(t, call(t, c, "cancel_execution", map[string]any{"execution_id": "x1"}), "interrupt_kernel")
	wantOK(t, call(t, c, "send_input", map[string]any{"execution_id": "x1", "value": "Bob"}),
		`Answered prompt "Name? "`, "status: running")
	if len(b.inputs) != 1 || b.inputs[0] != "Bob" {
		t.Errorf("inputs = %v", b.inputs)
	}
	wantError(t, call(t, c, "send_input", map[string]any{"execution_id": "x1", "value": "again"}), "not waiting for input")
	b.finish("x1", queue.StatusOK)
	wantError(t, call(t, c, "cancel_execution", map[string]any{"execution_id": "x1"}), "already finished")
}

func TestCancelQueued(t *testing.T) {
	b := newFakeBackend()
	b.onSubmit = func(b *fakeBackend, id, code string) { b.setStatus(id, queue.StatusQueued, "") }
	c := startClient(t, b, Options{})
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "1", "timeout_s": 0.05}), "status: queued", "get_execution")
	wantOK(t, call(t, c, "cancel_execution", map[string]any{"execution_id": "x1"}), "cancelled")
	wantOK(t, call(t, c, "list_executions", map[string]any{"kernel": "k1", "status": "cancelled"}), `"execution_id": "x1"`)
}

// TestCancelOfHandedOverWithLaggingModelSaysRequested: the read model
// still shows the execution queued, not yet behind the running one, but
// the backend had handed it to the kernel: the reply must not promise it
// will not run.
func TestCancelOfHandedOverWithLaggingModelSaysRequested(t *testing.T) {
	b := newFakeBackend()
	b.onSubmit = func(b *fakeBackend, id, code string) { b.setStatus(id, queue.StatusQueued, "") }
	b.handedToKernel = map[string]bool{"x1": true}
	c := startClient(t, b, Options{})
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "code": "1", "timeout_s": 0.05}), "status: queued")
	res := call(t, c, "cancel_execution", map[string]any{"execution_id": "x1"})
	wantOK(t, res, "cancel_requested", "get_execution")
	if text := textOf(res); strings.Contains(text, "will not run") {
		t.Fatalf("a cancel that only asked the kernel to abort promised the execution will not run: %s", text)
	}
}

func TestKernelTools(t *testing.T) {
	c := startClient(t, newFakeBackend(), Options{})
	wantOK(t, call(t, c, "start_kernel", map[string]any{"label": "scratch"}), `"kernelspec": "python3"`, `"label": "scratch"`)
	txt := wantOK(t, call(t, c, "list_kernels", map[string]any{"label": "scratch"}), `"label": "scratch"`, `"queue_depth"`)
	if strings.Contains(txt, `"kernel_id": "k1"`) {
		t.Errorf("label filter ignored: %s", txt)
	}
	wantOK(t, call(t, c, "interrupt_kernel", map[string]any{"kernel": "nb.ipynb"}), "kernel k1 interrupted")
	wantOK(t, call(t, c, "restart_kernel", map[string]any{"kernel": "k1"}), "variables are gone")
	wantOK(t, call(t, c, "shutdown_kernel", map[string]any{"kernel": "k1"}), "shut down")
}

func TestLongOutputLinksAsset(t *testing.T) {
	b := newFakeBackend()
	long := strings.Repeat("0123456789", 1000)
	b.onSubmit = func(b *fakeBackend, id, code string) {
		b.emit(id, "stream", map[string]any{"name": "stdout", "text": long})
		b.finish(id, queue.StatusOK)
	}
	c := startClient(t, b, Options{OutputBudget: 100, AssetDir: t.TempDir()})
	res := call(t, c, "execute", map[string]any{"kernel": "k1", "code": "print(long)"})
	wantOK(t, res, "characters omitted, full text at asset://")
	var uri string
	for _, ct := range res.Content {
		if l, ok := ct.(mcp.ResourceLink); ok {
			uri = l.URI
		}
	}
	if uri == "" {
		t.Fatalf("no resource link in %+v", res.Content)
	}
	var rr mcp.ReadResourceRequest
	rr.Params.URI = uri
	got, err := c.ReadResource(asAdmin(context.Background()), rr)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := got.Contents[0].(mcp.TextResourceContents); !ok || tc.Text != long {
		t.Errorf("asset content differs: %T", got.Contents[0])
	}
	rr.Params.URI = "asset://../../etc/passwd"
	if _, err := c.ReadResource(asAdmin(context.Background()), rr); err == nil {
		t.Error("path traversal through asset:// was served")
	}
	stillUp(t, c)
}
