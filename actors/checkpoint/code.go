package checkpoint

import (
	"errors"
	"strings"
)

// ErrNothingSaved: the kernel holds no variable a save could keep (none
// defined, or every one skipped).
var ErrNothingSaved = errors.New("checkpoint: no variables")

// codeFilename is the file name the checkpoint code runs under in the
// kernel (tracebacks name it). NB: CodeCall recognises the code by it.
const codeFilename = "<mcp-jupyter checkpoint>"

// CodeCall returns which function of kernel.py an execution's code calls
// when it is the checkpoint actor's own (as callKernel writes it: "save",
// "load", "check", "install"), and "" for any other code. Only "load"
// changes the kernel's variables: the others run in a private namespace,
// so whoever asks "did the kernel's state change" (the auto-checkpoints)
// leaves them out.
func CodeCall(code string) string {
	if !strings.HasPrefix(code, "exec(compile(") {
		return ""
	}
	// NB: the source is a JSON string literal: its newlines are `\n`.
	tail := `(json.loads(__mcpj_params))\n", '` + codeFilename + `', 'exec')`
	i := strings.LastIndex(code, tail)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(code[:i], `\n`)
	if j < 0 {
		return ""
	}
	return code[j+2 : i]
}
