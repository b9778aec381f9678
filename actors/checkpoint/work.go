package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// ErrRejected marks every reason a checkpoint file is refused before any
// of it reaches a kernel (tampered, truncated, unknown or rotated-away key,
// newer format). Check with errors.Is.
var ErrRejected = errors.New("checkpoint: rejected")

// RejectError is a refusal by verification; its text is the file store's
// reason and hint.
type RejectError struct{ Err error }

func (e *RejectError) Error() string        { return e.Err.Error() }
func (e *RejectError) Unwrap() error        { return e.Err }
func (e *RejectError) Is(target error) bool { return target == ErrRejected }
func (e *RejectError) Rejected() bool       { return true }

// rejected reports whether Files refused the file (see Files).
func rejected(err error) bool {
	var r interface{ Rejected() bool }
	return errors.As(err, &r) && r.Rejected()
}

// quotaExceeded reports whether Files stopped a save at the bound it was
// given (the owner's quota left, see Files).
func quotaExceeded(err error) bool {
	var q interface{ QuotaExceeded() bool }
	return errors.As(err, &q) && q.QuotaExceeded()
}

// fileError maps what Files returned to the package's errors.
func fileError(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case rejected(err):
		var re *RejectError
		if errors.As(err, &re) {
			return err
		}
		return &RejectError{Err: err}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", ErrNotFound, Display(name))
	case quotaExceeded(err):
		return fmt.Errorf("%w: %v", ErrQuota, err)
	}
	return err
}

// The work below runs in goroutines the actor owns (it waits minutes on a
// kernel and streams files): it decides nothing durable, and reports back
// by message what the actor then records.

// save has the kernel serialize its variables with dill into the stage
// Files gives it — handed over as an open descriptor, never a path — then
// Files signs, encrypts and commits the file.
//
// q bounds the file while it is written (what its owner's quota has left)
// and is asked to reserve the file's size once it is sealed, before it is
// committed: a refusal commits nothing.
func save(ctx context.Context, files Files, runner Runner, kernelDir func(string) string, req SaveRequest, created time.Time,
	q *quota) (Meta, error) {
	ctx = events.WithPrincipal(ctx, req.By)
	var res saveResult
	var meta Meta
	size, err := files.Save(req.Name, q.left(req.Name), func(stage *os.File) error {
		h, err := offer(kernelDir(req.KernelID), stage)
		if err != nil {
			return fmt.Errorf("hand the checkpoint file to kernel %s: %w", req.KernelID, err)
		}
		defer h.Close()
		params := h.params()
		if len(req.Variables) > 0 {
			params["variables"] = req.Variables
		}
		if err := callKernel(ctx, runner, req.KernelID, "save", params, &res); err != nil {
			return err
		}
		if len(res.Saved) == 0 {
			return fmt.Errorf("%w: nothing in kernel %s could be saved (skipped: %s): define variables first, or name them in variables", ErrNothingSaved, req.KernelID, describeSkipped(res.Skipped))
		}
		// NB: stop serving before the file is signed, so no second
		// descriptor can be handed out once the kernel has written.
		return h.Close()
	}, func(keyID string, encrypted bool, payload int64, sum string) ([]byte, error) {
		meta = Meta{Name: req.Name, KernelID: req.KernelID, Notebook: req.Notebook, Created: created.UTC(),
			FormatVersion: FormatVersion, KeyID: keyID, Encrypted: encrypted, PayloadBytes: payload, SHA256: sum,
			Python: res.Python, Packages: res.Packages, Saved: res.Saved, Skipped: res.Skipped}
		if meta.Skipped == nil {
			meta.Skipped = []Variable{}
		}
		mb, err := json.Marshal(meta)
		if err != nil {
			return nil, err
		}
		if err := q.reserve(req.Name, sealedBytes(keyID, payload, len(mb))); err != nil {
			return nil, err
		}
		return mb, nil
	})
	if err != nil {
		return Meta{}, fileError(req.Name, err)
	}
	meta.FileBytes = size
	return meta, nil
}

func savedEvent(m Meta) events.CheckpointSaved {
	return events.CheckpointSaved{Name: m.Name, KernelID: m.KernelID, Notebook: m.Notebook, File: m.Name + ".ckpt",
		Size: m.FileBytes, SHA256: m.SHA256, KeyID: m.KeyID, Encrypted: m.Encrypted, Saved: eventVars(m.Saved),
		Skipped: eventVars(m.Skipped), Python: m.Python, Packages: m.Packages}
}

// loaded is what a load came to: the result, the outcome for the
// Observer, the event to record (none when the load failed otherwise).
type loaded struct {
	res     LoadResult
	outcome string
	event   events.Payload
	err     error
}

