package jupyter_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// grabberFiles are the connection files the targeted grabber reads: the
// kernels' own (and where older servers wrote them).
var grabberFiles = []string{"kernels/*/connection.json", "kernel-*.json"}

// portGrabber races the launcher for ports on the loopback interface, as a
// busy or hostile neighbour of the server does, until test cleanup:
//   - it keeps binding free ephemeral ports, holding the newest hold of them;
//   - it reads the connection files under runtime as they appear and binds
//     every port they name, holding what it gets.
//
// Any port the server chose and left unbound until a kernel bound it is
// taken meanwhile. It counts the ports churned and the ports stolen from
// connection files. (It targets our own files rather than holding
// thousands of ports, so that it does not disturb tests of other packages
// running beside it.)
func portGrabber(t testing.TB, hold int, runtime string) (churned, stolen *atomic.Int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	churned, stolen = new(atomic.Int64), new(atomic.Int64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ring := make([]net.Listener, hold)
		defer func() {
			for _, ln := range ring {
				if ln != nil {
					ln.Close()
				}
			}
		}()
		for i := 0; ctx.Err() == nil; i++ {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				continue // ephemeral range exhausted for a moment
			}
			if old := ring[i%hold]; old != nil {
				old.Close()
			}
			ring[i%hold] = ln
			churned.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		var held []net.Listener
		defer func() {
			for _, ln := range held {
				ln.Close()
			}
		}()
		tried := map[int]bool{}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, pattern := range grabberFiles {
				files, _ := filepath.Glob(filepath.Join(runtime, pattern))
				for _, f := range files {
					info, err := jupyter.ReadConnectionFile(f)
					if err != nil {
						continue
					}
					for _, port := range []int{info.ShellPort, info.IOPubPort, info.StdinPort, info.ControlPort, info.HBPort} {
						if port <= 0 || tried[port] {
							continue
						}
						tried[port] = true
						if ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
							held = append(held, ln)
							stolen.Add(1)
						}
					}
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return churned, stolen
}

// ownedBy reports whether every port of info is listened on by pid and by
// no one else.
func ownedBy(info jupyter.ConnectionInfo, pid int) (bool, string) {
	for _, port := range []int{info.ShellPort, info.IOPubPort, info.StdinPort, info.ControlPort, info.HBPort} {
		inodes := jupyter.ListeningInodes(port)
		if len(inodes) == 0 {
			return false, "port " + strconv.Itoa(port) + " has no listener"
		}
		for _, ino := range inodes {
			if owner, ok := jupyter.SocketOwner(ino); !ok || owner != pid {
				return false, "port " + strconv.Itoa(port) + " is listened on by pid " + strconv.Itoa(owner)
			}
		}
	}
	return true, ""
}

// TestKernelsStartedWhilePortsAreGrabbed: eight kernels started at once
// while another goroutine keeps binding and holding ports on the same
// interface (free ones, and those named in connection files) all start, and
// every port the server dialled is the kernel's. With ports picked by the
// server and bound by the kernel a second later, the grabber takes them
// (Address already in use, or the server dials the grabber).
func TestKernelsStartedWhilePortsAreGrabbed(t *testing.T) {
	spec := testkit.PythonKernelSpec(t)
	runtime := filepath.Join(t.TempDir(), "runtime")
	grabbed, stolen := portGrabber(t, 128, runtime)
	testkit.WaitUntil(t, 10*time.Second, "the grabber holds ports", func() (bool, string) {
		return grabbed.Load() >= 128, strconv.FormatInt(grabbed.Load(), 10) + " grabbed"
	})
	const n = 8
	kernels := make([]*jupyter.Kernel, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kernels[i], errs[i] = jupyter.StartKernel(ctx, spec, runtime, jupyter.NewID(),
				jupyter.StartOptions{Launch: jupyter.LaunchOptions{DieWithServer: true}, ReadyTimeout: 2 * time.Minute})
		}()
	}
	wg.Wait()
	for i, k := range kernels {
		if k == nil {
			continue
		}
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := k.Shutdown(sctx, false); err != nil {
				t.Errorf("shutdown kernel %d: %v", i, err)
			}
		})
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("kernel %d of %d (while %d ports were grabbed, %d taken from connection files): %v", i, n, grabbed.Load(), stolen.Load(), err)
		}
	}
	for i, k := range kernels {
		if ok, why := ownedBy(k.Info, k.Process.Pid); !ok {
			t.Errorf("kernel %d: %s", i, why)
		}
		if res := execute(t, k.Client, "1+1", time.Minute); res.Reply["status"] != "ok" {
			t.Errorf("kernel %d: execute_reply %v", i, res.Reply)
		}
	}
	t.Logf("%d ports grabbed meanwhile, %d taken from connection files (a heartbeat port before its kernel bound it)", grabbed.Load(), stolen.Load())
}

// fakeKernel is a kernelspec whose "kernel" is a short Python script: it
// does what script says with the connection file it was given, logs one
// line per launch, then waits to be killed.
func fakeKernel(t *testing.T, script string) jupyter.KernelSpec {
	t.Helper()
	python := testkit.PythonWithIPyKernel(t)
	prelude := `import json, os, socket, sys, time
path = sys.argv[1]
print("fake kernel launched", flush=True)
info = json.load(open(path))
def listen():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]
def rewrite(info):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.rename(tmp, path)
`
	return jupyter.KernelSpec{Name: "fake", Language: "python", InterruptMode: "signal",
		Argv: []string{python, "-c", prelude + script + "\ntime.sleep(300)\n", "{connection_file}"}}
}

