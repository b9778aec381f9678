package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

// errProblems: doctor found problems (already printed, one per line).
var errProblems = errors.New("doctor found problems")

// runDoctor checks what serve needs, without starting it: the data dir, the
// event log (opened read-only and decoded in full), a Python with ipykernel
// and dill, the port, orphaned kernel processes of a previous run, and the
// machine's resources. Each line is one finding; a problem says what to do.
// With --reap it kills the orphans (never anything the log did not start).
func runDoctor(ctx context.Context, args []string, out io.Writer) error {
	reap := false
	var rest []string
	for _, a := range args {
		if a == "--reap" || a == "-reap" {
			reap = true
			continue
		}
		rest = append(rest, a)
	}
	cfg, err := parseConfig("doctor", rest)
	if err != nil {
		return err
	}
	fs := doctor(ctx, cfg, reap)
	problems := 0
	for _, f := range fs {
		fmt.Fprintln(out, f)
		if !f.OK {
			problems++
		}
	}
	if problems > 0 {
		return fmt.Errorf("%w: %d", errProblems, problems)
	}
	return nil
}

func doctor(ctx context.Context, cfg config, reap bool) []finding {
	var fs []finding
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
		f := finding{Check: "data dir", OK: true, Detail: cfg.DataDir + " does not exist yet; serve creates it"}
		if parent := checkDataDir(existingParent(cfg.DataDir)); !parent.OK {
			f = parent
			f.Detail = cfg.DataDir + " does not exist and " + parent.Detail
		}
		fs = append(fs, f)
	} else {
		fs = append(fs, checkDataDir(cfg.DataDir))
	}
	logF, procs := checkLog(ctx, filepath.Join(cfg.DataDir, "events"))
	fs = append(fs, logF)
	fs = append(fs, checkPrincipals(cfg.DataDir))
	fs = append(fs, checkOAuth(ctx, cfg))
	fs = append(fs, checkPython(ctx, jupyter.DefaultSearchPath()))
	fs = append(fs, checkSandbox(cfg))
	fs = append(fs, checkPort(cfg.Addr))
	fs = append(fs, checkCluster(cfg))
	if procs != nil {
		fs = append(fs, checkOrphans(procs, reap)...)
	}
	fs = append(fs, checkPool(cfg, procs, reap)...)
	fs = append(fs, checkResources(cfg.DataDir))
	return fs
}

// checkLog opens the log read-only and decodes every event, folding the
// kernel processes on the way. procs is nil when the log could not be read.
func checkLog(ctx context.Context, dir string) (finding, *procTable) {
	f := finding{Check: "event log"}
	if entries, err := os.ReadDir(dir); errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0) {
		f.OK, f.Detail = true, "none yet in "+dir+"; the first start creates it"
		return f, newProcTable()
	}
	l, err := eventlog.Open(dir, eventlog.Options{ReadOnly: true})
	if err != nil {
		var inUse *eventlog.InUseError
		if errors.As(err, &inUse) {
			f.OK, f.Warn = true, true
			f.Detail = fmt.Sprintf("held by a running server (pid %d), which verified it at its start", inUse.Pid)
			f.Fix = "stop that server to verify the log offline and look for orphaned kernels"
			return f, nil
		}
		f.Detail = fmt.Sprintf("%s does not open (%v)", dir, err)
		f.Fix = "restore the data dir from a backup (docs/operations.md), or move it aside to start empty"
		return f, nil
	}
	defer l.Close()
	if t := l.Tail(); t.Dropped {
		f.Detail = fmt.Sprintf("%s: %s", dir, t)
		f.Fix = "start the server once to record the loss (it goes on after the last sequence it may have issued), or restore the data dir from a backup (docs/operations.md)"
		return f, nil
	}
	procs := newProcTable()
	started := time.Now()
	n := 0
	err = l.Read(ctx, 0, l.Last(), func(e events.Event) error {
		n++
		if procs.Wants(e.Type) != projections.Skip {
			return procs.Apply(e)
		}
		return nil
	})
	if err != nil {
		f.Detail = fmt.Sprintf("%s: %d events read, then %v", dir, n, err)
		f.Fix = "a newer binary may know the event (upgrade mcp-jupyter); otherwise restore the data dir from a backup (docs/operations.md)"
		var ce *eventlog.CorruptStoreError
		if errors.As(err, &ce) {
			f.Detail = fmt.Sprintf("%s: %d events read, then file %s is damaged (%v)", dir, n, ce.File, ce.Err)
			f.Fix = "stop the server, copy the data dir aside and restore it from a backup (docs/operations.md)"
		}
		return f, nil
	}
	f.OK = true
	f.Detail = fmt.Sprintf("%s: %d events (sequence %d..%d) decode; %s on disk; read in %s", dir, n, l.First(), l.Last(),
		eventlog.HumanSize(l.DiskUsage()), time.Since(started).Round(time.Millisecond))
	return f, procs
}

// checkOrphans reports the kernel processes the log knows: current ones
// serve re-attaches, retired ones still alive are orphans.
func checkOrphans(procs *procTable, reap bool) []finding {
	var fs []finding
	running, gone := 0, 0
	for _, p := range procs.Current() {
		if alive(p) {
			running++
		} else {
			gone++
		}
	}
	fs = append(fs, finding{Check: "kernels", OK: true,
		Detail: fmt.Sprintf("%d kernel process(es) running will be re-attached at start; %d gone will be recorded lost", running, gone)})
	orphans := procs.Orphans()
	if len(orphans) == 0 {
		return append(fs, finding{Check: "orphans", OK: true, Detail: "no orphaned kernel process of a previous run"})
	}
	if reap {
		n := reapOrphans(orphans, slog.New(slog.DiscardHandler))
		return append(fs, finding{Check: "orphans", OK: n == len(orphans),
			Detail: fmt.Sprintf("reaped %d of %d orphaned kernel process(es)", n, len(orphans)),
			Fix:    "kill the rest by hand (ps -o pid,lstart,cmd -p <pid>); their pids are in the log"})
	}
	for _, p := range orphans {
		fs = append(fs, finding{Check: "orphans", OK: true, Warn: true,
			Detail: fmt.Sprintf("kernel %s's process pid %d (start time %d) is still running though the log retired it", p.Kernel, p.Pid, p.Start),
			Fix:    "serve reaps it at start, or run `mcp-jupyter doctor --reap` now"})
	}
	return fs
}
