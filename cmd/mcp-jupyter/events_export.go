package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

func runEventsExport(ctx context.Context, args []string, sio eventsIO) error {
	fs := flag.NewFlagSet("events export", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs)
	until := fs.String("until", "", "stop at this sequence or time (default: the end)")
	outPath := fs.String("out", "-", "write to this file (default: stdout)")
	principal := principalFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("events export: unexpected argument %q", pos[0])
	}
	src, err := openSource(ctx, ef)
	if err != nil {
		return err
	}
	defer src.Close()
	to := src.Last()
	if *until != "" {
		if to, err = resolvePoint(src, "--until", *until, true); err != nil {
			return fmt.Errorf("events export: %w", err)
		}
	}
	var w io.Writer = sio.stdout
	if *outPath != "-" {
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("events export: %w (give a new file)", err)
		}
		defer f.Close()
		w = f
	}
	out := newBufferedOut(w)
	bar := newProgress(sio.stderr, "export", to-src.First()+1)
	var line []byte
	n := 0
	filter := principalFilter(tailFilter{}, *principal)
	err = src.Scan(ctx, src.First(), to, func(e events.Event) error {
		bar.add(1)
		if !filter.match(e) {
			return nil
		}
		line = append(appendEventJSON(line[:0], e), '\n')
		n++
		_, err := out.Write(line)
		return err
	})
	bar.done()
	if err != nil {
		_ = out.Flush()
		return fmt.Errorf("events export: stopped after %d events: %w", n, err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("events export: %w", err)
	}
	if f, ok := w.(*os.File); ok && *outPath != "-" {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("events export: %w", err)
		}
	}
	return nil
}

// maxLine bounds one JSON line on import: the biggest event the server
// writes is an IOPub message with an inline image, well under this.
const maxLine = 256 << 20

// fileSource reads an exported JSON Lines file as a source, so that import
// runs the same verify as `events verify` before writing anything.
type fileSource struct {
	path        string
	first, last uint64
}

