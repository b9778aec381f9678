package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// failedRun is the story docs/debugging.md tells: an execution that raised.
func failedRun(kernel, exec string) []events.Draft {
	st := events.ExecutionStream(exec)
	iopub := func(typ, content string) events.Draft {
		return events.Draft{Stream: st, Kernel: kernel, Payload: events.IOPubMessageReceived{KernelID: kernel, ExecutionID: exec,
			MsgID: events.NewID(time.Now()), MsgType: typ, Content: json.RawMessage(content)}}
	}
	return []events.Draft{
		{Stream: st, Kernel: kernel, Payload: events.ExecutionQueued{ExecutionID: exec, KernelID: kernel, Code: "train(df)\n"}},
		{Stream: st, Kernel: kernel, Payload: events.ExecutionStarted{ExecutionID: exec, KernelID: kernel, MsgID: "m1"}},
		iopub("status", `{"execution_state":"busy"}`),
		iopub("stream", `{"name":"stdout","text":"epoch 1\n"}`),
		iopub("error", `{"ename":"MemoryError","evalue":"","traceback":["\u001b[0;31mMemoryError\u001b[0m"]}`),
		iopub("status", `{"execution_state":"idle"}`),
		{Stream: st, Kernel: kernel, Payload: events.ExecutionFinished{ExecutionID: exec, Status: "error", ExecutionCount: 3, ErrorName: "MemoryError"}},
	}
}

