// Command mcp-jupyter lets AI agents run code in real Jupyter kernels over
// MCP. Every state change is an event in a durable log under the data dir.
//
//	mcp-jupyter serve [flags]   run the server
//	mcp-jupyter version         print the version
//	mcp-jupyter help [command]  explain commands, flags and environment
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(rest, getenv, stderr)
	case "version", "--version", "-version":
		return runVersion(stdout)
	case "help", "--help", "-help", "-h":
		return runHelp(rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "mcp-jupyter: unknown command %q\n\n", cmd)
		printUsage(stderr)
		return 2
	}
}
