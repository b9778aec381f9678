package jupyter

import (
	"slices"
	"strings"
	"testing"
)

func TestKernelEnvPassesOnlyTheAllowList(t *testing.T) {
	server := []string{
		"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "PYTHONPATH=/opt/lib",
		"JUPYTER_PATH=/opt/jupyter", "VIRTUAL_ENV=/venv", "CONDA_PREFIX=/conda", "OMP_NUM_THREADS=2",
		"MCP_TOKEN=tok", "MCP_CHECKPOINT_SECRET=ck", "MCP_NATS_TOKEN=nt", "MCP_DATA_DIR=/data",
		"AWS_SECRET_ACCESS_KEY=aws", "KUBERNETES_SERVICE_HOST=10.0.0.1", "JUPYTER_TOKEN=jt", "CONDA_PASSWORD=x",
		"HTTPS_PROXY=http://u:p@proxy", "MY_DATASET=/data/x",
	}
	got := KernelEnv(server, []string{"MY_*", "MCP_TOKEN"}, map[string]string{"SPEC_VAR": "s", "PATH": "/spec/bin"},
		map[string]string{"JPY_PARENT_PID": "42"})
	want := []string{"CONDA_PREFIX=/conda", "HOME=/root", "JPY_PARENT_PID=42", "JUPYTER_PATH=/opt/jupyter", "LANG=C.UTF-8",
		"LC_ALL=C", "MY_DATASET=/data/x", "OMP_NUM_THREADS=2", "PATH=/spec/bin", "PYTHONPATH=/opt/lib", "SPEC_VAR=s", "TZ=UTC",
		"VIRTUAL_ENV=/venv"}
	if !slices.Equal(got, want) {
		t.Errorf("KernelEnv =\n%v\nwant\n%v", got, want)
	}
	for _, kv := range got {
		if strings.HasPrefix(kv, "MCP_") {
			t.Errorf("%s reached the kernel, although listed MCP_ names never pass", kv)
		}
	}
}

func TestKernelEnvPassesAnExactlyListedSecretLookingName(t *testing.T) {
	got := KernelEnv([]string{"JUPYTER_TOKEN=jt"}, []string{"JUPYTER_TOKEN"}, nil, nil)
	if !slices.Equal(got, []string{"JUPYTER_TOKEN=jt"}) {
		t.Errorf("KernelEnv = %v: an operator's exact name passes even if it looks like a secret", got)
	}
}

func TestCheckKernelEnvAllowRefusesServerSecrets(t *testing.T) {
	for _, bad := range []string{"MCP_TOKEN", "MCP_CHECKPOINT_SECRET", "MCP_NATS_TOKEN", "mcp_token", "MCP_*", "", "A=B", "*"} {
		err := CheckKernelEnvAllow([]string{"HTTPS_PROXY", bad})
		if err == nil {
			t.Errorf("CheckKernelEnvAllow(%q) = nil, want a refusal", bad)
			continue
		}
		if strings.HasPrefix(strings.ToUpper(bad), "MCP_") && !strings.Contains(err.Error(), "never given to kernels") {
			t.Errorf("CheckKernelEnvAllow(%q) = %v: say why", bad, err)
		}
	}
	if err := CheckKernelEnvAllow([]string{"HTTPS_PROXY", "AWS_*", "MPLBACKEND"}); err != nil {
		t.Errorf("CheckKernelEnvAllow = %v, want nil", err)
	}
}
