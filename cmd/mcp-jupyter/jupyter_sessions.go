package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"

	"github.com/mcp-jupyter/mcp-jupyter/actors/kernel"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyterapi"
	"github.com/mcp-jupyter/mcp-jupyter/projections/kernels"
)

// Jupyter sessions (/api/sessions) are durable: the kernel actor records
// KernelSessionOpened and KernelSessionClosed on the kernel's stream, and
// a shutdown closes them all. A session belongs to its kernel, so access
// follows the kernel's: a session of a kernel the caller may not read does
// not exist for it; opening one needs read on the kernel (it is a
// frontend's note of which path it shows on which kernel); changing one
// (PATCH: rename, move) needs execute on its kernel, as a read share only
// lets the sharee look, and is for the principals of the notebook root it
// was opened from (its path is relative to that root); starting a kernel for it needs the execute scope; and
// what shuts a kernel down (DELETE, the old kernel of a move) needs
// manage, as shutdown_kernel does. A move away from a kernel the caller
// may not manage leaves that kernel running.

// openSession is a session and the kernel it is open on.
type openSession struct {
	kernels.Session
	k kernels.Kernel
}

// visibleSessions are the open sessions (kernels read model) of the kernels
// p may read, oldest first (by the event that opened or last changed
// them), as jupyter_server lists its table.
func (j *jupyterKernels) visibleSessions(p auth.Principal) []openSession {
	var out []openSession
	for _, ks := range j.back.kernels.AllSessions() {
		if k, ok := j.readable(p, ks.KernelID); ok {
			out = append(out, openSession{Session: ks.Session, k: k})
		}
	}
	return out
}

// find is session id if p may see it, or a 404 as jupyter_server words
// it.
func (j *jupyterKernels) find(p auth.Principal, id string) (openSession, error) {
	if kid, s, ok := j.back.kernels.FindSession(id); ok {
		if k, ok := j.readable(p, kid); ok {
			return openSession{Session: s, k: k}, nil
		}
	}
	return openSession{}, jupyterapi.Errorf(http.StatusNotFound, "Session not found: session_id=%q", id)
}

// synced waits for the read models to show what a session command
// appended (read your writes), and passes its error on.
func (j *jupyterKernels) synced(ctx context.Context, st kernel.State, err error) error {
	if err != nil {
		return err
	}
	return j.back.sync(ctx, st.LastSeq)
}

func (j *jupyterKernels) session(p auth.Principal, s openSession) jupyterapi.Session {
	k := s.k
	return jupyterapi.Session{ID: s.ID, Path: s.Path, Name: s.Name, Type: s.Type, Kernel: j.model(p, k)}
}

func (j *jupyterKernels) Sessions(ctx context.Context) ([]jupyterapi.Session, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var out []jupyterapi.Session
	for _, s := range j.visibleSessions(p) {
		out = append(out, j.session(p, s))
	}
	return out, nil
}

func (j *jupyterKernels) Session(ctx context.Context, id string) (jupyterapi.Session, error) {
	p, err := caller(ctx)
	if err != nil {
		return jupyterapi.Session{}, err
	}
	s, err := j.find(p, id)
	if err != nil {
		return jupyterapi.Session{}, err
	}
	return j.session(p, s), nil
}

// newSessionID is a random (version 4) UUID: frontends route only ids of
// that shape.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // NB: never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// readable is kernel id when p may read it and it was not shut down.
func (j *jupyterKernels) readable(p auth.Principal, id string) (kernels.Kernel, bool) {
	k, ok := j.back.kernels.Get(id)
	if !ok || !listed(k) || !j.back.access.canRead(p, id) {
		return kernels.Kernel{}, false
	}
	return k, true
}

// startFor starts a kernel of spec for a session; a start that fails is
// the NoSuchSpec or *StatusError the routes answer.
func (j *jupyterKernels) startFor(ctx context.Context, spec string) (kernels.Kernel, error) {
	started, err := j.StartKernel(ctx, spec)
	if err != nil {
		return kernels.Kernel{}, err
	}
	k, ok := j.back.kernels.Get(started.ID)
	if !ok {
		return kernels.Kernel{}, fmt.Errorf("kernel %s started but the read model does not show it", started.ID)
	}
	return k, nil
}

