package guard_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestMain makes this test binary the guard when re-executed as one, as
// main does in the real binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == guard.Subcommand {
		os.Exit(guard.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// victim is a real process in a session of its own (as kernels are), with
// a child in its group: what the guard must end, whole.
type victim struct {
	pid, child int
	start      uint64
	exited     chan struct{}
}

func startVictim(t *testing.T) *victim {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 600 & echo $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &victim{pid: cmd.Process.Pid, exited: make(chan struct{})}
	var line [32]byte
	n, _ := out.Read(line[:])
	if v.child, err = strconv.Atoi(strings.TrimSpace(string(line[:n]))); err != nil {
		t.Fatalf("child pid %q: %v", line[:n], err)
	}
	go func() { _ = cmd.Wait(); close(v.exited) }()
	t.Cleanup(func() {
		_ = unix.Kill(-v.pid, unix.SIGKILL)
		<-v.exited
	})
	if v.start, err = startTimeOf(v.pid); err != nil {
		t.Fatal(err)
	}
	return v
}

func startTimeOf(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return strconv.ParseUint(f[19], 10, 64)
}

// alive is false for a process gone or a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return f[0] != "Z"
}

// startGuard starts the guard as the server does, reaping it in the test.
func startGuard(t *testing.T, o guard.Options, log *os.File) (pid int, exited chan struct{}) {
	t.Helper()
	pid, err := guard.Start(guard.Self{}, o, log)
	if err != nil {
		t.Fatal(err)
	}
	exited = make(chan struct{})
	go func() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		close(exited)
	}()
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		<-exited
	})
	return pid, exited
}

// TestGuardEndsKernelAfterGrace: while a server holds the lock the kernel
// runs past the grace; once the lock is released, the guard ends the
// kernel's whole group after the grace, and exits.
func TestGuardEndsKernelAfterGrace(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), guard.LockFile)
	lock, err := guard.Hold(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := guard.Hold(lockPath); err == nil {
		t.Fatal("a second Hold of the same lock succeeded: two servers could share a data dir")
	}
	v := startVictim(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "kernel.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	grace := time.Second
	marker := filepath.Join(t.TempDir(), guard.OrphanedFile)
	gpid, gexited := startGuard(t, guard.Options{Kernel: "k1", Pid: v.pid, StartTime: v.start, Lock: lockPath, Grace: grace,
		ProbeEvery: 100 * time.Millisecond, TermGrace: time.Second, Marker: marker}, logf)
	if !guard.Running(guard.Self{}, v.pid, v.start, lockPath) {
		t.Fatal("guard.Running does not find the guard just started")
	}
	// Held: the kernel outlives several graces.
	select {
	case <-v.exited:
		t.Fatal("the guard ended the kernel while the server held the lock")
	case <-gexited:
		t.Fatal("the guard exited while its kernel ran")
	case <-time.After(3 * grace):
	}
	rss := vmRSS(gpid)
	t.Logf("guard RSS %d KiB (test binary)", rss)
	released := time.Now()
	if err := lock.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Closed(t, v.exited, 10*time.Second, "the kernel's end after the grace")
	// NB: the grace counts from the last probe that saw the lock held.
	if took := time.Since(released); took < grace-100*time.Millisecond {
		t.Fatalf("the kernel ended %s after the lock was released: before the grace (%s)", took, grace)
	}
	testkit.WaitUntil(t, 5*time.Second, "the kernel's child ended with its group", func() (bool, string) {
		return !alive(v.child), "child " + strconv.Itoa(v.child) + " alive"
	})
	testkit.Closed(t, gexited, 5*time.Second, "the guard's exit")
	if m, ok := guard.ReadOrphaned(marker); !ok || m.Grace != grace || m.Ended.Before(released) {
		t.Errorf("orphan marker after the guard ended the kernel: %+v, %v (want grace %s, ended after %s)", m, ok, grace, released)
	}
	data, _ := os.ReadFile(logf.Name())
	for _, want := range []string{"no server holds", "ending the kernel"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("kernel log lacks %q:\n%s", want, data)
		}
	}
}

