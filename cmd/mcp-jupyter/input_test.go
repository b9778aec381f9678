package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// stdinUser is an MCP client's user answering input requests: answer is
// called with each question (numbered from 0) and returns what the user does.
type stdinUser struct {
	mu     sync.Mutex
	asked  []mcp.ElicitationParams
	answer func(n int, p mcp.ElicitationParams) (*mcp.ElicitationResult, error)
}

func (u *stdinUser) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	u.mu.Lock()
	n := len(u.asked)
	u.asked = append(u.asked, req.Params)
	u.mu.Unlock()
	return u.answer(n, req.Params)
}

func (u *stdinUser) questions() []mcp.ElicitationParams {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]mcp.ElicitationParams(nil), u.asked...)
}

// types answers every question with the next of lines (accept).
func types(lines ...string) func(int, mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
	return func(n int, _ mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
		if n >= len(lines) {
			return nil, fmt.Errorf("asked %d times, the user had %d answers", n+1, len(lines))
		}
		return accept(lines[n]), nil
	}
}

func accept(line string) *mcp.ElicitationResult {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"value": line}}}
}

// startVersioned starts c and negotiates version ("" for the client's
// newest), failing if the client ended on another one.
func startVersioned(t testing.TB, c *client.Client, version string) *client.Client {
	t.Helper()
	// NB: Start gets a context that outlives this function: the stdio
	// transport ties its subprocess to it.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start client: %v", err)
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "input-test", Version: "1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	want := version
	if want == "" {
		want = mcp.LATEST_PROTOCOL_VERSION
	}
	if got := c.ProtocolVersion(); got != want {
		t.Fatalf("negotiated %q, want %q: the test would not exercise that revision", got, want)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// inProcessAs is an in-process mcp-go client on version ("" for the
// newest) whose user is u (nil: a client without elicitation).
func inProcessAs(t testing.TB, c *core, version string, u *stdinUser) *client.Client {
	t.Helper()
	var opts []client.ClientOption
	if u != nil {
		opts = append(opts, client.WithElicitationHandler(u))
	}
	if version != "" {
		opts = append(opts, client.WithProtocolVersion(version))
	}
	cl, err := client.NewInProcessClientWithOptions(c.mcp.MCP(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return startVersioned(t, cl, version)
}

// callRaw calls a tool as the admin and returns the whole result.
func callRaw(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := c.CallTool(asAdmin(ctx), req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var text []string
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text = append(text, tc.Text)
		}
	}
	return strings.Join(text, "\n")
}

func resultStatus(res *mcp.CallToolResult) string {
	sc, _ := res.StructuredContent.(map[string]any)
	s, _ := sc["status"].(string)
	return s
}

// TestInputAnsweredThroughInputRequests: on 2026-07-28 an execute whose
// code calls input() twice is answered through two input requests (the
// prompt quoted in the server's frame) and ends with what the
// code printed from both answers, in one tools/call as the agent sees it.
func TestInputAnsweredThroughInputRequests(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	u := &stdinUser{answer: types("Ada", "Lovelace")}
	cl := inProcessAs(t, c, "", u)

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "print('before')\nfirst = input('First name: ')\nlast = input('Last name: ')\nprint('hello', first, last)"})
	text := resultText(res)
	if res.IsError || resultStatus(res) != "ok" || !strings.Contains(text, "hello Ada Lovelace") {
		t.Fatalf("execute answered through input requests: %s %v\n%s", resultStatus(res), res.IsError, text)
	}
	if !strings.Contains(text, "before") {
		t.Fatalf("the output printed before the first prompt is missing from the final reply:\n%s", text)
	}
	qs := u.questions()
	if len(qs) != 2 {
		t.Fatalf("asked %d questions, want 2: %+v", len(qs), qs)
	}
	// The retries carried the execution: the code ran once.
	if sc, text := callTool(t, cl, "list_executions", map[string]any{"kernel": k}); len(sc["executions"].([]any)) != 1 {
		t.Fatalf("the code was submitted again by a retry: %s", text)
	}
	for i, want := range []string{"First name: ", "Last name: "} {
		if askedPrompt(qs[i].Message) != want || !strings.HasPrefix(qs[i].Message, "Code running in execution ") {
			t.Fatalf("question %d message %q, want the server's frame around the prompt %q", i, qs[i].Message, want)
		}
		field := schemaField(t, qs[i].RequestedSchema, "value")
		if field["type"] != "string" || !strings.HasPrefix(fmt.Sprint(field["title"]), "Input for execution ") {
			t.Fatalf("question %d field: %v", i, field)
		}
		if qs[i].Meta != nil && qs[i].Meta.AdditionalFields[mcpserver.SensitiveMetaKey] == true {
			t.Fatalf("question %d of input() is marked sensitive", i)
		}
	}
}

// TestGetExecutionAsksForInput: an execute that replied "running" is
// followed with get_execution, which finds the code in input() and asks;
// the answer goes to the kernel and get_execution's wait_s carries the
// retry to the end.
func TestGetExecutionAsksForInput(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	u := &stdinUser{answer: types("later")}
	cl := inProcessAs(t, c, "", u)
	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true, "timeout_s": 0.2,
		"code": "import time\ntime.sleep(2)\nv = input('Later: ')\nprint('got', v)"})
	sc, _ := res.StructuredContent.(map[string]any)
	id, _ := sc["execution_id"].(string)
	if sc["status"] != "running" || len(u.questions()) != 0 {
		t.Fatalf("execute within 0.2 s: want running and nothing asked yet: %v %d", sc, len(u.questions()))
	}
	res = callRaw(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
	if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "got later") {
		t.Fatalf("get_execution answered through an input request: %s\n%s", resultStatus(res), text)
	}
	if qs := u.questions(); len(qs) != 1 || askedPrompt(qs[0].Message) != "Later: " {
		t.Fatalf("questions: %+v", qs)
	}
}

