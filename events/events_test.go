package events_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var update = flag.Bool("update", false, "rewrite golden samples in testdata/golden")

// samples holds one filled-in payload per registered type.
func samples() []events.Payload {
	exit := 137
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	proc := events.KernelProcess{Pid: 4242, StartTime: 987654, ConnFile: "/data/runtime/kernel-k1.json", LogFile: "/data/runtime/kernel-k1.log", IP: "127.0.0.1", ShellPort: 50001, IOPubPort: 50002}
	return []events.Payload{
		events.ServerStarted{Node: "host-1", Pid: 10, Version: "dev"},
		events.ServerStopped{Node: "host-1", Reason: "SIGTERM"},
		events.LogTailDropped{Node: "host-1", LastGood: 41, Issued: 65578, Bytes: 2048, File: "000004.log", Reason: "the write-ahead log ends in a damaged record"},
		events.KernelStarted{KernelID: "k1", Spec: "python3", Label: "train", Notebook: "a.ipynb", Language: "python", InterruptMode: "signal", Process: proc},
		events.KernelStartFailed{KernelID: "k1", Spec: "python3", Reason: "exited with code 1", StderrTail: "No module named ipykernel"},
		events.KernelInterrupted{KernelID: "k1", Mode: "signal"},
		events.KernelRestarted{KernelID: "k1", Process: proc},
		events.KernelShutDown{KernelID: "k1", Forced: true, Reason: "requested"},
		events.KernelDied{KernelID: "k1", Reason: "process exited", ExitCode: &exit, Signal: "killed", StderrTail: "boom"},
		events.KernelReattached{KernelID: "k1", Pid: 4242},
		events.KernelLost{KernelID: "k1", Reason: "pid 4242 now belongs to another process"},
		events.KernelShared{KernelID: "k1", Principal: "bob", Access: events.AccessRead},
		events.KernelRanUnrecorded{KernelID: "k1", Count: 1, ExecutionCount: 7},
		events.KernelAdopted{KernelID: "k1", From: "node-a", Reason: "node node-a stopped renewing its ownership lease 12s ago", Restore: "auto-k1"},
		events.KernelRestored{KernelID: "k1", Checkpoint: "auto-k1", SavedAt: at, Restored: []string{"df"},
			Skipped: []events.CheckpointVariable{{Name: "conn", Type: "socket", Reason: "cannot pickle socket"}},
			Missing: []string{"xgboost==1.7"}, Mismatched: []string{"numpy==1.26.4"}, Lost: []string{"x9"}},
		events.FrontendAttached{KernelID: "k1", Session: "5f1c0c1e-2b7a-4c5e-9d8e-0a1b2c3d4e5f", Username: "ana", Client: "JupyterLab", Framing: "v1.kernel.websocket.jupyter.org"},
		events.KernelSessionOpened{KernelID: "k1", SessionID: "0b7e8a52-9f5c-4f0e-8a43-6d1e2f3a4b5c", Path: "a.ipynb", Name: "a.ipynb", Type: "notebook"},
		events.KernelSessionClosed{KernelID: "k1", SessionID: "0b7e8a52-9f5c-4f0e-8a43-6d1e2f3a4b5c", Reason: "deleted"},
		events.IOPubMessageReceived{KernelID: "k1", ExecutionID: "x1", MsgID: "m2", ParentMsgID: "m1", MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"hi\n"}`)},
		events.IOPubGapRecorded{KernelID: "k1", Dropped: 12, Reason: "reader queue full"},
		events.ExecutionQueued{ExecutionID: "x1", KernelID: "k1", Code: "1+1", AllowStdin: true, Notebook: "a.ipynb", CellID: "c1",
			Origin: &events.Origin{Kind: events.OriginFrontend, Session: "5f1c0c1e-2b7a-4c5e-9d8e-0a1b2c3d4e5f", MsgID: "m0", Username: "ana", Client: "JupyterLab"},
			Silent: true, SkipHistory: true, StopOnError: true, UserExpressions: map[string]string{"n": "len(x)"}},
		events.ExecutionStarted{ExecutionID: "x1", KernelID: "k1", MsgID: "m1"},
		events.ExecutionInputRequested{ExecutionID: "x1", Prompt: "name? ", Password: true},
		events.ExecutionInputSent{ExecutionID: "x1"},
		events.PolicyDecided{Tool: "execute", Rule: "no-shell", Action: "confirm", Decision: events.PolicyConfirmed, KernelID: "k1",
			CodeSHA256: strings.Repeat("cd", 32), Code: "import subprocess", Request: "r-5f1c0c1e", Reason: "runs shell commands"},
		events.ExecutionFinished{ExecutionID: "x1", Status: "error", ExecutionCount: 3, ErrorName: "ValueError", ErrorValue: "bad", Traceback: []string{"line 1"},
			ReplyPayload: `[{"source":"set_next_input","text":"x","replace":false}]`, UserExpressions: `{"n":{"status":"ok","data":{"text/plain":"3"},"metadata":{}}}`},
		events.ExecutionInterrupted{ExecutionID: "x1", ExecutionCount: 4},
		events.ExecutionCancelled{ExecutionID: "x1", Reason: "cancelled by client"},
		events.ExecutionLost{ExecutionID: "x1", Reason: "kernel died"},
		events.ExecutionOutputLost{ExecutionID: "x1", Messages: 77, Reason: "the kernel's IOPub socket dropped messages"},
		events.AssetStored{SHA256: strings.Repeat("ab", 32), MIME: "image/png", Size: 100, KernelID: "k1", ExecutionID: "x1", OutputIndex: 2},
		events.LeaseGranted{SHA256: strings.Repeat("ab", 32), Holder: "execution/x1", ExpiresAt: at},
		events.LeaseRenewed{SHA256: strings.Repeat("ab", 32), Holder: "execution/x1", ExpiresAt: at.Add(time.Hour)},
		events.LeaseExpired{SHA256: strings.Repeat("ab", 32), Holder: "execution/x1"},
		events.AssetCollected{SHA256: strings.Repeat("ab", 32), Size: 100},
		events.CheckpointSaved{Name: "friday", KernelID: "k1", File: "friday.ckpt", Size: 10, SHA256: "cd", KeyID: "key1", Saved: []events.CheckpointVariable{{Name: "df", Type: "DataFrame", Size: 10}}, Skipped: []events.CheckpointVariable{{Name: "g", Type: "generator", Reason: "cannot pickle generator"}}},
		events.CheckpointLoaded{Name: "friday", KernelID: "k1", Restored: []string{"df"}, Missing: []string{"xgboost==1.7"}},
		events.CheckpointRejected{Name: "friday", KernelID: "k1", Reason: "signature mismatch"},
		events.CheckpointDeleted{Name: "friday"},
		events.NotebookCreated{Path: "a.ipynb", KernelSpec: "python3", By: "claude/s1", SHA256: "ef"},
		events.NotebookCellInserted{Path: "a.ipynb", CellID: "c1", CellType: "code", Index: 0, Source: "1+1", By: "claude/s1", SHA256: "ef", PrevSHA256: "de"},
		events.NotebookCellEdited{Path: "a.ipynb", CellID: "c1", Source: "2+2", By: "claude/s1", SHA256: "ef", CellType: "markdown", PrevSHA256: "de"},
		events.NotebookCellDeleted{Path: "a.ipynb", CellID: "c1", By: "claude/s1", SHA256: "ef", Index: 3, Source: "x", PrevSHA256: "de"},
		events.NotebookCellMoved{Path: "a.ipynb", CellID: "c1", From: 0, To: 2, By: "claude/s1", SHA256: "ef", PrevSHA256: "de"},
		events.NotebookOutputsWritten{Path: "a.ipynb", CellID: "c1", ExecutionID: "x1", Outputs: 2, SHA256: "ef", ExecutionCount: 3, By: "mcp-jupyter", PrevSHA256: "de"},
		events.NotebookReplaced{Path: "a.ipynb", By: "jupyter:ana", SHA256: "ef", PrevSHA256: "de", Cells: 4, Kept: "replaced-de", Restored: "checkpoint"},
		events.NotebookRenamed{Path: "a.ipynb", To: "b/c.ipynb", By: "jupyter:ana", SHA256: "ef"},
		events.NotebookRemoved{Path: "a.ipynb", By: "jupyter:ana", SHA256: "ef"},
	}
}

func sampleEvent(i int, p events.Payload) events.Event {
	v, _ := events.CurrentVersion(p.EventType())
	e := events.Event{Seq: uint64(i + 1), Time: time.Date(2026, 11, 27, 12, 0, i, 123456000, time.UTC),
		Stream: "kernel/k1", Kernel: "k1", Node: "host-1", Type: p.EventType(), Version: v, Payload: p}
	if p.EventType() == events.TypeKernelShared {
		e.Principal = "alice" // NB: its golden file shows the envelope's principal
	}
	return e
}

func TestEverySampleRoundTrips(t *testing.T) {
	seen := map[string]bool{}
	for i, p := range samples() {
		e := sampleEvent(i, p)
		seen[e.Type] = true
		rec, err := events.Encode(e)
		if err != nil {
			t.Fatalf("encode %s: %v", e.Type, err)
		}
		got, err := events.Decode(e.Seq, rec)
		if err != nil {
			t.Fatalf("decode %s: %v", e.Type, err)
		}
		if !reflect.DeepEqual(got.Payload, p) || got.Stream != e.Stream || got.Kernel != e.Kernel ||
			got.Node != e.Node || !got.Time.Equal(e.Time) || got.Version != e.Version || got.Principal != e.Principal {
			t.Fatalf("%s round trip:\n got %+v\nwant %+v", e.Type, got, e)
		}
	}
	for _, typ := range events.Types() {
		if !seen[typ] {
			t.Errorf("registered type %s has no sample: add one so its golden file exists", typ)
		}
	}
}

// TestGoldenSamplesDecode keeps every type's JSON form decodable by every
// future binary: the files in testdata/golden are written once (-update) and
// never edited by hand.
func TestGoldenSamplesDecode(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, p := range samples() {
			e := sampleEvent(i, p)
			b, err := json.MarshalIndent(e, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, e.Type+".v"+itoa(int(e.Version))+".json")
			if _, err := os.Stat(name); err == nil {
				continue // NB: golden files are never rewritten
			}
			if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) < len(events.Types()) {
		t.Fatalf("want a golden sample per type (%d), found %d (%v): run go test ./events -run Golden -update", len(events.Types()), len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e events.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if e.Payload == nil || e.Payload.EventType() != e.Type {
			t.Errorf("%s: decoded payload %T for type %s", f, e.Payload, e.Type)
		}
		rec, err := events.Encode(e)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := events.Decode(e.Seq, rec); err != nil {
			t.Errorf("%s: binary round trip: %v", f, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCorruptRecordNamesSequence(t *testing.T) {
	rec, err := events.Encode(sampleEvent(6, events.ExecutionQueued{ExecutionID: "x", KernelID: "k", Code: "1"}))
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), rec...)
	flipped[len(flipped)-3] ^= 0x40
	_, err = events.Decode(7, flipped)
	var de *events.DecodeError
	if !errors.As(err, &de) || de.Seq != 7 || !errors.Is(err, events.ErrCorrupt) {
		t.Fatalf("want corrupt DecodeError for seq 7, got %v", err)
	}
	if !strings.Contains(err.Error(), "events show 7") {
		t.Fatalf("error should say how to inspect: %v", err)
	}
	if _, err := events.Decode(8, rec); !errors.Is(err, events.ErrCorrupt) {
		t.Fatalf("record stored under another sequence must be corrupt, got %v", err)
	}
	for n := 0; n < len(rec); n++ {
		if _, err := events.Decode(7, rec[:n]); err == nil {
			t.Fatalf("truncated record (%d of %d bytes) decoded", n, len(rec))
		}
	}
}

func TestUnknownTypeAndNewerVersionAreClearErrors(t *testing.T) {
	e := events.Event{Seq: 9, Time: time.Unix(1, 0), Stream: "kernel/k", Type: "KernelTeleported", Version: 1, Raw: []byte(`{}`)}
	rec, _ := events.Encode(e)
	_, err := events.Decode(9, rec)
	if !errors.Is(err, events.ErrUnknownType) || !strings.Contains(err.Error(), "KernelTeleported") {
		t.Fatalf("unknown type: got %v", err)
	}
	e.Type, e.Version = events.TypeKernelStarted, 99
	rec, _ = events.Encode(e)
	_, err = events.Decode(9, rec)
	if !errors.Is(err, events.ErrNewerVersion) || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("newer version: got %v", err)
	}
	rec[0] = 7 // a record format from the future
	if _, err := events.Decode(9, rec); !errors.Is(err, events.ErrNewerVersion) {
		t.Fatalf("newer record format: got %v", err)
	}
}

func TestSubjectScheme(t *testing.T) {
	e := events.Event{Stream: "execution/x1", Kernel: "k1", Type: events.TypeExecutionFinished}
	if got := events.Subject(e); got != "mcpjupyter.ev.k1.execution.x1.ExecutionFinished" {
		t.Fatalf("subject %q", got)
	}
	e = events.Event{Stream: "checkpoint/fri.day", Type: events.TypeCheckpointRejected}
	if got := events.Subject(e); got != "mcpjupyter.ev.-.checkpoint.fri_day.CheckpointRejected" {
		t.Fatalf("subject %q", got)
	}
}

func TestNewIDIsUniqueAndOrdered(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	now := time.Now()
	for i := 0; i < 10000; i++ {
		id := events.NewID(now.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || !events.ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids not time ordered: %q after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}

func FuzzDecode(f *testing.F) {
	for i, p := range samples() {
		rec, err := events.Encode(sampleEvent(i, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint64(i+1), rec)
	}
	f.Add(uint64(1), []byte{})
	f.Add(uint64(1), []byte{1, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, seq uint64, rec []byte) {
		e, err := events.Decode(seq, rec)
		if err != nil {
			var de *events.DecodeError
			if !errors.As(err, &de) || de.Seq != seq {
				t.Fatalf("error is not a DecodeError naming seq %d: %v", seq, err)
			}
			return
		}
		again, err := events.Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
		if _, err := events.Decode(seq, again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
	})
}
