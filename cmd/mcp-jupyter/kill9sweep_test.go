package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/fault"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// kill9Hits are the hit counts the sweep kills at, per point of
// infra/fault: the first hit, and later ones the workload (a server start,
// then kill9Executions executions) reaches. A log append happens at the
// server's start and 2-4 times per execution; the other points once or
// twice per execution.
var kill9Hits = map[string][]int{
	"eventlog.written":    {1, 5, 12},
	"eventlog.durable":    {2, 7, 15},
	"scheduler.started":   {1, 3, 5},
	"scheduler.pipelined": {1, 2},
	"kernel.sent":         {1, 3, 6},
	"kernel.output":       {1, 4},
	"kernel.ended":        {1, 4},
}

// kill9Required are the points the code calls: the sweep fails when one of
// them is not hit at one of its counts (a point that nothing reaches tests
// nothing). Every point of infra/fault is called (the log's and the
// actors'); a point added there without a caller is listed as not covered
// until it is added here. MCPJ_SWEEP_REQUIRE=all requires every point.
var kill9Required = []string{
	"eventlog.written", "eventlog.durable",
	"scheduler.started", "scheduler.pipelined",
	"kernel.sent", "kernel.output", "kernel.ended",
}

// kill9Executions is how many executions each round queues.
const kill9Executions = 6

// TestKill9Sweep is the kill -9 safety net: the real server binary over
// stdio, with a kernel that outlives it, is killed with SIGKILL by
// MCPJ_FAULT_KILL at every point of infra/fault and at several hit counts,
// while a queue of executions runs; each execution appends its own id to a
// file when it runs, so the file is the truth about what ran. After each
// kill the server is started again without the fault, and:
//   - every execution of the round the log knows ends with a final status,
//     and that status is true: ok/error ⇒ its run is in the file exactly
//     once; cancelled/aborted ⇒ it never ran; lost/interrupted ⇒ at most
//     once (exactly once where it says it ran, never where it says it did
//     not);
//   - no id ever ran twice, in this round or any before;
//   - an acknowledged submit (its execute reply reached the client) is
//     known to the log and ran exactly once or is truthfully lost;
//   - a run the log never saw queued is recorded on the kernel's stream
//     (a KernelRanUnrecorded-style event naming it), never silent;
//   - the same kernel still runs new work, exactly once.
//
// The server must die by SIGKILL at the point (a clean exit or a crash
// fails). A round whose point was never hit is listed as not covered; it
// fails only for kill9Required points. MCPJ_SWEEP_POINTS=a,b narrows the
// sweep to some points.
func TestKill9Sweep(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	record := filepath.Join(t.TempDir(), "runs.txt")
	if err := os.WriteFile(record, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, fault.EnvVar+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir, "MCP_KERNELS_OUTLIVE=true",
		"MCP_NOTEBOOK_ROOT="+t.TempDir(), "MCP_LOG_LEVEL=debug")
	logs := filepath.Join(t.TempDir(), "server.log")

	first := launchSweepServer(t, bin, env, logs)
	if first.err != nil {
		t.Fatalf("first server: %v\n%s", first.err, tail(logs))
	}
	k := startKernelTool(t, first.cl)
	sw := &sweep{t: t, kernel: k, record: record, logs: logs, dataDir: dataDir, before: map[string]int{}}
	sw.probe(first, "k9-warm")
	first.stop(t, logs)

	points := fault.Points()
	if only := os.Getenv("MCPJ_SWEEP_POINTS"); only != "" {
		points = strings.Split(only, ",")
	}
	required := kill9Required
	if os.Getenv("MCPJ_SWEEP_REQUIRE") == "all" {
		required = fault.Points()
	}
	var covered, missed []string
	round := 0
	for _, point := range points {
		hits, ok := kill9Hits[point]
		if !ok {
			t.Fatalf("point %s (infra/fault) has no hit counts in kill9Hits: add them", point)
		}
		for _, n := range hits {
			round++
			spec := fmt.Sprintf("%s:%d", point, n)
			killed := sw.round(round, bin, append(slices.Clip(env), fault.EnvVar+"="+spec), env)
			if killed {
				covered = append(covered, spec)
			} else {
				missed = append(missed, spec)
			}
		}
	}
	t.Logf("kill -9 sweep: %d rounds; killed at %d: %v", round, len(covered), covered)
	t.Logf("kill -9 sweep: not hit by the workload (not covered): %v", missed)
	for _, spec := range missed {
		point, _, _ := strings.Cut(spec, ":")
		if slices.Contains(required, point) {
			t.Errorf("%s was never hit: the server ran the whole round without dying there, so nothing was tested at that point", spec)
		}
	}
}

