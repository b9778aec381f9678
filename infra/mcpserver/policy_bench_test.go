package mcpserver

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// BenchmarkPolicyCheck is what --policy adds to a call that no rule
// matches, the common case, in the worst shape: execute with 1 MiB of code
// (the largest execute takes) under docs/examples/policy.yaml, whose code
// patterns all scan the whole code. Baseline: the same call without a
// policy. Reports ms/call; the ratio of the two is the policy's overhead
// (it does not include the kernel, which dwarfs it).
func BenchmarkPolicyCheck(b *testing.B) {
	p, err := LoadPolicy("../../docs/examples/policy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	line := "total = sum(x * x for x in range(1000))  # plain code, no rule matches\n"
	code := strings.Repeat(line, (1<<20)/len(line))
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Name: "alice", Scopes: auth.DefaultScopes})
	req := toolCall("execute", map[string]any{"kernel": "k1", "code": code})
	handler := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return nil, nil }
	for _, c := range []struct {
		name   string
		policy *Policy
	}{{"baseline", nil}, {"example-1MiB", p}} {
		b.Run(c.name, func(b *testing.B) {
			s := New(newFakeBackend(), Options{Policy: c.policy, Decisions: &recorded{}})
			h := s.applyPolicy(handler)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := h(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/call")
		})
	}
}
