package sandbox_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/sandbox"
)

// TestMain makes this test binary the launcher when Start re-executes it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.Subcommand {
		os.Exit(sandbox.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// run starts argv through the launcher and returns its report, output and
// exit error.
func run(t *testing.T, plan sandbox.Plan, argv ...string) (sandbox.Report, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	rep, err := sandbox.Start(ctx, cmd, sandbox.Self{}, plan)
	if err != nil {
		return rep, "", err
	}
	st, err := cmd.Process.Wait()
	if err == nil && !st.Success() {
		err = errors.New(st.String())
	}
	b, _ := os.ReadFile(out.Name())
	return rep, string(b), err
}

// TestStartFallsBackToSiblingsWhenTheMountFails: a mount the launcher
// cannot make (a tmpfs over a regular file) does not leave the kernel
// unconfined or unstarted: Start retries on Landlock's sibling rules and
// says so.
func TestStartFallsBackToSiblingsWhenTheMountFails(t *testing.T) {
	if !sandbox.Probe().Mount || !sandbox.Probe().Protected() {
		t.Fatalf("needs root with CAP_SYS_ADMIN and Landlock: %s", sandbox.Probe())
	}
	secret := filepath.Join(t.TempDir(), "mcp-token")
	if err := os.WriteFile(secret, []byte("SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, out, err := run(t, sandbox.Plan{Mode: sandbox.ModeRequired, Hide: []string{secret}}, "/bin/cat", secret)
	if rep.MountNamespace || !strings.Contains(rep.Warning, "no mount namespace") || !rep.Protected() {
		t.Errorf("report %+v: want Landlock without a mount namespace, and why", rep)
	}
	if err == nil || strings.Contains(out, "SECRET") {
		t.Errorf("cat of the hidden file: %v, %q; want a refusal", err, out)
	}
}

// TestStartReportsTheLaunchersRefusal: a refusal comes back as a
// RefusedError and no process is left.
func TestStartReportsTheLaunchersRefusal(t *testing.T) {
	dir := t.TempDir()
	_, _, err := run(t, sandbox.Plan{Mode: sandbox.ModeRequired, Hide: []string{dir}, Without: []string{"landlock", "mount"}}, "/bin/true")
	var refused *sandbox.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "required") {
		t.Fatalf("Start = %v, want a RefusedError naming required", err)
	}
}
