package notebook

import (
	"fmt"
	"testing"

	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// TestVersionsAreBoundedByBytes: the parsed versions kept for diffs never
// hold more than the byte bound (the newest is always kept).
func TestVersionsAreBoundedByBytes(t *testing.T) {
	v := newVersions(1000)
	for i := range 50 {
		v.put(fmt.Sprint(i), &nbfile.Notebook{}, 300)
		if n, b := v.len(); b > 1000 || n > 3 {
			t.Fatalf("after %d puts: %d versions, %d bytes (bound 1000)", i+1, n, b)
		}
	}
	if _, ok := v.get("49"); !ok {
		t.Fatal("the newest version must be kept")
	}
	if _, ok := v.get("0"); ok {
		t.Fatal("the oldest version must be gone")
	}
	v.put("huge", &nbfile.Notebook{}, 5000)
	if n, _ := v.len(); n != 1 {
		t.Fatalf("a version larger than the bound is kept alone, got %d", n)
	}
}
