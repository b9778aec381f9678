package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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

// rejected reports whether Files refused the file (see Files).
func rejected(err error) bool {
	var r interface{ Rejected() bool }
	return errors.As(err, &r) && r.Rejected()
}

// fileError maps what Files returned to the package's errors.
func fileError(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case rejected(err):
		return &RejectError{Err: err}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", ErrNotFound, name)
	}
	return err
}

// The work below runs in goroutines the actor owns (it waits minutes on a
// kernel and streams files): it decides nothing durable, and reports back
// by message what the actor then records.

// save has the kernel serialize its variables with dill into the stage
// Files gives it, then Files signs, encrypts and commits the file.
func save(ctx context.Context, files Files, runner Runner, req SaveRequest, created time.Time) (Meta, error) {
	var res saveResult
	var meta Meta
	size, err := files.Save(req.Name, func(path string) error {
		params := map[string]any{"path": path}
		if len(req.Variables) > 0 {
			params["variables"] = req.Variables
		}
		if err := callKernel(ctx, runner, req.KernelID, "save", params, &res); err != nil {
			return err
		}
		if len(res.Saved) == 0 {
			return fmt.Errorf("nothing in kernel %s could be saved (skipped: %s): define variables first, or name them in variables", req.KernelID, describeSkipped(res.Skipped))
		}
		return nil
	}, func(keyID string, encrypted bool, payload int64, sum string) ([]byte, error) {
		meta = Meta{Name: req.Name, KernelID: req.KernelID, Notebook: req.Notebook, Created: created.UTC(),
			FormatVersion: FormatVersion, KeyID: keyID, Encrypted: encrypted, PayloadBytes: payload, SHA256: sum,
			Python: res.Python, Packages: res.Packages, Saved: res.Saved, Skipped: res.Skipped}
		if meta.Skipped == nil {
			meta.Skipped = []Variable{}
		}
		return json.Marshal(meta)
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
// kernel, then compares packages, applies the policy and restores the
// variables into the kernel's globals.
func load(ctx context.Context, files Files, runner Runner, req LoadRequest) loaded {
	var o loaded
	err := files.Load(req.Name, func(path string, offset int64, mb []byte, size int64) error {
		var meta Meta
		if err := json.Unmarshal(mb, &meta); err != nil {
			// Signed but unreadable: a bug of the writer, not tampering.
			return fmt.Errorf("decode checkpoint metadata: %w", err)
		}
		meta.FileBytes = size
		o.res.Meta = meta
		var chk checkResult
		if err := callKernel(ctx, runner, req.KernelID, "check", map[string]any{"packages": nonNil(meta.Packages)}, &chk); err != nil {
			return err
		}
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
		}
		var lr loadResult
		if err := callKernel(ctx, runner, req.KernelID, "load", map[string]any{"path": path, "offset": offset}, &lr); err != nil {
			return err
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

// list reads every committed checkpoint's metadata (not verified).
func list(files Files) ([]Meta, error) {
	out := []Meta{}
	err := files.List(func(name string) bool { return ValidName(name) == nil }, func(name string, mb []byte, size int64, err error) {
		var m Meta
		if err == nil {
			err = json.Unmarshal(mb, &m)
		}
		if err != nil {
			m = Meta{Skipped: []Variable{{Name: "*", Reason: "unreadable: " + err.Error()}}}
		}
		// NB: the file's name is what load takes, whatever name the
		// metadata was saved under (a file copied or renamed by hand).
		m.Name, m.FileBytes = name, size
		out = append(out, m)
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
