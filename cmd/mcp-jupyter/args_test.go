package main

import (
	"strings"
	"testing"
)

// TestFirstExecuteWithKernelIDFromStartKernel is the user's report, on a
// real kernel through the real in-process client: start_kernel answers
// kernel_id, and the first execute given that very name was refused
// ("missing required argument kernel"). It now runs.
func TestFirstExecuteWithKernelIDFromStartKernel(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	sc := must(t, cl, "start_kernel", map[string]any{"kernelspec": "python3", "label": "args"})
	k, _ := sc["kernel_id"].(string)
	if k == "" {
		t.Fatalf("start_kernel gave no kernel_id: %v", sc)
	}
	sc, text := callTool(t, cl, "execute", map[string]any{"kernel_id": k, "code": "x = 40 + 2\nprint(x)"})
	if sc["status"] != "ok" || !strings.Contains(text, "42") {
		t.Fatalf("execute with kernel_id: %s", text)
	}
}

// TestAgentGuessingArgumentNames drives every kind of tool against a real
// kernel, notebook and checkpoint store the way an agent does when it
// names arguments after the results it was given (kernel_id, sha256,
// cell_id, cursor) or after habit (timeout, checkpoint, camelCase): each
// call does what the documented names do. Naming one argument twice with
// different values, or one the tool does not take, is refused and runs
// nothing.
func TestAgentGuessingArgumentNames(t *testing.T) {
	_, cl, _ := notebookCore(t)
	nb := "guess.ipynb"
	h, _ := must(t, cl, "create_notebook", map[string]any{"notebook": nb, "kernel_name": "python3"})["sha256"].(string)
	k, _ := must(t, cl, "start_kernel", map[string]any{"spec": "python3", "notebook_path": nb, "label": "guess"})["kernel_id"].(string)
	if h == "" || k == "" {
		t.Fatalf("create_notebook / start_kernel: sha256 %q, kernel_id %q", h, k)
	}

	sc := must(t, cl, "execute", map[string]any{"kernelId": k, "source": "x = 21\nprint('set', x)", "timeout": 60})
	x, _ := sc["execution_id"].(string)
	if sc["status"] != "ok" {
		t.Fatalf("execute: %v", sc)
	}
	if _, text := callTool(t, cl, "get_execution", map[string]any{"executionId": x, "cursor": 0, "wait": 5}); !strings.Contains(text, "set 21") {
		t.Fatalf("get_execution: %s", text)
	}
	if _, text := callTool(t, cl, "list_executions", map[string]any{"kernel_id": k, "state": "ok"}); !strings.Contains(text, x) {
		t.Fatalf("list_executions of kernel_id %s lacks %s: %s", k, x, text)
	}

	h, _ = must(t, cl, "insert_cell", map[string]any{"notebook": nb, "sha256": h, "code": "print('twice', x * 2)", "cellId": "c1"})["sha256"].(string)
	if _, text := callTool(t, cl, "run_cell", map[string]any{"notebook": nb, "cell_id": "c1", "timeout": 60}); !strings.Contains(text, "twice 42") {
		t.Fatalf("run_cell: %s", text)
	}
	if _, text := callTool(t, cl, "read_notebook", map[string]any{"notebook_path": nb, "limit": 5, "include_outputs": false}); !strings.Contains(text, "id=c1") {
		t.Fatalf("read_notebook: %s", text)
	}
	h, _ = must(t, cl, "edit_cell", map[string]any{"file": nb, "hash": h, "cell_id": "c1", "content": "print('plus', x + 1)"})["sha256"].(string)
	h, _ = must(t, cl, "insert_cell", map[string]any{"path": nb, "expected_hash": h, "source": "# notes", "type": "markdown", "position": 0})["sha256"].(string)
	h, _ = must(t, cl, "move_cell", map[string]any{"notebook": nb, "sha256": h, "cell_id": "c1", "new_index": 0})["sha256"].(string)
	if _, text := callTool(t, cl, "run_all", map[string]any{"notebook": nb, "timeout_seconds": 60}); !strings.Contains(text, "c1") || strings.Contains(text, "ERROR") {
		t.Fatalf("run_all: %s", text)
	}
	must(t, cl, "delete_cell", map[string]any{"notebook": nb, "sha256": h, "cell_index": "1"})

	if _, text := callTool(t, cl, "save_environment", map[string]any{"kernel_id": k, "checkpoint": "guessed", "vars": []any{"x"}}); strings.HasPrefix(text, "ERROR") || !strings.Contains(text, "guessed") {
		t.Fatalf("save_environment: %s", text)
	}
	must(t, cl, "execute", map[string]any{"kernel_id": k, "code": "del x"})
	if _, text := callTool(t, cl, "load_environment", map[string]any{"kernelId": k, "checkpoint_name": "guessed"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("load_environment: %s", text)
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel_id": k, "code": "print('back', x)"}); !strings.Contains(text, "back 21") {
		t.Fatalf("after load_environment: %s", text)
	}
	must(t, cl, "delete_checkpoint", map[string]any{"checkpoint": "guessed"})
	must(t, cl, "list_assets", map[string]any{"kernel_id": k, "execution": x})

	// Refused, and nothing ran: x is still 21 afterwards.
	for _, bad := range []struct {
		args map[string]any
		want []string
	}{
		{map[string]any{"kernel": k, "kernel_id": "someone-elses", "code": "x = 0"}, []string{`"kernel"`, `"kernel_id"`, "different values"}},
		{map[string]any{"kernel_id": k, "code": "x = 0", "timeuot_s": 5}, []string{`unknown argument "timeuot_s"`, `did you mean "timeout_s"`, "execute takes kernel (required)"}},
	} {
		_, text := callTool(t, cl, "execute", bad.args)
		for _, w := range append([]string{"ERROR"}, bad.want...) {
			if !strings.Contains(text, w) {
				t.Errorf("execute %v: %q lacks %q", bad.args, text, w)
			}
		}
	}
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel_id": k, "code": "print('still', x)"}); !strings.Contains(text, "still 21") {
		t.Fatalf("a refused call ran: %s", text)
	}

	must(t, cl, "interrupt_kernel", map[string]any{"kernel_id": k})
	must(t, cl, "restart_kernel", map[string]any{"id": k})
	if _, text := callTool(t, cl, "execute", map[string]any{"kernel_id": k, "code": "print('x' in globals())"}); !strings.Contains(text, "False") {
		t.Fatalf("restart_kernel with id did not restart: %s", text)
	}
	if _, text := callTool(t, cl, "list_kernels", map[string]any{"label": "guess"}); !strings.Contains(text, k) {
		t.Fatalf("list_kernels lacks %s before its shutdown: %s", k, text)
	}
	must(t, cl, "shutdown_kernel", map[string]any{"kernelId": k})
	if _, text := callTool(t, cl, "list_kernels", map[string]any{"label": "guess"}); strings.Contains(text, k) {
		t.Fatalf("shutdown_kernel with kernelId left it listed: %s", text)
	}
}
