package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	corev1 "k8s.io/api/core/v1"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// serveOn serves c's real HTTP handler (the one runServe uses) on every
// interface, and returns the port. A test reaches it through 127.0.0.2,
// which stands for a pod IP: an address of this host that is not
// "localhost".
func serveOn(t testing.TB, c *core) string {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(c.httpHandler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// NB: the kernelspec check finishes after open; the probes are
	// asserted on a ready server (as the probe monitor last saw it: what
	// /readyz answers).
	testkit.WaitUntil(t, time.Minute, "the core is ready", func() (bool, string) {
		rd := c.probes.ready(time.Now())
		return rd.Status == "ready", rd.Reason
	})
	return port
}

// request sends method path to 127.0.0.2:port with the Host, Origin and
// token given ("" leaves them out).
func request(t testing.TB, port, path, host, origin, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.2:"+port+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, string(b)
}

// TestEveryRouteChecksHost: every route, the probes and /metrics included,
// refuses a Host that is not this server (a DNS-rebinding page's own name)
// and a foreign Origin with 403, before anything else; the address the
// connection arrived on is accepted as Host, as Kubernetes probes and
// Prometheus send it (the pod IP).
func TestEveryRouteChecksHost(t *testing.T) {
	c, _ := inProcess(t)
	port := serveOn(t, c)
	routes := append([]string{"/events", "/ws", "/assets/" + strings.Repeat("a", 64), "/no-such-route"}, servedPaths...)
	for _, path := range routes {
		for _, bad := range []struct{ host, origin string }{
			{"evil.example", ""}, {"evil.example:" + port, ""}, {"127.0.0.3:" + port, ""}, // not the address dialled
			{"127.0.0.2:" + port, "http://evil.example"}, {"localhost:" + port, "null"},
		} {
			code, body := request(t, port, path, bad.host, bad.origin, c.token)
			if code != http.StatusForbidden {
				t.Errorf("GET %s with Host %q Origin %q: %d, want 403: %.120s", path, bad.host, bad.origin, code, body)
			}
		}
	}
	// The probes answer through the address dialled and through localhost.
	for _, path := range []string{pathHealth, pathLivez, pathReadyz, pathMetrics} {
		for _, host := range []string{"127.0.0.2:" + port, "localhost:" + port} {
			if code, body := request(t, port, path, host, "", ""); code != http.StatusOK {
				t.Errorf("GET %s with Host %s: %d, want 200: %.200s", path, host, code, body)
			}
		}
	}
}

// TestKubernetesProbesPassHostCheck: each probe of docs/kubernetes, sent as
// the kubelet sends it (to the pod IP, Host = the pod IP and port unless
// the probe sets a Host header), and the Prometheus scrape of the pod
// annotations, pass the Host check of a server configured as the manifest
// configures it.
func TestKubernetesProbesPassHostCheck(t *testing.T) {
	sts, _, _ := manifests(t)
	pod := sts.Spec.Template
	ctr := pod.Spec.Containers[0]
	for _, e := range ctr.Env {
		if e.Name == "MCP_ALLOWED_HOSTS" {
			t.Setenv("MCP_ALLOWED_HOSTS", e.Value)
		}
	}
	c, _ := inProcess(t)
	port := serveOn(t, c)
	for name, p := range map[string]*corev1.Probe{"startup": ctr.StartupProbe, "liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		host := "127.0.0.2:" + port // the pod IP and the probe's port
		for _, h := range p.HTTPGet.HTTPHeaders {
			if strings.EqualFold(h.Name, "Host") {
				host = h.Value
			}
		}
		if code, body := request(t, port, p.HTTPGet.Path, host, "", ""); code != http.StatusOK {
			t.Errorf("%s probe GET %s (Host %s): %d, want 200: %.200s", name, p.HTTPGet.Path, host, code, body)
		}
	}
	path := pod.Annotations["prometheus.io/path"]
	if code, body := request(t, port, path, "127.0.0.2:"+port, "", ""); code != http.StatusOK {
		t.Errorf("Prometheus scrape of %s by pod IP: %d, want 200: %.200s", path, code, body)
	}
}

// TestMetricsAndReadyzNameNoKernelIDs: neither /metrics nor /readyz (no
// token needed) names a kernel or an execution, even with a queue.
func TestMetricsAndReadyzNameNoKernelIDs(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	port := serveOn(t, c)
	k := startKernelTool(t, cl)
	gate := filepath.Join(t.TempDir(), "go")
	running, _ := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": waitFile(gate), "timeout_s": 0.2, "execution_id": "agent-secret-run"})
	queued, _ := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "1", "timeout_s": 0.1, "execution_id": "agent-secret-queued"})
	defer release(t, gate)
	if running["execution_id"] != "agent-secret-run" || queued["status"] != "queued" {
		t.Fatalf("setup: %v %v", running, queued)
	}
	caughtUp(t, c)
	code, metrics := request(t, port, pathMetrics, "localhost", "", "")
	if code != 200 || !strings.Contains(metrics, "mcp_jupyter_queue_depth_max 1") {
		t.Fatalf("/metrics %d lacks the deepest queue of 1:\n%.2000s", code, metrics)
	}
	_, ready := request(t, port, pathReadyz, "localhost", "", "")
	for what, body := range map[string]string{pathMetrics: metrics, pathReadyz: ready} {
		for _, id := range []string{k, "agent-secret-run", "agent-secret-queued"} {
			if strings.Contains(body, id) {
				t.Errorf("%s names %s", what, id)
			}
		}
	}
	// Whatever a check reports, ids are taken out.
	rd := readiness{Status: "not ready", Reason: "kernels: kernel " + k + " died", Checks: map[string]string{
		"nats": "publisher stopped at execution/agent-secret-run (kernel/" + k + ")", "log": "ok",
		"disk": "event 01kbx3gq2p7c8n4a6d9f1h3j5m of notebook/work/secret.ipynb not written"}}
	out := rd.withoutIDs([]string{k})
	for _, s := range append([]string{out.Reason}, out.Checks["nats"], out.Checks["disk"]) {
		if strings.Contains(s, k) || strings.Contains(s, "agent-secret") || strings.Contains(s, "01kbx3gq2p7c8n4a6d9f1h3j5m") || strings.Contains(s, "secret.ipynb") {
			t.Errorf("readiness still names an id: %q", s)
		}
	}
	if out.Checks["log"] != "ok" || !strings.Contains(out.Reason, "died") || !strings.Contains(out.Checks["nats"], "publisher stopped at execution/<id>") {
		t.Errorf("the scrubbed readiness lost what is wrong: %+v", out)
	}
}