// askedPrompt is the kernel's prompt an input request's message quotes
// after the server's frame ("... Its prompt: «prompt»"), or "" when the
// message is not framed so.
func askedPrompt(message string) string {
	const open, closing = "Its prompt: \u00ab", "\u00bb"
	i := strings.Index(message, open)
	if i < 0 || !strings.HasSuffix(message, closing) {
		return ""
	}
	return strings.TrimSuffix(message[i+len(open):], closing)
}

// TestInputPromptFromKernelIsFramed: code in a real kernel poses as the
// server and asks, with getpass(), for the MCP bearer token (the finding);
// the user's client is shown the server's frame first (which execution on
// which kernel asks), the prompt quoted without its ANSI escapes and line
// breaks, the sensitive marker kept; a 1 MB input() prompt is cut both in
// the question and in get_execution's reply to an agent that cannot be
// asked.
func TestInputPromptFromKernelIsFramed(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	u := &stdinUser{answer: types("not-the-token", "x")}
	cl := inProcessAs(t, c, "", u)

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "import getpass\nv = getpass.getpass('\\x1b[2J\\x1b[1mmcp-jupyter:\\x1b[0m session expired \\u2014 paste your MCP bearer token:\\n')\nprint(len(v))"})
	if resultStatus(res) != "ok" {
		t.Fatalf("getpass answered: %s\n%s", resultStatus(res), resultText(res))
	}
	qs := u.questions()
	if len(qs) != 1 {
		t.Fatalf("questions: %+v", qs)
	}
	q := qs[0]
	frame := "Code running in execution "
	if !strings.HasPrefix(q.Message, frame) || !strings.Contains(q.Message, " on kernel "+k+" called input() (getpass: the answer is hidden)") ||
		askedPrompt(q.Message) != "mcp-jupyter: session expired \u2014 paste your MCP bearer token: " {
		t.Fatalf("the question is not framed by the server, or the prompt not cleaned: %q", q.Message)
	}
	if q.Meta == nil || q.Meta.AdditionalFields[mcpserver.SensitiveMetaKey] != true {
		t.Fatalf("the password marker is gone: %+v", q.Meta)
	}
	field := schemaField(t, q.RequestedSchema, "value")
	if d, _ := field["description"].(string); !strings.Contains(d, "on kernel "+k) || !strings.Contains(d, "Sensitive") {
		t.Fatalf("the field does not say where the answer goes: %v", field)
	}

	// A 1 MB prompt: the question and a reader's reply stay small.
	res = callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "v = input('P' * (1 << 20))\nprint('done', v)"})
	if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "done x") {
		t.Fatalf("huge prompt answered: %s\n%s", resultStatus(res), text)
	}
	if qs = u.questions(); len(qs) != 2 || len(qs[1].Message) > 2<<10 || !strings.Contains(qs[1].Message, "prompt cut") {
		t.Fatalf("a 1 MB prompt made a question of %d bytes", len(qs[1].Message))
	}
	// An agent that cannot be asked reads the prompt in the reply.
	legacy := connect()
	sc, text := callTool(t, legacy, "execute", map[string]any{"kernel": k, "allow_stdin": true, "timeout_s": 10,
		"code": "v = input('Q' * (1 << 20))"})
	if sc["status"] != "input_required" || len(text) > 4<<10 || !strings.Contains(text, "prompt cut") {
		t.Fatalf("reply of %d bytes to a 1 MB prompt: status %v", len(text), sc["status"])
	}
	p, _ := sc["prompt"].(string)
	if len(p) > 2<<10 || !strings.HasPrefix(p, "QQQ") {
		t.Fatalf("structured prompt of %d bytes", len(p))
	}
	if _, text := callTool(t, legacy, "send_input", map[string]any{"execution_id": sc["execution_id"], "value": "y", "wait_s": 10}); len(text) > 4<<10 {
		t.Fatalf("send_input reply of %d bytes", len(text))
	}
}

