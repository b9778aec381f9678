package checkpoint

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

var (
	// ErrExists: a checkpoint of that name exists and overwrite was not set.
	ErrExists = errors.New("checkpoint: exists")
	// ErrNotFound: no checkpoint of that name.
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrBusy: another save, load or delete of that name is running.
	ErrBusy = errors.New("checkpoint: busy")
	// ErrPolicy: the kernel's packages differ and the policy refuses.
	ErrPolicy = errors.New("checkpoint: refused by package policy")
)

// Command is what the shell asks Decide about. OnDisk says whether the
// checkpoint file exists (the rename is the commit point of a save, so the
// directory, not only the log, decides existence).
type Command interface{ isCommand() }

// Save asks to start saving.
type Save struct {
	Name      string
	Variables []string
	Overwrite bool
	OnDisk    bool
}

// Load asks to start loading.
type Load struct {
	Name   string
	OnDisk bool
}

// Delete asks to delete.
type Delete struct {
	Name   string
	OnDisk bool
	By     string // the principal asking ("": the server reconciling)
}

// Record turns the outcome of an effect (a file written, a load done, a
// file refused) into its event.
type Record struct {
	Kernel  string
	Payload events.Payload
	By      string // the principal whose save or load it was ("": found at recovery)
}

func (Save) isCommand()   {}
func (Load) isCommand()   {}
func (Delete) isCommand() {}
func (Record) isCommand() {}

// Decide validates a command against the state and returns the events it
// produces, or a typed error. It has no side effects.
func Decide(s State, c Command) ([]events.Draft, error) {
	switch c := c.(type) {
	case Save:
		if err := ValidStored(c.Name); err != nil {
			return nil, err
		}
		for _, v := range c.Variables {
			if !isIdentifier(v) {
				return nil, fmt.Errorf("variable %q is not a Python identifier: give names of the kernel's globals", v)
			}
		}
		if _, known := s.Checkpoints[c.Name]; (known || c.OnDisk) && !c.Overwrite {
			return nil, fmt.Errorf("%w: checkpoint %q already exists: pass overwrite=true to replace it, or choose another name", ErrExists, Display(c.Name))
		}
		return nil, nil
	case Load:
		if err := ValidStored(c.Name); err != nil {
			return nil, err
		}
		if !c.OnDisk {
			return nil, fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", ErrNotFound, Display(c.Name))
		}
		return nil, nil
	case Delete:
		if err := ValidStored(c.Name); err != nil {
			return nil, err
		}
		if _, known := s.Checkpoints[c.Name]; !known && !c.OnDisk {
			return nil, fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", ErrNotFound, Display(c.Name))
		}
		return []events.Draft{{Stream: events.CheckpointStream(c.Name), Principal: c.By, Payload: events.CheckpointDeleted{Name: c.Name}}}, nil
	case Record:
		name := ""
		switch p := c.Payload.(type) {
		case events.CheckpointSaved:
			name = p.Name
		case events.CheckpointLoaded:
			name = p.Name
		case events.CheckpointRejected:
			name = p.Name
		default:
			return nil, fmt.Errorf("checkpoint: cannot record %T", c.Payload)
		}
		if err := ValidStored(name); err != nil {
			return nil, err
		}
		return []events.Draft{{Stream: events.CheckpointStream(name), Kernel: c.Kernel, Principal: c.By, Payload: c.Payload}}, nil
	}
	return nil, fmt.Errorf("checkpoint: unknown command %T", c)
}

