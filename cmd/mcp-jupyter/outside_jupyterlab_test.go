package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// outsideLabDir is the Node project of JupyterLab's own client library
// (@jupyterlab/services with ws), from this package's directory.
var outsideLabDir = filepath.Join("..", "..", "testkit", "outside", "jupyterlab")

// outsideLabReady fails the test unless node is on PATH and the pinned
// @jupyterlab/services is installed in outsideLabDir (by `make deps`), and
// returns node's path.
func outsideLabReady(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): the JupyterLab check needs Node.js >= 20 with npm; run `make deps`", err)
	}
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := os.ReadFile(filepath.Join(outsideLabDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &pinned); err != nil {
		t.Fatalf("%s/package.json: %v", outsideLabDir, err)
	}
	var installed struct {
		Version string `json:"version"`
	}
	data, err = os.ReadFile(filepath.Join(outsideLabDir, "node_modules", "@jupyterlab", "services", "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("@jupyterlab/services is not installed in %s/node_modules: run `make deps` (npm ci from the committed lock)", outsideLabDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &installed); err != nil {
		t.Fatal(err)
	}
	if want := pinned.Dependencies["@jupyterlab/services"]; installed.Version != want {
		t.Fatalf("%s/node_modules holds @jupyterlab/services %s, package.json pins %s: run `make deps`", outsideLabDir, installed.Version, want)
	}
	return node
}

// labResult is check.mjs's JSON: every step's outcome and what it saw.
type labResult struct {
	OK        bool                      `json:"ok"`
	Failed    string                    `json:"failed"`
	Framing   string                    `json:"framing"`
	Protocols []string                  `json:"protocols"`
	Steps     map[string]map[string]any `json:"steps"`
	raw       string
}

// str is a step's string field ("" when absent).
func (r labResult) str(step, field string) string {
	s, _ := r.Steps[step][field].(string)
	return s
}

// mustPass fails the test unless each named step ran and passed.
func (r labResult) mustPass(t testing.TB, steps ...string) {
	t.Helper()
	var bad []string
	for _, name := range steps {
		s, ok := r.Steps[name]
		switch {
		case !ok:
			bad = append(bad, name+": did not run")
		case s["ok"] != true:
			bad = append(bad, fmt.Sprintf("%s: %v", name, s["error"]))
		case s["skipped"] == true:
			bad = append(bad, name+": skipped (its environment was not given)")
		}
	}
	if len(bad) > 0 {
		t.Fatalf("JupyterLab's client (%s framing) failed:\n  %s\ncheck.mjs output:\n%s", r.Framing, strings.Join(bad, "\n  "), r.raw)
	}
}

// labAgentLine is the stderr line with which check.mjs says it is attached
// and waits for an agent's output on that kernel.
const labAgentLine = "check.mjs: agent may run on "

// runLab runs check.mjs against baseURL in the given framing with env
// added, calling onAgent (on the test's goroutine) when the script asks
// for the agent's execution, and returns its JSON. A script that printed
// no JSON fails the test; a failed step does not (the caller says which
// must pass).
func runLab(t testing.TB, node, baseURL, framing string, env []string, onAgent func(kernelUUID string)) labResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.mjs", baseURL, framing)
	cmd.Dir = outsideLabDir
	// NB: the token in the environment, not on the command line (ps shows argv).
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	agentAsked := make(chan string, 1)
	scanned := make(chan struct{})
	var stderr strings.Builder // NB: written by the scanner only until scanned closes
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if stderr.Len() < 1<<20 {
				stderr.WriteString(line + "\n")
			}
			if id, ok := strings.CutPrefix(line, labAgentLine); ok {
				select {
				case agentAsked <- id:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderrPipe)
	}()
	select {
	case id := <-agentAsked:
		if onAgent != nil {
			onAgent(id)
		}
	case <-scanned:
	}
	<-scanned
	runErr := cmd.Wait()
	var res labResult
	res.raw = stdout.String() + "\nstderr:\n" + stderr.String()
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("check.mjs %s printed no JSON object (exit: %v, context: %v): %v\n%s", framing, runErr, ctx.Err(), err, res.raw)
	}
	return res
}

