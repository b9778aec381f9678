package main

import (
	"fmt"
	"io"
)

func printUsage(w io.Writer) {
	fmt.Fprint(w, `mcp-jupyter lets AI agents run code in real Jupyter kernels over MCP.

Usage:
  mcp-jupyter serve [flags]    run the server (see: mcp-jupyter help serve)
  mcp-jupyter version          print the version
  mcp-jupyter help [command]   show help for a command

Configuration comes from flags or MCP_* environment variables.
`)
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return 0
	}
	switch args[0] {
	case "serve":
		printServeHelp(stdout)
	case "version":
		fmt.Fprintln(stdout, "Usage: mcp-jupyter version\n\nPrints the version and the Go toolchain it was built with.")
	case "help":
		printUsage(stdout)
	default:
		fmt.Fprintf(stderr, "mcp-jupyter help: unknown command %q\n", args[0])
		return 2
	}
	return 0
}
