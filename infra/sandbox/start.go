package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Self is how to run the launcher: the server's own binary and the hidden
// subcommand. The zero value means os.Executable() and Subcommand.
type Self struct {
	Path string
	Args []string // after Path; default [Subcommand]
}

// RefusedError is returned when the launcher refused or failed to confine
// the kernel: the kernel did not start.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "sandbox the kernel: " + e.Reason }

// ReportTimeout bounds the wait for the launcher's report when ctx has no
// deadline.
const ReportTimeout = 30 * time.Second

// Start starts cmd (a kernel command built as usual: Path, Args, Env, Dir,
// stdio, SysProcAttr) through the launcher confined by plan, and returns
// once the launcher has confined itself and execve()d the kernel — the
// process cmd.Process is then the kernel. On error no process is left.
//
// NB: cmd's Stdin, Stdout and Stderr must be nil or *os.File (a kernel's
// are /dev/null and its log file): the process is started from a copy of
// cmd, so wait for it with cmd.Process.Wait (or wait4), never cmd.Wait.
//
// As root with CAP_SYS_ADMIN the launcher is given its own mount namespace
// (unless plan.Without has "mount"). Where that fails — the kernel refuses
// the namespace (EPERM: seccomp, a container without CAP_SYS_ADMIN) or a
// mount in it fails — Start retries without, on Landlock's sibling rules,
// and the Report's Warning says why.
func Start(ctx context.Context, cmd *exec.Cmd, self Self, plan Plan) (Report, error) {
	if cmd.Err != nil {
		return Report{}, cmd.Err
	}
	for _, s := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if _, ok := s.(*os.File); s != nil && !ok {
			return Report{}, fmt.Errorf("sandbox: the kernel's stdio must be files, not %T", s)
		}
	}
	if self.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return Report{}, fmt.Errorf("find the launcher (this binary): %w", err)
		}
		self.Path = exe
	}
	if self.Args == nil {
		self.Args = []string{Subcommand}
	}
	plan.Exe = cmd.Path
	plan.Mount = canMount() && !plan.without("mount")
	c, rep, err := start(ctx, cmd, self, plan)
	var refused *RefusedError
	if err != nil && plan.Mount && (errors.Is(err, syscall.EPERM) || errors.As(err, &refused)) {
		first := err
		plan.Mount = false
		c, rep, err = start(ctx, cmd, self, plan)
		if err == nil {
			rep.Warning = strings.TrimPrefix(rep.Warning+"; ", "; ") + "no mount namespace (" + first.Error() + ")"
		}
	}
	if err != nil {
		return rep, err
	}
	cmd.Process = c.Process
	return rep, nil
}

func canMount() bool { return os.Geteuid() == 0 && hasCap(unix.CAP_SYS_ADMIN) }

// start runs one attempt on a copy of cmd (an exec.Cmd starts once).
func start(ctx context.Context, orig *exec.Cmd, self Self, plan Plan) (*exec.Cmd, Report, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, Report{}, fmt.Errorf("make the sandbox report pipe: %w", err)
	}
	defer r.Close()
	pj, err := json.Marshal(plan)
	if err != nil {
		_ = w.Close()
		return nil, Report{}, fmt.Errorf("encode sandbox plan: %w", err)
	}
	extra := append(append([]*os.File(nil), orig.ExtraFiles...), w)
	reportFD := 3 + len(extra) - 1
	args := append([]string{self.Path}, self.Args...)
	args = append(args, "--plan", string(pj), "--report-fd", strconv.Itoa(reportFD), "--")
	args = append(args, orig.Args...)
	c := &exec.Cmd{Path: self.Path, Args: args, Env: orig.Env, Dir: orig.Dir, Stdin: orig.Stdin,
		Stdout: orig.Stdout, Stderr: orig.Stderr, ExtraFiles: extra}
	attr := syscall.SysProcAttr{}
	if orig.SysProcAttr != nil {
		attr = *orig.SysProcAttr
	}
	if plan.Mount {
		// NB: Go makes "/" recursively private in the child after
		// unshare, so the launcher's mounts never reach the server.
		attr.Unshareflags |= syscall.CLONE_NEWNS
	}
	c.SysProcAttr = &attr
	err = c.Start()
	_ = w.Close() // the launcher holds its own copy
	if err != nil {
		return nil, Report{}, fmt.Errorf("start the kernel launcher %s: %w", self.Path, err)
	}
	rep, err := readReport(ctx, r)
	if err == nil && rep.Error != "" {
		err = &RefusedError{Reason: rep.Error}
	}
	if err != nil {
		_ = c.Process.Kill()
		_ = c.Wait()
		return nil, rep, err
	}
	return c, rep, nil
}

// readReport reads the launcher's report lines until the pipe closes (at
// the kernel's execve, or the launcher's exit). An error line wins.
func readReport(ctx context.Context, r *os.File) (Report, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(ReportTimeout)
	}
	_ = r.SetReadDeadline(deadline)
	var rep Report
	got := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		var line Report
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return rep, fmt.Errorf("read sandbox report: %w", err)
		}
		if got && line.Error == "" {
			continue
		}
		rep, got = line, true
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("wait for the kernel launcher: %w", err)
	}
	if !got {
		return rep, errors.New("the kernel launcher exited without a report: is the sandbox subcommand dispatched in main (or TestMain)?")
	}
	return rep, nil
}

// Availability is what this machine offers kernels, for the start-up
// warning and doctor.
type Availability struct {
	LandlockABI int  // 0: none
	Mount       bool // root with CAP_SYS_ADMIN: a mount namespace per kernel
	Root        bool
}

// Probe reports what Start would be able to apply here.
func Probe() Availability {
	a := Availability{Mount: canMount(), Root: os.Geteuid() == 0}
	if v, err := ll.LandlockGetABIVersion(); err == nil {
		a.LandlockABI = v
	}
	return a
}

// Protected reports whether kernels would be confined (Landlock present).
func (a Availability) Protected() bool { return a.LandlockABI > 0 }

func (a Availability) String() string {
	switch {
	case a.LandlockABI > 0 && a.Mount:
		return fmt.Sprintf("Landlock ABI %d and a mount namespace per kernel (root): kernels cannot reach the data dir or the server's /proc files", a.LandlockABI)
	case a.LandlockABI > 0:
		return fmt.Sprintf("Landlock ABI %d (no mount namespace: directories on the way to the data dir take no new files from kernels; keep --data-dir outside the notebook root)", a.LandlockABI)
	default:
		return "no Landlock on this Linux kernel: kernels can read the data dir (MCP token, checkpoint keys, event log) and, as root, the server's /proc files; " +
			"use Linux 5.13+ with landlock in lsm=, or run kernels' server as a dedicated user, or set --kernel-sandbox=required to refuse"
	}
}