// TestGuardStaysWhenServerReturns: a server taking the lock within the
// grace keeps the kernel.
func TestGuardStaysWhenServerReturns(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), guard.LockFile)
	lock, err := guard.Hold(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	v := startVictim(t)
	grace := 2 * time.Second
	_, gexited := startGuard(t, guard.Options{Kernel: "k2", Pid: v.pid, StartTime: v.start, Lock: lockPath, Grace: grace,
		ProbeEvery: 100 * time.Millisecond}, nil)
	_ = lock.Close()
	time.Sleep(grace / 2) // NB: the server is away for half the grace: what the test is about, not a synchronisation
	lock, err = guard.Hold(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	select {
	case <-v.exited:
		t.Fatal("the guard ended the kernel although a server came back within the grace")
	case <-gexited:
		t.Fatal("the guard exited while its kernel ran")
	case <-time.After(2 * grace):
	}
	// The kernel exits on its own: the guard follows.
	_ = unix.Kill(-v.pid, unix.SIGKILL)
	testkit.Closed(t, gexited, 5*time.Second, "the guard's exit after its kernel's")
}

// TestGuardIgnoresReusedPid: a start time that does not match (the pid
// now belongs to another process) is never signalled.
func TestGuardIgnoresReusedPid(t *testing.T) {
	v := startVictim(t)
	lockPath := filepath.Join(t.TempDir(), guard.LockFile) // never held
	_, gexited := startGuard(t, guard.Options{Kernel: "k3", Pid: v.pid, StartTime: v.start + 1, Lock: lockPath,
		Grace: 100 * time.Millisecond, ProbeEvery: 50 * time.Millisecond}, nil)
	testkit.Closed(t, gexited, 5*time.Second, "the guard's exit (not its kernel)")
	if !alive(v.pid) {
		t.Fatal("the guard signalled a process whose start time is not its kernel's")
	}
}

func vmRSS(pid int) int {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// TestRunningIgnoresFakeGuards: a process a kernel starts with a guard's
// command line (another binary), or this binary guarding another lock,
// is not the kernel's guard: a server re-attaching the kernel starts a
// real one.
func TestRunningIgnoresFakeGuards(t *testing.T) {
	lockPath := filepath.Join(t.TempDir(), guard.LockFile)
	v := startVictim(t)
	args := []string{guard.Subcommand, "--kernel", "k1", "--pid", strconv.Itoa(v.pid), "--start-time",
		strconv.FormatUint(v.start, 10), "--lock", lockPath, "--grace", "1h"}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	otherLock := append(append([]string{}, args[:8]...), filepath.Join(t.TempDir(), guard.LockFile), "--grace", "1h")
	// NB: sh runs the script named kernel-guard (in its working dir): its
	// command line is exactly a guard's; its binary is a shell.
	scripts := t.TempDir()
	if err := os.WriteFile(filepath.Join(scripts, guard.Subcommand), []byte("sleep 600; :\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, fake := range []*exec.Cmd{
		{Path: "/bin/bash", Dir: scripts, Args: append([]string{"bash", "-c", `exec -a mcp-jupyter /bin/sh "$@"`, "bash"}, args...)},
		// this binary, a real guard, but of another lock
		{Path: self, Args: append([]string{self}, otherLock...)},
	} {
		fake.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := fake.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Kill(-fake.Process.Pid, unix.SIGKILL); _ = fake.Wait() })
	}
	testkit.WaitUntil(t, 10*time.Second, "the fakes run with a guard's command line", func() (bool, string) {
		n := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if bytes.Contains(b, []byte("--pid\x00"+strconv.Itoa(v.pid)+"\x00")) && bytes.Contains(b, []byte(guard.Subcommand)) {
				n++
			}
		}
		return n >= 2, strconv.Itoa(n) + " processes with the kernel's pid on a guard's command line"
	})
	if guard.Running(guard.Self{}, v.pid, v.start, lockPath) {
		t.Fatal("a fake guard (another binary, or another lock) counts as the kernel's guard")
	}
	lock, err := guard.Hold(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	startGuard(t, guard.Options{Kernel: "k1", Pid: v.pid, StartTime: v.start, Lock: lockPath, Grace: time.Hour}, nil)
	testkit.WaitUntil(t, 10*time.Second, "the real guard counts", func() (bool, string) {
		return guard.Running(guard.Self{}, v.pid, v.start, lockPath), "not found"
	})
}

// TestLockRefusesSymlinkAndFIFO: a symlink at the lock's path is not
// followed (the server would create or lock its target), and a FIFO there
// makes neither the server nor a guard's probe hang in open: both are
// refused with an error that says what to do.
func TestLockRefusesSymlinkAndFIFO(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.lock")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo} {
		done := make(chan struct{})
		var holdErr, heldErr error
		go func() {
			defer close(done)
			var l *guard.Lock
			if l, holdErr = guard.Hold(path); l != nil {
				_ = l.Close()
			}
			_, heldErr = guard.Held(path)
		}()
		testkit.Closed(t, done, 5*time.Second, "Hold and Held of "+filepath.Base(path)+" return")
		for name, err := range map[string]error{"Hold": holdErr, "Held": heldErr} {
			if err == nil || !strings.Contains(err.Error(), "remove it") {
				t.Errorf("%s(%s) = %v, want a refusal saying to remove it", name, filepath.Base(path), err)
			}
		}
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("Hold through a symlink created its target: %v", err)
	}
}