// schemaField returns the property name of a requested schema.
func schemaField(t testing.TB, schema any, name string) map[string]any {
	t.Helper()
	b, _ := json.Marshal(schema)
	var s struct {
		Type       string                    `json:"type"`
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Type != "object" {
		t.Fatalf("requested schema %s: %v", b, err)
	}
	if len(s.Required) != 1 || s.Required[0] != name {
		t.Fatalf("requested schema %s: want %q required", b, name)
	}
	return s.Properties[name]
}

// TestPasswordInputIsSensitiveAndNeverRecorded: a getpass() prompt is
// asked with the sensitive marker, and the secret reaches the kernel but
// no event of the log and not the reply.
func TestPasswordInputIsSensitiveAndNeverRecorded(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	const secret = "s3cr3t-Zebra-42"
	u := &stdinUser{answer: types(secret)}
	cl := inProcessAs(t, c, "", u)

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "import getpass\npw = getpass.getpass('Password: ')\nprint('reversed', pw[::-1])"})
	text := resultText(res)
	if resultStatus(res) != "ok" || !strings.Contains(text, "reversed "+reverse(secret)) {
		t.Fatalf("password answered: %s\n%s", resultStatus(res), text)
	}
	qs := u.questions()
	if len(qs) != 1 || qs[0].Meta == nil || qs[0].Meta.AdditionalFields[mcpserver.SensitiveMetaKey] != true {
		t.Fatalf("the password question is not marked %s: %+v", mcpserver.SensitiveMetaKey, qs)
	}
	if d, _ := schemaField(t, qs[0].RequestedSchema, "value")["description"].(string); !strings.Contains(d, "Sensitive") {
		t.Fatalf("the password field's description does not say it is sensitive: %q", d)
	}
	if strings.Contains(text, secret) {
		t.Fatalf("the secret is in the reply:\n%s", text)
	}
	seen := 0
	if err := c.log.Read(context.Background(), 0, 0, func(e events.Event) error {
		seen++
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), secret) {
			t.Errorf("event %d (%s) holds the secret: %s", e.Seq, e.Type, b)
		}
		return nil
	}); err != nil || seen == 0 {
		t.Fatalf("read the log: %v (%d events)", err, seen)
	}
}

