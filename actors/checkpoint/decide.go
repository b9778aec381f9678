package checkpoint

import (
	"errors"
	"fmt"
	"strings"

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
}

// Record turns the outcome of an effect (a file written, a load done, a
// file refused) into its event.
type Record struct {
	Kernel  string
	Payload events.Payload
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
		if err := ValidName(c.Name); err != nil {
			return nil, err
		}
		for _, v := range c.Variables {
			if !isIdentifier(v) {
				return nil, fmt.Errorf("variable %q is not a Python identifier: give names of the kernel's globals", v)
			}
		}
		if _, known := s.Checkpoints[c.Name]; (known || c.OnDisk) && !c.Overwrite {
			return nil, fmt.Errorf("%w: checkpoint %q already exists: pass overwrite=true to replace it, or choose another name", ErrExists, c.Name)
		}
		return nil, nil
	case Load:
		if err := ValidName(c.Name); err != nil {
			return nil, err
		}
		if !c.OnDisk {
			return nil, fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", ErrNotFound, c.Name)
		}
		return nil, nil
	case Delete:
		if err := ValidName(c.Name); err != nil {
			return nil, err
		}
		if _, known := s.Checkpoints[c.Name]; !known && !c.OnDisk {
			return nil, fmt.Errorf("%w: no checkpoint %q: list_checkpoints shows the names", ErrNotFound, c.Name)
		}
		return []events.Draft{{Stream: events.CheckpointStream(c.Name), Payload: events.CheckpointDeleted{Name: c.Name}}}, nil
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
		if err := ValidName(name); err != nil {
			return nil, err
		}
		return []events.Draft{{Stream: events.CheckpointStream(name), Kernel: c.Kernel, Payload: c.Payload}}, nil
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