// stranger is a listener of the test process, counting the connections it
// accepts: the server must never dial it.
type stranger struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newStranger(t *testing.T) *stranger {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stranger{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return s
}

func (s *stranger) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// TestStartRefusesPortsTheKernelDoesNotOwn: the server dials only ports the
// kernel itself wrote into its connection file and is seen listening on.
// A kernel that never writes its ports, one that names ports another
// process listens on (all of them, or only the heartbeat, as ipykernel
// does when its heartbeat loses its port), and one that swaps the signing
// key all fail to start with an error saying so; no socket of the other
// process is ever connected to, and nothing is left behind.
func TestStartRefusesPortsTheKernelDoesNotOwn(t *testing.T) {
	strangers := []*stranger{newStranger(t), newStranger(t), newStranger(t), newStranger(t), newStranger(t)}
	sp := func(i int) string { return strconv.Itoa(strangers[i].port()) }
	cases := []struct {
		name     string
		script   string
		want     error
		wantText string
		launches int
	}{
		{name: "never writes its ports", script: ``,
			want: jupyter.ErrPortsNotWritten, wantText: "did not write its ports", launches: 1},
		{name: "names another process's ports",
			script: `info.update(shell_port=` + sp(0) + `, iopub_port=` + sp(1) + `, stdin_port=` + sp(2) +
				`, control_port=` + sp(3) + `, hb_port=` + sp(4) + `)
rewrite(info)`,
			want: jupyter.ErrPortNotOwned, wantText: "not by the kernel: not dialling it", launches: 3},
		{name: "heartbeat lost its port to another process",
			script: `socks = [listen() for _ in range(4)]
info.update(shell_port=socks[0][1], iopub_port=socks[1][1], stdin_port=socks[2][1], control_port=socks[3][1], hb_port=` + sp(4) + `)
rewrite(info)`,
			want: jupyter.ErrPortNotOwned, wantText: "hb port " + sp(4), launches: 3},
		{name: "names a port nobody listens on",
			script: `socks = [listen() for _ in range(4)]
gone, gone_port = listen()
gone.close()
info.update(shell_port=socks[0][1], iopub_port=socks[1][1], stdin_port=socks[2][1], control_port=socks[3][1], hb_port=gone_port)
rewrite(info)`,
			want: jupyter.ErrPortNotOwned, wantText: "has no listener: not dialling it", launches: 3},
		{name: "swaps the signing key",
			script: `socks = [listen() for _ in range(5)]
info.update(key="00" * 32, shell_port=socks[0][1], iopub_port=socks[1][1], stdin_port=socks[2][1], control_port=socks[3][1], hb_port=socks[4][1])
rewrite(info)`,
			wantText: "another signing key", launches: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runtime := filepath.Join(t.TempDir(), "runtime")
			id := jupyter.NewID()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			k, err := jupyter.StartKernel(ctx, fakeKernel(t, tc.script), runtime, id,
				jupyter.StartOptions{Launch: jupyter.LaunchOptions{DieWithServer: true}, ReadyTimeout: 3 * time.Second, BindGrace: 300 * time.Millisecond})
			if err == nil {
				k.Shutdown(context.Background(), false)
				t.Fatal("the kernel started")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("error %q does not say %q", err, tc.wantText)
			}
			t.Logf("refused: %v", err)
			var owner *jupyter.PortOwnerError
			if errors.As(err, &owner) && !owner.Unbound && owner.Holder != os.Getpid() {
				t.Errorf("holder named as pid %d, want this test's %d", owner.Holder, os.Getpid())
			}
			var se *jupyter.StartError
			if !errors.As(err, &se) || se.Pid <= 0 {
				t.Fatalf("not a StartError naming the process: %v", err)
			}
			if syscall.Kill(se.Pid, 0) == nil {
				t.Errorf("kernel pid %d still there", se.Pid)
			}
			log, _ := os.ReadFile(se.LogPath)
			if got := strings.Count(string(log), "fake kernel launched"); got != tc.launches {
				t.Errorf("%d launches, want %d:\n%s", got, tc.launches, log)
			}
			if _, err := os.Stat(jupyter.KernelDir(runtime, id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("kernel dir left behind: %v", err)
			}
			for i, s := range strangers {
				if n := s.accepted.Load(); n != 0 {
					t.Errorf("the server connected %d times to the other process's port %d", n, strangers[i].port())
				}
			}
		})
	}
}

// TestAttachRefusesPortNotOwned: re-attaching after a server restart
// checks the ports too: a recorded port that another process now listens
// on is never dialled.
func TestAttachRefusesPortNotOwned(t *testing.T) {
	k := testkit.StartKernel(t)
	info, pid, st := k.Info, k.Process.Pid, k.Process.StartTime
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	s := newStranger(t)
	info.HBPort = s.port()
	_, err := jupyter.Attach(context.Background(), info, pid, st, 5*time.Second, jupyter.ClientOptions{})
	if !errors.Is(err, jupyter.ErrPortNotOwned) || !strings.Contains(err.Error(), "hb port") {
		t.Fatalf("attach with another process's heartbeat port: %v", err)
	}
	if n := s.accepted.Load(); n != 0 {
		t.Fatalf("the server connected %d times to the other process's port", n)
	}
	if err := jupyter.SignalGroup(pid, st, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