// TestInputLegacyClientWithElicitation: a 2025-11-25 client that declared
// elicitation is asked through mcp-go's bridge (elicitation/create), and
// the answer reaches the kernel.
func TestInputLegacyClientWithElicitation(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	t.Run("in-process", func(t *testing.T) {
		u := &stdinUser{answer: types("42")}
		legacyElicitation(t, inProcessAs(t, c, mcp.ProtocolVersion20251125, u), u, k)
	})
	t.Run("http", func(t *testing.T) {
		port := serveOn(t, c)
		token, err := os.ReadFile(filepath.Join(c.cfg.DataDir, mcpserver.TokenFile))
		if err != nil {
			t.Fatal(err)
		}
		hc, err := transport.NewStreamableHTTP("http://127.0.0.1:"+port+pathMCP,
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}))
		if err != nil {
			t.Fatal(err)
		}
		u := &stdinUser{answer: types("42")}
		cl := client.NewClient(hc, client.WithElicitationHandler(u), client.WithProtocolVersion(mcp.ProtocolVersion20251125))
		legacyElicitation(t, startVersioned(t, cl, mcp.ProtocolVersion20251125), u, k)
	})
}

func legacyElicitation(t *testing.T, cl *client.Client, u *stdinUser, k string) {

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "n = int(input('How many? '))\nprint('twice', 2 * n)"})
	if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "twice 84") {
		t.Fatalf("legacy client with elicitation: %s\n%s", resultStatus(res), text)
	}
	if qs := u.questions(); len(qs) != 1 || askedPrompt(qs[0].Message) != "How many? " {
		t.Fatalf("questions through the bridge: %+v", qs)
	}
}

// TestInputClientWithoutElicitation: a client without elicitation, on
// 2025-11-25 or on 2026-07-28 (whose requests declare no elicitation
// capability), gets the reply it always got (input_required, the prompt,
// send_input), and send_input still answers. Asked anyway, mcp-go's
// modern client failed the whole call ("no elicitation handler configured").
func TestInputClientWithoutElicitation(t *testing.T) {
	for _, version := range []string{mcp.ProtocolVersion20251125, ""} {
		t.Run("version="+version, func(t *testing.T) { inputWithoutElicitation(t, version) })
	}
}

func inputWithoutElicitation(t *testing.T, version string) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	cl := inProcessAs(t, c, version, nil)

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "word = input('Word: ')\nprint('got', word)"})
	sc, _ := res.StructuredContent.(map[string]any)
	if res.NeedsInput() || sc["status"] != "input_required" || sc["prompt"] != "Word: " ||
		!strings.Contains(resultText(res), "send_input") {
		t.Fatalf("legacy reply without elicitation: %+v\n%s", sc, resultText(res))
	}
	id, _ := sc["execution_id"].(string)
	res = callRaw(t, cl, "get_execution", map[string]any{"execution_id": id})
	if res.NeedsInput() || resultStatus(res) != "input_required" {
		t.Fatalf("get_execution for a client without elicitation: %s", resultText(res))
	}
	res = callRaw(t, cl, "send_input", map[string]any{"execution_id": id, "value": "kiwi", "wait_s": 30})
	if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "got kiwi") {
		t.Fatalf("send_input: %s", text)
	}
}

// TestInputDeclinedSendsNothing: a declined input request sends nothing:
// the reply shows the execution still waiting and says how to answer
// later; get_execution asks again, and the answer then given lands.
func TestInputDeclinedSendsNothing(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	u := &stdinUser{answer: func(n int, _ mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
		if n == 0 {
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
		}
		return accept("later"), nil
	}}
	cl := inProcessAs(t, c, "", u)

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "v = input('Value: ')\nprint('value is', v)"})
	text := resultText(res)
	sc, _ := res.StructuredContent.(map[string]any)
	if res.NeedsInput() || sc["status"] != "input_required" || !strings.Contains(text, "declined: nothing was sent") ||
		!strings.Contains(text, "send_input") || !strings.Contains(text, "interrupt_kernel") {
		t.Fatalf("declined: %+v\n%s", sc, text)
	}
	id, _ := sc["execution_id"].(string)
	res = callRaw(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
	if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "value is later") {
		t.Fatalf("get_execution asked again and answered: %s\n%s", resultStatus(res), text)
	}
	if n := len(u.questions()); n != 2 {
		t.Fatalf("asked %d times, want 2 (declined, then answered)", n)
	}
}

