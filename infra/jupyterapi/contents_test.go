package jupyterapi

import (
	"strings"
	"testing"
)

// TestContentsTarget: the API path and the checkpoint part of a URL path,
// as jupyter_server's routes split them.
func TestContentsTarget(t *testing.T) {
	for in, want := range map[string][3]string{
		"/api/contents":                            {"", "", ""},
		"/api/contents/":                           {"", "", ""},
		"/api/contents/a/b.ipynb":                  {"a/b.ipynb", "", ""},
		"/api/contents/a/b.ipynb/checkpoints":      {"a/b.ipynb", "", "cp"},
		"/api/contents/a/b.ipynb/checkpoints/":     {"a/b.ipynb", "", "cp"},
		"/api/contents/a/b.ipynb/checkpoints/cp-1": {"a/b.ipynb", "cp-1", "cp"},
		"/api/contents/checkpoints":                {"", "", "cp"},
		"/api/contents/a/checkpoints/x/y":          {"a/checkpoints/x/y", "", ""},
		"/api/contents/checkpoints/checkpoint":     {"", "checkpoint", "cp"},
		"/api/contents/a/checkpoints.ipynb":        {"a/checkpoints.ipynb", "", ""},
	} {
		p, id, cp := contentsTarget(in)
		got := [3]string{p, id, ""}
		if cp {
			got[2] = "cp"
		}
		if got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// FuzzContentsTarget: the split never panics, never yields a path with a
// leading or trailing slash, and a checkpoint id never holds a slash.
func FuzzContentsTarget(f *testing.F) {
	for _, s := range []string{"/a/checkpoints/b", "//checkpoints//", "/checkpoints/", "/x/checkpoints/checkpoints/y", "/a//checkpoints/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, id, _ := contentsTarget(contentsPrefix + s)
		if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(id, "/") {
			t.Fatalf("%q: path %q id %q", s, p, id)
		}
	})
}
