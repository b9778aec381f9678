// Package sandbox confines a kernel process before it starts, so that code
// an agent runs in a kernel cannot read what the server guards: the MCP
// token, the checkpoint keys, the event log, the NATS store, other kernels'
// connection files, and the server's own memory and environment.
//
// It is a small launcher. The server does not start the kernel's argv
// directly: Start re-executes the server's own binary with the hidden
// subcommand Subcommand, a Plan and the kernel's argv. That launcher (Main)
// confines itself and then execve()s the kernel, which inherits the
// confinement. What it applied comes back to Start over a pipe as a Report
// before the kernel's first instruction runs.
//
// The confinement, strongest first (see docs/security.md, "sandbox"):
//
//  1. As root with CAP_SYS_ADMIN: its own mount namespace, where an empty
//     read-only tmpfs covers each hidden directory (the data dir) and only
//     the kept paths (the kernel's own directory) are bound back; then the
//     capabilities a kernel has no use for (CAP_SYS_ADMIN, CAP_SYS_PTRACE,
//     CAP_SYS_MODULE, ...) are dropped from the bounding set, so it can
//     neither unmount the cover nor read the server through /proc.
//  2. Landlock (Linux 5.13+): file access is granted on everything outside
//     the hidden directories, and the kept paths inside them. With the
//     mount namespace the grant is simply "/". Without it, the grant is
//     built from the siblings of each path component leading to a hidden
//     directory (Landlock rules cover whole hierarchies), so a directory
//     that contains the data dir can be listed but gets no new entries.
//     Any Landlock domain also stops the kernel from ptrace-reading
//     processes outside it (/proc/<server pid>/environ, mem), and with ABI 6
//     from signalling them or connecting to their abstract unix sockets.
//     Pathname unix sockets in kept directories stay usable.
//  3. Nothing: Mode auto starts the kernel anyway and the Report says
//     "none" (the caller logs it loudly); Mode required refuses.
//
// Caller's duties:
//
//  1. Dispatch the subcommand before anything else in main (and in the
//     TestMain of every test package whose tests start sandboxed kernels):
//
//     if len(os.Args) > 1 && os.Args[1] == sandbox.Subcommand {
//     os.Exit(sandbox.Main(os.Args[2:]))
//     }
//
//  2. Build the exec.Cmd of the kernel as usual (environment, Dir, stdio,
//     Setsid) and call Start instead of cmd.Start.
//
//  3. Record the returned Report where operators look (log line, event).
package sandbox
