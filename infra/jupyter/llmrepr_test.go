package jupyter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// resultOf returns the execute_result's data and metadata of c.
func resultOf(t testing.TB, c cell) (data, metadata map[string]any) {
	t.Helper()
	for _, m := range c.Outputs {
		if m.Header.MsgType == "execute_result" {
			v := content(t, m)
			data, _ = v["data"].(map[string]any)
			metadata, _ = v["metadata"].(map[string]any)
			return data, metadata
		}
	}
	t.Fatalf("no execute_result among %d outputs", len(c.Outputs))
	return nil, nil
}

// TestWrappedKernelSummarisesDataFrames: a kernel the launcher wraps
// registers the text/llm+plain formatter without importing pandas and
// without running an execution of its own (the first execution is still
// number 1); a real DataFrame then comes back with its shape, its dtypes
// and its first rows as text/llm+plain, marked as a summary, beside
// pandas' own text/plain and HTML. A kernel launched as its kernelspec
// says (no wrapper) has no such formatter.
func TestWrappedKernelSummarisesDataFrames(t *testing.T) {
	k := testkit.StartKernelWith(t, jupyter.StartOptions{Launch: jupyter.LaunchOptions{IOPubHWM: jupyter.DefaultIOPubHWM}})
	first := execute(t, k.Client, "import sys\nprint('pandas' in sys.modules, 'text/llm+plain' in get_ipython().display_formatter.formatters)", 30*time.Second)
	if out := stdoutOf(first); out != "False True\n" {
		t.Fatalf("pandas imported at start, or no formatter: stdout %q", out)
	}
	if n, _ := first.Reply["execution_count"].(float64); n != 1 {
		t.Fatalf("the first execution is number %v: the wrapper ran an execution of its own", first.Reply["execution_count"])
	}

	c := execute(t, k.Client, `import pandas as pd, numpy as np
df = pd.DataFrame(np.random.default_rng(1).random((100_000, 50)), columns=[f"c{i}" for i in range(50)])
df["c1"] = np.arange(100_000, dtype="int64")
df["c2"] = "label"
df`, 60*time.Second)
	data, md := resultOf(t, c)
	text, _ := data[jupyter.MIMELLMText].(string)
	for _, want := range []string{"pandas.DataFrame: 100000 rows × 50 columns", "float64 (48): c0, c3,", "int64 (1): c1", "object (1): c2", "first 5 rows:", "label"} {
		if !strings.Contains(text, want) {
			t.Errorf("text/llm+plain lacks %q:\n%s", want, text)
		}
	}
	if len(text) > 3000 {
		t.Errorf("text/llm+plain of %d characters: the kernel's summary is not bounded", len(text))
	}
	if data["text/html"] == nil || data["text/plain"] == nil {
		t.Errorf("pandas' own forms are gone: %v", keys(data))
	}
	if mark, _ := md[jupyter.MIMELLMText].(map[string]any); mark[jupyter.LLMSummaryMetadata] != true {
		t.Errorf("metadata %v does not mark the summary", md)
	}

	s := execute(t, k.Client, "pd.Series([1.5, 2.5], name='price', index=pd.date_range('2024-01-01', periods=2))", 30*time.Second)
	data, _ = resultOf(t, s)
	text, _ = data[jupyter.MIMELLMText].(string)
	for _, want := range []string{"pandas.Series 'price': 2 values, dtype float64", "index: DatetimeIndex of datetime64[ns]", "2024-01-02    2.5"} {
		if !strings.Contains(text, want) {
			t.Errorf("Series text/llm+plain lacks %q:\n%s", want, text)
		}
	}

	plain := testkit.StartKernel(t)
	if out := stdoutOf(execute(t, plain.Client, "print('text/llm+plain' in get_ipython().display_formatter.formatters)", 30*time.Second)); out != "False\n" {
		t.Fatalf("an unwrapped kernel has the formatter: stdout %q", out)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