// labServer is our server on a loopback port with a known token and a
// notebook root, and an in-process MCP client acting as the agent.
type labServer struct {
	core  *core
	base  string
	token string
	agent *client.Client
}

func startLabServer(t testing.TB) labServer {
	t.Helper()
	const token = "outside-jupyterlab-token-0123456789"
	t.Setenv("MCP_NOTEBOOK_ROOT", t.TempDir())
	c, connect := inProcessWith(t, func(cfg *config) { cfg.Token = token })
	port := serveOn(t, c)
	return labServer{core: c, base: "http://127.0.0.1:" + port, token: token, agent: connect()}
}

// frontendExecution finds, in what the agent's list_executions shows for
// kernel, the execution whose code contains text.
func frontendExecution(t testing.TB, agent *client.Client, kernel, text string) map[string]any {
	t.Helper()
	sc, out := callTool(t, agent, "list_executions", map[string]any{"kernel": kernel})
	if sc == nil {
		t.Fatalf("list_executions of %s: %s", kernel, out)
	}
	list, _ := sc["executions"].([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		if code, _ := m["code"].(string); strings.Contains(code, text) {
			return m
		}
	}
	t.Fatalf("the agent's list_executions of kernel %s shows no execution with %q: %s", kernel, text, out)
	return nil
}

// checkOrigin fails unless the execution x is attributed to the frontend
// session and request check.mjs reported.
func checkOrigin(t testing.TB, x map[string]any, session, msgID, username string) {
	t.Helper()
	o, _ := x["origin"].(map[string]any)
	if o == nil {
		t.Fatalf("execution %v has no origin: the agent cannot tell it came from a frontend", x["execution_id"])
	}
	if o["kind"] != events.OriginFrontend || o["session"] != session || o["msg_id"] != msgID || o["username"] != username {
		t.Fatalf("execution %v origin %v; want kind %q, session %q (the frontend's), msg_id %q, username %q",
			x["execution_id"], o, events.OriginFrontend, session, msgID, username)
	}
}

// TestOutsideJupyterLab: JupyterLab's own client library,
// @jupyterlab/services 7.6 in Node with ws, drives our Jupyter Server API
// in both WebSocket framings (the v1.kernel.websocket.jupyter.org
// subprotocol JupyterLab 4 offers, and the legacy JSON framing of a client
// that offers none) as a person in JupyterLab would: kernelspecs; start a
// kernel; attach to the agent's kernel and see the agent's variables; see
// an agent's MCP execute output live on IOPub; run a cell there; open the
// agent's notebook (the same sha256 as read_notebook), add a cell and save
// it (the agent's edit on its older hash is then refused); execute
// (stdout, execute_result, reply), an error, input() over stdin, completion,
// interrupt, restart (status restarting, state gone), sessions (create,
// same path → same session, rename, delete shuts its kernel), a contents
// round trip (notebook save/get with the sha256 hash, listing, checkpoint
// restore, rename, text file, delete), shutdown. The agent's
// list_executions then shows the person's cells, attributed to the
// frontend session that ran them. The same script passes against Debian's
// jupyter_server (TestOutsideJupyterLabReference), which proves it.
func TestOutsideJupyterLab(t *testing.T) {
	node := outsideLabReady(t)
	for _, framing := range []string{"v1", "legacy"} {
		t.Run(framing, func(t *testing.T) {
			srv := startLabServer(t)
			agentKernel := startKernelTool(t, srv.agent)
			if _, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": agentKernel,
				"code": fmt.Sprintf("agent_was_here = %q", "agent-"+framing)}); strings.HasPrefix(text, "ERROR") {
				t.Fatalf("agent's execute: %s", text)
			}
			uuid, ok := events.UUIDForm(agentKernel)
			if !ok {
				t.Fatalf("agent's kernel id %q has no UUID form", agentKernel)
			}
			// The agent has a notebook open (its sha256 in hand).
			shared := "shared-" + framing + ".ipynb"
			nb, text := callTool(t, srv.agent, "create_notebook", map[string]any{"path": shared})
			agentHash, _ := nb["sha256"].(string)
			if agentHash == "" {
				t.Fatalf("create_notebook %s: %s", shared, text)
			}
			agentMarker := "agent-says-" + framing + "-" + events.NewID(time.Now())
			frontendMarker := "frontend-says-" + framing + "-" + events.NewID(time.Now())
			agentRan := false
			res := runLab(t, node, srv.base, framing, []string{
				"MCPJ_TOKEN=" + srv.token, "MCPJ_USERNAME=person-" + framing,
				"MCPJ_ATTACH_KERNEL=" + uuid, "MCPJ_AGENT_WAIT=1", "MCPJ_AGENT_MARKER=" + agentMarker,
				"MCPJ_FRONTEND_MARKER=" + frontendMarker,
				"MCPJ_SHARED_NOTEBOOK=" + shared, "MCPJ_SHARED_HASH=" + agentHash,
			}, func(attachedTo string) {
				// The person is attached: the agent runs code through MCP.
				if attachedTo != uuid {
					t.Errorf("check.mjs waits for the agent on %s, the agent's kernel is %s", attachedTo, uuid)
				}
				sc, text := callTool(t, srv.agent, "execute", map[string]any{"kernel": agentKernel, "code": fmt.Sprintf("print(%q)", agentMarker)})
				agentRan = sc["status"] == "ok" && strings.Contains(text, agentMarker)
				if !agentRan {
					t.Errorf("agent's execute while the frontend is attached: %v %s", sc, text)
				}
			})
			res.mustPass(t, "api", "kernelspecs", "start", "attach", "agent", "frontend_on_agent_kernel", "shared_notebook",
				"execute", "error", "stdin", "complete", "interrupt", "restart", "sessions", "contents", "shutdown")
			if !agentRan {
				t.Fatal("check.mjs never asked for the agent's execution")
			}
			wantProtocol := map[string]string{"v1": "v1.kernel.websocket.jupyter.org", "legacy": ""}[framing]
			if len(res.Protocols) != 1 || res.Protocols[0] != wantProtocol {
				t.Fatalf("the server chose subprotocols %q for a %s client; want only %q\n%s", res.Protocols, framing, wantProtocol, res.raw)
			}
			if got, want := res.str("attach", "stdout"), fmt.Sprintf("'agent-%s'\n", framing); got != want {
				t.Fatalf("the attached frontend sees agent_was_here = %q, want %q: not the agent's kernel", got, want)
			}

			// The person's save and the agent's hash-guarded edit cannot
			// overwrite each other: the agent's stale hash is refused, and
			// what it reads next is the person's save, same sha256.
			if _, text := callTool(t, srv.agent, "insert_cell", map[string]any{"path": shared, "expected_hash": agentHash,
				"source": "print('agent edit on a stale hash')"}); !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "changed on disk since you read it") {
				t.Fatalf("the agent's edit with the hash it read before the person's save was applied: %s", text)
			}
			rd, text := callTool(t, srv.agent, "read_notebook", map[string]any{"path": shared})
			if rd["sha256"] != res.str("shared_notebook", "saved_hash") || !strings.Contains(text, "the person was here") {
				t.Fatalf("read_notebook after the person's save: sha256 %v (contents said %s):\n%s", rd["sha256"], res.str("shared_notebook", "saved_hash"), text)
			}

			// The agent sees the person's cell, attributed to the frontend.
			x := frontendExecution(t, srv.agent, agentKernel, frontendMarker)
			checkOrigin(t, x, res.str("frontend_on_agent_kernel", "client_id"), res.str("frontend_on_agent_kernel", "msg_id"), "person-"+framing)
			if x["status"] != "ok" {
				t.Fatalf("the frontend's execution on the agent's kernel: status %v, want ok", x["status"])
			}
			// The kernel the person started, in either id form, is one
			// the agent can list, with the person's cell in it.
			own := res.str("start", "kernel_id")
			ownID, ok := events.FromUUIDForm(own)
			if !ok {
				t.Fatalf("the kernel check.mjs started has id %q, not the UUID form of one of ours", own)
			}
			x = frontendExecution(t, srv.agent, own, "hello from the frontend")
			checkOrigin(t, x, res.str("start", "client_id"), res.str("execute", "msg_id"), "person-"+framing)
			testkit.WaitUntil(t, 30*time.Second, "the kernel check.mjs shut down is shut down in the read model", func() (bool, string) {
				k, _ := srv.core.back.kernels.Get(ownID)
				return k.State == kernels.StateShutDown, string(k.State)
			})
			// The agent's kernel outlives the person's detach.
			if k, _ := srv.core.back.kernels.Get(agentKernel); k.State == kernels.StateShutDown {
				t.Fatalf("the agent's kernel %s is shut down after the frontend detached", agentKernel)
			}
			t.Logf("check.mjs %s:\n%s", framing, res.raw)
		})
	}
}