// sessionError is err of a session command as the routes answer it.
func sessionError(err error, kernelID string) error {
	if errors.Is(err, kernel.ErrBadSession) {
		return jupyterapi.Errorf(http.StatusBadRequest, "%v", err)
	}
	return commandError(err, kernelID)
}

// pathSession is the open session of path that p sees, if any. A
// session's path is relative to the notebook root of the principal that
// opened it (notebookRoot), so only sessions opened from p's own root
// count: bob's "a.ipynb" is not alice's, even on a kernel alice shares
// with him.
func (j *jupyterKernels) pathSession(p auth.Principal, path string) (openSession, bool) {
	for _, s := range j.visibleSessions(p) {
		if s.Path == path && ofRootOf(p, s.By) {
			return s, true
		}
	}
	return openSession{}, false
}

// ofRootOf reports whether a session opened (or last changed) by the
// principal named by has its path in p's notebook root: p's own, or
// another's of the same root (the admin's).
func ofRootOf(p auth.Principal, by string) bool {
	return by == p.Name || sessionRootKey(by) == callerRootKey(p)
}

// callerRootKey names p's notebook root as rootFor chooses it: "" for
// admins (the whole root), the users/ directory name otherwise.
func callerRootKey(p auth.Principal) string {
	if p.IsAdmin() {
		return ""
	}
	return userDirName(p.Name)
}

// sessionRootKey is callerRootKey of the principal a session was opened
// (or last changed) by. NB: only the name is recorded; AdminName (or no
// name) is the admin, and any other name is taken for a principal's own
// root — an admin-scoped principal's sessions then match only its own
// (ofRootOf compares names too), never someone else's.
func sessionRootKey(by string) string {
	if by == auth.AdminName || by == "" {
		return ""
	}
	return userDirName(by)
}

func (j *jupyterKernels) CreateSession(ctx context.Context, req jupyterapi.NewSession) (jupyterapi.Session, bool, error) {
	p, err := caller(ctx)
	if err != nil {
		return jupyterapi.Session{}, false, err
	}
	if s, ok := j.pathSession(p, req.Path); ok {
		return j.session(p, s), false, nil
	}
	var k kernels.Kernel
	started := false
	if req.KernelID != "" {
		var ok bool
		if k, ok = j.readable(p, req.KernelID); !ok {
			return jupyterapi.Session{}, false, noKernel(req.KernelID)
		}
	} else {
		// NB: started outside the lock below: a kernel start takes
		// seconds, and other sessions need not wait for it.
		if k, err = j.startFor(ctx, req.KernelSpec); err != nil {
			return jupyterapi.Session{}, false, err
		}
		started = true
	}
	abandon := func() {
		if started {
			// NB: the kernel was started for this session only.
			_ = j.back.ShutdownKernel(context.WithoutCancel(ctx), k.ID)
		}
	}
	// One open at a time, looking again: two frontends opening the same
	// path at once get one session (the kernel the loser started goes).
	j.creating.Lock()
	if s, ok := j.pathSession(p, req.Path); ok {
		j.creating.Unlock()
		abandon()
		return j.session(p, s), false, nil
	}
	id := newSessionID()
	st, err := j.back.sys.OpenSession(ctx, k.ID, kernel.OpenSession{SessionID: id, Path: req.Path, Name: req.Name, Type: req.Type, By: p.Name})
	err = j.synced(ctx, st, err)
	j.creating.Unlock()
	if err != nil {
		abandon()
		return jupyterapi.Session{}, false, sessionError(err, k.ID)
	}
	sess, err := j.find(p, id)
	if err != nil {
		return jupyterapi.Session{}, false, err
	}
	return j.session(p, sess), true, nil
}

