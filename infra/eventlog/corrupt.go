package eventlog

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// CorruptStoreError says that Pebble found its own files damaged (a table
// or the MANIFEST failing its checksum): which file, and what to do. Pebble
// reports some of these by panicking; the log turns those into this error
// at its boundary (Open, reads), so that serve, verify and doctor say what
// is wrong instead of printing a stack trace.
type CorruptStoreError struct {
	Dir  string
	File string // the damaged file, when Pebble named it
	Err  error
}

func (e *CorruptStoreError) Error() string {
	file := "one of its files"
	if e.File != "" {
		file = e.File
	}
	return fmt.Sprintf("the event log in %s is damaged: %s fails its checks (%v). "+
		"Stop the server, copy the data dir aside, and restore it from a backup (docs/operations.md); "+
		"`mcp-jupyter events export` from the copy saves what still reads", e.Dir, file, e.Err)
}

func (e *CorruptStoreError) Unwrap() error { return e.Err }

// pebbleFileName finds the first Pebble file name in a message;
// pebbleTableNum a table Pebble names by number ("file 000007").
var (
	pebbleFileName = regexp.MustCompile(`\b(\d{6,}\.(?:sst|log|blob)|MANIFEST-\d+|OPTIONS-\d+)\b`)
	pebbleTableNum = regexp.MustCompile(`\bfile (\d{6,})\b`)
)

// corruptError wraps err (from a panic value or an error) as a
// *CorruptStoreError naming the file Pebble mentioned (or last reported).
func (l *Log) corruptError(err error) error {
	msg := err.Error()
	file := pebbleFileName.FindString(msg)
	if m := pebbleTableNum.FindStringSubmatch(msg); file == "" && m != nil {
		file = m[1] + ".sst"
	}
	if file == "" {
		if p, ok := l.corruptPath.Load().(string); ok {
			file = filepath.Base(p)
		}
	}
	// NB: Pebble's message carries a multi-line detail; the first line says it.
	first, _, _ := strings.Cut(msg, "\n")
	return &CorruptStoreError{Dir: l.dir, File: file, Err: errors.New(strings.TrimSpace(first))}
}

// recoverCorrupt turns a panic inside Pebble (a damaged table it cannot
// read) into a *CorruptStoreError in *err. A pebbleFatal (a failed write)
// is handled by recoverFatal instead.
func (l *Log) recoverCorrupt(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if f, ok := r.(pebbleFatal); ok {
		*err = l.corruptError(f)
		return
	}
	e, ok := r.(error)
	if !ok {
		e = fmt.Errorf("%v", r)
	}
	*err = l.corruptError(fmt.Errorf("pebble panicked: %w", e))
}

// openPebble opens the store, turning a panic into an error.
func (l *Log) openPebble(dir string, po *pebble.Options) (db *pebble.DB, err error) {
	defer l.recoverCorrupt(&err)
	db, err = pebble.Open(dir, po)
	if err != nil && pebble.IsCorruptionError(err) {
		err = l.corruptError(err)
	}
	return db, err
}

// readErr turns a Pebble corruption error from a read into a
// *CorruptStoreError naming the file; other errors pass unchanged.
func (l *Log) readErr(err error) error {
	if err != nil && pebble.IsCorruptionError(err) {
		return l.corruptError(err)
	}
	return err
}

// corruptionListener replaces Pebble's default reaction to a damaged file
// (Logger.Fatalf, which would end the process or, with our logger, panic
// through an iterator): log it; the read that found it returns the error.
func (l *Log) corruptionListener() *pebble.EventListener {
	return &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		l.corruptPath.Store(info.Path)
		l.opts.Logger.Error("event log: damaged file", "path", info.Path, "details", info.Details)
	}}
}
