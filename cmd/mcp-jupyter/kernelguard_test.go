package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// stdioSession is the real binary's `stdio`, driven by an MCP client over
// its stdin and stdout, as a desktop client does; closing stdin ends it.
type stdioSession struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	cl     *client.Client
	exited chan struct{}
}

func startStdio(t *testing.T, bin string, env []string, logs string) *stdioSession {
	t.Helper()
	lf, err := os.OpenFile(logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	s := &stdioSession{exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "stdio")
	s.cmd.Env, s.cmd.Stderr = env, lf
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	s.cl = client.NewClient(transport.NewIO(bufio.NewReader(out), s.in, io.NopCloser(strings.NewReader(""))))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.cl.Start(ctx); err != nil {
		t.Fatalf("start client: %v\n%s", err, tail(logs))
	}
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "orphan-guard", Version: "1"}
	if _, err := s.cl.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v\n%s", err, tail(logs))
	}
	return s
}

// hangUp closes stdin, as a client that is done does, and waits for the
// server's exit.
func (s *stdioSession) hangUp(t *testing.T) {
	t.Helper()
	_ = s.in.Close()
	testkit.Closed(t, s.exited, 90*time.Second, "the stdio server's exit after stdin closed")
}

// dataDirProcs lists the live (not zombie) kernel processes of dataDir and
// the guards watching its server lock.
func dataDirProcs(dataDir string) (kernels, guards []int) {
	runtime := filepath.Join(dataDir, "runtime") + string(filepath.Separator)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(runtime)) || !procAlive(pid) {
			continue
		}
		if bytes.Contains(cmdline, []byte("\x00"+guard.Subcommand+"\x00")) {
			guards = append(guards, pid)
		} else if !bytes.Contains(cmdline, []byte(" stdio")) && !bytes.HasSuffix(cmdline, []byte("stdio\x00")) {
			kernels = append(kernels, pid)
		}
	}
	return kernels, guards
}

// procAlive is false for a process gone or a zombie (a kernel whose
// parent, the test's server, has not reaped it yet has ended).
func procAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

func guardEnv(t *testing.T, dataDir, specDir string, grace time.Duration) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_") {
			env = append(env, kv)
		}
	}
	return append(env, "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir, "MCP_NOTEBOOK_ROOT="+t.TempDir(),
		"MCP_ORPHAN_GRACE="+grace.String(), "MCP_CULL_IDLE=0", "MCP_SHUTDOWN_GRACE=10s")
}

// waitNoKernels waits until no kernel process and no guard of dataDir is
// left.
func waitNoKernels(t *testing.T, dataDir string, timeout time.Duration) {
	t.Helper()
	testkit.WaitUntil(t, timeout, "no kernel process and no guard left", func() (bool, string) {
		k, g := dataDirProcs(dataDir)
		return len(k) == 0 && len(g) == 0, "kernels " + strconv.Itoa(len(k)) + ", guards " + strconv.Itoa(len(g))
	})
}

// TestOrphanGuardTwelveStdioSessions is the report: twelve short
// stdio sessions on one data dir (initialize, start_kernel, execute, close
// stdin) left sixteen kernels running with no server, for ever. With
// --orphan-grace, none is left once the grace has passed.
func TestOrphanGuardTwelveStdioSessions(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const grace = 3 * time.Second
	env := guardEnv(t, dataDir, testkit.KernelSpecDir(t), grace)
	logs := filepath.Join(t.TempDir(), "server.log")
	started := 0
	for i := range 12 {
		s := startStdio(t, bin, env, logs)
		k := startKernelTool(t, s.cl)
		started++
		if sc, text := callTool(t, s.cl, "execute", map[string]any{"kernel": k, "code": "x = " + strconv.Itoa(i) + "\nx"}); sc["status"] != "ok" {
			t.Fatalf("session %d execute: %v %s", i, sc, text)
		}
		s.hangUp(t)
	}
	kernels, guards := dataDirProcs(dataDir)
	t.Logf("after the %d sessions: %d kernel processes, %d guards", started, len(kernels), len(guards))
	if len(kernels) == 0 {
		t.Fatalf("no kernel outlived its session: kernels are meant to outlive the server (re-attach), so this test shows nothing")
	}
	waitNoKernels(t, dataDir, grace+30*time.Second)
}

