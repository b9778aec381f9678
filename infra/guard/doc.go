// Package guard keeps a kernel from outliving its server for ever.
//
// Kernels outlive the server on purpose (a restart re-attaches them), so
// nothing else ends a kernel whose server never comes back: twelve short
// stdio sessions once left sixteen kernels running with no server. The
// guard is a small process per kernel, this same binary re-executed with
// the hidden subcommand Subcommand, outside the kernel's sandbox and in a
// session of its own. It knows only the kernel's pid and start time, the
// path of the server lock and the grace; its environment holds nothing of
// the server's (no MCP_* variable, no token, no key path).
//
// The contract:
//
//  1. A server holds an OFD write lock on <data dir>/runtime/server.lock
//     (Hold) for its whole life, taken before any kernel starts. The file
//     is opened O_CLOEXEC: kernels never inherit it. The lock ends with the
//     open file description, so a server killed -9 releases it too.
//  2. For each kernel it launches, the server starts a guard (Start). The
//     guard waits on a pidfd of the kernel and probes the lock every
//     ProbeEvery with F_OFD_GETLK (Held): it never takes it.
//  3. The kernel exits: the guard exits. No server has held the lock for
//     the grace: the guard sends SIGTERM to the kernel's process group,
//     SIGKILL after TermGrace, and exits. A server that starts within the
//     grace holds the lock again and re-attaches the kernel as before.
//
// Caller's duties:
//
//  1. Dispatch the subcommand first thing in main (and in the TestMain of
//     every test package that starts kernels with a guard):
//
//     if len(os.Args) > 1 && os.Args[1] == guard.Subcommand {
//     os.Exit(guard.Main(os.Args[2:]))
//     }
//
//  2. Hold the lock before starting kernels and keep it until the process
//     ends (Lock.Close only when the server closes in-process).
//
//  3. Reap the guard it started (it is the server's child until the server
//     exits; after that, init's).
package guard
