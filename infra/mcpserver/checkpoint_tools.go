package mcpserver

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// CheckpointBackend is what the checkpoint tools need from the core
// (cmd/mcp-jupyter implements it over actors/checkpoint). Each call may take
// as long as the kernel needs to serialize or restore; ctx bounds it.
type CheckpointBackend interface {
	ResolveKernel(ctx context.Context, kernelOrNotebook string) (string, error)
	SaveEnvironment(ctx context.Context, r SaveEnvironmentRequest) (CheckpointReply, error)
	LoadEnvironment(ctx context.Context, r LoadEnvironmentRequest) (CheckpointReply, error)
	Checkpoints(ctx context.Context) (CheckpointReply, error)
	DeleteCheckpoint(ctx context.Context, name string) (CheckpointReply, error)
}

// SaveEnvironmentRequest asks for a checkpoint of a kernel's variables.
type SaveEnvironmentRequest struct {
	KernelID  string
	Notebook  string
	Name      string
	Variables []string
	Overwrite bool
}

// LoadEnvironmentRequest asks to restore a checkpoint into a kernel.
type LoadEnvironmentRequest struct {
	KernelID string
	Name     string
	Policy   string
	// AllowRollback loads an older version of Name than its newest save
	// (an old copy put back on purpose).
	AllowRollback bool
}

// CheckpointReply is a summary for the agent and the structured result.
type CheckpointReply struct {
	Summary string
	Data    map[string]any
}

const checkpointNameHelp = "checkpoint name: letters, digits, '-', '_' and '.', e.g. \"friday\""

// AddCheckpointTools registers save_environment, load_environment,
// list_checkpoints and delete_checkpoint.
func (s *Server) AddCheckpointTools(b CheckpointBackend) {
	s.mcp.AddTool(mcp.NewTool("save_environment",
		mcp.WithDescription("Save the kernel's variables (DataFrames, models, results…) to a signed checkpoint on the "+
			"server, so load_environment can restore them in a new kernel after a restart. Modules, open files, "+
			"sockets, generators and objects dill cannot serialize are left out; the reply says which and why."),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithString("name", mcp.Required(), mcp.Description(checkpointNameHelp)),
		mcp.WithArray("variables", mcp.WithStringItems(), mcp.Description("Optional: only these global names (default: every user variable that can be saved).")),
		mcp.WithBoolean("overwrite", mcp.DefaultBool(false), mcp.Description("Replace an existing checkpoint of this name.")),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.saveEnvironment(b))

	s.mcp.AddTool(mcp.NewTool("load_environment",
		mcp.WithDescription("Verify a checkpoint's signature and restore its variables into the kernel's globals "+
			"(existing variables of the same names are replaced). A tampered, truncated or foreign file, one copied from "+
			"another name, or an older version than the newest save of this name is refused before anything reaches "+
			"the kernel. Package versions recorded at save time are compared with the kernel's."),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithString("name", mcp.Required(), mcp.Description(checkpointNameHelp)),
		mcp.WithString("policy", mcp.DefaultString("warn"), mcp.Enum("warn", "refuse", "install"),
			mcp.Description("When packages differ: warn (restore and report), refuse (restore nothing), "+
				"install (pip-install the recorded versions into the kernel's environment first).")),
		mcp.WithBoolean("allow_rollback", mcp.DefaultBool(false),
			mcp.Description("Load the file even if it is an older version of this name than its newest save (an old copy put back on purpose). Without it such a file is refused.")),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.loadEnvironment(b))

	s.mcp.AddTool(mcp.NewTool("list_checkpoints",
		mcp.WithDescription("List saved checkpoints with their kernel, time, size, variables saved and skipped, Python and package versions. "+
			"Each is marked verified (its signed name is its file name and it is the newest save recorded of that name) or not, with the problem; "+
			"anything in the directory that is not a regular file is skipped with a warning."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r, err := b.Checkpoints(ctx)
		if err != nil {
			return failed("list checkpoints", err), nil
		}
		return checkpointResult(r), nil
	})

	s.mcp.AddTool(mcp.NewTool("delete_checkpoint",
		mcp.WithDescription("Delete a checkpoint. DESTRUCTIVE: it cannot be loaded afterwards."),
		mcp.WithString("name", mcp.Required(), mcp.Description(checkpointNameHelp)),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := newArgs(req)
		name := a.str("name", true, checkpointNameHelp)
		if a.err != nil {
			return failed("delete checkpoint", a.err), nil
		}
		r, err := b.DeleteCheckpoint(ctx, name)
		if err != nil {
			return failed("delete checkpoint "+name, err), nil
		}
		return checkpointResult(r), nil
	})
}

func (s *Server) saveEnvironment(b CheckpointBackend) func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := newArgs(req)
		ref := a.str("kernel", true, kernelArgHelp)
		r := SaveEnvironmentRequest{Name: a.str("name", true, checkpointNameHelp), Overwrite: a.boolean("overwrite", false),
			Variables: stringList(a, "variables")}
		if a.err != nil {
			return failed("save environment", a.err), nil
		}
		id, err := b.ResolveKernel(ctx, ref)
		if err != nil {
			return failed("save environment of "+ref, err), nil
		}
		r.KernelID = id
		if id != ref {
			r.Notebook = ref
		}
		out, err := b.SaveEnvironment(ctx, r)
		if err != nil {
			return failed("save environment "+r.Name+" of kernel "+id, err), nil
		}
		return checkpointResult(out), nil
	}
}

func (s *Server) loadEnvironment(b CheckpointBackend) func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := newArgs(req)
		ref := a.str("kernel", true, kernelArgHelp)
		r := LoadEnvironmentRequest{Name: a.str("name", true, checkpointNameHelp), Policy: a.str("policy", false, "warn, refuse or install"),
			AllowRollback: a.boolean("allow_rollback", false)}
		if a.err != nil {
			return failed("load environment", a.err), nil
		}
		id, err := b.ResolveKernel(ctx, ref)
		if err != nil {
			return failed("load environment into "+ref, err), nil
		}
		r.KernelID = id
		out, err := b.LoadEnvironment(ctx, r)
		if err != nil {
			return failed("load environment "+r.Name+" into kernel "+id, err), nil
		}
		return checkpointResult(out), nil
	}
}

// stringList reads an optional array of strings.
func stringList(a *args, name string) []string {
	v, ok := a.m[name]
	if !ok || v == nil {
		return nil
	}
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case []string:
		return x
	default:
		b, _ := json.Marshal(v)
		if json.Unmarshal(b, &list) != nil {
			a.fail("argument %q must be an array of variable names, got %s", name, jsonType(v))
			return nil
		}
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			a.fail("argument %q must hold only strings (variable names), got %s", name, jsonType(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

func checkpointResult(r CheckpointReply) *mcp.CallToolResult {
	if r.Data == nil {
		r.Data = map[string]any{}
	}
	b, err := json.MarshalIndent(r.Data, "", "  ")
	if err != nil {
		return mcp.NewToolResultError("encode result: " + err.Error() + " (this is a server bug; please report it)")
	}
	return mcp.NewToolResultStructured(r.Data, r.Summary+"\n"+string(b))
}
