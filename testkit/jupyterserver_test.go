package testkit_test

import (
	"encoding/json"
	"net/http"
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
