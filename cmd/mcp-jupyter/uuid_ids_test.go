package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/actors/scheduler"
	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// TestMCPToolsTakeTheUUIDFormOfAKernelID: the id a Jupyter frontend shows
// (the UUID of the same 128 bits) names the same kernel in every MCP tool,
// through mcp-go's client: execute, list_executions, interrupt_kernel.
func TestMCPToolsTakeTheUUIDFormOfAKernelID(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	uuid, ok := events.UUIDForm(k)
	if !ok {
		t.Fatalf("kernel id %s has no UUID form", k)
	}
	for _, form := range []string{uuid, strings.ToUpper(uuid), strings.ReplaceAll(uuid, "-", "")} {
		sc, text := callTool(t, cl, "execute", map[string]any{"kernel": form, "code": "print('via', 'uuid')"})
		if sc["status"] != "ok" || sc["kernel_id"] != k || !strings.Contains(text, "via uuid") {
			t.Fatalf("execute with kernel %s: %v %s", form, sc, text)
		}
	}
	sc, text := callTool(t, cl, "list_executions", map[string]any{"kernel": uuid})
	if rows := executionRows(t, sc); len(rows) != 3 {
		t.Fatalf("list_executions of the UUID form: %d rows, want 3 (%s)", len(rows), text)
	}
	if _, text := callTool(t, cl, "interrupt_kernel", map[string]any{"kernel": uuid}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("interrupt_kernel with the UUID form: %s", text)
	}
	other, _ := events.UUIDForm(events.NewID(time.Now()))
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel": other, "code": "1"}); !strings.Contains(text, "no kernel or bound notebook") {
		t.Fatalf("an unknown kernel in UUID form: %s", text)
	}
}

// TestFrontendExecutionShowsItsOrigin: an execution submitted with a
// frontend's Origin (as the channels WebSocket does) is attributed in
// list_executions and get_execution (JSON "origin"), beside the agent's,
// which has none.
func TestFrontendExecutionShowsItsOrigin(t *testing.T) {
	c, connect := inProcess(t)
	cl := connect()
	k := startKernelTool(t, cl)
	uuid, _ := events.UUIDForm(k)
	origin := &events.Origin{Kind: events.OriginFrontend, Session: "sess-1", MsgID: "req-1", Username: "ann", Client: "JupyterLab"}
	x, err := c.sys.Submit(context.Background(), uuid, scheduler.Submit{Code: "print('from the frontend')", By: auth.AdminName, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	sc, text := callTool(t, cl, "get_execution", map[string]any{"execution_id": x.ID, "wait_s": 30})
	var got events.Origin
	if b, _ := json.Marshal(sc["origin"]); json.Unmarshal(b, &got) != nil || got != *origin {
		t.Fatalf("get_execution origin: %v (%s)", sc["origin"], text)
	}
	if !strings.Contains(text, "origin: frontend (session sess-1") {
		t.Fatalf("get_execution text names no origin: %s", text)
	}
	callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "1"})
	sc, _ = callTool(t, cl, "list_executions", map[string]any{"kernel": k})
	rows := executionRows(t, sc)
	if len(rows) != 2 || rows[0].Origin == nil || *rows[0].Origin != *origin || rows[1].Origin != nil {
		t.Fatalf("list_executions origins: %+v", rows)
	}
}

type executionRow struct {
	ID     string         `json:"execution_id"`
	Origin *events.Origin `json:"origin"`
}

func executionRows(t *testing.T, sc map[string]any) []executionRow {
	t.Helper()
	var out struct {
		Executions []executionRow `json:"executions"`
	}
	b, _ := json.Marshal(sc)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("list_executions: %v", err)
	}
	return out.Executions
}
