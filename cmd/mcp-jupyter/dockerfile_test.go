package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileMatchesTheBinary checks what can be checked without a Docker
// engine: every MCP_* variable the image sets is one the binary reads, the
// health check hits the probe the server serves, the runtime image installs
// the kernel packages, and the build targets this command.
func TestDockerfileMatchesTheBinary(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
	}
	for _, m := range regexp.MustCompile(`\b(MCP_[A-Z_]+)=`).FindAllStringSubmatch(df, -1) {
		if !known[m[1]] {
			t.Errorf("Dockerfile sets %s, which mcp-jupyter does not read", m[1])
		}
	}
	for _, want := range []string{"python3-ipykernel", "python3-dill", "/health", "./cmd/mcp-jupyter", "STOPSIGNAL SIGTERM", "VOLUME", "USER "} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if _, err := parseConfig("serve", []string{"--addr", "0.0.0.0:3000", "--data-dir", "/data", "--shutdown-grace", "25s"}); err != nil {
		t.Errorf("the image's settings do not parse: %v", err)
	}
}
