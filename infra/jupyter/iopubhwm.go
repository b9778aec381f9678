package jupyter

import "fmt"

// DefaultIOPubHWM is the IOPub send queue given to ipykernel kernels.
//
// ipykernel's PUB socket keeps pyzmq's default high-water mark of 1,000
// messages and silently drops beyond it: a cell printing or displaying
// faster than a busy server reads loses output, and possibly its idle
// status. For kernels launched with `-m ipykernel_launcher` the launcher
// raises the mark (still a bound, in the kernel's memory) by wrapping the
// launch in a few lines that set SNDHWM on PUB sockets. Other kernels are
// launched exactly as their kernelspec says.
//
// NB: the server's client applies back-pressure (its receive queue is
// bounded in bytes, infra/jupyter/queue.go): when the log is slower than
// the kernel, output waits here, in the kernel's memory, not in the
// server's. What the kernel still drops past the mark shows as holes in
// its message counters and is recorded on the execution
// (ExecutionOutputLost, actors/kernel/gap.go).
const DefaultIOPubHWM = 100_000

// StreamChunkChars bounds the text of one stream message a wrapped kernel
// sends. ipykernel sends everything printed since its last flush (0.2 s)
// as one message: a loop printing 200 MB makes a single 200 MB message,
// which the server would have to hold whole. The same wrapper splits
// longer stream texts into consecutive messages of at most this many
// characters; front ends concatenate consecutive stream messages, so what
// an agent reads is unchanged.
const StreamChunkChars = 256 << 10

// withIOPubHWM rewrites `<python> -m ipykernel_launcher <args>` into
// `<python> -c <prelude; run ipykernel_launcher> <args>`; other argv are
// returned as they are. The prelude raises the PUB sockets' high-water mark
// to hwm, splits stream messages (StreamChunkChars) and registers the
// text/llm+plain formatter (llmReprPrelude).
func withIOPubHWM(argv []string, hwm int) []string {
	if hwm <= 0 || len(argv) < 3 || argv[1] != "-m" || argv[2] != "ipykernel_launcher" {
		return argv
	}
	prelude := fmt.Sprintf(`import zmq, runpy
_socket = zmq.Context.socket
def _mcp_socket(self, socket_type, *args, **kwargs):
    s = _socket(self, socket_type, *args, **kwargs)
    if socket_type == zmq.PUB:
        s.setsockopt(zmq.SNDHWM, %d)
    return s
zmq.Context.socket = _mcp_socket
from jupyter_client.session import Session
_send = Session.send
def _mcp_send(self, stream, msg_or_type, content=None, *args, **kwargs):
    text = content.get("text") if msg_or_type == "stream" and isinstance(content, dict) else None
    if not isinstance(text, str) or len(text) <= %d:
        return _send(self, stream, msg_or_type, content, *args, **kwargs)
    for i in range(0, len(text), %d):
        r = _send(self, stream, msg_or_type, dict(content, text=text[i:i+%d]), *args, **kwargs)
    return r
Session.send = _mcp_send
`, hwm, StreamChunkChars, StreamChunkChars, StreamChunkChars) + llmReprPrelude +
		"runpy.run_module(\"ipykernel_launcher\", run_name=\"__main__\", alter_sys=True)\n"
	out := []string{argv[0], "-c", prelude}
	return append(out, argv[3:]...)
}
