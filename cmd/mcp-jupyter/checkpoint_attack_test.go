package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
)

// callToolWithin calls a tool and fails the test if it has not answered
// within d: what a hang looks like from the agent's side.
func callToolWithin(t testing.TB, c *client.Client, d time.Duration, name string, args map[string]any) (map[string]any, string) {
	t.Helper()
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res, err := c.CallTool(asAdmin(ctx), req)
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("%s did not answer within %s: it hangs", name, d)
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := mcp.AsTextContent(ct); ok {
			text = append(text, tc.Text)
		}
	}
	joined := strings.Join(text, "\n")
	if res.IsError {
		return nil, "ERROR: " + joined
	}
	sc, _ := res.StructuredContent.(map[string]any)
	return sc, joined
}

// evilPickle is a pickle that, when loaded, creates marker: what an
// attacker swaps in after the server checked the signature.
func evilPickle(marker string) []byte {
	return []byte("cbuiltins\nexec\n(Vopen('" + marker + "', 'w').write('pwned')\ntR0N.")
}

// TestCheckpointSwapRace (issue 13, finding 3): while loads run through
// MCP, a goroutine keeps renaming a malicious file and the genuine one over
// the checkpoint, as the attacker did (the 5th of 40 tries ran the pickle
// when the kernel reopened the file by path after the server verified it).
// Now the kernel unpickles a private copy of the bytes that were verified:
// every load either restores the genuine variables or is refused, and the
// malicious pickle never runs.
func TestCheckpointSwapRace(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "victim = {'genuine': True, 'data': list(range(50000))}"})
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "victim"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("save: %s", text)
	}
	dir := filepath.Join(c.cfg.DataDir, "checkpoints")
	target := filepath.Join(dir, "victim.ckpt")
	good, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	_, hlen, err := checkpointfile.ParseHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "pwned")
	// The malicious file keeps the genuine header, so a reader that seeks
	// past it lands on the evil pickle; its size is the genuine one.
	evil := append(append([]byte(nil), good[:hlen]...), evilPickle(marker)...)
	evil = append(evil, make([]byte, len(good)-len(evil))...)
	goodSrc, evilSrc := filepath.Join(c.cfg.DataDir, "good.src"), filepath.Join(c.cfg.DataDir, "evil.src")
	if err := os.WriteFile(goodSrc, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evilSrc, evil, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var swaps atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := filepath.Join(dir, "swap.tmp")
		for {
			for _, src := range []string{evilSrc, goodSrc} {
				select {
				case <-stop:
					_ = os.Remove(tmp)
					return
				default:
				}
				_ = os.Remove(tmp)
				if os.Link(src, tmp) == nil && os.Rename(tmp, target) == nil {
					swaps.Add(1)
				}
			}
		}
	}()
	const tries = 40
	var ok, refused int
	for i := 0; i < tries; i++ {
		_, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "victim"})
		switch {
		case !strings.HasPrefix(text, "ERROR"):
			ok++
		case strings.Contains(text, "checkpoint rejected"):
			refused++
		default:
			t.Errorf("load %d: neither restored nor refused: %s", i, text)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("the malicious pickle ran in the kernel (try %d of %d)", i+1, tries)
		}
	}
	close(stop)
	wg.Wait()
	if swaps.Load() < tries {
		t.Fatalf("only %d swaps during %d loads: the race was not exercised", swaps.Load(), tries)
	}
	if refused == 0 {
		t.Fatalf("no load of %d saw the malicious file (%d swaps): the race was not exercised", tries, swaps.Load())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the malicious pickle ran in the kernel")
	}
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(victim['genuine'], len(victim['data']))"}); sc["status"] != "ok" || !strings.Contains(text, "True 50000") {
		t.Fatalf("the genuine variables are not what the kernel holds: %s", text)
	}
	t.Logf("%d loads restored, %d refused, %d swaps", ok, refused, swaps.Load())
}

