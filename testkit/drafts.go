package testkit

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Mix shapes the synthetic traffic of RealisticDrafts. The zero value is
// the realistic default.
type Mix struct {
	// Kernels is how many kernels run executions side by side (default 10).
	Kernels int
	// StreamOutputs is how many stream messages each execution prints
	// (default 1).
	StreamOutputs int
	// StreamBytes is the size of each stream message's text (default 100).
	StreamBytes int
	// RestartEvery: about one execution in RestartEvery is preceded by a new
	// KernelStarted for its kernel (default 50). Each kernel's first
	// execution always is.
	RestartEvery int
	// Seed varies the interleaving (default 1).
	Seed uint64
}

func (m Mix) withDefaults() Mix {
	if m.Kernels <= 0 {
		m.Kernels = 10
	}
	if m.StreamOutputs <= 0 {
		m.StreamOutputs = 1
	}
	if m.StreamBytes <= 0 {
		m.StreamBytes = 100
	}
	if m.RestartEvery <= 0 {
		m.RestartEvery = 50
	}
	if m.Seed == 0 {
		m.Seed = 1
	}
	return m
}

// RealisticDrafts returns n drafts of the default Mix: what a server running
// ten busy kernels writes. Replay benchmarks use it.
func RealisticDrafts(n int) []events.Draft { return Mix{}.Drafts(n) }

// Drafts returns n drafts of this mix, deterministically. Each execution
// writes, on its own stream and in order: ExecutionQueued, ExecutionStarted,
// IOPubMessageReceived for status busy, the stream outputs, execute_result
// and status idle, then ExecutionFinished. Executions on different kernels
// interleave; each kernel runs one at a time. The last executions may be
// cut off at n.
func (m Mix) Drafts(n int) []events.Draft {
	m = m.withDefaults()
	rng := rand.New(rand.NewPCG(m.Seed, 0x6d63702d6a7570))
	g := &generator{mix: m, rng: rng, kernels: make([]kernelGen, m.Kernels)}
	for i := range g.kernels {
		g.kernels[i].id = fmt.Sprintf("01jk%022d", i)
	}
	g.text, _ = json.Marshal(strings.Repeat("x", m.StreamBytes-1) + "\n")
	out := make([]events.Draft, 0, n)
	for len(out) < n {
		k := &g.kernels[rng.IntN(len(g.kernels))]
		out = g.next(out, k)
	}
	return out
}

type generator struct {
	mix     Mix
	rng     *rand.Rand
	kernels []kernelGen
	execs   int
	msgs    int
	text    []byte // JSON string of one stream message's text
}

// kernelGen is one kernel's position in its current execution.
type kernelGen struct {
	id      string
	started bool
	exec    string // current execution id, "" between executions
	msgID   string // its execute_request msg_id
	step    int
	count   int // execution_count
}

func (g *generator) msgID() string {
	g.msgs++
	return fmt.Sprintf("01jm%022d", g.msgs)
}

// next appends the kernel's next event.
func (g *generator) next(out []events.Draft, k *kernelGen) []events.Draft {
	if k.exec == "" {
		if !k.started || g.rng.IntN(g.mix.RestartEvery) == 0 {
			k.started = true
			return append(out, events.Draft{Stream: events.KernelStream(k.id), Kernel: k.id, Payload: events.KernelStarted{
				KernelID: k.id, Spec: "python3", Language: "python", InterruptMode: "signal",
				Process: events.KernelProcess{Pid: 10000 + g.rng.IntN(50000), StartTime: g.rng.Uint64N(1 << 32),
					ConnFile: "/data/runtime/kernel-" + k.id + ".json", IP: "127.0.0.1", ShellPort: 50001, IOPubPort: 50002},
			}})
		}
		g.execs++
		k.exec, k.step = fmt.Sprintf("01jx%022d", g.execs), 0
		k.msgID = g.msgID()
	}
	stream := events.ExecutionStream(k.exec)
	d := events.Draft{Stream: stream, Kernel: k.id}
	iopub := func(msgType string, content []byte) events.Payload {
		return events.IOPubMessageReceived{KernelID: k.id, ExecutionID: k.exec, MsgID: g.msgID(),
			ParentMsgID: k.msgID, MsgType: msgType, Content: content}
	}
	outputs := g.mix.StreamOutputs
	switch s := k.step; {
	case s == 0:
		d.Payload = events.ExecutionQueued{ExecutionID: k.exec, KernelID: k.id,
			Code: fmt.Sprintf("df = load(%d)\nprint(df.describe())\ndf.shape", g.execs)}
	case s == 1:
		d.Payload = events.ExecutionStarted{ExecutionID: k.exec, KernelID: k.id, MsgID: k.msgID}
	case s == 2:
		d.Payload = iopub("status", []byte(`{"execution_state":"busy"}`))
	case s < 3+outputs:
		d.Payload = iopub("stream", fmt.Appendf(nil, `{"name":"stdout","text":%s}`, g.text))
	case s == 3+outputs:
		k.count++
		d.Payload = iopub("execute_result", fmt.Appendf(nil,
			`{"execution_count":%d,"data":{"text/plain":"(%d, 12)"},"metadata":{}}`, k.count, g.rng.IntN(100000)))
	case s == 4+outputs:
		d.Payload = iopub("status", []byte(`{"execution_state":"idle"}`))
	default:
		d.Payload = events.ExecutionFinished{ExecutionID: k.exec, Status: "ok", ExecutionCount: k.count}
		k.exec = ""
	}
	k.step++
	return append(out, d)
}
