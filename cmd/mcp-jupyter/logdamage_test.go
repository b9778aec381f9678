package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// writeLog fills dataDir's event log with n realistic events and, when
// tables is set, enough large ones that Pebble flushes a table file.
func writeLog(t testing.TB, dataDir string, n int, tables bool) {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{Node: "n"})
	if err != nil {
		t.Fatal(err)
	}
	drafts := testkit.RealisticDrafts(n)
	for i := 0; i < n; i += 10 { // several WAL records, so damage at the end hits only the last
		testkit.AppendAll(t, l, drafts[i:min(i+10, n)])
	}
	if tables {
		b := make([]byte, 96<<10)
		for range 96 { // ~12 MiB: past Pebble's 4 MiB memtable, so it flushes tables
			_, _ = rand.Read(b)
			content, _ := json.Marshal(map[string]string{"name": "stdout", "text": base64.StdEncoding.EncodeToString(b)})
			if _, err := l.Append(context.Background(), events.Draft{Stream: events.KernelStream("k"), Kernel: "k",
				Payload: events.IOPubMessageReceived{KernelID: "k", MsgID: "m", MsgType: "stream", Content: content}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// runBinary runs the real binary and returns its combined output and exit
// code.
func runBinary(t testing.TB, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v", args, err)
	}
	code := 0
	if ee != nil {
		code = ee.ExitCode()
	}
	return string(out), code
}

// noStackTrace fails the test when out holds a Go panic or stack trace.
func noStackTrace(t testing.TB, what, out string) {
	t.Helper()
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic:") {
		t.Fatalf("%s printed a stack trace:\n%s", what, out)
	}
}

// TestDamagedLogThroughTheBinary drives the real binary's verify, doctor
// and serve over a log whose WAL tail was flipped and over one with a
// flipped table byte. Before: the torn tail passed verify silently (and
// serve reused its sequences); the table made all three panic with a stack
// trace. Now each exits non-zero with a message that says what and where,
// and a start records the dropped tail so that verify then passes, noting it.
func TestDamagedLogThroughTheBinary(t *testing.T) {
	bin := buildBinary(t)
	t.Setenv("JUPYTER_PATH", testkit.KernelSpecDir(t))

	t.Run("torn WAL tail", func(t *testing.T) {
		dataDir := testkit.TempDataDir(t)
		writeLog(t, dataDir, 80, false)
		wals, _ := filepath.Glob(filepath.Join(dataDir, "events", "*.log"))
		slices.Sort(wals)
		b, err := os.ReadFile(wals[len(wals)-1])
		if err != nil {
			t.Fatal(err)
		}
		for i := len(b) - 2048; i < len(b); i++ {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(wals[len(wals)-1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"events", "verify", "--data-dir", dataDir}, {"doctor", "--data-dir", dataDir}} {
			out, code := runBinary(t, bin, args...)
			noStackTrace(t, args[0], out)
			if code == 0 || !strings.Contains(out, "tail was dropped") || !strings.Contains(out, "up to 80") {
				t.Fatalf("%v over a torn WAL tail: exit %d\n%s\nwant a non-zero exit saying the tail up to 80 was dropped", args, code, out)
			}
		}
		// A start says what was dropped, and records it.
		ln := freeAddr(t)
		cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--addr", ln, "--log-format", "json")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		said := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "tail was dropped") {
					said <- sc.Text()
				}
			}
		}()
		select {
		case line := <-said:
			if !strings.Contains(line, "recorded as event 81") {
				t.Fatalf("start's log line %s does not say where the drop was recorded", line)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("serve did not say that the log's tail was dropped")
		}
		waitReady(t, ln, 60*time.Second)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve after recording the dropped tail: %v", err)
		}
		out, code := runBinary(t, bin, "events", "verify", "--data-dir", dataDir)
		if code != 0 || !strings.Contains(out, "note: events") || !strings.Contains(out, "recorded at 81") {
			t.Fatalf("verify after the drop was recorded: exit %d\n%s", code, out)
		}
	})

	t.Run("damaged table", func(t *testing.T) {
		dataDir := testkit.TempDataDir(t)
		writeLog(t, dataDir, 200, true)
		ssts, _ := filepath.Glob(filepath.Join(dataDir, "events", "*.sst"))
		if len(ssts) == 0 {
			t.Fatal("no table file: Pebble did not flush")
		}
		slices.Sort(ssts)
		sst := ssts[0]
		b, err := os.ReadFile(sst)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/3] ^= 0x40
		if err := os.WriteFile(sst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(sst)
		for _, args := range [][]string{
			{"events", "verify", "--data-dir", dataDir},
			{"doctor", "--data-dir", dataDir},
			{"serve", "--data-dir", dataDir, "--addr", freeAddr(t)},
		} {
			out, code := runBinary(t, bin, args...)
			noStackTrace(t, args[0], out)
			if code == 0 || !strings.Contains(out, name) || !strings.Contains(out, "restore") {
				t.Fatalf("%v over a damaged table: exit %d\n%s\nwant a non-zero exit naming %s and what to do", args, code, out, name)
			}
		}
	})
}
