package jupyter_test

import (
	"os"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// TestMain makes this test binary the kernel launcher when it is
// re-executed as one (see infra/sandbox's doc): sandboxed kernels in these
// tests start through os.Executable(), which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Subcommand {
		os.Exit(sandbox.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}
