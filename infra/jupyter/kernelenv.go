package jupyter

import (
	"fmt"
	"sort"
	"strings"
)

// The environment a kernel gets is built from an allow-list, never copied
// whole from the server: the server's environment holds its secrets
// (MCP_TOKEN, MCP_CHECKPOINT_SECRET, MCP_NATS_TOKEN, cloud credentials of
// its pod) and kernel code is an agent's.

// kernelEnvNames are passed by exact name.
var kernelEnvNames = map[string]bool{
	"PATH": true, "HOME": true, "LANG": true, "LANGUAGE": true, "TZ": true, "TERM": true,
	"USER": true, "LOGNAME": true, "SHELL": true, "TMPDIR": true, "TMP": true, "TEMP": true,
	"VIRTUAL_ENV": true, "LD_LIBRARY_PATH": true, "SSL_CERT_FILE": true, "SSL_CERT_DIR": true,
	"MPLBACKEND": true, "MPLCONFIGDIR": true, "COLUMNS": true, "LINES": true, "NO_COLOR": true,
}

// kernelEnvPrefixes are passed by prefix, except names that look like
// secrets (secretWords).
var kernelEnvPrefixes = []string{"LC_", "PYTHON", "JUPYTER", "IPYTHON", "CONDA", "XDG_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_"}

// secretWords keep a prefix match out (JUPYTER_TOKEN, CONDA_..._PASSWORD):
// such a name passes only if the operator lists it exactly.
var secretWords = []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "APIKEY", "API_KEY"}

// serverOnlyPrefix marks the server's own settings and secrets. They never
// reach a kernel, whatever is listed.
const serverOnlyPrefix = "MCP_"

// CheckKernelEnvAllow validates the operator's extra allow-list
// (--kernel-env): exact names, or prefixes ending in '*'. The server's own
// variables (MCP_*) are refused: they hold its secrets.
func CheckKernelEnvAllow(names []string) error {
	for _, n := range names {
		bare := strings.TrimSuffix(n, "*")
		if bare == "" || strings.ContainsAny(bare, "=* \t") {
			return fmt.Errorf("--kernel-env %q: give variable names or prefixes ending in *, separated by commas", n)
		}
		if strings.HasPrefix(strings.ToUpper(bare), serverOnlyPrefix) {
			return fmt.Errorf("--kernel-env %q: the server's own variables (MCP_TOKEN, MCP_CHECKPOINT_SECRET, MCP_NATS_TOKEN, every MCP_*) are never given to kernels, "+
				"whose code is an agent's; remove it from --kernel-env / MCP_KERNEL_ENV", n)
		}
	}
	return nil
}

// KernelEnv builds a kernel's environment from the server's (server, as
// os.Environ gives it): the names on the built-in allow-list, those the
// operator allowed (extra: exact names or prefixes ending in '*'), then the
// kernelspec's env and the launcher's own (set), which win. A name starting
// with MCP_ from the server's environment never passes. The result is
// sorted, one NAME=value per name.
func KernelEnv(server []string, extra []string, spec, set map[string]string) []string {
	out := map[string]string{}
	for _, kv := range server {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" || strings.HasPrefix(name, serverOnlyPrefix) {
			continue
		}
		if kernelEnvAllowed(name, extra) {
			out[name] = value
		}
	}
	for k, v := range spec {
		out[k] = v
	}
	for k, v := range set {
		out[k] = v
	}
	env := make([]string, 0, len(out))
	for k, v := range out {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

func kernelEnvAllowed(name string, extra []string) bool {
	for _, e := range extra {
		if p, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(name, p) {
				return true
			}
		} else if name == e {
			return true
		}
	}
	if kernelEnvNames[name] {
		return true
	}
	for _, p := range kernelEnvPrefixes {
		if strings.HasPrefix(name, p) {
			upper := strings.ToUpper(name)
			for _, w := range secretWords {
				if strings.Contains(upper, w) {
					return false
				}
			}
			return true
		}
	}
	return false
}