// sweep is the state the rounds share: the kernel, the record file and
// every id seen run so far.
type sweep struct {
	t       *testing.T
	kernel  string
	record  string
	logs    string
	dataDir string
	// before is the record file's count of every id after the previous
	// round: an execution of an earlier round never runs again.
	before map[string]int
	// logSeq is the log's end after the previous round.
	logSeq uint64
}

// code is what execution id runs: it appends id to the record file when
// it runs, prints, and takes a little while, so that a queue forms.
func (sw *sweep) code(id string) string {
	return fmt.Sprintf("with open(%q, 'a') as f:\n    f.write(%q)\nprint('ran', %q, flush=True)\nimport time\ntime.sleep(0.03)\n",
		sw.record, id+"\n", id)
}

// runs counts each id's lines in the record file.
func (sw *sweep) runs() map[string]int {
	sw.t.Helper()
	data, err := os.ReadFile(sw.record)
	if err != nil {
		sw.t.Fatal(err)
	}
	n := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line != "" {
			n[line]++
		}
	}
	return n
}

// round runs one kill: a server armed with faultEnv, a queue of
// executions, its death, a clean restart (env), the checks. It reports
// whether the server died at the point.
func (sw *sweep) round(round int, bin string, faultEnv, env []string) (killed bool) {
	t := sw.t
	t.Helper()
	spec := strings.TrimPrefix(faultEnv[len(faultEnv)-1], fault.EnvVar+"=")
	ids := make([]string, kill9Executions)
	for i := range ids {
		ids[i] = fmt.Sprintf("k9-%02d-%d", round, i)
	}
	acked := map[string]bool{}

	s := launchSweepServer(t, bin, faultEnv, sw.logs)
	broke := s.err != nil // a call failed: the server died under it
	if !broke {
		for _, id := range ids {
			// NB: timeout_s tiny: the reply comes as soon as the submit is
			// acknowledged, so the queue forms behind the first.
			_, text, err := s.call("execute", map[string]any{"kernel": sw.kernel, "code": sw.code(id), "execution_id": id, "timeout_s": 0.001})
			if err != nil {
				broke = true // the server died (or is dying) under this call
				break
			}
			if strings.HasPrefix(text, "ERROR") {
				t.Fatalf("%s: execute %s refused: %s\n%s", spec, id, text, tail(sw.logs))
			}
			acked[id] = true
		}
		for _, id := range ids {
			if !acked[id] || broke {
				continue
			}
			for {
				sc, text, err := s.call("get_execution", map[string]any{"execution_id": id, "wait_s": 30})
				broke = err != nil
				if broke || strings.HasPrefix(text, "ERROR") || queue.Status(fmt.Sprint(sc["status"])).Done() {
					break
				}
			}
		}
	}
	if broke || s.dead() {
		killed = true
		state := s.exit(t, 60*time.Second)
		ws, _ := state.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("%s: the server ended with %v, want death by SIGKILL at the point\n%s", spec, state, tail(sw.logs))
		}
	} else {
		s.stop(t, sw.logs) // the round ended with the server alive: the point was not reached
	}

	r := launchSweepServer(t, bin, env, sw.logs)
	if r.err != nil {
		t.Fatalf("%s: restart without the fault: %v\n%s", spec, r.err, tail(sw.logs))
	}
	final := map[string]map[string]any{}
	for _, id := range ids {
		if sc, known := sw.settle(r, spec, id); known {
			final[id] = sc
		} else if acked[id] {
			t.Fatalf("%s: execution %s was acknowledged (its execute reply reached the client) but the log does not know it\n%s", spec, id, tail(sw.logs))
		}
	}
	sc, text := callToolErr(t, r, "list_executions", map[string]any{"kernel": sw.kernel})
	if sc == nil {
		t.Fatalf("%s: list_executions: %s", spec, text)
	}
	rows, _ := sc["executions"].([]any)
	for _, row := range rows {
		x, _ := row.(map[string]any)
		if st := queue.Status(fmt.Sprint(x["status"])); !st.Done() {
			t.Fatalf("%s: after the restart execution %v is still %s: every execution must end with a final status", spec, x["execution_id"], st)
		}
	}

	runs := sw.runs()
	var unrecorded []string
	for _, id := range ids {
		n := runs[id]
		sc, known := final[id]
		if !known {
			if n > 0 {
				unrecorded = append(unrecorded, id)
			}
			continue
		}
		st := queue.Status(fmt.Sprint(sc["status"]))
		reason := fmt.Sprint(sc["reason"])
		switch {
		case st == queue.StatusOK || st == queue.StatusError:
			if n != 1 {
				t.Fatalf("%s: execution %s finished (%s) but ran %d times (the record file is the truth)", spec, id, st, n)
			}
		case st == queue.StatusCancelled || st == queue.StatusAborted:
			if n != 0 {
				t.Fatalf("%s: execution %s is %s but ran %d times", spec, id, st, n)
			}
		case st == queue.StatusLost || st == queue.StatusInterrupted:
			if n > 1 || strings.Contains(reason, "ran while") && n != 1 || strings.Contains(reason, "did not run") && n != 0 {
				t.Fatalf("%s: execution %s is %s (%q) but ran %d times", spec, id, st, reason, n)
			}
		default:
			t.Fatalf("%s: execution %s ended %s, not a final status", spec, id, st)
		}
		if acked[id] && (st == queue.StatusCancelled || st == queue.StatusAborted) {
			t.Fatalf("%s: acknowledged execution %s was %s by the crash, not run", spec, id, st)
		}
	}
	for id, n := range runs {
		if n > 1 {
			t.Fatalf("%s: %s ran %d times", spec, id, n)
		}
	}
	for id, n := range sw.before {
		if runs[id] != n {
			t.Fatalf("%s: %s, of an earlier round, ran again (%d runs, %d before)", spec, id, runs[id], n)
		}
	}
	for _, id := range ids {
		sw.before[id] = runs[id]
	}

	probe := fmt.Sprintf("k9-%02d-probe", round)
	sw.probe(r, probe)
	r.stop(t, sw.logs)
	sw.checkLog(spec, ids, runs, unrecorded)
	t.Logf("%s: killed=%t acked=%d statuses/runs=%v", spec, killed, len(acked), statusesOf(ids, final, runs))
	for _, id := range ids {
		if sc, ok := final[id]; ok && sc["status"] != string(queue.StatusOK) {
			t.Logf("%s: %s %v: %v", spec, id, sc["status"], sc["reason"])
		}
	}
	return killed
}

