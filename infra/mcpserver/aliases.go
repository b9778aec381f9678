package mcpserver

// toolArguments is the one table of every tool's arguments: the name its
// schema documents, then the names agents guess for it, accepted silently
// (args.go reads them). The guesses come from what our own results call
// the thing (start_kernel answers kernel_id, read_notebook sha256, run_cell
// notebook and cell_id, get_execution cursor), from Jupyter's REST API
// (POST /api/kernels {"name": ...}) and from the usual words (timeout for
// timeout_s). Spellings need no entry: kernelId, KernelID and kernel-id are
// kernel_id (see foldArgName).
//
// NB: an alias is listed only where it can mean one thing. Left out on
// purpose: "kernel" in create_notebook (a kernelspec or a kernel to bind?),
// "notebook" as execute's kernel (an agent passing both kernel_id and
// notebook would be refused for naming one thing twice), "index" in
// move_cell (the cell to move or where to?), "id" wherever a tool takes
// two ids, "name" in create_notebook and list_kernels.
//
// NB: TestArgumentTableMatchesSchemas fails when a tool or an argument is
// missing here, or an alias is also a real argument of its tool.
var toolArguments = map[string][]argNames{
	// kernels
	"list_kernelspecs": {},
	"start_kernel": {
		{"kernelspec", []string{"spec", "kernel_name", "kernelspec_name", "name"}},
		{"notebook", []string{"path", "notebook_path"}},
		{"label", nil},
	},
	"list_kernels":     {{"label", nil}},
	"interrupt_kernel": {kernelArg},
	"restart_kernel":   {kernelArg},
	"shutdown_kernel":  {kernelArg},
	"share_kernel": {
		kernelArg,
		{"principal", []string{"user", "principal_name"}},
		{"access", []string{"level", "permission"}},
	},
	// executions
	"execute": {
		{"kernel", []string{"kernel_id"}},
		{"code", []string{"source"}},
		timeoutArg,
		{"execution_id", nil},
		{"allow_stdin", []string{"stdin", "allow_input"}},
	},
	"get_execution": {
		executionArg,
		waitArg,
		{"since", []string{"cursor", "after"}},
	},
	"list_executions": {
		{"kernel", []string{"kernel_id"}},
		{"status", []string{"state"}},
	},
	"cancel_execution": {executionArg},
	"send_input": {
		executionArg,
		{"value", []string{"input", "text", "answer", "response"}},
		waitArg,
	},
	// assets
	"list_assets": {
		{"kernel", []string{"kernel_id"}},
		{"execution_id", []string{"execution"}},
	},
	// checkpoints
	"list_checkpoints": {},
	"save_environment": {
		{"kernel", []string{"kernel_id"}},
		checkpointArg,
		{"variables", []string{"vars", "names"}},
		{"overwrite", []string{"force", "replace"}},
	},
	"load_environment": {
		{"kernel", []string{"kernel_id"}},
		checkpointArg,
		{"policy", []string{"package_policy"}},
		{"allow_rollback", []string{"rollback"}},
	},
	"delete_checkpoint": {checkpointArg},
	// notebooks
	"create_notebook": {
		pathArg,
		{"kernelspec", []string{"spec", "kernel_name", "kernelspec_name"}},
	},
	"read_notebook": {
		pathArg,
		{"start", []string{"offset", "from"}},
		{"count", []string{"limit"}},
		{"outputs", []string{"include_outputs", "show_outputs", "with_outputs"}},
	},
	"insert_cell": {
		pathArg,
		hashArg,
		sourceArg,
		cellTypeArg,
		{"index", []string{"position", "at"}},
		{"cell_id", []string{"id", "new_cell_id"}},
	},
	"edit_cell":   {pathArg, hashArg, cellArg, sourceArg, cellTypeArg},
	"delete_cell": {pathArg, hashArg, cellArg},
	"move_cell": {
		pathArg,
		hashArg,
		{"cell", []string{"cell_id", "cell_index"}},
		{"to", []string{"to_index", "new_index", "position", "target_index"}},
	},
	"run_cell": {pathArg, cellArg, timeoutArg, {"execution_id", nil}},
	"run_all":  {pathArg, timeoutArg},
}

// argNames is one argument of a tool: its documented name and its aliases.
type argNames struct {
	name    string
	aliases []string
}

// The arguments several tools share, named alike everywhere.
var (
	// kernelArg is the kernel of a tool that takes no other id: "id" is
	// unambiguous there.
	kernelArg     = argNames{"kernel", []string{"kernel_id", "id"}}
	executionArg  = argNames{"execution_id", []string{"execution", "exec_id", "id"}}
	timeoutArg    = argNames{"timeout_s", []string{"timeout", "timeout_seconds", "timeout_sec"}}
	waitArg       = argNames{"wait_s", []string{"wait", "wait_seconds", "timeout", "timeout_s"}}
	checkpointArg = argNames{"name", []string{"checkpoint", "checkpoint_name"}}
	pathArg       = argNames{"path", []string{"notebook", "notebook_path", "file", "file_path"}}
	hashArg       = argNames{"expected_hash", []string{"sha256", "hash", "expected_sha256"}}
	sourceArg     = argNames{"source", []string{"code", "content", "cell_source"}}
	cellTypeArg   = argNames{"cell_type", []string{"type"}}
	// cellArg is the cell of a tool whose only number is none: "index"
	// then can only mean the cell's.
	cellArg = argNames{"cell", []string{"cell_id", "cell_index", "index"}}
)
