package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// debianPackages reads the one package list (debian-packages.txt).
func debianPackages(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../infra/jupyter/debian-packages.txt")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			pkgs = append(pkgs, line)
		}
	}
	return pkgs
}

// TestDockerfileMatchesTheBinary checks what can be checked without a Docker
// engine: every MCP_* variable the image sets is one the binary reads, the
// health check hits a path the server serves, the runtime image installs the
// one package list, runs as a numeric non-root user under an init, and the
// build targets this command.
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
	var args []string
	for _, m := range regexp.MustCompile(`\b(MCP_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(df, -1) {
		if !known[m[1]] {
			t.Errorf("Dockerfile sets %s, which mcp-jupyter does not read", m[1])
		}
		for _, s := range settings {
			if s.env == m[1] && !strings.Contains(m[2], "mcp.example") {
				args = append(args, "--"+s.name, m[2])
			}
		}
	}
	for _, want := range []string{"COPY infra/jupyter/debian-packages.txt", "$(grep -v '^#' /tmp/debian-packages.txt)", "./cmd/mcp-jupyter",
		"STOPSIGNAL SIGTERM", `VOLUME ["/data/mcp"]`, "USER 10001:10001", "MCP_DATA_DIR=/data/mcp", `ENTRYPOINT ["/usr/bin/tini", "--"`, " tini "} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The base images are build arguments (a machine without a registry
	// builds on images it made: infra/image/build.sh); their defaults are
	// the registry's Go and Debian slim images.
	if n := strings.Count(df, "\nFROM "); n != 2 || !strings.HasPrefix(df[strings.Index(df, "\nFROM ")+1:], "FROM ${GO_IMAGE} AS build") ||
		!strings.Contains(df, "\nFROM ${BASE_IMAGE}\n") {
		t.Errorf("want a two-stage build FROM ${GO_IMAGE} AS build, then FROM ${BASE_IMAGE}: %d stages", n)
	}
	for _, arg := range []string{"ARG GO_IMAGE=golang:1.26-bookworm\n", "ARG BASE_IMAGE=debian:bookworm-slim\n"} {
		if i := strings.Index(df, arg); i < 0 || i > strings.Index(df, "\nFROM ") {
			t.Errorf("Dockerfile lacks %q before its first FROM", strings.TrimSpace(arg))
		}
	}
	if !strings.Contains(df, "--no-install-recommends") || !strings.Contains(df, "rm -rf /var/lib/apt/lists/*") {
		t.Error("the runtime stage must install without recommends and drop apt's lists (image size)")
	}
	hc := regexp.MustCompile(`HEALTHCHECK .*http://127\.0\.0\.1:(\d+)(/\S*)`).FindStringSubmatch(df)
	if hc == nil || !slices.Contains(servedPaths, hc[2]) {
		t.Errorf("HEALTHCHECK %v does not hit a served path (%v)", hc, servedPaths)
	}
	cfg, err := parseConfig("serve", args)
	if err != nil {
		t.Fatalf("the image's settings do not parse: %v", err)
	}
	if hc != nil && !strings.HasSuffix(cfg.Addr, ":"+hc[1]) {
		t.Errorf("HEALTHCHECK port %s is not MCP_ADDR %s", hc[1], cfg.Addr)
	}
	if cfg.ShutdownGrace.Seconds() >= 30 {
		t.Errorf("MCP_SHUTDOWN_GRACE %s must stay under Kubernetes' 30 s", cfg.ShutdownGrace)
	}
}

// TestOnePackageList: the Makefile and the README take the kernel packages
// from debian-packages.txt, which has what a kernel needs.
func TestOnePackageList(t *testing.T) {
	pkgs := debianPackages(t)
	for _, need := range []string{"python3-ipykernel", "python3-dill", "python3-numpy", "python3-pandas", "python3-matplotlib"} {
		if !slices.Contains(pkgs, need) {
			t.Errorf("debian-packages.txt lacks %s", need)
		}
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "debian-packages.txt") || strings.Contains(string(mk), "python3-ipykernel") {
		t.Error("the Makefile must read debian-packages.txt, not list packages of its own")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "debian-packages.txt") {
		t.Error("the README's set-up does not point at debian-packages.txt")
	}
	if strings.Contains(string(readme), "python3-ipykernel python3-dill") {
		t.Error("the README lists packages of its own; point at debian-packages.txt instead")
	}
}