// DecidePolicy applies a load's package policy to what the kernel lacks
// (missing: name==version) or has at another version (mismatched:
// "name: ..."): refuse names the reason, install lists the requirements
// to pip-install first. recorded are the versions recorded at save time.
func DecidePolicy(p Policy, missing, mismatched []string, recorded map[string]string) (refuse string, install []string) {
	if len(missing)+len(mismatched) == 0 {
		return "", nil
	}
	switch p {
	case PolicyRefuse:
		return fmt.Sprintf("policy refuse: the kernel's packages differ (missing %v, mismatched %v)", missing, mismatched), nil
	case PolicyInstall:
		install = append(install, missing...)
		for _, m := range mismatched {
			dist, _, _ := strings.Cut(m, ":")
			install = append(install, dist+"=="+recorded[dist])
		}
		return "", install
	}
	return "", nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127 || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

var (
	// ErrRenamed: the file under a name was saved under another one (copied
	// or renamed by hand). Always refused: it would bring another
	// checkpoint's variables in under this name.
	ErrRenamed = errors.New("checkpoint: saved under another name")
	// ErrRollback: the file is an older version of the name than the newest
	// save the log recorded (an old copy put back). Refused unless the load
	// asks for it (AllowRollback).
	ErrRollback = errors.New("checkpoint: older version")
)

// FileStatus is how a checkpoint file's signed metadata compares with the
// request's name and the newest save of that name the log recorded.
type FileStatus int

const (
	FileRecorded   FileStatus = iota // the newest save the log recorded
	FileUnrecorded                   // the log recorded no save of the name (copied in, or a crash lost the record)
	FileNewer                        // created after the newest recorded save (a crash lost the record)
	FileRenamed                      // saved under another name
	FileOlder                        // an older version than the newest recorded save
)

// ClassifyFile compares a file's signed metadata m (and its size) with the
// name it was found under and the log. It returns why a file is not the
// recorded one, for people. It has no side effects.
func ClassifyFile(s State, name string, m Meta, fileBytes int64) (FileStatus, string) {
	if m.Name != name {
		return FileRenamed, fmt.Sprintf("%s.ckpt was saved as %q, not %q: a checkpoint copied or renamed by hand is refused under another name (load %q, or load it there and save it again as %q)",
			name, m.Name, name, m.Name, name)
	}
	rec, ok := s.Newest[name]
	if !ok {
		return FileUnrecorded, "not recorded in the event log (copied in from elsewhere, or its save's record was lost in a crash): its signature is checked in full when it is loaded"
	}
	if m.SHA256 == rec.SHA256 && fileBytes == rec.Size && m.KeyID == rec.KeyID {
		return FileRecorded, ""
	}
	if m.Created.After(rec.SavedAt) {
		return FileNewer, fmt.Sprintf("newer (created %s) than the newest save of %q the log recorded (%s): its record was lost in a crash; its signature is checked in full when it is loaded",
			m.Created.UTC().Format(time.RFC3339), name, rec.SavedAt.UTC().Format(time.RFC3339))
	}
	return FileOlder, fmt.Sprintf("an older version of %q (created %s, sha256 %s) than the newest save the log recorded (%s, sha256 %s): an old copy was put back; load refuses it unless allow_rollback is true",
		name, m.Created.UTC().Format(time.RFC3339), short(m.SHA256), rec.SavedAt.UTC().Format(time.RFC3339), short(rec.SHA256))
}

// CheckFile decides whether a verified file may be loaded under name: its
// signed name must be name, its format one this server writes, and it must
// be the newest save of that name the log recorded (or newer, or one the log
// never saw) unless allowRollback. It returns the file's status (FileOlder
// for an allowed rollback); a refusal wraps ErrRenamed or ErrRollback.
func CheckFile(s State, name string, m Meta, fileBytes int64, allowRollback bool) (FileStatus, error) {
	if m.FormatVersion < 1 || m.FormatVersion > FormatVersion {
		return 0, fmt.Errorf("checkpoint %q: its signed metadata says format version %d, which this server does not write: upgrade mcp-jupyter or save again", name, m.FormatVersion)
	}
	st, why := ClassifyFile(s, name, m, fileBytes)
	switch {
	case st == FileRenamed:
		return st, fmt.Errorf("%w: %s", ErrRenamed, why)
	case st == FileOlder && !allowRollback:
		return st, fmt.Errorf("%w: checkpoint %s", ErrRollback, why)
	}
	return st, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12] + "…"
	}
	return sum
}
