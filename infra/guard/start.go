package guard

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Self is how to run a guard: the server's own binary (default
// os.Executable()) with Subcommand.
type Self struct {
	Path string
}

// env is a guard's whole environment. NB: nothing of the server's: no
// MCP_* variable, no token, no key or data dir path beyond the lock's (on
// its command line). The Go runtime needs none of it; one thread is plenty.
var env = []string{"GOMAXPROCS=1", "GOGC=50"}

// Start starts the guard of the kernel o describes, in a session of its
// own (a signal to the kernel's group or the server's terminal never
// reaches it), working in /, stdin /dev/null, stdout and stderr to log
// (the kernel's log file; nil: /dev/null). It returns the guard's pid:
// the caller reaps it (it is the caller's child).
func Start(self Self, o Options, log *os.File) (int, error) {
	if o.Grace <= 0 {
		return 0, fmt.Errorf("start kernel guard: no grace")
	}
	path := self.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return 0, fmt.Errorf("start kernel guard: find this binary: %w", err)
		}
		path = exe
	}
	cmd := exec.Command(path, append([]string{Subcommand}, o.args()...)...)
	cmd.Env = env
	cmd.Dir = "/"
	if log != nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start kernel guard: %w", err)
	}
	pid := cmd.Process.Pid
	// NB: reaped by the caller (wait4 once its pidfd says it exited), not
	// through os.Process, which would hold it here.
	_ = cmd.Process.Release()
	return pid, nil
}