// load verifies the checkpoint whole before any of it goes near the
// kernel, checks its signed name and version against the request and the
// log (st: the actor's state when the load began), then compares packages,
// applies the policy and restores the variables into the kernel's globals
// from a private copy of the verified bytes, handed over as a descriptor.
func load(ctx context.Context, files Files, runner Runner, kernelDir func(string) string, st State, req LoadRequest) loaded {
	ctx = events.WithPrincipal(ctx, req.By)
	var o loaded
	err := files.Load(req.Name, func(payload *os.File, mb []byte, size int64) error {
		var meta Meta
		if err := json.Unmarshal(mb, &meta); err != nil {
			// Signed but unreadable: a bug of the writer, not tampering.
			return fmt.Errorf("decode checkpoint metadata: %w", err)
		}
		meta.FileBytes = size
		o.res.Meta = meta
		status, err := CheckFile(st, req.Name, meta, size, req.AllowRollback)
		if err != nil {
			return &RejectError{Err: err}
		}
		o.res.RolledBack = status == FileOlder
		// One execution checks the packages and, when they match (or the
		// policy is warn), restores; otherwise it stops before taking the
		// checkpoint and the policy decides.
		lr, err := restoreInKernel(ctx, runner, kernelDir(req.KernelID), req.KernelID, payload, nonNil(meta.Packages), req.Policy != PolicyWarn)
		if err != nil {
			return err
		}
		chk := lr.checkResult
		o.res.Missing, o.res.Mismatched, o.res.Python = chk.Missing, chk.Mismatched, chk.Python
		refuse, install := DecidePolicy(req.Policy, chk.Missing, chk.Mismatched, meta.Packages)
		if refuse != "" {
			o.outcome = OutcomeRefused
			o.event = events.CheckpointRejected{Name: req.Name, KernelID: req.KernelID, Reason: refuse}
			return fmt.Errorf("%w: %s: install them, or load with policy warn or install", ErrPolicy, refuse)
		}
		if len(install) > 0 {
			var inst installResult
			if err := callKernel(ctx, runner, req.KernelID, "install", map[string]any{"packages": install}, &inst); err != nil {
				return err
			}
			o.res.Installs = inst.Results
			if lr, err = restoreInKernel(ctx, runner, kernelDir(req.KernelID), req.KernelID, payload, nil, false); err != nil {
				return err
			}
		}
		if lr.Restored == nil {
			return fmt.Errorf("checkpoint load in kernel %s stopped at the package check", req.KernelID)
		}
		o.res.Restored = lr.Restored
		var installed []string
		for _, r := range o.res.Installs {
			if r.OK {
				installed = append(installed, r.Package)
			}
		}
		o.outcome = OutcomeOK
		o.event = events.CheckpointLoaded{Name: req.Name, KernelID: req.KernelID, Restored: lr.Restored, Missing: chk.Missing,
			Mismatched: chk.Mismatched, Policy: string(req.Policy), Installed: installed}
		return nil
	})
	if err != nil && rejected(err) {
		o.outcome = OutcomeRejected
		o.event = events.CheckpointRejected{Name: req.Name, KernelID: req.KernelID, Reason: err.Error(), Signature: true}
	} else if err != nil && o.outcome == "" {
		o.outcome = OutcomeFailed
	}
	o.err = fileError(req.Name, err)
	return o
}

// restoreInKernel hands payload to the kernel (a descriptor, through a
// handout) and runs kernel.py's load: with packages, it checks them first
// and, with stop, stops at a difference without taking the descriptor.
func restoreInKernel(ctx context.Context, runner Runner, dir, kernelID string, payload *os.File, packages map[string]string, stop bool) (loadResult, error) {
	var lr loadResult
	h, err := offer(dir, payload)
	if err != nil {
		return lr, fmt.Errorf("hand the verified checkpoint to kernel %s: %w", kernelID, err)
	}
	defer h.Close()
	params := h.params()
	if packages != nil {
		params["packages"] = packages
		params["stop_on_mismatch"] = stop
	}
	err = callKernel(ctx, runner, kernelID, "load", params, &lr)
	return lr, err
}

// notRegular reports whether Files skipped an entry without opening it.
func notRegular(err error) bool {
	var r interface{ NotRegular() bool }
	return errors.As(err, &r) && r.NotRegular()
}

// list reads every checkpoint file's signed metadata (cheaply: the
// payload is verified at load) and marks each entry verified when its
// signed name is its file name and it is the newest save the log recorded
// of that name; otherwise Problem says why. Entries that are not regular
// files are skipped, unopened, with why.
func list(files Files, st State, owner string) (Listing, error) {
	out := Listing{Checkpoints: []Listed{}}
	keep := func(name string) bool {
		if ValidStored(name) != nil {
			return false
		}
		o, _ := Owned(name)
		return owner == "" || o == owner
	}
	err := files.List(keep, func(name string, mb []byte, size int64, err error) {
		if notRegular(err) {
			out.Skipped = append(out.Skipped, err.Error())
			return
		}
		var m Meta
		if err == nil {
			err = json.Unmarshal(mb, &m)
		}
		l := Listed{Stored: name}
		l.Owner, _ = Owned(name)
		if err != nil {
			l.Meta = Meta{Name: name, FileBytes: size}
			_, l.Meta.Name = Owned(name)
			l.Problem = "unreadable: " + err.Error()
			out.Checkpoints = append(out.Checkpoints, l)
			return
		}
		m.FileBytes = size
		status, why := ClassifyFile(st, name, m, size)
		// NB: the file's name is what load takes; the signed name is
		// shown in Problem when it differs.
		_, m.Name = Owned(name)
		l.Meta, l.Verified, l.Problem = m, status == FileRecorded, why
		out.Checkpoints = append(out.Checkpoints, l)
	})
	return out, err
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func eventVars(vs []Variable) []events.CheckpointVariable {
	out := make([]events.CheckpointVariable, 0, len(vs))
	for _, v := range vs {
		out = append(out, events.CheckpointVariable{Name: v.Name, Type: v.Type, Size: v.Size, Reason: v.Reason})
	}
	return out
}

func describeSkipped(vs []Variable) string {
	if len(vs) == 0 {
		return "none: the kernel has no user variables"
	}
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s): %s", v.Name, v.Type, v.Reason)
	}
	return b.String()
}