// settle waits (up to two minutes) for execution id to reach a final
// status on r and returns its last reply; known is false when the log
// does not know the id.
func (sw *sweep) settle(r *sweepServer, spec, id string) (sc map[string]any, known bool) {
	t := sw.t
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sc, text := callToolErr(t, r, "get_execution", map[string]any{"execution_id": id, "wait_s": 30})
		if sc == nil {
			if strings.Contains(text, "unknown execution") {
				return nil, false
			}
			t.Fatalf("%s: get_execution %s after the restart: %s\n%s", spec, id, text, tail(sw.logs))
		}
		if queue.Status(fmt.Sprint(sc["status"])).Done() {
			sc["reason"] = reasonOf(text)
			return sc, true
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: execution %s is still %v two minutes after the restart\n%s", spec, id, sc["status"], tail(sw.logs))
		}
	}
}

// probe runs execution id on the kernel through r and checks that it ran,
// once.
func (sw *sweep) probe(r *sweepServer, id string) {
	t := sw.t
	t.Helper()
	sc, text := callToolErr(t, r, "execute", map[string]any{"kernel": sw.kernel, "code": sw.code(id), "execution_id": id, "timeout_s": 120})
	if sc == nil || sc["status"] != string(queue.StatusOK) || !strings.Contains(text, "ran "+id) {
		t.Fatalf("the kernel does not take new work: execute %s: %v\n%s\n%s", id, sc, text, tail(sw.logs))
	}
	if n := sw.runs()[id]; n != 1 {
		t.Fatalf("probe %s ran %d times, want once", id, n)
	}
	sw.before[id] = 1
}

