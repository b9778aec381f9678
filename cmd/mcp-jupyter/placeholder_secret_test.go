package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestTokenPlaceholderRefusedAtStart: the real binary, given the
// documentation's placeholder "replace-with-openssl-rand-hex-32" as
// MCP_TOKEN or MCP_CHECKPOINT_SECRET (what a pod got when the manifest's
// example Secret overwrote the random one), refuses to start and says how
// to make a random value, rather than serve with a secret anyone knows.
func TestTokenPlaceholderRefusedAtStart(t *testing.T) {
	const placeholder = "replace-with-openssl-rand-hex-32"
	const random = "5b1e0c9d7a3f48e6b2d4c6a8e0f1b3d5c7e9a1b3d5f7081a"
	bin := buildBinary(t)
	for _, tc := range []struct{ name, token, secret, says string }{
		{"token", placeholder, random, "MCP_TOKEN"},
		{"checkpoint secret", random, placeholder, "MCP_CHECKPOINT_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := testkit.TempDataDir(t)
			t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
			s := startServer(t, bin, []string{"MCP_DATA_DIR=" + dataDir, "MCP_TOKEN=" + tc.token, "MCP_CHECKPOINT_SECRET=" + tc.secret})
			if err := s.wait(t, 60*time.Second); err == nil {
				t.Fatalf("the server started with the placeholder %s; logs:\n%s", tc.says, s.Logs())
			}
			if logs := s.Logs(); !strings.Contains(logs, tc.says) || !strings.Contains(logs, "openssl rand -hex 32") || !strings.Contains(logs, "placeholder") {
				t.Fatalf("want an error naming %s, the placeholder and openssl rand -hex 32; logs:\n%s", tc.says, logs)
			}
		})
	}
}
