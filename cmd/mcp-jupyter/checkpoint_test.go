package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

const fridaySetup = `
import pandas as pd, numpy as np
rng = np.random.default_rng(7)
df = pd.DataFrame(rng.standard_normal((100_000, 50)), columns=[f"c{i}" for i in range(50)])
class LinearModel:
    def fit(self, X, y):
        self.coef_ = np.linalg.lstsq(X, y, rcond=None)[0]
        return self
    def predict(self, X):
        return X @ self.coef_
model = LinearModel().fit(df.values[:, :49], df.values[:, 49])
results = {"r2": float(1 - ((model.predict(df.values[:, :49]) - df.values[:, 49])**2).sum() / ((df.values[:, 49] - df.values[:, 49].mean())**2).sum()), "folds": [0.1, 0.2]}
gen = (i for i in range(3))
`

const fridayDigest = `print(int(pd.util.hash_pandas_object(df).sum()), df.shape, repr(model.coef_[:3].tolist()), results, float(model.predict(df.values[:5, :49]).sum()))`

// stdioServer runs the real binary over stdio and returns the client and
// the server process (to kill -9).
func stdioServer(t *testing.T, bin, dataDir, specDir string) (*client.Client, func() *os.Process) {
	t.Helper()
	var cmd *exec.Cmd
	tr := transport.NewStdioWithOptions(bin, append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+specDir), []string{"stdio"},
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd = exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			return cmd, nil
		}))
	cl := mcpClient(t, client.NewClient(tr))
	t.Cleanup(func() { cl.Close() })
	return cl, func() *os.Process { return cmd.Process }
}

// TestFridayMondayKill9: save df (100,000 x 50), a fitted model and results
// through MCP; kill -9 the server and the kernel; a new server and kernel
// load them and the values are equal.
func TestFridayMondayKill9(t *testing.T) {
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	specDir := testkit.KernelSpecDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })

	cl, proc := stdioServer(t, bin, dataDir, specDir)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": fridaySetup, "timeout_s": 120}); sc["status"] != "ok" {
		t.Fatalf("setup: %s", text)
	}
	_, want := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": fridayDigest})
	_, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "friday"})
	if strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "gen (generator)") {
		t.Fatalf("save_environment: %s", text)
	}
	if err := proc().Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = proc().Wait()
	testkit.KillKernels(t, dataDir)

	cl2, _ := stdioServer(t, bin, dataDir, specDir)
	k2 := startKernelTool(t, cl2)
	_, text = callTool(t, cl2, "load_environment", map[string]any{"kernel": k2, "name": "friday"})
	if strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "df") {
		t.Fatalf("load_environment: %s", text)
	}
	_, got := callTool(t, cl2, "execute", map[string]any{"kernel": k2, "code": "import pandas as pd\n" + fridayDigest})
	if digestLine(got) != digestLine(want) || digestLine(got) == "" {
		t.Fatalf("Monday's values differ:\n got %s\nwant %s", got, want)
	}
}

func digestLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "(100000, 50)") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestCheckpointToolsInProcess: the tools through the in-process client,
// with the bad inputs of the issue.
func TestCheckpointToolsInProcess(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "a = b = [1]\nfh = open('/etc/hostname')"})
	_, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "aliases", "variables": []any{"a", "b", "fh"}})
	if strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "fh (_io.TextIOWrapper)") {
		t.Fatalf("save: %s", text)
	}
	for _, bad := range []map[string]any{
		{"kernel": k, "name": "../../etc/passwd"},
		{"kernel": k, "name": ""},
		{"kernel": k, "name": "a/b"},
		{"kernel": k, "name": "aliases"},
		{"kernel": k, "name": "x", "variables": "a"},
	} {
		if _, text := callTool(t, cl, "save_environment", bad); !strings.HasPrefix(text, "ERROR") {
			t.Errorf("save %v accepted: %s", bad, text)
		} else {
			t.Logf("save %v: %s", bad, text)
		}
	}
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "aliases", "overwrite": true}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("overwrite: %s", text)
	}
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "del a, b"})
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "aliases", "policy": "sometimes"}); !strings.Contains(text, "warn") {
		t.Fatalf("bad policy: %s", text)
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "aliases"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load: %s", text)
	}
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "print(a is b, a)"}); sc["status"] != "ok" || !strings.Contains(text, "True [1]") {
		t.Fatalf("aliasing lost: %s", text)
	}
	if _, text := callTool(t, cl, "list_checkpoints", nil); !strings.Contains(text, `"aliases"`) {
		t.Fatalf("list: %s", text)
	}
	if _, text := callTool(t, cl, "delete_checkpoint", map[string]any{"name": "aliases"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("delete: %s", text)
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "aliases"}); !strings.Contains(text, "list_checkpoints") {
		t.Fatalf("load of a deleted checkpoint: %s", text)
	}
}

// TestCheckpointMetricsOnMetrics: /metrics of a server shows the checkpoint
// figures moving with the work: one save (count and the file's size), one
// load, one refused tampered load (a load attempt, and a signature
// failure).
func TestCheckpointMetricsOnMetrics(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	scrape := func() string {
		t.Helper()
		code, body := get(t, srv.URL+pathMetrics)
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	k := startKernelTool(t, cl)
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "nums = list(range(5000))"})
	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel": k, "name": "scraped"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("save: %s", text)
	}
	fi, err := os.Stat(filepath.Join(c.cfg.DataDir, "checkpoints", "scraped.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "scraped"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load: %s", text)
	}
	b, err := os.ReadFile(filepath.Join(c.cfg.DataDir, "checkpoints", "scraped.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	// A flipped payload byte: format 2 refuses the chunk that holds it.
	_, hlen, err := checkpointfile.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	b[hlen+10] ^= 1
	if err := os.WriteFile(filepath.Join(c.cfg.DataDir, "checkpoints", "scraped.ckpt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernel": k, "name": "scraped"}); !strings.Contains(text, "fails authentication") {
		t.Fatalf("tampered load: %s", text)
	}
	body := scrape()
	for _, want := range []string{
		"checkpoint_save_duration_seconds_count 1",
		"checkpoint_load_duration_seconds_count 2", // the load and the refused one
		"checkpoint_size_bytes_count 1",
		fmt.Sprintf("checkpoint_size_bytes_sum %d", fi.Size()),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// security_signature_failures_total is folded from the log: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(body, "security_signature_failures_total 1") {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed the refused load as a signature failure")
		}
		if err := c.runner.WaitFor(context.Background(), c.log.Last()); err != nil {
			t.Fatal(err)
		}
		body = scrape()
	}
}