// checkLog reads the stopped server's log for what the tools do not show:
// an ExecutionLost that says its execution ran (ran: true) must have run,
// once; and ids that ran although the log never saw them queued (their
// submit died before it was durable) must be accounted for by runs the
// kernel's stream records as unattributed (KernelRanUnrecorded), counted
// since the previous round.
func (sw *sweep) checkLog(spec string, ids []string, runs map[string]int, unrecorded []string) {
	t := sw.t
	t.Helper()
	l, err := eventlog.Open(filepath.Join(sw.dataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("%s: open the stopped server's log: %v", spec, err)
	}
	defer l.Close()
	ctx := context.Background()
	for _, id := range ids {
		err := l.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
			lost, ok := e.Payload.(events.ExecutionLost)
			if ok && lost.Ran && runs[id] != 1 {
				t.Errorf("%s: execution %s is recorded lost with ran: true (%q) but ran %d times", spec, id, lost.Reason, runs[id])
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: read execution %s: %v", spec, id, err)
		}
	}
	unattributed := 0
	err = l.ReadStream(ctx, events.KernelStream(sw.kernel), sw.logSeq, func(e events.Event) error {
		if p, ok := e.Payload.(events.KernelRanUnrecorded); ok {
			unattributed += p.Count
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: read kernel %s's stream: %v", spec, sw.kernel, err)
	}
	if unattributed < len(unrecorded) {
		t.Fatalf("%s: %v ran but the log knows no such execution, and kernel %s's stream records %d run(s) it could not attribute (%s)",
			spec, unrecorded, sw.kernel, unattributed, events.TypeKernelRanUnrecorded)
	}
	sw.logSeq = l.Last()
}

// reasonOf is the "reason: " line of an execution reply's text.
func reasonOf(text string) string {
	for _, line := range strings.Split(text, "\n") {
		if r, ok := strings.CutPrefix(line, "reason: "); ok {
			return r
		}
	}
	return ""
}

// statusesOf is "status/runs" of each id, "?" for one the log does not know.
func statusesOf(ids []string, final map[string]map[string]any, runs map[string]int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		st := "?"
		if sc, ok := final[id]; ok {
			st = fmt.Sprint(sc["status"])
		}
		out[i] = fmt.Sprintf("%s/%d", st, runs[id])
	}
	return out
}

// sweepServer is the binary's stdio server as a child process: its MCP
// client, and its exit.
type sweepServer struct {
	cmd    *exec.Cmd
	cl     *client.Client
	err    error // connecting failed (it may have died at start)
	exited chan struct{}
	state  *os.ProcessState
}

// launchSweepServer starts `mcp-jupyter stdio` with env, its stderr
// appended to logs, and connects an MCP client (err says why not).
func launchSweepServer(t *testing.T, bin string, env []string, logs string) *sweepServer {
	t.Helper()
	lf, err := os.OpenFile(logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	s := &sweepServer{exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "stdio")
	s.cmd.Env = env
	s.cmd.Stderr = lf
	in, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait() // NB: after the pipes hit EOF (Wait closes them)
		s.state = s.cmd.ProcessState
		close(s.exited)
	}()
	t.Cleanup(func() {
		if !s.dead() {
			_ = s.cmd.Process.Kill()
		}
		<-s.exited
	})
	s.cl = client.NewClient(transport.NewIO(bufio.NewReader(out), in, io.NopCloser(strings.NewReader(""))))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if s.err = s.cl.Start(ctx); s.err == nil {
		var init mcp.InitializeRequest
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "kill9-sweep", Version: "1"}
		_, s.err = s.cl.Initialize(ctx, init)
	}
	return s
}

func (s *sweepServer) dead() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// exit waits for the process to end and returns how it ended.
func (s *sweepServer) exit(t *testing.T, timeout time.Duration) *os.ProcessState {
	t.Helper()
	testkit.Closed(t, s.exited, timeout, "the server's exit")
	return s.state
}

// stop ends the server with SIGTERM, as an operator would, and checks it
// exited cleanly.
func (s *sweepServer) stop(t *testing.T, logs string) {
	t.Helper()
	if !s.dead() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	if st := s.exit(t, 60*time.Second); !st.Success() {
		t.Fatalf("server stopped with SIGTERM ended %v\n%s", st, tail(logs))
	}
}

// call calls a tool; err is a transport failure (the server died), and a
// refused call comes back as text starting with ERROR.
func (s *sweepServer) call(name string, args map[string]any) (map[string]any, string, error) {
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := s.cl.CallTool(asAdmin(ctx), req)
	if err != nil {
		return nil, "", err
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			text = append(text, tc.Text)
		}
	}
	joined := strings.Join(text, "\n")
	if res.IsError {
		return nil, "ERROR: " + joined, nil
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return sc, joined, nil
}

// callToolErr is call on a server that must be alive.
func callToolErr(t *testing.T, s *sweepServer, name string, args map[string]any) (map[string]any, string) {
	t.Helper()
	sc, text, err := s.call(name, args)
	if err != nil {
		t.Fatalf("%s: %v", name, errors.Join(err, fmt.Errorf("server exited: %t", s.dead())))
	}
	return sc, text
}

// tail is the end of the servers' log, for a failure message.
func tail(path string) string {
	data, _ := os.ReadFile(path)
	const max = 6000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}