// TestInputAnswerToAnOlderPromptIsNotSent: while the user is asked the
// first prompt, someone answers it with send_input and the code moves on
// to a second prompt; the user's answer (meant for the first) is not sent
// to the second: the second is asked, and its answer lands.
func TestInputAnswerToAnOlderPromptIsNotSent(t *testing.T) {
	c, connect := inProcess(t)
	other := connect()
	k := startKernelTool(t, other)
	var id string
	u := &stdinUser{}
	u.answer = func(n int, p mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
		if n == 0 {
			// Another agent answers the first prompt meanwhile.
			xs, text := callTool(t, other, "list_executions", map[string]any{"kernel": k, "status": "input_required"})
			rows, _ := xs["executions"].([]any)
			if len(rows) != 1 {
				return nil, fmt.Errorf("executions waiting: %s", text)
			}
			id, _ = rows[0].(map[string]any)["execution_id"].(string)
			if _, text := callTool(t, other, "send_input", map[string]any{"execution_id": id, "value": "first-by-other"}); strings.HasPrefix(text, "ERROR") {
				return nil, fmt.Errorf("send_input: %s", text)
			}
			if err := waitInputStatus(c, id, "input_required", "Second: "); err != nil {
				return nil, err
			}
			return accept("stale"), nil
		}
		if askedPrompt(p.Message) != "Second: " {
			return nil, fmt.Errorf("question %d is %q, want the second prompt", n, p.Message)
		}
		return accept("second-by-user"), nil
	}
	cl := inProcessAs(t, c, "", u)
	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "a = input('First: ')\nb = input('Second: ')\nprint('got', repr(a), repr(b))"})
	text := resultText(res)
	if resultStatus(res) != "ok" || !strings.Contains(text, "got 'first-by-other' 'second-by-user'") || strings.Contains(text, "stale") {
		t.Fatalf("an answer to an older prompt went to a newer one, or the newer was not asked: %s\n%s", resultStatus(res), text)
	}
}

// waitInputStatus waits until execution id has status and prompt in the read model.
func waitInputStatus(c *core, id, status, prompt string) error {
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 60*time.Second)
	defer cancel()
	for {
		v, err := c.back.Execution(ctx, id, ^uint64(0))
		if err != nil {
			return err
		}
		if string(v.Execution.Status) == status && v.Execution.Prompt == prompt {
			return nil
		}
		select {
		case <-v.Changed:
		case <-ctx.Done():
			return fmt.Errorf("execution %s is %s %q, want %s %q", id, v.Execution.Status, v.Execution.Prompt, status, prompt)
		}
	}
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// startServerAt runs the real binary's HTTP server on addr (a restart
// keeps the address the client knows).
func startServerAt(t testing.TB, bin string, env []string, addr string, args ...string) *server {
	t.Helper()
	s := &server{addr: addr, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr, "--log-format", "json"}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// TestInputAnsweredAcrossServerRestart: the real binary over HTTP on
// 2026-07-28; mcp-go's client gets the input request of an execution
// blocked in input(), and while its user is "thinking" the server is
// stopped (SIGTERM, or kill -9) and started again on the same address. The
// client's retry (same arguments, the answer, the request state, sealed
// with the key derived from the token) lands in the same kernel, still
// blocked in input(): the kernel prints the value. The value is in no log
// line of either server.
func TestInputAnsweredAcrossServerRestart(t *testing.T) {
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) { inputAcrossRestart(t, bin, sig) })
	}
}

