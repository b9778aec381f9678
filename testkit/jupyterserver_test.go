package testkit_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestStartJupyterServerReference: Debian's jupyter_server, unpacked
// without installing, comes up in reference mode, answers with its token
// and refuses without it, and offers the python3 kernelspec of
// /usr/bin/python3.
func TestStartJupyterServerReference(t *testing.T) {
	js := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{})
	get := func(token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("GET", js.URL+"/api/kernelspecs", nil)
		if token != "" {
			req.Header.Set("Authorization", "token "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	if resp, _ := get(""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /api/kernelspecs without a token: %d, want 403", resp.StatusCode)
	}
	resp, body := get(js.Token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/kernelspecs: %d\n%s", resp.StatusCode, js.Log())
	}
	specs, _ := body["kernelspecs"].(map[string]any)
	py, _ := specs["python3"].(map[string]any)
	spec, _ := py["spec"].(map[string]any)
	argv, _ := spec["argv"].([]any)
	if len(argv) == 0 || argv[0] != testkit.SystemPython {
		t.Fatalf("python3 kernelspec argv %v, want %s first: %v", argv, testkit.SystemPython, body)
	}
}

// TestStartJupyterServerGateway: a jupyter_server started with
// GatewayURL/GatewayToken takes its kernels from the gateway: a kernel
// started through it is the gateway's (listed there, under the same id).
func TestStartJupyterServerGateway(t *testing.T) {
	backend := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{})
	front := testkit.StartJupyterServer(t, testkit.JupyterServerOptions{GatewayURL: backend.URL, GatewayToken: backend.Token})
	do := func(js *testkit.JupyterServer, method, path string, body string) (int, map[string]any, []any) {
		req, _ := http.NewRequest(method, js.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "token "+js.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		var l []any
		_ = json.Unmarshal(b, &m)
		_ = json.Unmarshal(b, &l)
		return resp.StatusCode, m, l
	}
	status, k, _ := do(front, "POST", "/api/kernels", `{"name":"python3"}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/kernels through the gateway-mode server: %d %v\n%s\nbackend:\n%s", status, k, front.Log(), backend.Log())
	}
	id, _ := k["id"].(string)
	_, _, list := do(backend, "GET", "/api/kernels", "")
	found := false
	for _, x := range list {
		if m, _ := x.(map[string]any); m["id"] == id {
			found = true
		}
	}
	if !found {
		t.Fatalf("kernel %s started through the gateway-mode server is not the gateway's: %v", id, list)
	}
	if status, _, _ := do(front, "DELETE", "/api/kernels/"+id, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE through the gateway-mode server: %d", status)
	}
}
