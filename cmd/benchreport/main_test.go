package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReportPairsBenchmarksWithBaselines(t *testing.T) {
	in := `goos: linux
pkg: github.com/mcp-jupyter/mcp-jupyter/projections
BenchmarkReplay1M-2   	       3	1129210782 ns/op	         8.721 alloc-B/event	   1078086 events/cpu-s	    885578 events/s	         4.727 peak-heap-MiB
BenchmarkScan1M-2     	       3	1179815938 ns/op	   1375977 events/cpu-s	    847593 events/s
PASS
`
	res, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if r := res["BenchmarkReplay1M"]; r == nil || r.metrics["events/s"] != 885578 || r.pkg != "github.com/mcp-jupyter/mcp-jupyter/projections" {
		t.Fatalf("parsed %+v", r)
	}
	var out bytes.Buffer
	write(&out, res, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	md := out.String()
	if !strings.Contains(md, "| BenchmarkReplay1M | BenchmarkScan1M | events/s | 885578 | 847593 | 1.04× |") {
		t.Fatalf("no ratio row in\n%s", md)
	}
	if !strings.Contains(md, "| BenchmarkAppend64Writers | BenchmarkRawPebbleApplySync64Writers | ns/op | — | — | — |") {
		t.Fatalf("missing pair not shown as dashes in\n%s", md)
	}
}
