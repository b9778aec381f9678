package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
)

// TestNoLabelNamesAgentsWork: /metrics needs no token, so no series may
// carry a kernel id, an execution id or a notebook path as a label value,
// with queues, running executions and every kernel state folded.
func TestNoLabelNamesAgentsWork(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds := workload(4, 40)
	ds = append(ds, draft("k001", events.ExecutionStream("x-queued"), events.ExecutionQueued{ExecutionID: "x-queued", KernelID: "k001", Code: "1", Notebook: "secret/work.ipynb"}),
		draft("k002", events.KernelStream("k002"), events.KernelDied{KernelID: "k002", Reason: "oom"}))
	fold(t, m.Projection(), ds)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				seen++
				v := lp.GetValue()
				if strings.HasPrefix(v, "k00") || strings.HasPrefix(v, "x") || strings.Contains(v, "secret") {
					t.Errorf("%s{%s=%q} names agents' work", mf.GetName(), lp.GetName(), v)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no labelled series gathered")
	}
	if v := value(t, reg, "mcp_jupyter_queue_depth_max"); v != 1 {
		t.Errorf("mcp_jupyter_queue_depth_max = %v, want 1", v)
	}
}