// TestOrphanGuardReattachWithinGrace: a server that starts within the
// grace re-attaches the kernel (its variables intact), and the guard does
// not end it while that server runs, however long; once that server stops
// (SIGTERM), the kernel is ended after the grace.
func TestOrphanGuardReattachWithinGrace(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const grace = 6 * time.Second
	env := guardEnv(t, dataDir, testkit.KernelSpecDir(t), grace)
	logs := filepath.Join(t.TempDir(), "server.log")

	first := startStdio(t, bin, env, logs)
	k := startKernelTool(t, first.cl)
	if sc, text := callTool(t, first.cl, "execute", map[string]any{"kernel": k, "code": "x = 41"}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	kernels, guards := dataDirProcs(dataDir)
	if len(kernels) != 1 || len(guards) != 1 {
		t.Fatalf("one kernel, one guard expected: kernels %v, guards %v", kernels, guards)
	}
	t.Logf("guard: %s", guardMemory(guards[0]))
	first.hangUp(t)

	second := startStdio(t, bin, env, logs)
	if sc, text := callTool(t, second.cl, "execute", map[string]any{"kernel": k, "code": "x + 1"}); sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("execute after the re-attach: %v %s\n%s", sc, text, tail(logs))
	}
	// The second server runs for twice the grace: the kernel stays.
	deadline := time.Now().Add(2 * grace)
	for time.Now().Before(deadline) {
		if k2, _ := dataDirProcs(dataDir); len(k2) != 1 || k2[0] != kernels[0] {
			t.Fatalf("the kernel (pid %d) was ended while a server ran: kernels now %v\n%s", kernels[0], k2, tail(logs))
		}
		time.Sleep(500 * time.Millisecond) // NB: sampling a duration, not synchronising
	}
	if sc, text := callTool(t, second.cl, "execute", map[string]any{"kernel": k, "code": "x + 2"}); sc["status"] != "ok" || !strings.Contains(text, "43") {
		t.Fatalf("execute two graces after the re-attach: %v %s", sc, text)
	}
	if _, g := dataDirProcs(dataDir); len(g) != 1 {
		t.Fatalf("the re-attach should keep the kernel's one guard, found %v", g)
	}
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	testkit.Closed(t, second.exited, 60*time.Second, "the server's exit on SIGTERM")
	if k2, _ := dataDirProcs(dataDir); len(k2) != 1 {
		t.Fatalf("the kernel should outlive the server (--kernels-outlive), found %v", k2)
	}
	waitNoKernels(t, dataDir, grace+20*time.Second)
}

// TestOrphanGuardAfterKill9: a server killed -9 (no shutdown at all)
// releases its lock with its death; the guard ends the kernel after the
// grace.
func TestOrphanGuardAfterKill9(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const grace = 3 * time.Second
	env := guardEnv(t, dataDir, testkit.KernelSpecDir(t), grace)
	logs := filepath.Join(t.TempDir(), "server.log")
	s := startStdio(t, bin, env, logs)
	k := startKernelTool(t, s.cl)
	if sc, text := callTool(t, s.cl, "execute", map[string]any{"kernel": k, "code": "import time; time.sleep(300)", "timeout_s": 1}); sc["status"] == "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	if kernels, guards := dataDirProcs(dataDir); len(kernels) != 1 || len(guards) != 1 {
		t.Fatalf("one kernel, one guard expected: kernels %v, guards %v", kernels, guards)
	}
	_ = s.cmd.Process.Kill()
	testkit.Closed(t, s.exited, 10*time.Second, "the server's death")
	waitNoKernels(t, dataDir, grace+20*time.Second)
}

