package fault

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestHitKillsAtTheNthHitOfItsPointOnly(t *testing.T) {
	f, err := Parse("kernel.sent:3")
	if err != nil {
		t.Fatal(err)
	}
	kills := 0
	f.kill = func() { kills++ }
	for range 2 {
		f.Hit("kernel.sent")
		f.Hit("kernel.output")
	}
	if kills != 0 {
		t.Fatalf("killed after 2 hits, want at the 3rd")
	}
	f.Hit("kernel.sent")
	f.Hit("kernel.sent")
	if kills != 1 {
		t.Fatalf("kills = %d after 4 hits of kernel.sent:3, want 1", kills)
	}
}

func TestNilInjectorIsANoop(t *testing.T) {
	var f *Injector
	f.Hit("kernel.sent")
	if f.Point() != "" {
		t.Fatal("nil injector names a point")
	}
}

func TestParseRefusesWithAHint(t *testing.T) {
	for _, spec := range []string{":2", "kernel.sent:0", "kernel.sent:x", "kernel.sent:-1"} {
		_, err := Parse(spec)
		if err == nil || !strings.Contains(err.Error(), "kernel.sent:2") {
			t.Errorf("Parse(%q) = %v, want an error with an example", spec, err)
		}
	}
	f, err := Parse("eventlog.written")
	if err != nil || f.n != 1 || f.Point() != "eventlog.written" {
		t.Fatalf("Parse(eventlog.written) = %+v, %v", f, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"kernel.sent", "kernel.sent:2", ":", "a:b:c", "x:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		inj, err := Parse(spec)
		if err == nil && (inj.Point() == "" || inj.n < 1) {
			t.Fatalf("Parse(%q) accepted %+v", spec, inj)
		}
	})
}

// TestPointsAreTheDocumentedOnes: Points (what the kill -9 sweep drives)
// lists exactly the points the package comment documents, in its order.
func TestPointsAreTheDocumentedOnes(t *testing.T) {
	src, err := os.ReadFile("fault.go")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range strings.Split(string(src), "\n") {
		rest, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			continue
		}
		if name, _, _ := strings.Cut(rest, " "); strings.Contains(name, ".") {
			documented = append(documented, name)
		}
	}
	if got := Points(); !slices.Equal(got, documented) {
		t.Fatalf("Points() = %v, the package comment documents %v", got, documented)
	}
}
