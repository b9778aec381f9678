package main

import (
	"strings"
	"testing"
	"time"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/mcp-jupyter/mcp-jupyter/infra/eventlog
cpu: Some CPU
BenchmarkAppend64Writers-2   	    2000	    500000 ns/op	      4000 events/s	       900.0 p50-µs	        30.00 appends/sync
BenchmarkRawPebbleApplySync64Writers-2   	    2000	    400000 ns/op	      4000 events/s	       800.0 p50-µs
PASS
pkg: github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter
BenchmarkMCPExecuteRoundTrip-2   	mcp-jupyter: created the MCP bearer token (shown once):
  b0d4e796c1051f973c0078a6ffd1605b472a65d4cf0b0a92126f0d38711c4366
      20	  55884786 ns/op	     15744 p50-µs	         2.399 ratio-p50	      6563 raw-p50-µs
pkg: github.com/mcp-jupyter/mcp-jupyter/projections
BenchmarkReplay1M-2   	       1	900000000 ns/op	   1200000 events/s	        80.00 peak-heap-MiB
BenchmarkOther-2   	       5	       100 ns/op	         0.5000 ratio-cache
ok  	github.com/mcp-jupyter/mcp-jupyter/projections	3.0s
`

func TestParseJoinsFiguresPrintedAfterOutput(t *testing.T) {
	rs, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "BenchmarkAppend64Writers,BenchmarkRawPebbleApplySync64Writers,BenchmarkMCPExecuteRoundTrip,BenchmarkReplay1M,BenchmarkOther" {
		t.Fatalf("benchmarks = %s", got)
	}
	mcp := rs[2]
	if v, _ := mcp.get("ratio-p50"); mcp.N != 20 || v != 2.399 || mcp.Pkg != "github.com/mcp-jupyter/mcp-jupyter/cmd/mcp-jupyter" {
		t.Fatalf("mcp result = %+v", mcp)
	}
}

func TestReport(t *testing.T) {
	var out strings.Builder
	e := env{Date: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), GoVersion: "go1.26", CPUs: 2}
	if err := report(&out, strings.NewReader(sample), e); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"ratios",
		"- Date: 2026-11-27 12:00 UTC\n- Go: go1.26\n- CPUs: 2\n",
		"| append throughput vs raw Pebble | BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | 1.000x | ≥ 0.800x | met |",
		"| append p50 vs raw Pebble | BenchmarkAppend64Writers / BenchmarkRawPebbleApplySync64Writers | 1.125x | ≤ 1.250x | met |",
		"| MCP execute p50 vs raw zmq4 | BenchmarkMCPExecuteRoundTrip | 2.399x | ≤ 1.150x | **NOT MET** |",
		"| actor `1+1` p50 vs raw zmq4 | BenchmarkKernelActorRoundTrip | not run | ≤ 1.100x | not measured |",
		"| replay of 1M events | BenchmarkReplay1M | 1200000 events/s | ≥ 1000000 events/s | met |",
		"| replay peak heap | BenchmarkReplay1M | 80 MiB | < 100 MiB | met |",
		"| ratio-cache | BenchmarkOther | 0.500x | — | no target |",
		"| github.com/mcp-jupyter/mcp-jupyter/infra/eventlog | BenchmarkAppend64Writers | 2000 | 500000 | 4000 events/s, 900 p50-µs, 30 appends/sync |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "## Every benchmark") > strings.Index(got, "## Ratios against baselines") {
		t.Errorf("the table of every benchmark should come before the ratios")
	}
}
