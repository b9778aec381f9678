package main

import (
	"context"
	"net/http"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
)

// errSessionsPending: /api/sessions waits for the kernel actor's session
// events (KernelSessionOpened/Closed).
var errSessionsPending = jupyterapi.Errorf(http.StatusNotImplemented, "sessions are not served yet")

func (j *jupyterKernels) Sessions(ctx context.Context) ([]jupyterapi.Session, error) {
	return nil, errSessionsPending
}

func (j *jupyterKernels) Session(ctx context.Context, id string) (jupyterapi.Session, error) {
	return jupyterapi.Session{}, errSessionsPending
}

func (j *jupyterKernels) CreateSession(ctx context.Context, s jupyterapi.NewSession) (jupyterapi.Session, bool, error) {
	return jupyterapi.Session{}, false, errSessionsPending
}

func (j *jupyterKernels) UpdateSession(ctx context.Context, id string, change jupyterapi.SessionChange) (jupyterapi.Session, error) {
	return jupyterapi.Session{}, errSessionsPending
}

func (j *jupyterKernels) DeleteSession(ctx context.Context, id string) error {
	return errSessionsPending
}