// TestOutsideJupyterLabReference runs the same check.mjs against Debian's
// jupyter_server (testkit.StartJupyterServer, reference mode): what it
// asserts is what the reference does, so a failure against ours is ours.
// (Only the contents hash, which jupyter_server 1.23 predates, is not
// checked there.)
func TestOutsideJupyterLabReference(t *testing.T) {
	node := outsideLabReady(t)
	js := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{})
	for _, framing := range []string{"v1", "legacy"} {
		t.Run(framing, func(t *testing.T) {
			res := runLab(t, node, js.URL, framing, []string{"MCPJ_TOKEN=" + js.Token, "MCPJ_REFERENCE=1"}, nil)
			res.mustPass(t, "api", "kernelspecs", "start", "execute", "error", "stdin", "complete",
				"interrupt", "restart", "sessions", "contents", "shutdown")
		})
	}
}

// runExample runs one of the copy-paste sessions of docs/frontends.md
// against base with token and returns its output.
func runExample(t testing.TB, dir string, env []string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v in %s: %v (context: %v)\n%s", argv, dir, err, ctx.Err(), out)
	}
	return string(out)
}

// TestOutsideExampleSessions: the Python (docs/examples/jupyter/session.py,
// websocket-client) and Node (testkit/outside/jupyterlab/session.mjs,
// @jupyterlab/services) sessions docs/frontends.md tells people to copy
// run against our server and print what the docs say they print; and the
// same against Debian's jupyter_server, so the docs describe a Jupyter
// client, not one made for us.
func TestOutsideExampleSessions(t *testing.T) {
	node := outsideLabReady(t)
	// NB: websocket-client (python3-websocket) comes with the reference
	// server's unpacked packages; no install on the system.
	pythonPath := testkit.JupyterServerPythonPath(t)
	python := testkit.PythonWithIPyKernel(t)
	srv := startLabServer(t)
	ref := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{})
	for _, target := range []struct{ name, url, token string }{{"ours", srv.base, srv.token}, {"jupyter_server", ref.URL, ref.Token}} {
		t.Run(target.name, func(t *testing.T) {
			env := []string{"MCPJ_URL=" + target.url, "MCPJ_TOKEN=" + target.token, "PYTHONPATH=" + pythonPath}
			out := runExample(t, filepath.Join("..", "..", "docs", "examples", "jupyter"), env, python, "session.py")
			for _, want := range []string{"kernelspecs ['python3']", "execute ok ['3', '42']", "shut down True"} {
				if !strings.Contains(out, want) {
					t.Fatalf("session.py against %s: no %q in its output:\n%s", target.name, want, out)
				}
			}
			out = runExample(t, outsideLabDir, env, node, "session.mjs")
			if !strings.Contains(out, "output: 42\nstatus: ok, kernel: ") {
				t.Fatalf("session.mjs against %s:\n%s", target.name, out)
			}
		})
	}
}
