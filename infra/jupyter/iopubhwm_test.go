package jupyter_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestIOPubHighWaterMarkRaised: an ipykernel kernel launched with IOPubHWM
// has its PUB socket's send queue raised (pyzmq's default is 1,000), and it
// still runs code normally.
func TestIOPubHighWaterMarkRaised(t *testing.T) {
	k := testkit.StartKernelWith(t, jupyter.StartOptions{Launch: jupyter.LaunchOptions{IOPubHWM: 54321}})
	if out := stdoutOf(execute(t, k.Client, "import zmq\nprint(get_ipython().kernel.iopub_thread.socket.getsockopt(zmq.SNDHWM))", 30*time.Second)); !strings.Contains(out, "54321") {
		t.Fatalf("SNDHWM not raised: stdout %q", out)
	}
	plain := testkit.StartKernel(t)
	if out := stdoutOf(execute(t, plain.Client, "import zmq\nprint(get_ipython().kernel.iopub_thread.socket.getsockopt(zmq.SNDHWM))", 30*time.Second)); !strings.Contains(out, "1000") {
		t.Fatalf("a kernel launched without the option keeps its default: stdout %q", out)
	}
}

func stdoutOf(c cell) string {
	var b strings.Builder
	for _, m := range c.Outputs {
		if m.Header.MsgType == "stream" {
			var s struct{ Text string }
			_ = json.Unmarshal(m.Content, &s)
			b.WriteString(s.Text)
		}
	}
	return b.String()
}

// TestLongStreamIsSplit: a wrapped kernel sends a 3 MB print as stream
// messages of at most StreamChunkChars characters, together exactly what
// was printed — so no single message the server must hold grows with the
// output.
func TestLongStreamIsSplit(t *testing.T) {
	k := testkit.StartKernelWith(t, jupyter.StartOptions{Launch: jupyter.LaunchOptions{IOPubHWM: jupyter.DefaultIOPubHWM}})
	c := execute(t, k.Client, "import sys\nsys.stdout.write('ab'*1_500_000)\nsys.stdout.flush()\nprint('end')", 60*time.Second)
	streams := 0
	for _, m := range c.Outputs {
		if m.Header.MsgType != "stream" {
			continue
		}
		var s struct{ Text string }
		_ = json.Unmarshal(m.Content, &s)
		if len(s.Text) > jupyter.StreamChunkChars {
			t.Fatalf("a stream message of %d characters, bound %d", len(s.Text), jupyter.StreamChunkChars)
		}
		streams++
	}
	if out := stdoutOf(c); out != strings.Repeat("ab", 1_500_000)+"end\n" {
		t.Fatalf("stdout of %d bytes is not what was printed", len(out))
	}
	if streams < 3_000_000/jupyter.StreamChunkChars {
		t.Fatalf("%d stream messages: the text was not split", streams)
	}
}