// TestCheckpointCopiedAndRolledBack (issue 13, finding 4): a checkpoint
// copied to another name is refused under that name, naming both; an older
// copy of a name put back is refused, and loaded with allow_rollback;
// list_checkpoints marks both unverified with the reason.
func TestCheckpointCopiedAndRolledBack(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	dir := filepath.Join(c.cfg.DataDir, "checkpoints")
	save := func(name, code string, overwrite bool) {
		t.Helper()
		callTool(t, cl, "execute", map[string]any{"kernel": k, "code": code})
		if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": name, "overwrite": overwrite}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("save %s: %s", name, text)
		}
	}
	save("prod", "v = 'prod-1'", false)
	old, err := os.ReadFile(filepath.Join(dir, "prod.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	save("prod", "v = 'prod-2'", true)
	save("scratch", "v = 'scratch'", false)
	scratch, err := os.ReadFile(filepath.Join(dir, "scratch.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	value := func() string {
		t.Helper()
		_, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(v)"})
		lines := strings.Split(strings.TrimSpace(text), "\n")
		return lines[len(lines)-1] // the printed line comes after the execution's header
	}
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "v = 'untouched'"})

	// Copied to another name: refused, both names in the error.
	if err := os.WriteFile(filepath.Join(dir, "copied.ckpt"), scratch, 0o600); err != nil {
		t.Fatal(err)
	}
	_, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "copied"})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, `"scratch"`) || !strings.Contains(text, `"copied"`) {
		t.Fatalf("a copy under another name: %s", text)
	}
	_, text = callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "copied", "allow_rollback": true})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "saved as") {
		t.Fatalf("allow_rollback must not let a renamed copy in: %s", text)
	}
	// An older copy of prod put back: refused, then loaded on request.
	if err := os.WriteFile(filepath.Join(dir, "prod.ckpt"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	_, text = callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "prod"})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "older version") || !strings.Contains(text, "allow_rollback") {
		t.Fatalf("an older copy put back: %s", text)
	}
	if got := value(); got != "untouched" {
		t.Fatalf("a refused load changed the kernel: v = %q", got)
	}
	_, list := callTool(t, cl, "list_checkpoints", nil)
	for _, want := range []string{`UNVERIFIED "copied"`, `saved as \"scratch\"`, `UNVERIFIED "prod"`, "older version"} {
		if !strings.Contains(list, want) {
			t.Errorf("list_checkpoints lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, `UNVERIFIED "scratch"`) {
		t.Errorf("list_checkpoints marks the genuine scratch unverified:\n%s", list)
	}
	_, text = callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "prod", "allow_rollback": true})
	if strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "OLDER version") {
		t.Fatalf("allow_rollback: %s", text)
	}
	if got := value(); got != "prod-1" {
		t.Fatalf("after the rollback v = %q, want prod-1", got)
	}
}

// TestCheckpointSpecialFilesNeverHang (issue 13, finding 8): a named pipe
// (kernel code could make one), a symbolic link and a directory named like
// checkpoints: list_checkpoints and load_environment answer at once with
// a clear error, and never open them.
func TestCheckpointSpecialFilesNeverHang(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "w = 1"})
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "real"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("save: %s", text)
	}
	dir := filepath.Join(c.cfg.DataDir, "checkpoints")
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.ckpt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real.ckpt"), filepath.Join(dir, "link.ckpt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "folder.ckpt"), 0o700); err != nil {
		t.Fatal(err)
	}
	const prompt = 20 * time.Second
	_, list := callToolWithin(t, cl, prompt, "list_checkpoints", nil)
	for _, want := range []string{"pipe.ckpt is a named pipe", "link.ckpt is a symbolic link", "folder.ckpt is a directory", `"real"`} {
		if !strings.Contains(list, want) {
			t.Errorf("list_checkpoints lacks %q:\n%s", want, list)
		}
	}
	for name, kind := range map[string]string{"pipe": "named pipe", "link": "symbolic link", "folder": "directory"} {
		_, text := callToolWithin(t, cl, prompt, "load_environment", map[string]any{"kernel": k, "name": name})
		if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, kind+", not a regular file") {
			t.Errorf("load %s: %s", name, text)
		}
	}
	// A named pipe swapped in under a real name after the listing: the
	// open itself never blocks.
	if err := os.Remove(filepath.Join(dir, "real.ckpt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "real.ckpt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, text := callToolWithin(t, cl, prompt, "load_environment", map[string]any{"kernel": k, "name": "real"}); !strings.Contains(text, "named pipe") {
		t.Errorf("load of a pipe under a recorded name: %s", text)
	}
}
