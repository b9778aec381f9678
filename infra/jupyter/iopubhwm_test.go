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