// stoppedDataDir returns a data dir whose log holds n realistic events and
// then a failed run, closed as a stopped server leaves it.
func stoppedDataDir(t testing.TB, n int) string {
	t.Helper()
	dataDir := testkit.TempDataDir(t)
	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{Node: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	testkit.AppendAll(t, l, testkit.RealisticDrafts(n))
	testkit.AppendAll(t, l, failedRun("01jk0000000000000000000000", "01jxfailed"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dataDir
}

func events_(t testing.TB, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runEvents(context.Background(), args, eventsIO{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut})
	return out.String(), err
}

func mustEvents(t testing.TB, args ...string) string {
	t.Helper()
	out, err := events_(t, args...)
	if err != nil {
		t.Fatalf("events %v: %v", args, err)
	}
	return out
}

func TestEventsTailJSONIsThePublicForm(t *testing.T) {
	dir := stoppedDataDir(t, 1000)
	out := mustEvents(t, "tail", "--json", "--data-dir", dir)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1007 {
		t.Fatalf("tail --json printed %d lines, want 1007", len(lines))
	}
	l, err := eventlog.Open(filepath.Join(dir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	i := 0
	err = l.Read(context.Background(), 0, 0, func(e events.Event) error {
		want, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		if lines[i] != string(want) {
			return fmt.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], want)
		}
		var back events.Event
		if err := json.Unmarshal([]byte(lines[i]), &back); err != nil || back.Seq != e.Seq {
			return fmt.Errorf("line %d does not read back: %v", i+1, err)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEventsTailFilters(t *testing.T) {
	dir := stoppedDataDir(t, 1000)
	out := mustEvents(t, "tail", "--data-dir", dir, "--execution", "01jxfailed")
	if n := strings.Count(out, "\n"); n != 7 {
		t.Fatalf("--execution: %d lines, want 7:\n%s", n, out)
	}
	for _, want := range []string{"ExecutionQueued", `code "train(df)\n"`, "stream stdout \"epoch 1\\n\"", "error MemoryError", "ExecutionFinished", "error [3] MemoryError"} {
		if !strings.Contains(out, want) {
			t.Errorf("tail line missing %q:\n%s", want, out)
		}
	}
	out = mustEvents(t, "tail", "--data-dir", dir, "--type", "ExecutionFinished,ExecutionQueued", "--since", "500")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, "ExecutionFinished") && !strings.Contains(l, "ExecutionQueued") {
			t.Fatalf("--type let through %q", l)
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(mustEvents(t, "tail", "--data-dir", dir, "-n", "1")), "1007 ") {
		t.Fatalf("-n 1 should print the last event")
	}
	if out := mustEvents(t, "tail", "--data-dir", dir, "--kernel", "01jk0000000000000000000000", "--type", "ExecutionQueued"); !strings.Contains(out, "01jxfailed") {
		t.Fatalf("--kernel: %s", out)
	}
}

func TestEventsShowTellsTheStory(t *testing.T) {
	dir := stoppedDataDir(t, 100)
	out := mustEvents(t, "show", "01jxfailed", "--data-dir", dir)
	order := []string{"execution 01jxfailed on kernel", "queued", "| train(df)", "started", "status busy", "stream stdout", "| epoch 1",
		"error MemoryError", "| MemoryError", "status idle", "finished: error [3] MemoryError", "took"}
	at := 0
	for _, w := range order {
		i := strings.Index(out[at:], w)
		if i < 0 {
			t.Fatalf("show: %q missing or out of order:\n%s", w, out)
		}
		at += i
	}
	if strings.Contains(out, "\x1b[") {
		t.Fatalf("show leaves ANSI escapes in tracebacks:\n%s", out)
	}
	// By sequence: the same story, the step marked.
	out = mustEvents(t, "show", "105", "--data-dir", dir)
	if !strings.Contains(out, "-> ") || !strings.Contains(out, "01jxfailed") {
		t.Fatalf("show 105:\n%s", out)
	}
	// A kernel event prints whole.
	out = mustEvents(t, "show", "1", "--data-dir", dir)
	if !strings.Contains(out, `"type": "KernelStarted"`) {
		t.Fatalf("show 1:\n%s", out)
	}
}

func TestEventsReplayUsesTheServersModels(t *testing.T) {
	dir := stoppedDataDir(t, 3000)
	const until = 1500
	out := mustEvents(t, "replay", "--until", fmt.Sprint(until), "--data-dir", dir)
	// The same fold the server does at start, by hand.
	l, err := eventlog.Open(filepath.Join(dir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	q := queue.NewModel()
	if err := l.Read(context.Background(), 0, until, q.Apply); err != nil {
		t.Fatal(err)
	}
	l.Close()
	running := q.List("", queue.StatusRunning)
	if len(running) == 0 {
		t.Fatal("the mix should have running executions mid-log")
	}
	for _, x := range running {
		if !strings.Contains(out, "running        "+x.ID) {
			t.Errorf("replay does not show running %s:\n%s", x.ID, out)
		}
	}
	for _, want := range []string{"as of event 1500", "kernels (10):", "leases: not tracked yet", "backlog: not tracked yet"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay missing %q:\n%s", want, out)
		}
	}
	js := mustEvents(t, "replay", "--until", fmt.Sprint(until), "--data-dir", dir, "--json")
	var v struct {
		Seq   uint64
		Queue map[string]struct{ Active *queue.Execution }
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil || v.Seq != until {
		t.Fatalf("replay --json: %v %s", err, js)
	}
	n := 0
	for _, k := range v.Queue {
		if k.Active != nil {
			n++
		}
	}
	if n != len(running) {
		t.Fatalf("replay --json: %d active, want %d", n, len(running))
	}
	// By time: the whole log is stamped within the test, so "now" is the end.
	out = mustEvents(t, "replay", "--until", time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "--data-dir", dir)
	if !strings.Contains(out, "as of event 3007") {
		t.Fatalf("replay --until <time after the end>:\n%s", out[:200])
	}
}

func TestEventsVerifyExportImport(t *testing.T) {
	dir := stoppedDataDir(t, 2000)
	if out := mustEvents(t, "verify", "--data-dir", dir); !strings.HasPrefix(out, "ok: 2007 events (1..2007)") {
		t.Fatalf("verify: %s", out)
	}
	file := filepath.Join(t.TempDir(), "log.jsonl")
	mustEvents(t, "export", "--data-dir", dir, "--out", file)
	into := testkit.TempDataDir(t)
	if out := mustEvents(t, "import", file, "--data-dir", into); !strings.Contains(out, "imported 2007 events") {
		t.Fatalf("import: %s", out)
	}
	if a, b := mustEvents(t, "tail", "--json", "--data-dir", dir), mustEvents(t, "tail", "--json", "--data-dir", into); a != b {
		t.Fatal("the imported log differs from the original")
	}
	mustEvents(t, "verify", "--data-dir", into)
	// A non-empty target is refused and left alone.
	if _, err := events_(t, "import", file, "--data-dir", into); err == nil || !strings.Contains(err.Error(), "holds events up to 2007") {
		t.Fatalf("import into a non-empty data dir: %v", err)
	}
	// Export up to a point, import, append after it: numbering continues.
	part := filepath.Join(t.TempDir(), "part.jsonl")
	mustEvents(t, "export", "--data-dir", dir, "--until", "10", "--out", part)
	into2 := testkit.TempDataDir(t)
	mustEvents(t, "import", part, "--data-dir", into2)
	l := testkit.OpenLog(t, filepath.Join(into2, "events"))
	evs, err := l.Append(context.Background(), events.Draft{Stream: events.ServerStream("n"), Payload: events.ServerStarted{Node: "n"}})
	if err != nil || evs[0].Seq != 11 {
		t.Fatalf("append after import: %v %v", evs, err)
	}
}

// TestEventsBadInput: every damage gets an error saying what and where, and
// nothing is written.
func TestEventsBadInput(t *testing.T) {
	dir := stoppedDataDir(t, 100)
	file := filepath.Join(t.TempDir(), "log.jsonl")
	mustEvents(t, "export", "--data-dir", dir, "--out", file)
	good, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(good), "\n")
	damaged := func(name string, edit func([]string) []string) string {
		ls := edit(append([]string(nil), lines...))
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(strings.Join(ls, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown execution", []string{"show", "01jxnosuch", "--data-dir", dir}, []string{"no execution with that id", "events 1..107"}},
		{"kernel id given to show", []string{"show", "01jk0000000000000000000001", "--data-dir", dir}, []string{"that is a kernel id", "--kernel"}},
		{"sequence out of range", []string{"replay", "--until", "5000", "--data-dir", dir}, []string{"--until 5000", "out of range", "1..107"}},
		{"show out of range", []string{"show", "0", "--data-dir", dir}, []string{"out of range"}},
		{"time before the log", []string{"replay", "--until", "2001-01-01T00:00:00Z", "--data-dir", dir}, []string{"time out of range", "first event (1)"}},
		{"time after the log", []string{"tail", "--since", "2099-01-01T00:00:00Z", "--data-dir", dir}, []string{"time out of range", "last event (107)"}},
		{"not a time", []string{"replay", "--until", "friday", "--data-dir", dir}, []string{`"friday"`, "RFC 3339"}},
		{"unknown type", []string{"tail", "--type", "KernelExploded", "--data-dir", dir}, []string{"unknown event type"}},
		{"no log", []string{"verify", "--data-dir", t.TempDir()}, []string{"no event log in", "--data-dir"}},
		{"truncated export", []string{"import", damaged("trunc", func(l []string) []string {
			l[49] = l[49][:len(l[49])/2]
			return l[:50]
		}), "--data-dir", testkit.TempDataDir(t)}, []string{"refused", "line 50", "the last line is not an event"}},
		{"corrupt line", []string{"import", damaged("corrupt", func(l []string) []string {
			l[20] = strings.Replace(l[20], `"payload":{`, `"payload":[`, 1)
			return l
		}), "--data-dir", testkit.TempDataDir(t)}, []string{"refused", "line 21"}},
		{"gap", []string{"import", damaged("gap", func(l []string) []string { return append(l[:30], l[31:]...) }),
			"--data-dir", testkit.TempDataDir(t)}, []string{"refused", "first problem at event 31", "jumps from 30 to 32"}},
		{"newer version", []string{"import", damaged("newer", func(l []string) []string {
			l[40] = strings.Replace(l[40], `"version":1`, `"version":9`, 1)
			return l
		}), "--data-dir", testkit.TempDataDir(t)}, []string{"refused", "event 41", "newer", "upgrade the binary"}},
		{"unknown type in a log", []string{"import", damaged("type", func(l []string) []string {
			l[5] = strings.Replace(l[5], `"type":"`, `"type":"Future`, 1)
			return l
		}), "--data-dir", testkit.TempDataDir(t)}, []string{"refused", "event 6", "unknown event type"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := events_(t, c.args...)
			if err == nil {
				t.Fatalf("events %v: no error", c.args)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.args[0] == "import" {
				if _, statErr := os.Stat(filepath.Join(c.args[len(c.args)-1], "events")); statErr == nil {
					t.Errorf("a refused import created the log")
				}
			}
		})
	}
}

// TestEventsVerifyFindsDamageInTheLog: records that a newer binary wrote or
// that do not decode are named by sequence.
func TestEventsVerifyFindsDamageInTheLog(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*events.Event)
		want []string
	}{
		{"newer version", func(e *events.Event) { e.Version = 7 }, []string{"first problem at event 3", "newer", "upgrade"}},
		{"payload does not decode", func(e *events.Event) { e.Raw = []byte(`[1]`) }, []string{"first problem at event 3", "payload does not decode"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dataDir := testkit.TempDataDir(t)
			l := testkit.OpenLog(t, filepath.Join(dataDir, "events"))
			src := testkit.RealisticDrafts(10)
			i := 0
			_, err := l.Import(context.Background(), func() (events.Event, bool, error) {
				if i == len(src) {
					return events.Event{}, false, nil
				}
				d := src[i]
				i++
				raw, _ := json.Marshal(d.Payload)
				e := events.Event{Seq: uint64(i), Time: time.Now(), Stream: d.Stream, Kernel: d.Kernel, Node: "n",
					Type: d.Payload.EventType(), Version: 1, Raw: raw}
				if i == 3 {
					c.edit(&e)
				}
				return e, true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			_, err = events_(t, "verify", "--data-dir", dataDir)
			if err == nil {
				t.Fatal("verify passed a damaged log")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("verify error %q does not say %q", err, w)
				}
			}
		})
	}
}