// TestMissingAssetIs404: GET /assets/<a sum nobody stored> is 404 and a
// malformed id 400, never 500; resources/read says not found.
func TestMissingAssetIs404(t *testing.T) {
	c, connect := inProcess(t)
	port := serveOn(t, c)
	missing := strings.Repeat("0", 64)
	if code, body := request(t, port, "/assets/"+missing, "localhost", "", c.token); code != http.StatusNotFound || !strings.Contains(body, "not stored") {
		t.Errorf("missing asset: %d %q, want 404", code, body)
	}
	for _, bad := range []string{"xyz", strings.Repeat("A", 64), strings.Repeat("0", 63) + "g", "..%2F..%2Fmcp-token"} {
		if code, body := request(t, port, "/assets/"+bad, "localhost", "", c.token); code != http.StatusBadRequest {
			t.Errorf("malformed asset id %q: %d %q, want 400", bad, code, body)
		}
	}
	cl := connect()
	for _, uri := range []string{"asset://" + missing, "asset://xyz"} {
		var req mcp.ReadResourceRequest
		req.Params.URI = uri
		_, err := cl.ReadResource(asAdmin(context.Background()), req)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("resources/read %s: %v, want a not-found error", uri, err)
		}
	}
}

// TestStartKernelNotebookConfined: start_kernel(notebook=…) goes through the
// notebook tools' confinement: "..", an absolute path elsewhere and a
// symlink leading out of the root are refused before a kernel starts; a
// path inside is bound in its root-relative form, and execute accepts the
// other spellings of it.
func TestStartKernelNotebookConfined(t *testing.T) {
	_, cl, root := notebookCore(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	for _, nb := range []string{"../escape.ipynb", filepath.Join(outside, "escape.ipynb"), "out/escape.ipynb", "/etc/passwd.ipynb", "notes.txt"} {
		_, text := callTool(t, cl, "start_kernel", map[string]any{"kernelspec": "python3", "notebook": nb})
		if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, nb) {
			t.Errorf("start_kernel(notebook=%q): %s", nb, text)
		}
	}
	if sc, text := callTool(t, cl, "list_kernels", nil); len(sc["kernels"].([]any)) != 0 {
		t.Fatalf("a refused start_kernel started a kernel: %s", text)
	}
	sc := must(t, cl, "start_kernel", map[string]any{"kernelspec": "python3", "notebook": "./inside.ipynb"})
	if sc["notebook"] != "inside.ipynb" {
		t.Errorf("bound as %v, want the root-relative inside.ipynb", sc["notebook"])
	}
	for _, ref := range []string{"inside.ipynb", "./inside.ipynb", filepath.Join(root, "inside.ipynb")} {
		if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": ref, "code": "1+1"}); sc["status"] != "ok" {
			t.Errorf("execute(kernel=%q): %s", ref, text)
		}
	}
}

