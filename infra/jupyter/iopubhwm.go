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
const DefaultIOPubHWM = 100_000

// withIOPubHWM rewrites `<python> -m ipykernel_launcher <args>` into
// `<python> -c <prelude; run ipykernel_launcher> <args>`; other argv are
// returned as they are.
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
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
`, hwm)
	out := []string{argv[0], "-c", prelude}
	return append(out, argv[3:]...)
}