// guardMemory is a guard's resident memory: all of it, and the part that is
// its own (the rest are the binary's pages, shared with the server).
func guardMemory(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		for _, k := range []string{"VmRSS:", "RssAnon:", "RssFile:", "Threads:"} {
			if strings.HasPrefix(l, k) {
				out = append(out, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return strings.Join(out, ", ")
}

// TestRestartedKernelHasItsOwnGuard: restart_kernel replaces the process;
// the new one gets a guard of its own and the old one's guard exits with
// it, so guards do not pile up.
func TestRestartedKernelHasItsOwnGuard(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	before, _ := c.kernels.Get(k)
	kernels, guards := dataDirProcs(c.cfg.DataDir)
	if len(kernels) != 1 || len(guards) != 1 {
		t.Fatalf("one kernel, one guard expected: kernels %v, guards %v", kernels, guards)
	}
	oldGuard := guards[0]
	if _, text := callTool(t, cl, "restart_kernel", map[string]any{"kernel": k}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("restart_kernel: %s", text)
	}
	after, _ := c.kernels.Get(k)
	if after.Pid == before.Pid {
		t.Fatalf("restart_kernel kept pid %d", after.Pid)
	}
	newGuard := 0
	testkit.WaitUntil(t, 20*time.Second, "one guard, the new process's", func() (bool, string) {
		_, g := dataDirProcs(c.cfg.DataDir)
		if len(g) == 1 && g[0] != oldGuard && procAlive(after.Pid) {
			newGuard = g[0]
			return true, ""
		}
		return false, "guards " + strconv.Itoa(len(g))
	})
	// NB: the guard found above, not the launcher's list: the old guard may
	// still be in it until its exit is reaped (its cmdline is then empty).
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(newGuard) + "/cmdline")
	if !bytes.Contains(data, []byte("--pid\x00"+strconv.Itoa(after.Pid)+"\x00")) {
		t.Fatalf("the guard watches %q, not the new process %d", bytes.ReplaceAll(data, []byte{0}, []byte{' '}), after.Pid)
	}
}

// TestGuardHasNoSecrets: a guard's environment holds nothing of the
// server's (no MCP_* variable, no token), and it holds no descriptor of the
// server's but its stdio.
func TestGuardHasNoSecrets(t *testing.T) {
	t.Setenv("MCP_TOKEN", "guard-must-not-see-this-token")
	c, connect := inProcess(t)
	startKernelTool(t, connect())
	_, guards := dataDirProcs(c.cfg.DataDir)
	if len(guards) != 1 {
		t.Fatalf("one guard expected, found %v", guards)
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(guards[0]) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.HasPrefix(kv, []byte("MCP_")) || bytes.Contains(kv, []byte("guard-must-not-see")) || bytes.Contains(kv, []byte(c.cfg.DataDir)) {
			t.Errorf("guard environment holds %q", kv)
		}
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(guards[0]) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink("/proc/" + strconv.Itoa(guards[0]) + "/fd/" + fd.Name())
		// NB: the lock file is open for a moment during each probe.
		if n, _ := strconv.Atoi(fd.Name()); n > 2 && strings.HasPrefix(target, c.cfg.DataDir) && target != serverLockPath(c.cfg.DataDir) {
			t.Errorf("guard holds fd %s -> %s of the data dir", fd.Name(), target)
		}
	}
}

// TestOrphanGuardEndedKernelNotRelaunched: a kernel its guard ended after
// --orphan-grace stays ended when a later stdio session starts (more than
// the grace after the first one): --auto-restore does not start it again
// (that would bring back, at every session, every kernel ever left), the
// log records the cull and why, and a call on it says why.
func TestOrphanGuardEndedKernelNotRelaunched(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	const grace = 2 * time.Second
	env := guardEnv(t, dataDir, testkit.KernelSpecDir(t), grace)
	logs := filepath.Join(t.TempDir(), "server.log")

	first := startStdio(t, bin, env, logs)
	k := startKernelTool(t, first.cl)
	if sc, text := callTool(t, first.cl, "execute", map[string]any{"kernel": k, "code": "x = 41"}); sc["status"] != "ok" {
		t.Fatalf("execute: %v %s", sc, text)
	}
	first.hangUp(t)
	waitNoKernels(t, dataDir, grace+30*time.Second)
	if _, err := os.Stat(filepath.Join(dataDir, "runtime", "kernels", k, guard.OrphanedFile)); err != nil {
		t.Fatalf("the guard left no marker: %v", err)
	}

	second := startStdio(t, bin, env, logs)
	want := "ended by its guard after --orphan-grace (2s) without a server"
	testkit.WaitUntil(t, 60*time.Second, "execute on the ended kernel says why", func() (bool, string) {
		_, text := callToolNoFatal(second.cl, "execute", map[string]any{"kernel": k, "code": "x + 1"})
		return strings.Contains(text, want), text
	})
	if _, text := callTool(t, second.cl, "list_kernels", map[string]any{}); strings.Contains(text, k) {
		t.Fatalf("list_kernels lists the ended kernel as live: %s", text)
	}
	if kernels, _ := dataDirProcs(dataDir); len(kernels) != 0 {
		t.Fatalf("the second session started the ended kernel again: pids %v\n%s", kernels, tail(logs))
	}
	second.hangUp(t)

	l := testkit.OpenLog(t, filepath.Join(dataDir, "events"))
	var culled, restarted int
	if err := l.ReadStream(context.Background(), "kernel/"+k, 0, func(e events.Event) error {
		switch p := e.Payload.(type) {
		case events.KernelShutDown:
			if p.Culled && strings.Contains(p.Reason, want) {
				culled++
			}
		case events.KernelRestarted:
			restarted++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if culled != 1 || restarted != 0 {
		t.Fatalf("kernel stream: %d KernelShutDown{Culled} with %q, %d KernelRestarted; want 1 and 0", culled, want, restarted)
	}
}
