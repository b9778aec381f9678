package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// allFS is every filesystem right go-landlock knows; the ruleset handles
// the subset the running kernel supports (best effort), so a right added
// by a newer ABI (resolve_unix in ABI 9) is granted wherever the rest is.
const allFS = uint64(ll.AccessFSResolveUnix<<1) - 1

// allScopes: signals and abstract unix sockets. NB: pathname unix sockets
// are not a scope; they follow the file rules (kept directories allow them).
const allScopes = ll.ScopeAbstractUnixSocket | ll.ScopeSignal

// Main is the launcher: it parses the arguments Start built, confines
// itself as the plan says, reports what it did on the report descriptor and
// execve()s the kernel. It returns only on failure, with an exit code for
// os.Exit (126: confinement refused or failed, 127: exec failed).
func Main(args []string) int {
	plan, reportFD, argv, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mcp-jupyter %s: %v\n", Subcommand, err)
		return 126
	}
	// NB: the report pipe must not reach the kernel: its closing at execve
	// is how Start learns that the kernel runs.
	syscall.CloseOnExec(reportFD)
	out := os.NewFile(uintptr(reportFD), "sandbox-report")
	fail := func(code int, err error) int {
		writeReport(out, Report{Error: err.Error()})
		fmt.Fprintf(os.Stderr, "mcp-jupyter %s: %v\n", Subcommand, err)
		return code
	}
	// Confinement applies to this thread; execve from this same thread.
	runtime.LockOSThread()
	rep, restrict, err := confine(plan)
	if err != nil {
		return fail(126, err)
	}
	if err := restrict(); err != nil {
		return fail(126, err)
	}
	writeReport(out, rep)
	err = syscall.Exec(plan.Exe, argv, os.Environ())
	return fail(127, fmt.Errorf("exec %s: %w", plan.Exe, err))
}

func parseArgs(args []string) (Plan, int, []string, error) {
	var plan Plan
	fd := -1
	for len(args) > 0 {
		switch a := args[0]; a {
		case "--plan", "--report-fd":
			if len(args) < 2 {
				return plan, 0, nil, fmt.Errorf("%s needs a value", a)
			}
			if a == "--plan" {
				if err := json.Unmarshal([]byte(args[1]), &plan); err != nil {
					return plan, 0, nil, fmt.Errorf("decode plan: %w", err)
				}
			} else {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 3 {
					return plan, 0, nil, fmt.Errorf("--report-fd %q: give a descriptor number of 3 or more", args[1])
				}
				fd = n
			}
			args = args[2:]
		case "--":
			argv := args[1:]
			if len(argv) == 0 {
				return plan, 0, nil, errors.New("no kernel command after --")
			}
			if fd < 0 {
				return plan, 0, nil, errors.New("no --report-fd")
			}
			if plan.Exe == "" {
				return plan, 0, nil, errors.New("the plan names no executable")
			}
			return plan, fd, argv, plan.validate()
		default:
			return plan, 0, nil, fmt.Errorf("unexpected argument %q (this subcommand is started by the server, not by hand)", a)
		}
	}
	return plan, 0, nil, errors.New("no -- before the kernel command")
}

func writeReport(f *os.File, r Report) {
	b, _ := json.Marshal(r)
	_, _ = f.Write(append(b, '\n'))
}

// confine applies what must happen before Landlock (the mount cover, the
// capability drop) and returns the Landlock step, which must come last
// (mounts are refused inside a Landlock domain) on the exec'ing thread.
func confine(plan Plan) (Report, func() error, error) {
	var rep Report
	if wd, err := os.Getwd(); err == nil && hiddenBy(plan.Hide, wd) != "" {
		return rep, nil, fmt.Errorf("the kernel's working directory %s is inside the hidden %s: start kernels elsewhere", wd, hiddenBy(plan.Hide, wd))
	}
	if plan.Mount {
		if err := coverHidden(plan); err != nil {
			return rep, nil, err
		}
		if err := freezeKernelTunables(); err != nil {
			return rep, nil, err
		}
		rep.MountNamespace = true
	}
	if os.Geteuid() == 0 {
		if err := dropCaps(); err != nil {
			rep.Warning = "root kernel keeps its capabilities: " + err.Error()
		} else {
			rep.CapsDropped = true
		}
	}
	abi := 0
	if !plan.without("landlock") {
		if v, err := ll.LandlockGetABIVersion(); err == nil {
			abi = v
		}
	}
	if abi <= 0 {
		if plan.Mode == ModeRequired {
			return rep, nil, errors.New("--kernel-sandbox=required but this Linux kernel offers no Landlock (5.13+ with landlock in the lsm= boot list): " +
				"kernels cannot be kept from the data dir and the server's /proc files; refusing to start the kernel")
		}
		if rep.Warning == "" {
			rep.Warning = "no Landlock on this Linux kernel: the kernel can read the data dir (token, checkpoint keys, event log) unless it runs as another user"
		}
		return rep, func() error { return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, nil
	}
	gs, siblings, err := grants(plan, rep.MountNamespace, allFS, os.ReadDir)
	if err != nil {
		return rep, nil, fmt.Errorf("build Landlock rules: %w", err)
	}
	rules := make([]landlock.Rule, 0, len(gs))
	for _, g := range gs {
		rules = append(rules, landlock.PathAccess(landlock.AccessFSSet(g.access), g.path))
	}
	cfg, err := landlock.NewConfig(landlock.AccessFSSet(allFS), landlock.ScopedSet(allScopes))
	if err != nil {
		return rep, nil, fmt.Errorf("Landlock config: %w", err)
	}
	fd, flags, err := cfg.BestEffort().NewRulesetFD(rules...)
	if err != nil {
		return rep, nil, fmt.Errorf("build Landlock ruleset: %w", err)
	}
	if fd < 0 {
		return rep, nil, errors.New("Landlock ruleset is empty: nothing would be enforced")
	}
	rep.LandlockABI = min(abi, 11)
	if abi >= 6 {
		rep.Scoped = []string{"abstract_unix_socket", "signal"}
	}
	if siblings {
		rep.Siblings = true
		rep.Warning = "Landlock without a mount namespace: directories on the way to the data dir can be listed but take no new files; move --data-dir out of the notebook root"
	}
	return rep, func() error {
		defer unix.Close(fd)
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
		if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
			return fmt.Errorf("enforce Landlock ruleset: %w", err)
		}
		return nil
	}, nil
}
