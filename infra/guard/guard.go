package guard

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Subcommand is the hidden subcommand that runs a guard.
const Subcommand = "kernel-guard"

// Defaults of Options.
const (
	// ProbeEvery is how often the lock is probed.
	ProbeEvery = time.Second
	// TermGrace is how long the kernel has after SIGTERM before SIGKILL.
	TermGrace = 5 * time.Second
)

// Options is what a guard watches.
type Options struct {
	// Kernel is the kernel's id, for the guard's log lines only.
	Kernel string
	// Pid and StartTime (field 22 of /proc/<pid>/stat) identify the kernel
	// process across pid reuse.
	Pid       int
	StartTime uint64
	// Lock is the server lock's path.
	Lock string
	// Marker, when set, is where the guard writes an Orphaned marker
	// (OrphanedFile in the kernel's directory) before it ends the kernel.
	Marker string
	// Grace is how long no server may hold the lock before the guard ends
	// the kernel (> 0).
	Grace time.Duration
	// ProbeEvery and TermGrace default to the constants above.
	ProbeEvery time.Duration
	TermGrace  time.Duration
}

func (o Options) withDefaults() Options {
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = ProbeEvery
	}
	if o.TermGrace <= 0 {
		o.TermGrace = TermGrace
	}
	return o
}

// args is o as the guard's command line (after the subcommand).
func (o Options) args() []string {
	a := []string{"--kernel", o.Kernel, "--pid", strconv.Itoa(o.Pid), "--start-time", strconv.FormatUint(o.StartTime, 10),
		"--lock", o.Lock, "--grace", o.Grace.String()}
	if o.Marker != "" {
		a = append(a, "--marker", o.Marker)
	}
	if o.ProbeEvery > 0 {
		a = append(a, "--probe", o.ProbeEvery.String())
	}
	if o.TermGrace > 0 {
		a = append(a, "--term-grace", o.TermGrace.String())
	}
	return a
}

// parseArgs reads a guard's command line.
func parseArgs(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet(Subcommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Kernel, "kernel", "", "kernel id")
	fs.IntVar(&o.Pid, "pid", 0, "kernel pid")
	fs.Uint64Var(&o.StartTime, "start-time", 0, "kernel start time")
	fs.StringVar(&o.Lock, "lock", "", "server lock path")
	fs.DurationVar(&o.Grace, "grace", 0, "orphan grace")
	fs.StringVar(&o.Marker, "marker", "", "orphan marker path")
	fs.DurationVar(&o.ProbeEvery, "probe", 0, "probe interval")
	fs.DurationVar(&o.TermGrace, "term-grace", 0, "SIGTERM to SIGKILL")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.Pid <= 1 || o.StartTime == 0 || o.Lock == "" || o.Grace <= 0 {
		return o, fmt.Errorf("need --pid (> 1), --start-time, --lock and --grace (> 0)")
	}
	return o, nil
}

// Main runs a guard from its command line; it returns the exit code. Its
// lines go to stderr (the kernel's log file).
func Main(args []string) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcp-jupyter %s: %v\n", Subcommand, err)
		return 2
	}
	if err := Run(context.Background(), o, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mcp-jupyter %s: kernel %s: %v\n", Subcommand, o.Kernel, err)
		return 1
	}
	return 0
}

// Run guards the kernel until it exits (nil), until it was ended after the
// grace without a server (nil), or until ctx ends. It writes one line to
// w when the server goes, when one holds the lock again, and when it ends
// the kernel.
func Run(ctx context.Context, o Options, w io.Writer) error {
	o = o.withDefaults()
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "%s mcp-jupyter %s: kernel %s (pid %d): %s\n", time.Now().UTC().Format(time.RFC3339),
			Subcommand, o.Kernel, o.Pid, fmt.Sprintf(format, args...))
	}
	pidfd, err := unix.PidfdOpen(o.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("open pidfd %d: %w", o.Pid, err)
	}
	defer unix.Close(pidfd)
	// NB: after the pidfd is open, so a matching start time means the fd is
	// the kernel's and not a later owner's of the pid.
	if st, err := startTime(o.Pid); err != nil || st != o.StartTime {
		return nil // exited (or the pid is another process's now): nothing to guard
	}
	lastHeld := time.Now() // NB: the server that started us held the lock
	away, lastErr := false, ""
	for {
		exited, err := waitExit(pidfd, o.ProbeEvery)
		if err != nil {
			return err
		}
		if exited {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		held, err := Held(o.Lock)
		if err != nil && err.Error() != lastErr {
			say("%v (counted as no server)", err) // NB: once per distinct error, not every probe
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
		now := time.Now()
		switch {
		case held:
			if away {
				say("a server holds %s again: the kernel stays", o.Lock)
			}
			lastHeld, away = now, false
		case !away:
			away = true
			say("no server holds %s: ending the kernel after %s (--orphan-grace) unless a server starts", o.Lock, o.Grace)
		}
		if !held && now.Sub(lastHeld) >= o.Grace {
			say("no server for %s (--orphan-grace): ending the kernel (SIGTERM, SIGKILL after %s)", o.Grace, o.TermGrace)
			if o.Marker != "" {
				// NB: before the kernel ends, so no later server finds it
				// gone without knowing why; a failed write is said, and
				// the kernel is ended all the same.
				if err := writeOrphaned(o.Marker, Orphaned{Ended: now.UTC(), Grace: o.Grace}); err != nil {
					say("%v", err)
				}
			}
			return endKernel(pidfd, o)
		}
	}
}

// waitExit waits up to d for the kernel's pidfd to say it exited.
func waitExit(pidfd int, d time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left < 0 {
			left = 0
		}
		n, err := unix.Poll(fds, int(left.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("wait on pidfd: %w", err)
		}
		return n > 0, nil
	}
}

// endKernel sends SIGTERM to the kernel's process group, then SIGKILL
// after TermGrace if the kernel still runs. The pidfd proves the pid is
// still the kernel's: a group is signalled only while its leader lives.
func endKernel(pidfd int, o Options) error {
	if exited, _ := waitExit(pidfd, 0); exited {
		return nil
	}
	if err := unix.Kill(-o.Pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		// not a group leader (it left its session): the process alone
		if err := unix.PidfdSendSignal(pidfd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("SIGTERM kernel pid %d: %w", o.Pid, err)
		}
	}
	if exited, err := waitExit(pidfd, o.TermGrace); err != nil || exited {
		return err
	}
	if err := unix.Kill(-o.Pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("SIGKILL kernel pid %d: %w", o.Pid, err)
		}
	}
	_, err := waitExit(pidfd, o.TermGrace)
	return err
}

// startTime is field 22 of /proc/<pid>/stat.
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')') // NB: the command name may hold spaces and parentheses
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	return strconv.ParseUint(fields[22-3], 10, 64)
}