func (j *jupyterKernels) UpdateSession(ctx context.Context, id string, change jupyterapi.SessionChange) (jupyterapi.Session, error) {
	p, err := caller(ctx)
	if err != nil {
		return jupyterapi.Session{}, err
	}
	before, err := j.find(p, id)
	if err != nil {
		return jupyterapi.Session{}, err
	}
	// NB: refused before anything changes: a read share lets the sharee
	// see the session, not rename it or take it to another kernel.
	if _, err := j.allow(ctx, before.k.ID, "execute", auth.AccessExecute); err != nil {
		return jupyterapi.Session{}, err
	}
	// NB: its path is relative to the notebook root it was opened from,
	// and the change is recorded as the caller's (which keys the session
	// to the caller's root): only a principal of that root may change it.
	if !ofRootOf(p, before.By) {
		return jupyterapi.Session{}, jupyterapi.Errorf(http.StatusForbidden,
			"session %s was opened by %s from their notebook root: only they may change it (DELETE needs manage on its kernel; open your own session with POST /api/sessions)", id, before.By)
	}
	after := before.Session
	for _, f := range []struct {
		to   *string
		into *string
	}{{change.Path, &after.Path}, {change.Name, &after.Name}, {change.Type, &after.Type}} {
		if f.to != nil {
			*f.into = *f.to
		}
	}
	target := before.k
	started := false
	switch {
	case change.KernelID != nil && *change.KernelID != before.k.ID:
		k, ok := j.readable(p, *change.KernelID)
		if !ok {
			return jupyterapi.Session{}, jupyterapi.Errorf(http.StatusBadRequest, "No such kernel: %s", jupyterapi.ShownID(*change.KernelID))
		}
		target = k
	case change.KernelID == nil && change.KernelSpec != nil:
		k, err := j.startFor(ctx, *change.KernelSpec)
		if err != nil {
			return jupyterapi.Session{}, err
		}
		target = k
		started = true
	}
	open := kernel.OpenSession{SessionID: after.ID, Path: after.Path, Name: after.Name, Type: after.Type, By: p.Name}
	st, err := j.back.sys.OpenSession(ctx, target.ID, open)
	if err := j.synced(ctx, st, err); err != nil {
		if started {
			// NB: the kernel was started for this move only, as
			// CreateSession's abandon.
			_ = j.back.ShutdownKernel(context.WithoutCancel(ctx), target.ID)
		}
		return jupyterapi.Session{}, sessionError(err, target.ID)
	}
	if target.ID != before.k.ID {
		reason := "moved to kernel " + jupyterapi.ShownID(target.ID)
		st, err := j.back.sys.CloseSession(ctx, before.k.ID, kernel.CloseSession{SessionID: id, Reason: reason, By: p.Name})
		if err := j.synced(ctx, st, err); err != nil && !errors.Is(err, kernel.ErrBadSession) {
			return jupyterapi.Session{}, sessionError(err, before.k.ID)
		}
		// As jupyter_server: the kernel the session left is shut down —
		// when the caller may; someone else's kernel keeps running.
		if j.mayShutDown(p, before.k.ID) {
			if err := j.back.ShutdownKernel(ctx, before.k.ID); err != nil && !errors.Is(err, kernel.ErrNotRunning) {
				return jupyterapi.Session{}, commandError(err, before.k.ID)
			}
		}
	}
	sess, err := j.find(p, id)
	if err != nil {
		return jupyterapi.Session{}, err
	}
	return j.session(p, sess), nil
}

// mayShutDown reports whether p may shut kernel id down (shutdown_kernel's
// scope and manage access).
func (j *jupyterKernels) mayShutDown(p auth.Principal, id string) bool {
	return scoped(p, "shutdown_kernel") == nil && j.back.access.kernelAccess(p, id) >= auth.AccessManage
}

func (j *jupyterKernels) DeleteSession(ctx context.Context, id string) error {
	p, err := caller(ctx)
	if err != nil {
		return err
	}
	s, err := j.find(p, id)
	if err != nil {
		return err
	}
	// NB: refused before anything changes: deleting a session shuts its
	// kernel down, which is the kernel's manager's to do.
	if _, err := j.allow(ctx, s.k.ID, "shutdown_kernel", auth.AccessManage); err != nil {
		return err
	}
	st, err := j.back.sys.CloseSession(ctx, s.k.ID, kernel.CloseSession{SessionID: id, Reason: "deleted", By: p.Name})
	if err := j.synced(ctx, st, err); err != nil {
		return sessionError(err, s.k.ID)
	}
	if err := j.back.ShutdownKernel(ctx, s.k.ID); err != nil && !errors.Is(err, kernel.ErrNotRunning) {
		return commandError(err, s.k.ID)
	}
	return nil
}
