package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

const eventsUsage = `Usage: mcp-jupyter events <command> [flags] [args]

Read the event log: the whole history of every kernel and execution.

Commands:
  tail [-f] [--kernel K] [--execution E] [--type T[,T]] [--principal P] [--since SEQ|TIME] [--json]
                        one line per event (JSON Lines with --json); -f follows live
  show <seq | execution id> [--principal P]
                        the story of one execution, queued to finished, outputs in order
  replay --until <seq | time> [--json]
                        the queue and the kernels as they were at that moment
  verify                decode every record, check sequences and replay every read model
  export [--until SEQ|TIME] [--principal P] [--out FILE]
                        the log as JSON Lines (attach it to a bug report); with
                        --principal only what P caused (for reading: not importable)
  import <FILE | ->     load an exported log into an empty --data-dir (verified first)

Where the log is read from:
  A stopped server's data dir is opened read-only. When a server is running on it,
  the commands read through that server's HTTP API (GET /events, same bearer token
  as /mcp) at --addr, without stopping it.

Common flags (each also read from the environment variable shown):
  --data-dir DIR   the server's data dir ($MCP_DATA_DIR, default ./.mcp-jupyter)
  --addr HOST:PORT the running server's HTTP address ($MCP_ADDR, default 127.0.0.1:3000)
  --token TOKEN    bearer token for --addr (default: read from <data dir>/mcp-token)

--principal P keeps the events principal P caused (its kernels' lifecycle, its
executions and their outputs, its shares, checkpoints and notebook edits);
--principal - keeps those nobody caused (the server's own, and events written
before principals existed).

Times are RFC 3339 (2026-11-27T12:00:00Z) or a duration ago (15m, 2h).
`

// eventsFlags are the flags every events command takes.
type eventsFlags struct {
	dataDir, addr, token string
}

func (f *eventsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", envOr("MCP_DATA_DIR", "./.mcp-jupyter"), "the server's data dir ($MCP_DATA_DIR)")
	fs.StringVar(&f.addr, "addr", envOr("MCP_ADDR", "127.0.0.1:3000"), "a running server's HTTP address ($MCP_ADDR)")
	fs.StringVar(&f.token, "token", os.Getenv("MCP_TOKEN"), "bearer token for --addr (default: <data dir>/mcp-token)")
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// eventsIO is where a command writes: stdout for results, stderr for
// progress. Tests give buffers.
type eventsIO struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// runEvents dispatches `mcp-jupyter events <command>`.
func runEvents(ctx context.Context, args []string, sio eventsIO) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(sio.stdout, eventsUsage)
		if len(args) == 0 {
			return errors.New("events: give a command")
		}
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "tail":
		return runEventsTail(ctx, rest, sio)
	case "show":
		return runEventsShow(ctx, rest, sio)
	case "replay":
		return runEventsReplay(ctx, rest, sio)
	case "verify":
		return runEventsVerify(ctx, rest, sio)
	case "export":
		return runEventsExport(ctx, rest, sio)
	case "import":
		return runEventsImport(ctx, rest, sio)
	}
	return fmt.Errorf("events: unknown command %q (give tail, show, replay, verify, export or import; see `mcp-jupyter events help`)", cmd)
}

// parseFlags parses flags placed before or after positional arguments, and
// returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, fmt.Errorf("%s: see `mcp-jupyter events help`", fs.Name())
			}
			return nil, fmt.Errorf("%s: %w", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// source is where events commands read the log: *eventlog.Log opened
// read-only on a stopped server's data dir, or httpSource through a running
// server. Scan and FollowRaw hand events with Raw set (Payload possibly
// nil); Raw aliases the source's buffers during fn.
type source interface {
	First() uint64
	Last() uint64
	Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error
	FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error
	ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error
	Get(seq uint64) (events.Event, error)
	Close() error
}

// openSource opens the data dir's log read-only, or, when a server owns it,
// reaches the log through that server's HTTP API.
func openSource(ctx context.Context, f eventsFlags) (source, error) {
	dir := filepath.Join(f.dataDir, "events")
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no event log in %s: give the server's --data-dir (or set MCP_DATA_DIR)", f.dataDir)
	}
	l, err := eventlog.Open(dir, eventlog.Options{ReadOnly: true})
	if err == nil {
		return l, nil
	}
	var inUse *eventlog.InUseError
	if !errors.As(err, &inUse) {
		return nil, err
	}
	src, herr := openHTTPSource(ctx, f)
	if herr != nil {
		return nil, fmt.Errorf("the server (pid %d) owns %s, and reading through its HTTP API at %s failed: %w (give its --addr)",
			inUse.Pid, f.dataDir, f.addr, herr)
	}
	return src, nil
}

// resolvePoint turns "SEQ" or "TIME" into a sequence. For a time it returns
// the last event at or before it (atOrBefore) or the first at or after it.
// Times in the log only grow (one committer stamps them), so it bisects.
func resolvePoint(src source, what, s string, atOrBefore bool) (uint64, error) {
	first, last := src.First(), src.Last()
	if last == 0 || last < first {
		return 0, fmt.Errorf("%s %s: the log is empty", what, s)
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		if n < first && first > 1 {
			return 0, fmt.Errorf("%s %d: %w", what, n, &eventlog.TruncatedError{Seq: n, First: first, Hint: "retention deleted the older events (" + retentionSetting + ")"})
		}
		if n < first || n > last {
			return 0, fmt.Errorf("%s %d: sequence out of range: the log holds events %d..%d", what, n, first, last)
		}
		return n, nil
	}
	t, err := parseWhen(s, time.Now())
	if err != nil {
		return 0, fmt.Errorf("%s %q: give a sequence number, an RFC 3339 time (2026-11-27T12:00:00Z) or a duration ago (15m)", what, s)
	}
	timeOf := func(seq uint64) (time.Time, error) {
		e, err := src.Get(seq)
		if err != nil {
			return time.Time{}, err
		}
		return e.Time, nil
	}
	t0, err := timeOf(first)
	if err != nil {
		return 0, err
	}
	tn, err := timeOf(last)
	if err != nil {
		return 0, err
	}
	if atOrBefore && t.Before(t0) {
		return 0, fmt.Errorf("%s %s: time out of range: the first event (%d) is at %s", what, t.UTC().Format(events.TimeFormat), first, t0.Format(events.TimeFormat))
	}
	if !atOrBefore && t.After(tn) {
		return 0, fmt.Errorf("%s %s: time out of range: the last event (%d) is at %s", what, t.UTC().Format(events.TimeFormat), last, tn.Format(events.TimeFormat))
	}
	// Find the first seq with time > t (atOrBefore) or >= t.
	lo, hi := first, last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		tm, err := timeOf(mid)
		if err != nil {
			return 0, err
		}
		if tm.After(t) || (!atOrBefore && tm.Equal(t)) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if atOrBefore {
		return lo - 1, nil
	}
	return lo, nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %q", s)
}

func newBufferedOut(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 64<<10) }
