package mcpserver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// allToolsServer is a Server with every tool registered, over the fake
// backend and backends that record and refuse (the argument tests need
// the schemas, and calls that reach a backend).
func allToolsServer(t testing.TB, b Backend) (*Server, *recordingNotebooks) {
	t.Helper()
	srv := New(b, Options{})
	nb := &recordingNotebooks{}
	srv.AddNotebookTools(nb)
	srv.AddCheckpointTools(&recordingCheckpoints{})
	srv.AddAssetTools(&recordingAssets{})
	return srv, nb
}

// TestArgumentTableMatchesSchemas: toolArguments lists every registered
// tool with exactly the arguments its schema documents; no alias is a real
// argument of its tool; no two names of one tool fold to the same
// spelling (an alias would otherwise silently take another's place).
func TestArgumentTableMatchesSchemas(t *testing.T) {
	srv, _ := allToolsServer(t, newFakeBackend())
	tools := srv.MCP().ListTools()
	for name, st := range tools {
		entry, ok := toolArguments[name]
		if !ok {
			t.Errorf("tool %s has no entry in toolArguments (aliases.go)", name)
			continue
		}
		var schema, table []string
		for p := range st.Tool.InputSchema.Properties {
			schema = append(schema, p)
		}
		folds := map[string]string{}
		for _, an := range entry {
			table = append(table, an.name)
			for _, n := range append([]string{an.name}, an.aliases...) {
				f := foldArgName(n)
				if prev, dup := folds[f]; dup {
					t.Errorf("%s: %q and %q fold to the same name %q", name, prev, n, f)
				}
				folds[f] = n
			}
			for _, alias := range an.aliases {
				if _, real := st.Tool.InputSchema.Properties[alias]; real {
					t.Errorf("%s: alias %q of %q is a real argument of the tool", name, alias, an.name)
				}
			}
		}
		sort.Strings(schema)
		sort.Strings(table)
		if strings.Join(schema, ",") != strings.Join(table, ",") {
			t.Errorf("%s: schema takes %v, toolArguments lists %v", name, schema, table)
		}
	}
	for name := range toolArguments {
		if _, ok := tools[name]; !ok {
			t.Errorf("toolArguments lists %s, which is not a tool", name)
		}
	}
}

// TestExecuteWithKernelIDFromStartKernel is the user's report: the first
// execute, given the kernel_id start_kernel answered under that very name,
// was refused ("missing required argument kernel").
func TestExecuteWithKernelIDFromStartKernel(t *testing.T) {
	b := newFakeBackend()
	srv, _ := allToolsServer(t, b)
	c := clientFor(t, srv)
	started := call(t, c, "start_kernel", map[string]any{})
	wantOK(t, started)
	kernelID, _ := started.StructuredContent.(map[string]any)["kernel_id"].(string)
	if kernelID == "" {
		t.Fatalf("start_kernel gave no kernel_id: %s", textOf(started))
	}
	res := call(t, c, "execute", map[string]any{"kernel_id": kernelID, "code": "print(42)"})
	wantOK(t, res, "status: ok", "kernel_id: "+kernelID)
	if xs, _ := b.Executions(context.Background(), kernelID, ""); len(xs) != 1 || xs[0].Code != "print(42)" {
		t.Fatalf("executions on %s: %+v", kernelID, xs)
	}
}

// TestOneArgumentNamedTwice: an alias and the documented name with the
// same value is one argument; with different values the call is refused,
// naming both, and nothing runs.
func TestOneArgumentNamedTwice(t *testing.T) {
	b := newFakeBackend()
	srv, _ := allToolsServer(t, b)
	c := clientFor(t, srv)
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "kernel_id": "k1", "code": "1"}), "status: ok")
	wantOK(t, call(t, c, "execute", map[string]any{"kernel": "k1", "kernelId": nil, "code": "2"}), "status: ok")
	for _, args := range []map[string]any{
		{"kernel": "k1", "kernel_id": "k2", "code": "3"},
		{"kernel_id": "k1", "kernelId": "k2", "code": "3"},
		{"kernel": "k1", "code": "3", "source": "4"},
	} {
		res := call(t, c, "execute", args)
		var names []string
		for k := range args {
			if k != "code" || args["source"] != nil {
				names = append(names, `"`+k+`"`)
			}
		}
		if args["source"] != nil {
			names = []string{`"code"`, `"source"`}
		}
		wantError(t, res, append(names, "different values", "give it once")...)
	}
	if xs, _ := b.Executions(context.Background(), "", ""); len(xs) != 2 {
		t.Fatalf("a refused call ran: %d executions, want 2", len(xs))
	}
}

