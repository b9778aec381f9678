// Package jupyter speaks the Jupyter messaging protocol (v5.3) to real
// kernels over ZeroMQ (github.com/go-zeromq/zmq4), and starts, watches,
// signals and stops kernel processes.
//
// It is the only package that imports zmq4. It knows nothing about
// executions, queues or events: it moves signed messages and reports process
// and heartbeat facts; the actors above decide what they mean.
//
// # Files
//
//   - connection.go, connwait.go, portowner.go: connection files (key; ports
//     the kernel bound and wrote back) in the kernel's KernelDir, and the
//     /proc proof that the kernel listens on each port before it is dialled.
//   - message.go: frames, HMAC signing and verification (Signer).
//   - queue.go: the unbounded-but-limited receive queue (never blocks a reader).
//   - client.go: Client, the five sockets and their reader goroutines.
//   - heartbeat.go: heartbeat pings and death detection.
//   - kernelspec.go: kernelspec discovery as Jupyter does it.
//   - process.go, exitwatch.go: launching, pidfd exit watching, signalling.
//   - kernel.go: StartKernel / Attach, tying the above together.
//   - iopubhwm.go, llmrepr.go: the wrapper `-m ipykernel_launcher` kernels
//     are launched in (raised IOPub queue, split stream messages, and a
//     text/llm+plain formatter for pandas objects).
//   - launcher.go: Launcher, the kernel actor's Launcher (Launch, Attach,
//     Kill) over the above.
//   - pool.go, poolmarker.go: Pool, kernels started ahead of need per
//     kernelspec and handed over by Launch under the id they were started
//     with; the markers that let the next start kill what a killed server
//     left in its pool (ReapPool).
//
// # Contract
//
//  1. Start a kernel with StartKernel (or launch one yourself with Launch and
//     Dial it). StartKernel returns only once the kernel answered
//     kernel_info and IOPub is known to be subscribed.
//  2. Consume Client.Messages() continuously. It delivers shell, control,
//     stdin and IOPub messages in arrival order per socket. Messages queue in
//     memory up to ClientOptions limits (bytes and messages); beyond them the
//     IOPub reader waits for the consumer (back-pressure: the kernel's PUB
//     socket queues, and drops past its high-water mark), while shell,
//     control and stdin never wait. A gap marker (Received.Dropped > 0) is
//     delivered only for messages read while the client was closing.
//  3. An execution is complete only when both its execute_reply (shell) and
//     its status: idle (IOPub) with the same parent msg_id have arrived, in
//     either order.
//  4. Watch Kernel.Process.Exited() and Client.HeartbeatLost() to learn of
//     kernel death. Never infer it from send errors (zmq4 drops silently).
//  5. Close the Kernel (releases sockets, keeps the process) or Shutdown it
//     (stops the process). Kernels deliberately outlive the server; a later
//     server re-attaches with Attach using the pid and start time.
//
// Sketch:
//
//	k, err := jupyter.StartKernel(ctx, spec, runtimeDir, id, jupyter.StartOptions{})
//	hdr, err := k.Client.Send(jupyter.Shell, "execute_request", jupyter.NewExecuteRequest("1+1"))
//	for r := range k.Client.Messages() { /* match r.Msg.Parent.MsgID == hdr.MsgID */ }
package jupyter
