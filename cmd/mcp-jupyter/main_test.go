package main

import (
	"os"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestMain makes this test binary the kernel launcher when the server under
// test re-executes it as one (os.Executable() is this binary in tests; see
// infra/sandbox's doc), exactly as main does in the real binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Subcommand {
		os.Exit(sandbox.Main(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == guard.Subcommand {
		os.Exit(guard.Main(os.Args[2:]))
	}
	code := m.Run()
	testkit.RemoveBuiltServer()
	os.Exit(code)
}