func openFileSource(path string) (*fileSource, error) {
	fsrc := &fileSource{path: path}
	var firstLine, lastLine []byte
	var firstN, lastN int
	err := fsrc.lines(context.Background(), func(line []byte, n int) error {
		if firstLine == nil {
			firstLine, firstN = bytes.Clone(line), n
		}
		lastLine, lastN = append(lastLine[:0], line...), n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if firstLine == nil {
		return nil, fmt.Errorf("import %s: no events in the file", path)
	}
	seqOf := func(line []byte, where string, n int) (uint64, error) {
		var s struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &s); err != nil || s.Seq == 0 {
			return 0, fmt.Errorf("import %s: refused: line %d, the %s line is not an event (%v); a truncated or damaged export?", path, n, where, err)
		}
		return s.Seq, nil
	}
	if fsrc.first, err = seqOf(firstLine, "first", firstN); err != nil {
		return nil, err
	}
	if fsrc.last, err = seqOf(lastLine, "last", lastN); err != nil {
		return nil, err
	}
	return fsrc, nil
}

// lines calls fn for every non-empty line with its 1-based number.
func (f *fileSource) lines(ctx context.Context, fn func(line []byte, n int) error) error {
	file, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	n := 0
	for sc.Scan() {
		n++
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if err := fn(sc.Bytes(), n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("import %s line %d: longer than %d MiB; this is not an export", f.path, n+1, maxLine>>20)
		}
		return fmt.Errorf("import %s line %d: %w", f.path, n+1, err)
	}
	return nil
}

// decodeLine reads one exported event. The payload is decoded through the
// registry (unknown types and newer versions are refused) and re-encoded
// compactly, as the log stores it.
func (f *fileSource) decodeLine(line []byte, n int) (events.Event, error) {
	var e events.Event
	if err := json.Unmarshal(line, &e); err != nil {
		return e, fmt.Errorf("import %s line %d: %w", f.path, n, err)
	}
	raw, err := json.Marshal(json.RawMessage(e.Raw))
	if err != nil {
		return e, fmt.Errorf("import %s line %d (event %d): payload: %w", f.path, n, e.Seq, err)
	}
	e.Raw = raw
	return e, nil
}

func (f *fileSource) First() uint64 { return f.first }
func (f *fileSource) Last() uint64  { return f.last }
func (f *fileSource) Close() error  { return nil }

func (f *fileSource) Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error {
	err := f.lines(ctx, func(line []byte, n int) error {
		e, err := f.decodeLine(line, n)
		if err != nil {
			return err
		}
		if e.Seq < from || (to != 0 && e.Seq > to) {
			return nil
		}
		return fn(e)
	})
	if errors.Is(err, eventlog.ErrStop) {
		return nil
	}
	return err
}

func (f *fileSource) FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error {
	return f.Scan(ctx, after+1, 0, fn)
}

func (f *fileSource) ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error {
	return f.Scan(ctx, after+1, 0, func(e events.Event) error {
		if e.Stream != stream {
			return nil
		}
		return fn(e)
	})
}

func (f *fileSource) Get(seq uint64) (events.Event, error) {
	var got *events.Event
	err := f.Scan(context.Background(), seq, seq, func(e events.Event) error { got = &e; return eventlog.ErrStop })
	if err != nil {
		return events.Event{}, err
	}
	if got == nil {
		return events.Event{}, fmt.Errorf("event %d: %w (the file holds %d..%d)", seq, eventlog.ErrNotFound, f.first, f.last)
	}
	return *got, nil
}

func runEventsImport(ctx context.Context, args []string, sio eventsIO) error {
	fs := flag.NewFlagSet("events import", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("events import: give one file exported by `mcp-jupyter events export` (or - for stdin)")
	}
	path := pos[0]
	if path == "-" {
		// The file is read twice (verify, then write): keep stdin aside.
		tmp, err := os.CreateTemp("", "mcp-jupyter-import-*.jsonl")
		if err != nil {
			return fmt.Errorf("events import: %w", err)
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, sio.stdin); err != nil {
			tmp.Close()
			return fmt.Errorf("events import: read stdin: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("events import: %w", err)
		}
		path = tmp.Name()
	}
	dir := filepath.Join(ef.dataDir, "events")
	if _, err := os.Stat(dir); err == nil {
		// NB: refuse before reading anything: a non-empty target is never
		// touched. An existing but empty log is fine (checked again by
		// Import under its lock).
		l, err := eventlog.Open(dir, eventlog.Options{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("events import into %s: %w", ef.dataDir, err)
		}
		last := l.Last()
		_ = l.Close()
		if last != 0 {
			return fmt.Errorf("events import into %s: %w (it holds events up to %d; give a new --data-dir)", ef.dataDir, eventlog.ErrNotEmpty, last)
		}
	}
	fsrc, err := openFileSource(path)
	if err != nil {
		return fmt.Errorf("events %w", err)
	}
	bar := newProgress(sio.stderr, "verify", fsrc.last-fsrc.first+1)
	rep, err := verifySource(ctx, fsrc, bar)
	bar.done()
	if err != nil {
		return fmt.Errorf("events import: refused, the file does not verify: %w", err)
	}
	if err := os.MkdirAll(ef.dataDir, 0o700); err != nil {
		return fmt.Errorf("events import: %w", err)
	}
	l, err := eventlog.Open(dir, eventlog.Options{})
	if err != nil {
		return fmt.Errorf("events import: %w", err)
	}
	defer l.Close()
	evs := make(chan events.Event, 1024)
	scanErr := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(evs)
		scanErr <- fsrc.Scan(sctx, 0, 0, func(e events.Event) error {
			select {
			case evs <- e:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
	}()
	bar = newProgress(sio.stderr, "import", rep.Events)
	n, err := l.Import(ctx, func() (events.Event, bool, error) {
		e, ok := <-evs
		if ok {
			bar.add(1)
		}
		return e, ok, nil
	})
	bar.done()
	cancel()
	for range evs {
	}
	if serr := <-scanErr; err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("events import: after %d events: %w (remove %s before trying again)", n, err, dir)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("events import: %w", err)
	}
	fmt.Fprintf(sio.stdout, "imported %d events (%d..%d) into %s; the file verified first\n", n, rep.First, rep.Last, ef.dataDir)
	return nil
}