func inputAcrossRestart(t *testing.T, bin string, sig syscall.Signal) {
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + testkit.KernelSpecDir(t)}
	addr := freeAddr(t)
	servers := []*server{startServerAt(t, bin, env, addr)}
	waitReady(t, addr, 90*time.Second)
	admin := httpMCP(t, addr, dataDir)
	k := startKernelTool(t, admin)

	const value = "Grace-Hopper-1906"
	u := &stdinUser{}
	u.answer = func(n int, p mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
		if n > 0 {
			return nil, fmt.Errorf("asked again (%q) after the restart", p.Message)
		}
		old := servers[0]
		if err := old.cmd.Process.Signal(sig); err != nil {
			return nil, err
		}
		select {
		case <-old.done:
		case <-time.After(60 * time.Second):
			return nil, fmt.Errorf("the server did not stop on %s", sig)
		}
		servers = append(servers, startServerAt(t, bin, env, addr))
		waitReady(t, addr, 90*time.Second)
		return accept(value), nil
	}
	token, err := os.ReadFile(filepath.Join(dataDir, mcpserver.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	hc, err := transport.NewStreamableHTTP("http://"+addr+pathMCP,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(token))}))
	if err != nil {
		t.Fatal(err)
	}
	cl := startVersioned(t, client.NewClient(hc, client.WithElicitationHandler(u)), "")

	res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true, "timeout_s": 60,
		"code": "import os\nprint('pid', os.getpid())\nanswer = input('Your name: ')\nprint('kernel got', answer[::-1])"})
	text := resultText(res)
	if res.IsError || resultStatus(res) != "ok" || !strings.Contains(text, "kernel got "+reverse(value)) {
		t.Fatalf("the answer after a restart (%s) did not reach the kernel: %s\n%s\nnew server log:\n%s",
			sig, resultStatus(res), text, servers[len(servers)-1].Logs())
	}
	if qs := u.questions(); len(qs) != 1 || askedPrompt(qs[0].Message) != "Your name: " {
		t.Fatalf("questions: %+v", qs)
	}
	for i, s := range servers {
		if strings.Contains(s.Logs(), value) {
			t.Fatalf("server %d logged the answer", i)
		}
	}
}

// TestInputOutsideTSClient: the official TypeScript client of 2026-07-28
// (@modelcontextprotocol/client, testkit/outside/mcpsdk2/input.mjs)
// against the real binary over HTTP: input() and getpass() answered by
// its auto-fulfilment (the password question marked sensitive), a manual
// input_required and retry with the server killed (kill -9) and started
// again between the two, and a client without elicitation getting the
// older reply.
func TestInputOutsideTSClient(t *testing.T) {
	node := outsideSDK2Ready(t)
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + testkit.KernelSpecDir(t)}
	addr := freeAddr(t)
	srv := startServerAt(t, bin, env, addr)
	waitReady(t, addr, 90*time.Second)
	token, err := os.ReadFile(filepath.Join(dataDir, mcpserver.TokenFile))
	if err != nil {
		t.Fatal(err)
	}

	// NB: srv is the server of the moment (it is started again below).
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.Logs())
		}
	})
	restarted := false
	var res struct {
		ProtocolVersion string `json:"protocol_version"`
		Restarted       bool   `json:"restarted"`
	}
	testkit.RunNodeJSON(t, testkit.NodeCheck{Node: node, Dir: outsideSDK2Dir, Script: "input.mjs", Args: []string{"http://" + addr + pathMCP},
		Env: append(os.Environ(), "MCPJ_TOKEN="+strings.TrimSpace(string(token)), "MCPJ_RESTART_HANDSHAKE=1"), Timeout: 5 * time.Minute,
		Ask: "input.mjs: restart now", OnAsk: func() string {
			if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-srv.done
			srv = startServerAt(t, bin, env, addr)
			waitReady(t, addr, 90*time.Second)
			restarted = true
			return "restarted"
		}}, &res)
	if !restarted || !res.Restarted || res.ProtocolVersion != "2026-07-28" {
		t.Fatalf("the check did not run as meant: restarted %v/%v, revision %q", restarted, res.Restarted, res.ProtocolVersion)
	}
}

