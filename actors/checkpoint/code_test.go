package checkpoint

import (
	"context"
	"errors"
	"testing"
)

// captureRunner keeps the code it was asked to run and fails it.
type captureRunner struct{ code string }

func (r *captureRunner) Run(_ context.Context, _, code string) (string, error) {
	r.code = code
	return "", errors.New("not run")
}

// TestCodeCallNamesTheCheckpointFunction: the code callKernel writes is
// recognised with the function it calls; an agent's code is not.
func TestCodeCallNamesTheCheckpointFunction(t *testing.T) {
	for _, fn := range []string{"save", "load", "check", "install"} {
		var r captureRunner
		_ = callKernel(context.Background(), &r, "k", fn, map[string]any{"x": 1}, &struct{}{})
		if got := CodeCall(r.code); got != fn {
			t.Errorf("CodeCall of the %s code = %q", fn, got)
		}
	}
	for _, code := range []string{"x = 1", "exec(compile('x=1', '<string>', 'exec'))", ""} {
		if got := CodeCall(code); got != "" {
			t.Errorf("CodeCall(%q) = %q, want \"\"", code, got)
		}
	}
}
