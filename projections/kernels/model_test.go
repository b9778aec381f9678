package kernels

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/projections"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// ev builds an event as the runner hands it over: decoded payload for the
// types the model wants decoded, raw JSON only for IOPub.
func ev(seq uint64, kernel string, p events.Payload) events.Event {
	raw, _ := json.Marshal(p)
	e := events.Event{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Stream: events.KernelStream(kernel),
		Kernel: kernel, Type: p.EventType(), Version: 1, Raw: raw}
	if New().Wants(e.Type) == projections.Payload {
		e.Payload = p
	}
	return e
}

func statusMsg(kernel, state string) events.IOPubMessageReceived {
	return events.IOPubMessageReceived{KernelID: kernel, MsgID: "m", MsgType: "status",
		Content: json.RawMessage(`{"execution_state":"` + state + `"}`)}
}

func started(id string, pid int) events.KernelStarted {
	return events.KernelStarted{KernelID: id, Spec: "python3", Label: "train", Notebook: "a.ipynb",
		Language: "python", Process: events.KernelProcess{Pid: pid}}
}

func TestLifecycleTranscripts(t *testing.T) {
	exit := 1
	tests := []struct {
		name string
		in   []events.Payload
		want Kernel // ID, State, Reason, Pid, Busy, ExecutionState, Restarts are compared
	}{
		{"started", []events.Payload{started("k1", 10)},
			Kernel{State: StateRunning, Pid: 10}},
		{"busy", []events.Payload{started("k1", 10), statusMsg("k1", "busy")},
			Kernel{State: StateRunning, Pid: 10, Busy: true, ExecutionState: "busy"}},
		{"busy then idle", []events.Payload{started("k1", 10), statusMsg("k1", "busy"), statusMsg("k1", "idle")},
			Kernel{State: StateRunning, Pid: 10, ExecutionState: "idle"}},
		{"stream output keeps busy", []events.Payload{started("k1", 10), statusMsg("k1", "busy"),
			events.IOPubMessageReceived{KernelID: "k1", MsgType: "stream", Content: json.RawMessage(`{"name":"stdout","text":"{\"execution_state\":\"idle\"}"}`)}},
			Kernel{State: StateRunning, Pid: 10, Busy: true, ExecutionState: "busy"}},
		{"iopub before started", []events.Payload{statusMsg("k1", "starting")},
			Kernel{State: StateStarting, ExecutionState: "starting"}},
		{"died", []events.Payload{started("k1", 10), statusMsg("k1", "busy"), events.KernelDied{KernelID: "k1", Reason: "killed", ExitCode: &exit}},
			Kernel{State: StateDead, Reason: "killed", Pid: 10, ExecutionState: "busy"}},
		{"restarted", []events.Payload{started("k1", 10), events.KernelDied{KernelID: "k1", Reason: "oom"},
			events.KernelRestarted{KernelID: "k1", Process: events.KernelProcess{Pid: 11}}},
			Kernel{State: StateRunning, Pid: 11, Restarts: 1}},
		{"lost then reattached", []events.Payload{started("k1", 10), events.KernelLost{KernelID: "k1", Reason: "gone"},
			events.KernelReattached{KernelID: "k1", Pid: 10}},
			Kernel{State: StateRunning, Pid: 10}},
		{"lost", []events.Payload{started("k1", 10), events.KernelLost{KernelID: "k1", Reason: "pid reused"}},
			Kernel{State: StateLost, Reason: "pid reused", Pid: 10}},
		{"shut down", []events.Payload{started("k1", 10), events.KernelShutDown{KernelID: "k1", Reason: "requested"}},
			Kernel{State: StateShutDown, Reason: "requested", Pid: 10}},
		{"start failed", []events.Payload{events.KernelStartFailed{KernelID: "k1", Spec: "python3", Reason: "no ipykernel"}},
			Kernel{State: StateDead, Reason: "start failed: no ipykernel"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			for i, p := range tt.in {
				if err := m.Apply(ev(uint64(i+1), "k1", p)); err != nil {
					t.Fatalf("apply %d: %v", i+1, err)
				}
			}
			got, ok := m.Get("k1")
			if !ok {
				t.Fatal("kernel k1 unknown")
			}
			if got.State != tt.want.State || got.Reason != tt.want.Reason || got.Pid != tt.want.Pid ||
				got.Busy != tt.want.Busy || got.ExecutionState != tt.want.ExecutionState || got.Restarts != tt.want.Restarts {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if got.Seq != uint64(len(tt.in)) {
				t.Errorf("seq = %d, want %d", got.Seq, len(tt.in))
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	m := New()
	for i, p := range []events.Payload{started("k2", 20), started("k1", 10), statusMsg("k1", "busy"), events.KernelShutDown{KernelID: "k2"}} {
		kernel := "k1"
		if strings.Contains(string(must(json.Marshal(p))), "k2") {
			kernel = "k2"
		}
		if err := m.Apply(ev(uint64(i+1), kernel, p)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(data); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.List(), r.List()) {
		t.Fatalf("restored\n%+v\nwant\n%+v", r.List(), m.List())
	}
	if l := r.List(); len(l) != 2 || l[0].ID != "k1" || l[1].ID != "k2" {
		t.Fatalf("list not sorted by id: %+v", l)
	}
	again, _ := r.Snapshot()
	if string(again) != string(data) {
		t.Fatalf("snapshot not deterministic:\n%s\n%s", data, again)
	}
	if err := r.Restore([]byte(`{"version":99}`)); err == nil {
		t.Fatal("restore of an unknown snapshot version succeeded")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPeekStatusAgreesWithJSON(t *testing.T) {
	for _, raw := range peekSeeds {
		checkPeek(t, []byte(raw))
	}
}

var peekSeeds = []string{
	`{"kernel_id":"k1","msg_id":"m","msg_type":"status","content":{"execution_state":"busy"}}`,
	`{"content":{"execution_state":"idle"},"msg_type":"status","kernel_id":"k1"}`,
	` { "kernel_id" : "k\"1" , "msg_type" : "st\u0061tus" , "content" : { "x":[1,{"a":"}"}], "execution_state" : "busy" } } `,
	`{"kernel_id":"k1","msg_type":"stream","content":{"msg_type":"status","execution_state":"busy"}}`,
	`{"kernel_id":"k1","msg_type":"status","content":{"nested":{"execution_state":"busy"},"execution_state":"starting"}}`,
	`{"kernel_id":"k1","msg_type":"status","content":{}}`,
	`{"kernel_id":"k1","msg_type":"status","content":{"execution_state":"dead"},"extra":[true,false,null,-1.5e3]}`,
	`{"msg_type":"status"}`,
	`{}`,
}

// checkPeek compares peekStatus with a full decode.
func checkPeek(t *testing.T, raw []byte) {
	t.Helper()
	var full struct {
		KernelID string `json:"kernel_id"`
		MsgType  string `json:"msg_type"`
		Content  struct {
			ExecutionState string `json:"execution_state"`
		} `json:"content"`
	}
	jerr := json.Unmarshal(raw, &full)
	st, err := peekStatus(raw)
	if jerr != nil {
		return // peekStatus may accept some invalid JSON; the log holds only valid payloads
	}
	if err != nil {
		t.Fatalf("peekStatus(%s): %v", raw, err)
	}
	if st.isStatus != (full.MsgType == "status") || string(st.kernelID) != full.KernelID {
		t.Fatalf("peekStatus(%s) = %+v, json says %+v", raw, st, full)
	}
	if st.isStatus && st.state != full.Content.ExecutionState {
		t.Fatalf("peekStatus(%s) state %q, json says %q", raw, st.state, full.Content.ExecutionState)
	}
}

func FuzzPeekStatus(f *testing.F) {
	for _, s := range peekSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkPeek(t, raw) })
}