// filler is a request body of n bytes made up as it is read: the client
// holds none of it, so the RSS measured is the server's alone.
type filler struct {
	left int64
	read atomic.Int64
}

func (f *filler) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.left)
	for i := range p[:n] {
		p[i] = ' '
	}
	f.left -= n
	f.read.Add(n)
	return int(n), nil
}

// procStatus reads a figure in kB from /proc/<pid>/status (VmHWM, VmRSS).
func procStatus(tb testing.TB, pid int, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// refuseBodies posts n bodies of size bytes at once to the server's /mcp
// (declared length, or chunked) and returns the server's peak RSS in MiB
// over the burst (VmHWM after resetting it through clear_refs). Every post
// must be answered 413.
func refuseBodies(tb testing.TB, s *server, token string, n int, size int64, declared bool) (peakMiB, beforeMiB float64) {
	tb.Helper()
	pid := s.cmd.Process.Pid
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		tb.Fatalf("reset the peak RSS: %v", err)
	}
	beforeMiB = float64(procStatus(tb, pid, "VmHWM")) / 1024
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := &filler{left: size}
			req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+pathMCP, body)
			req.ContentLength = size
			if !declared {
				req.ContentLength = -1
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "at most") {
				errs <- fmt.Sprintf("%d %.200s", res.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		tb.Fatalf("a %d-byte body (declared %v) was not refused with 413: %s", size, declared, e)
	}
	return float64(procStatus(tb, pid, "VmHWM")) / 1024, beforeMiB
}

// bodyServer is the real binary, ready, with a known token.
func bodyServer(tb testing.TB, bin string) (*server, string) {
	tb.Helper()
	const token = "body-limit-test-token-0123456789"
	dataDir := testkit.TempDataDir(tb)
	tb.Cleanup(func() { testkit.KillKernels(tb, dataDir) })
	s := startServer(tb, bin, []string{"MCP_DATA_DIR=" + dataDir, "JUPYTER_PATH=" + testkit.KernelSpecDir(tb), "MCP_TOKEN=" + token})
	waitReady(tb, s.addr, 2*time.Minute)
	return s, token
}

// buildServerBinary builds the binary for a test or a benchmark.
func buildServerBinary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "mcp-jupyter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBigBodiesRefusedWithinMemory: eight 50 MB bodies at once, declared or
// chunked, through a real HTTP client to the real binary: each is refused
// with 413 and the server's peak RSS stays bounded (one such body used to
// cost 480 MB). The bound here is looser than the benchmark's figure
// (BenchmarkRefusedBodies8x50MB, ≤ 100 MB) so a loaded machine does not
// flake it.
func TestBigBodiesRefusedWithinMemory(t *testing.T) {
	s, token := bodyServer(t, buildServerBinary(t))
	peak, before := refuseBodies(t, s, token, 8, 50<<20, true)
	t.Logf("declared: peak RSS %.1f MiB (%.1f MiB before)", peak, before)
	if peak > 150 {
		t.Errorf("peak RSS %.1f MiB refusing eight 50 MB bodies with a declared length, want ≤ 150", peak)
	}
	peak, before = refuseBodies(t, s, token, 8, 50<<20, false)
	t.Logf("chunked: peak RSS %.1f MiB (%.1f MiB before)", peak, before)
	if peak > 150 {
		t.Errorf("peak RSS %.1f MiB refusing eight chunked 50 MB bodies, want ≤ 150 (two at a time are read up to the 8 MiB limit)", peak)
	}
	if code, _ := get(t, "http://"+s.addr+pathLivez); code != 200 {
		t.Errorf("/livez %d after the burst", code)
	}
}

// BenchmarkRefusedBodies8x50MB: the real binary refuses eight concurrent
// 50 MB /mcp bodies (declared length, as HTTP clients send a buffer) with
// 413. Figure: peak-rss-MiB, the server's VmHWM over the burst; target
// ≤ 100 MB.
func BenchmarkRefusedBodies8x50MB(b *testing.B) {
	s, token := bodyServer(b, buildServerBinary(b))
	var peak, before float64
	b.ResetTimer()
	for range b.N {
		p, bf := refuseBodies(b, s, token, 8, 50<<20, true)
		peak, before = max(peak, p), bf
	}
	b.StopTimer()
	b.ReportMetric(peak, "peak-rss-MiB")
	b.ReportMetric(before, "idle-rss-MiB")
}