// TestUnknownArgumentRefused: a name the tool does not take is refused
// (it used to be ignored: the agent believed it had had an effect), with
// the name, a suggestion for a near miss and the tool's arguments; nothing
// runs.
func TestUnknownArgumentRefused(t *testing.T) {
	b := newFakeBackend()
	srv, nb := allToolsServer(t, b)
	c := clientFor(t, srv)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"execute", map[string]any{"kernal": "k1", "code": "1"}, []string{`unknown argument "kernal"`, `did you mean "kernel"`,
			"execute takes kernel (required), code (required), timeout_s, execution_id, allow_stdin"}},
		{"execute", map[string]any{"kernel": "k1", "code": "1", "language": "python", "timout_s": 3}, []string{
			`unknown arguments "language", "timout_s"`, `did you mean "timeout_s" for "timout_s"`}},
		{"list_kernelspecs", map[string]any{"verbose": true}, []string{`unknown argument "verbose"`, "list_kernelspecs takes no arguments; call it with {}"}},
		{"list_checkpoints", map[string]any{"kernel": "k1"}, []string{`unknown argument "kernel"`, "takes no arguments"}},
		{"insert_cell", map[string]any{"path": "a.ipynb", "sha256": "h", "source": "", "cell": "0"}, []string{`unknown argument "cell"`,
			"insert_cell takes path (required), expected_hash (required), source (required), cell_type, index, cell_id"}},
		{"get_execution", map[string]any{"execution_id": "x", "kernel_id": "k1"}, []string{`unknown argument "kernel_id"`}},
	} {
		wantError(t, call(t, c, tc.tool, tc.args), tc.want...)
	}
	if xs, _ := b.Executions(context.Background(), "", ""); len(xs) != 0 {
		t.Fatalf("a refused call ran: %+v", xs)
	}
	if n := nb.count(); n != 0 {
		t.Fatalf("a refused call reached the notebooks: %v", nb.calls)
	}
}

// recordingCheckpoints is a CheckpointBackend that records every request
// and refuses it.
type recordingCheckpoints struct{ recordingNotebooks }

func (r *recordingCheckpoints) ResolveKernel(_ context.Context, ref string) (string, error) {
	if ref == "nb.ipynb" {
		return "k1", nil
	}
	return ref, nil
}

func (r *recordingCheckpoints) SaveEnvironment(_ context.Context, q SaveEnvironmentRequest) (CheckpointReply, error) {
	r.record(fmtRecord("save", q))
	return CheckpointReply{}, errRecorded
}

func (r *recordingCheckpoints) LoadEnvironment(_ context.Context, q LoadEnvironmentRequest) (CheckpointReply, error) {
	r.record(fmtRecord("load", q))
	return CheckpointReply{}, errRecorded
}

func (r *recordingCheckpoints) Checkpoints(context.Context) (CheckpointReply, error) {
	r.record("list")
	return CheckpointReply{Summary: "none"}, nil
}

func (r *recordingCheckpoints) DeleteCheckpoint(_ context.Context, name string) (CheckpointReply, error) {
	r.record("delete " + name)
	return CheckpointReply{}, errRecorded
}

// recordingAssets is an AssetBackend that records every request.
type recordingAssets struct{ recordingNotebooks }

func (r *recordingAssets) ListAssets(_ context.Context, kernelID, executionID string) ([]AssetInfo, error) {
	r.record("assets " + kernelID + " " + executionID)
	return nil, nil
}

func fmtRecord(what string, v any) string { return what + " " + strings.TrimSpace(fmtValue(v)) }

func fmtValue(v any) string { return fmt.Sprintf("%+v", v) }
