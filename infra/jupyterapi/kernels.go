package jupyterapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kernels is what the kernel, kernelspec and session routes need. Every
// call carries the caller's principal in ctx (the Guard put it there) and
// the implementation decides access as the MCP tools do: a kernel the
// caller may not read does not exist for it (404, the words of an unknown
// id), one it may read but not act on is refused (403). Kernel ids given to
// it are canonical (events.CanonicalID); it answers canonical ids and the
// routes show them in UUID form. Errors meant for the client are
// *StatusError; any other is a 500.
type Kernels interface {
	// Status is when the server started and when it last saw activity.
	Status(ctx context.Context) (Status, error)
	// KernelSpecs lists the kernelspecs kernels can be started from.
	KernelSpecs(ctx context.Context) (KernelSpecs, error)

	// Kernels lists the kernels the caller may read that were not shut
	// down (a dead or lost one stays, execution_state "dead").
	Kernels(ctx context.Context) ([]Kernel, error)
	// Kernel is one of them (404 for any other).
	Kernel(ctx context.Context, id string) (Kernel, error)
	// StartKernel starts a kernel of kernelspec spec ("" the default),
	// owned by the caller.
	StartKernel(ctx context.Context, spec string) (Kernel, error)
	InterruptKernel(ctx context.Context, id string) error
	// RestartKernel returns once the kernel runs again.
	RestartKernel(ctx context.Context, id string) (Kernel, error)
	ShutdownKernel(ctx context.Context, id string) error

	// Sessions lists the open sessions of kernels the caller may read.
	Sessions(ctx context.Context) ([]Session, error)
	Session(ctx context.Context, id string) (Session, error)
	// CreateSession opens a session for s.Path, or returns the open one
	// for that path (created false).
	CreateSession(ctx context.Context, s NewSession) (sess Session, created bool, err error)
	// UpdateSession applies change; a change of kernel shuts the old one
	// down as jupyter_server does.
	UpdateSession(ctx context.Context, id string, change SessionChange) (Session, error)
	// DeleteSession closes the session and shuts its kernel down.
	DeleteSession(ctx context.Context, id string) error
}

// Status is GET /api/status's answer but for what the routes count.
type Status struct {
	Started      time.Time
	LastActivity time.Time
}

// KernelSpec is one kernelspec as found on disk.
type KernelSpec struct {
	Name string
	// ResourceDir holds kernel.json; /kernelspecs/<name>/<file> serves
	// files under it, never outside.
	ResourceDir   string
	Argv          []string
	DisplayName   string
	Language      string
	InterruptMode string
	Metadata      map[string]any
}

// KernelSpecs are the kernelspecs and the one started when none is named.
type KernelSpecs struct {
	Default string
	Specs   []KernelSpec
}

// Kernel is a kernel as the read models tell it.
type Kernel struct {
	ID             string // canonical: NewID's shape
	Spec           string
	LastActivity   time.Time
	ExecutionState string // starting, idle, busy or dead
	Reason         string // why it is dead
}

// Session binds a notebook or console path to a kernel (/api/sessions).
type Session struct {
	ID     string // a UUID
	Path   string
	Name   string
	Type   string
	Kernel Kernel
}

// NewSession is POST /api/sessions' body: a kernel by id (an existing one)
// or by kernelspec name (a new one; neither: the default kernelspec).
type NewSession struct {
	Path, Name, Type     string
	KernelID, KernelSpec string
}

// SessionChange is PATCH /api/sessions/<id>'s body: nil fields stay. A
// kernel id moves the session to that existing kernel; a kernelspec name
// (without id) starts a new kernel for it.
type SessionChange struct {
	Path, Name, Type     *string
	KernelID, KernelSpec *string
}

// StatusError is an error the routes answer with its status and message,
// as jupyter_server's {"message", "reason"}.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

// Errorf makes a *StatusError.
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// statusOf is the status and message err is answered with: a
// *StatusError's own; a caller that went away or ran out of time 504 (what
// it was waiting for may still happen); anything else 500. The last two
// answer a fixed message: an unexpected error's text can carry server
// paths (the data dir, a kernel's files), so the routes log it (fail)
// and the client learns only where to look.
func statusOf(err error) (int, string) {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return se.Status, se.Message
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout, "timed out waiting for the server: try again; the server's log has the details"
	}
	return http.StatusInternalServerError, internalErrorMessage
}

// internalErrorMessage answers an unexpected error.
const internalErrorMessage = "internal server error: the server's log has the details"
