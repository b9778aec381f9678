// Command mcp-jupyter runs the mcp-jupyter server: durable Jupyter kernels
// for AI agents over MCP.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `mcp-jupyter: durable Jupyter kernels for AI agents, over MCP.

Usage:
  mcp-jupyter serve [flags]    run the server: MCP over Streamable HTTP at /mcp, probes, events
  mcp-jupyter stdio [flags]    serve one MCP client over stdin/stdout (desktop clients)
  mcp-jupyter events <cmd>     read the event log: tail, show, replay, verify, export, import
  mcp-jupyter principal <cmd>  named tokens with scopes: add, list, revoke, rotate
  mcp-jupyter doctor [flags]   check the data dir, event log, Python, port, orphaned kernels
                               and resources; one line per finding (--reap kills orphans)
  mcp-jupyter version          print the version
  mcp-jupyter help             this text

Run "mcp-jupyter serve --help" for the flags and environment variables.
`

func main() {
	// NB: first, before any flag or signal handling: this binary is also
	// the kernel launcher (infra/sandbox), re-executed by the server for
	// each kernel with this hidden subcommand.
	if len(os.Args) > 1 && os.Args[1] == sandbox.Subcommand {
		os.Exit(sandbox.Main(os.Args[2:]))
	}
	// NB: likewise the orphan guard started beside each kernel (infra/guard).
	if len(os.Args) > 1 && os.Args[1] == guard.Subcommand {
		os.Exit(guard.Main(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	var err error
	switch args[0] {
	case "serve", "stdio":
		// The server's /proc files (environ holds MCP_TOKEN and the other
		// secrets; mem, maps) become root's: another process of the same
		// uid, a kernel started without Landlock above all, cannot read
		// them. Kernels are execve()d, which makes them dumpable again.
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "mcp-jupyter: hide the server's /proc files (PR_SET_DUMPABLE): %v\n", err)
			return 1
		}
	}
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:])
	case "stdio":
		err = runStdio(ctx, args[1:])
	case "events":
		err = runEvents(ctx, args[1:], eventsIO{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	case "doctor":
		err = runDoctor(ctx, args[1:], os.Stdout)
	case "principal":
		err = runPrincipal(args[1:], os.Stdout)
	case "version", "--version":
		fmt.Println("mcp-jupyter", version)
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "mcp-jupyter: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "mcp-jupyter: %v\n", err)
		return 1
	}
	return 0
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once (the log's group commit keeps what was acknowledged).
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(os.Stderr, "mcp-jupyter: second %v, exiting now\n", s)
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}
