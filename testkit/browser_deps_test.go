package testkit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserPreflightSaysWhatToRun: a machine without Chromium, or without
// the driver's npm packages, gets an error naming what is missing and
// `make deps`, before anything starts.
func TestBrowserPreflightSaysWhatToRun(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-chromium")
	_, err := browserPreflight(missing, consoleDir(t))
	if err == nil || !strings.Contains(err.Error(), missing+" is missing") || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("chromium missing: %v", err)
	}
	empty := t.TempDir()
	_, err = browserPreflight(ChromiumPath, empty)
	if err == nil || !strings.Contains(err.Error(), "no playwright-core") || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("npm packages missing: %v", err)
	}
	if node, err := browserPreflight(ChromiumPath, consoleDir(t)); err != nil || node == "" {
		t.Fatalf("this machine has everything (make deps ran): %q %v", node, err)
	}
}

// TestConsoleDriverRunsOnDebianNode: `make deps` installs Debian 12's
// nodejs (18) on a fresh machine, so the driver's pinned playwright-core
// must accept Node 18 (1.62 and later refuse to start on it: "Playwright
// requires Node.js 20 or higher"; 1.61.1 drives Chromium 156 on Node 18,
// checked with Debian's nodejs 18.20.4).
func TestConsoleDriverRunsOnDebianNode(t *testing.T) {
	for _, f := range []string{
		filepath.Join(consoleDir(t), "package.json"),
		filepath.Join(consoleDir(t), "node_modules", "playwright-core", "package.json"),
	} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("%v (run make deps)", err)
		}
		var pkg struct {
			Engines struct {
				Node string `json:"node"`
			} `json:"engines"`
		}
		if err := json.Unmarshal(raw, &pkg); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if pkg.Engines.Node != ">=18" && pkg.Engines.Node != ">=16" {
			t.Fatalf("%s wants node %q: Debian 12's nodejs is 18, what make deps installs", f, pkg.Engines.Node)
		}
	}
}
