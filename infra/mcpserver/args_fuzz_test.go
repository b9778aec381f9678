package mcpserver

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// FuzzArgumentReader: whatever arguments arrive, for whichever tool, the
// reader never panics, never changes what it was given, and either
// refuses with an error naming something that was sent, or returns only
// documented names, each holding a value that was sent under one of its
// names; reading its result again changes nothing; and newArgs (what the
// handlers and argsDigest use) sees the same. Every documented argument
// then reads, by its schema type, without a panic. The seeds run in every
// `go test`.
func FuzzArgumentReader(f *testing.F) {
	for _, seed := range []struct {
		tool uint8
		args string
	}{
		{0, `{"kernel_id":"k1","code":"1"}`},
		{1, `{"kernel":"k1","kernel_id":"k2"}`},
		{2, `{"kernelId":"k1","KERNEL_ID":"k1","kernel-id":null}`},
		{3, `{"kernal":"k1","timout_s":3}`},
		{4, `{"":1,"_":2,"-":3}`},
		{5, `{"\u212aernel":"k"}`},
		{6, `[]`},
		{7, `"x"`},
		{8, `null`},
		{9, `{"sha256":"h","expected_hash":"h","cell_id":{"a":[1,2]},"cell":{"a":[1,2]}}`},
		{10, `{"timeout":1e308,"timeout_s":-1}`},
		{11, `{"variables":["a",1],"vars":["a",1]}`},
		{12, `{"` + strings.Repeat("k", 200) + `":1}`},
		{13, `{"path":"a","notebook":"a","notebook_path":"b"}`},
		{14, `{"since":9007199254740993,"cursor":9007199254740993}`},
	} {
		f.Add(seed.tool, []byte(seed.args))
	}
	srv, _ := allToolsServer(f, newFakeBackend())
	registered := srv.MCP().ListTools()
	names := make([]string, 0, len(registered))
	for n := range registered {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Fuzz(func(t *testing.T, toolIdx uint8, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		tool := registered[names[int(toolIdx)%len(names)]].Tool
		checkArgumentReader(t, tool, v)
	})
}

func checkArgumentReader(t *testing.T, tool mcp.Tool, v any) {
	before, _ := json.Marshal(v)
	raw, err := rawArgs(v)
	if _, isObject := v.(map[string]any); !isObject && v != nil {
		if err == nil {
			t.Fatalf("%s: arguments %s, not an object, were read", tool.Name, before)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: an object refused: %v", tool.Name, err)
	}
	sp := specFromSchema(tool)
	out, err := sp.canonical(raw, true)
	if after, _ := json.Marshal(v); string(after) != string(before) {
		t.Fatalf("%s: the reader changed its input: %s became %s", tool.Name, before, after)
	}
	if err != nil {
		named := false
		for k := range raw {
			named = named || strings.Contains(err.Error(), strconv.Quote(k))
		}
		if !named {
			t.Fatalf("%s: refusal names nothing that was sent: %v (sent %s)", tool.Name, err, before)
		}
		return
	}
	documented := map[string]bool{}
	for _, n := range sp.names {
		documented[n] = true
	}
	for k := range out {
		if !documented[k] {
			t.Fatalf("%s: %q is not a documented name (sent %s)", tool.Name, k, before)
		}
	}
	for k, x := range raw {
		n := sp.byFold[foldArgName(k)]
		if x != nil && !reflect.DeepEqual(out[n], x) {
			t.Fatalf("%s: %q sent as %q holds %v, not the %v sent", tool.Name, n, k, out[n], x)
		}
	}
	again, err := sp.canonical(out, true)
	if err != nil || !reflect.DeepEqual(again, out) {
		t.Fatalf("%s: reading the result again gave %v, %v (was %v)", tool.Name, again, err, out)
	}
	var req mcp.CallToolRequest
	req.Params.Name, req.Params.Arguments = tool.Name, v
	a := newArgs(req)
	if a.err != nil {
		t.Fatalf("%s: newArgs refused what the middleware accepted: %v", tool.Name, a.err)
	}
	if !reflect.DeepEqual(a.m, out) && !(len(a.m) == 0 && len(out) == 0) {
		t.Fatalf("%s: newArgs read %v, the middleware %v", tool.Name, a.m, out)
	}
	for _, n := range sp.names {
		prop, _ := tool.InputSchema.Properties[n].(map[string]any)
		switch {
		case n == "cell":
			a.cell(n, "")
			continue
		}
		switch prop["type"] {
		case "string":
			a.str(n, false, "")
		case "number":
			a.number(n, 0, span{lo: -1e9, hi: 1e9})
		case "integer":
			a.integer(n, 0, span{lo: 0, hi: maxIndex})
		case "boolean":
			a.boolean(n, false)
		case "array":
			stringList(a, n)
		default:
			t.Fatalf("%s: argument %q has schema type %v: read it here", tool.Name, n, prop["type"])
		}
	}
}
