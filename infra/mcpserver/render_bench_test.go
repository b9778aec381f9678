package mcpserver

import (
	"encoding/json"
	"os"
	"testing"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// dataFrameBundle is the execute_result a real kernel sends for a 100,000 ×
// 50 DataFrame (testdata/dataframe_100000x50.json: pandas 1.5's text/plain
// and text/html, and the text/llm+plain with its summary marker that
// infra/jupyter's llmReprPrelude adds; testdata/make_dataframe_fixture.py
// makes it by running that formatter on the DataFrame of
// TestOutputsShapedForModels). withLLM false
// drops the text/llm+plain and its marker: what a kernel without the
// formatter sends, rendered as before.
func dataFrameBundle(tb testing.TB, withLLM bool) queue.Output {
	tb.Helper()
	raw, err := os.ReadFile("testdata/dataframe_100000x50.json")
	if err != nil {
		tb.Fatal(err)
	}
	var content struct {
		Data           map[string]any `json:"data"`
		Metadata       map[string]any `json:"metadata"`
		ExecutionCount int            `json:"execution_count"`
	}
	if err := json.Unmarshal(raw, &content); err != nil {
		tb.Fatal(err)
	}
	if content.Data[mimeLLMText] == nil || content.Data[mimeText] == nil || content.Data[mimeHTML] == nil {
		tb.Fatalf("fixture lacks a form: %v", content.Data)
	}
	if !withLLM {
		delete(content.Data, mimeLLMText)
		delete(content.Metadata, mimeLLMText)
	}
	return out(1, "execute_result", content)
}

// BenchmarkRenderDataFrame renders a real DataFrame's execute_result the
// way an execute reply does: "text-plain" is the baseline (pandas'
// text/plain, HTML linked: today's render of a kernel without the
// formatter), "llm-plain" the shaped one (shape, dtypes, first rows; HTML
// linked). reply-chars is the text the agent reads.
func BenchmarkRenderDataFrame(b *testing.B) {
	for _, bc := range []struct {
		name    string
		withLLM bool
	}{{"text-plain", false}, {"llm-plain", true}} {
		b.Run(bc.name, func(b *testing.B) {
			outs := []queue.Output{dataFrameBundle(b, bc.withLLM)}
			cfg := renderConfig{TextBudget: DefaultOutputBudget, ImageBudget: DefaultImageBudget, Assets: assetStore{dir: b.TempDir()}}
			chars := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				chars = 0
				for _, c := range renderOutputs(outs, cfg) {
					if t, ok := c.(mcp.TextContent); ok {
						chars += utf8.RuneCountInString(t.Text)
					}
				}
			}
			b.ReportMetric(float64(chars), "reply-chars")
		})
	}
}

// TestDataFrameFixtureRenders: the benchmark's fixture renders as the
// shaped reply it stands for (so the benchmark measures that, not a
// fallback).
func TestDataFrameFixtureRenders(t *testing.T) {
	cfg := renderConfig{TextBudget: DefaultOutputBudget, ImageBudget: DefaultImageBudget, Assets: assetStore{dir: t.TempDir()}}
	shaped := texts(renderOutputs([]queue.Output{dataFrameBundle(t, true)}, cfg))
	plain := texts(renderOutputs([]queue.Output{dataFrameBundle(t, false)}, cfg))
	if len(shaped) != 1 || len(plain) != 1 || shaped[0] == plain[0] {
		t.Fatalf("shaped %q, plain %q", shaped, plain)
	}
	if want := "Out[1]: pandas.DataFrame: 100000 rows × 50 columns\n"; len(shaped[0]) < len(want) || shaped[0][:len(want)] != want {
		t.Errorf("shaped reply starts %q", shaped[0][:min(80, len(shaped[0]))])
	}
}
