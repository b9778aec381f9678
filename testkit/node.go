package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The outside checks drive the server with clients no one here wrote: Node
// projects under testkit/outside, each pinning one npm package in its
// package.json and installed by `make deps` (npm ci from the committed
// lock). Their scripts print one JSON object {"ok": true, …} on stdout, or
// {"ok": false, "failed": "…"} and exit 1.

// OutsideNode returns node's path for the outside check in the Node project
// dir, failing the test with what to run (`make deps`) when node is not on
// PATH or pkg is not installed in dir/node_modules at the version
// dir/package.json pins.
func OutsideNode(t testing.TB, dir, pkg string) string {
	t.Helper()
	node, err := outsideNode(dir, pkg)
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func outsideNode(dir, pkg string) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node is not on PATH (%v): the outside checks need Node.js with npm; run `make deps`, which installs them and %s", err, pkg)
	}
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(data, &pinned); err != nil {
		return "", fmt.Errorf("%s/package.json: %w", dir, err)
	}
	want := pinned.Dependencies[pkg]
	if want == "" {
		return "", fmt.Errorf("%s/package.json pins no %s", dir, pkg)
	}
	var installed struct {
		Version string `json:"version"`
	}
	data, err = os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s is not installed in %s/node_modules: run `make deps` (npm ci from the committed lock)", pkg, dir)
	}
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(data, &installed); err != nil {
		return "", fmt.Errorf("%s/node_modules/%s/package.json: %w", dir, pkg, err)
	}
	if installed.Version != want {
		return "", fmt.Errorf("%s/node_modules holds %s %s, package.json pins %s: run `make deps`", dir, pkg, installed.Version, want)
	}
	return node, nil
}

// NodeCheck is one run of an outside check's script.
type NodeCheck struct {
	Node    string        // node's path, from OutsideNode
	Dir     string        // the Node project: the script and its node_modules
	Script  string        // the script's file name in Dir
	Args    []string      // the script's arguments
	Env     []string      // the script's whole environment (os.Environ() and what it reads)
	Timeout time.Duration // for the whole run: the script is killed after it

	// Ask is the line the script writes on stderr when the test must act
	// between two of its steps (revoke a token, restart the server). OnAsk
	// then runs on the test's goroutine, once, and the line it returns is
	// written on the script's stdin. Empty: no handshake (stdin is empty).
	Ask   string
	OnAsk func() string
}

// nodeOutputTail bounds how much of the script's stdout and stderr a
// failure quotes (its end, where the error is).
const nodeOutputTail = 8000

// RunNodeJSON runs c, decodes the JSON object the script printed into res
// (unless res is nil) and returns its stdout (to log). It fails the test, quoting the script's
// stdout and stderr, when the script exited non-zero or was killed, printed
// no JSON object, or printed one without "ok": true or with "failed" set.
// The script is killed and reaped on cleanup, also after a t.Fatal in OnAsk.
func RunNodeJSON(t testing.TB, c NodeCheck, res any) string {
	t.Helper()
	out, err := runNodeJSON(t.Cleanup, c, res)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runNodeJSON(cleanup func(func()), c NodeCheck, res any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	cmd := exec.CommandContext(ctx, c.Node, append([]string{c.Script}, c.Args...)...)
	cmd.Dir, cmd.Env = c.Dir, c.Env
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	var stdin io.WriteCloser
	if c.Ask != "" {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			cancel()
			return "", err
		}
	}
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		return "", err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return "", fmt.Errorf("node %s: %w", c.Script, err)
	}
	// The scanner owns stderr until the script closes it (exits or is
	// killed with ctx); asked fires on the script's request line.
	asked, scanned := make(chan struct{}), make(chan struct{})
	var stderr strings.Builder
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderrPipe)
		sc.Buffer(nil, 1<<20)
		once := false
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if c.Ask != "" && sc.Text() == c.Ask && !once {
				once = true
				close(asked)
			}
		}
		// NB: after a line over the limit, drain so the script never
		// blocks writing.
		_, _ = io.Copy(io.Discard, stderrPipe)
	}()
	waited := false
	// NB: also when OnAsk ends the test (t.Fatal): the script is killed
	// and reaped, the scanner has ended.
	cleanup(func() {
		cancel()
		<-scanned
		if !waited {
			_ = cmd.Wait()
		}
	})
	if c.Ask != "" {
		select {
		case <-asked:
			_, _ = io.WriteString(stdin, c.OnAsk()+"\n")
		case <-scanned:
		}
		_ = stdin.Close()
	}
	<-scanned
	runErr := cmd.Wait()
	waited = true
	var verdict struct {
		OK     bool   `json:"ok"`
		Failed string `json:"failed"`
	}
	jsonErr := json.Unmarshal(stdout.Bytes(), &verdict)
	if jsonErr == nil && res != nil {
		jsonErr = json.Unmarshal(stdout.Bytes(), res)
	}
	switch {
	case runErr != nil, jsonErr != nil, !verdict.OK, verdict.Failed != "":
		return stdout.String(), fmt.Errorf("node %s: exit %v (context: %v), JSON %v, ok=%v failed=%q\nstderr:\n%s\nstdout:\n%s",
			c.Script, runErr, ctx.Err(), jsonErr, verdict.OK, verdict.Failed, tail(stderr.String(), nodeOutputTail), tail(stdout.String(), nodeOutputTail))
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
