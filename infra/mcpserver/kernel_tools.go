package mcpserver

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

const kernelArgHelp = "a kernel_id from start_kernel or list_kernels (or its UUID form, as Jupyter frontends show it), or the path of a notebook bound to a kernel"

func (s *Server) addKernelTools() {
	s.mcp.AddTool(mcp.NewTool("list_kernelspecs",
		mcp.WithDescription("List the installed Jupyter kernelspecs (languages/environments) that start_kernel can launch."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.listKernelSpecs)

	s.mcp.AddTool(mcp.NewTool("start_kernel",
		mcp.WithDescription("Start a new Jupyter kernel and return its kernel_id once it is ready. "+
			"Use the kernel_id (or the notebook path, if given) as `kernel` in execute. "+
			"Check list_kernels first: a kernel you started earlier is still there, with its variables."),
		mcp.WithString("kernelspec", mcp.DefaultString("python3"),
			mcp.Description("Name of the kernelspec to launch (see list_kernelspecs).")),
		mcp.WithString("notebook", mcp.Description("Optional notebook path to bind the kernel to; "+
			"execute then accepts this path as `kernel`.")),
		mcp.WithString("label", mcp.Description("Optional label to find the kernel again with list_kernels.")),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.startKernel)

	s.mcp.AddTool(mcp.NewTool("list_kernels",
		mcp.WithDescription("List kernels with their state (starting, running, dead, lost, shut_down), "+
			"whether they are busy or idle, how many executions are queued, the running execution "+
			"and the bound notebook; for a kernel the server started afresh under its id because its process was gone "+
			"(the server's pod was replaced), restore_notice says which variables came back from its auto-checkpoint and which did not."),
		mcp.WithString("label", mcp.Description("Optional: only kernels with this label.")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.listKernels)

	s.mcp.AddTool(mcp.NewTool("interrupt_kernel",
		mcp.WithDescription("Interrupt the kernel's running execution (like Ctrl-C: KeyboardInterrupt). "+
			"Variables are kept; queued executions then run."),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.kernelAction("interrupt kernel", Backend.InterruptKernel, "interrupted"))

	s.mcp.AddTool(mcp.NewTool("restart_kernel",
		mcp.WithDescription("Restart the kernel. DESTRUCTIVE: all variables, imports and state in the "+
			"kernel are lost; the kernel_id stays the same. Re-run setup code afterwards."),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.kernelAction("restart kernel", Backend.RestartKernel, "restarted; its variables are gone"))

	s.mcp.AddTool(mcp.NewTool("shutdown_kernel",
		mcp.WithDescription("Shut the kernel down. DESTRUCTIVE: its state is lost and the kernel_id "+
			"cannot run code any more; start_kernel for a new one."),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.kernelAction("shut down kernel", Backend.ShutdownKernel, "shut down"))

	s.mcp.AddTool(mcp.NewTool("share_kernel",
		mcp.WithDescription("Share a kernel you own with another principal: read (they see it in list_kernels, its executions, "+
			"outputs and assets) or execute (they may also run code on it, answer input and interrupt it); none withdraws a share. "+
			"Restart, shutdown, checkpoints and sharing stay with the owner."),
		mcp.WithString("kernel", mcp.Required(), mcp.Description(kernelArgHelp)),
		mcp.WithString("principal", mcp.Required(), mcp.Description("The principal's name, as `mcp-jupyter principal list` shows it (an OAuth subject: oidc:<sub>).")),
		mcp.WithString("access", mcp.Required(), mcp.Enum("read", "execute", "none"),
			mcp.Description("read, execute, or none to withdraw the share.")),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), s.shareKernel)
}

func (s *Server) shareKernel(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	ref := a.str("kernel", true, kernelArgHelp)
	who := a.str("principal", true, "a principal's name")
	level := a.str("access", true, "read, execute or none")
	if a.err != nil {
		return failed("share kernel", a.err), nil
	}
	access, err := auth.ParseAccess(level)
	if err != nil {
		return failed("share kernel "+ref, err), nil
	}
	id, err := s.backend.ResolveKernel(ctx, ref)
	if err != nil {
		return failed("share kernel "+ref, err), nil
	}
	if err := s.backend.ShareKernel(ctx, id, who, access); err != nil {
		return failed("share kernel "+id, err), nil
	}
	result := fmt.Sprintf("kernel %s is shared with %s for %s", id, who, access)
	if access == auth.AccessNone {
		result = fmt.Sprintf("kernel %s is no longer shared with %s", id, who)
	}
	return structured(map[string]any{"kernel_id": id, "principal": who, "access": access.String(), "result": result}), nil
}

func (s *Server) listKernelSpecs(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	specs, err := s.backend.KernelSpecs(ctx)
	if err != nil {
		return failed("list kernelspecs", err), nil
	}
	if specs == nil {
		specs = []KernelSpec{}
	}
	return structured(map[string]any{"kernelspecs": specs}), nil
}

func (s *Server) startKernel(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	r := StartKernelRequest{
		Spec:     a.str("kernelspec", false, "the name of a kernelspec from list_kernelspecs"),
		Notebook: a.str("notebook", false, "a notebook path"),
		Label:    a.str("label", false, "a label"),
	}
	if a.err != nil {
		return failed("start kernel", a.err), nil
	}
	if r.Spec == "" {
		r.Spec = "python3"
	}
	k, err := s.backend.StartKernel(ctx, r)
	if err != nil {
		return failed("start kernel "+r.Spec, err), nil
	}
	return structured(k), nil
}

func (s *Server) listKernels(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a := newArgs(req)
	label := a.str("label", false, "a label given to start_kernel")
	if a.err != nil {
		return failed("list kernels", a.err), nil
	}
	ks, err := s.backend.Kernels(ctx, label)
	if err != nil {
		return failed("list kernels", err), nil
	}
	if ks == nil {
		ks = []KernelView{}
	}
	return structured(map[string]any{"kernels": ks}), nil
}

// kernelAction is a tool that resolves `kernel` and calls one Backend method.
func (s *Server) kernelAction(action string, call func(Backend, context.Context, string) error, done string) func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a := newArgs(req)
		ref := a.str("kernel", true, kernelArgHelp)
		if a.err != nil {
			return failed(action, a.err), nil
		}
		id, err := s.backend.ResolveKernel(ctx, ref)
		if err != nil {
			return failed(action+" "+ref, err), nil
		}
		if err := call(s.backend, ctx, id); err != nil {
			return failed(action+" "+id, err), nil
		}
		return structured(map[string]any{"kernel_id": id, "result": fmt.Sprintf("kernel %s %s", id, done)}), nil
	}
}