// TestInputNotAskedOfAReader: a principal with the read scope only,
// following a shared execution with get_execution, is shown the prompt
// (it could not answer it: send_input needs execute) instead of being
// asked; its elicitation handler is never called.
func TestInputNotAskedOfAReader(t *testing.T) {
	c, connect := inProcess(t)
	admin := connect()
	k := startKernelTool(t, admin)
	if _, text := callTool(t, admin, "share_kernel", map[string]any{"kernel": k, "principal": "oidc:reader", "access": "read"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("share_kernel: %s", text)
	}
	sc, text := callTool(t, inProcessAs(t, c, mcp.ProtocolVersion20251125, nil), "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "v = input('Secret plan: ')\nprint(v)"})
	if sc["status"] != "input_required" {
		t.Fatalf("execute: %s", text)
	}
	u := &stdinUser{answer: types("nope")}
	cl := inProcessAs(t, c, "", u)
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "get_execution", map[string]any{"execution_id": sc["execution_id"]}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cl.CallTool(auth.WithPrincipal(ctx, auth.Principal{Name: "oidc:reader", Scopes: auth.ScopeRead}), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || res.NeedsInput() || resultStatus(res) != "input_required" || len(u.questions()) != 0 {
		t.Fatalf("a reader's get_execution: asked %d, %s", len(u.questions()), resultText(res))
	}
}

// TestInputOverStdio: the real binary over stdio, as a desktop client runs
// it: a 2026-07-28 client answers through input requests, a 2025-11-25 one
// through the elicitation/create bridge.
func TestInputOverStdio(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+testkit.KernelSpecDir(t))
	k := ""
	for _, version := range []string{"", mcp.ProtocolVersion20251125} {
		t.Run("version="+version, func(t *testing.T) {
			tr := transport.NewStdio(bin, env, "stdio")
			var stderr strings.Builder
			stderrDone := make(chan struct{})
			t.Cleanup(func() {
				<-stderrDone
				if t.Failed() {
					t.Logf("stdio server stderr:\n%s", stderr.String())
				}
			})
			u := &stdinUser{answer: types("stdio-" + version)}
			opts := []client.ClientOption{client.WithElicitationHandler(u)}
			if version != "" {
				opts = append(opts, client.WithProtocolVersion(version))
			}
			cl := startVersioned(t, client.NewClient(tr, opts...), version)
			go func() { defer close(stderrDone); _, _ = io.Copy(&stderr, tr.Stderr()) }()
			if k == "" {
				k = startKernelTool(t, cl)
			}
			res := callRaw(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
				"code": "v = input('Over stdio: ')\nprint('stdio got', v)"})
			if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "stdio got stdio-"+version) {
				t.Fatalf("over stdio: %s\n%s", resultStatus(res), text)
			}
			if qs := u.questions(); len(qs) != 1 || askedPrompt(qs[0].Message) != "Over stdio: " {
				t.Fatalf("questions: %+v", qs)
			}
		})
	}
}

// TestInputManyPromptsGoOnWithGetExecution: code asking more prompts than
// a client retries one call for (mcp-go: 10 rounds) fails that call on the
// client's side, but nothing is lost: the execution waits on the next
// prompt, and get_execution asks the rest.
func TestInputManyPromptsGoOnWithGetExecution(t *testing.T) {
	c, connect := inProcess(t)
	k := startKernelTool(t, connect())
	lines := make([]string, 12)
	for i := range lines {
		lines[i] = fmt.Sprint("line", i)
	}
	u := &stdinUser{answer: types(lines...)}
	cl := inProcessAs(t, c, "", u)
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = "execute", map[string]any{"kernel": k, "allow_stdin": true,
		"code": "got = [input(f'{i}: ') for i in range(12)]\nprint('all', ' '.join(got))"}
	ctx, cancel := context.WithTimeout(asAdmin(context.Background()), 120*time.Second)
	defer cancel()
	if _, err := cl.CallTool(ctx, req); !errors.Is(err, client.ErrMaxInputRoundTripsExceeded) {
		t.Fatalf("execute with 12 prompts: %v, want the client's round-trip bound", err)
	}
	sc, _ := callTool(t, connect(), "list_executions", map[string]any{"kernel": k, "status": "input_required"})
	rows, _ := sc["executions"].([]any)
	if len(rows) != 1 {
		t.Fatalf("want the execution waiting on its next prompt: %v", sc)
	}
	id := rows[0].(map[string]any)["execution_id"]
	res := callRaw(t, cl, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
	if text := resultText(res); resultStatus(res) != "ok" || !strings.Contains(text, "all "+strings.Join(lines, " ")) {
		t.Fatalf("get_execution asked the rest: %s\n%s", resultStatus(res), text)
	}
	if n := len(u.questions()); n != 12 {
		t.Fatalf("asked %d questions, want 12 (each prompt once)", n)
	}
}
