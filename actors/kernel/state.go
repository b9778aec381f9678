package kernel

import (
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Status of a kernel. NB: shown to agents; must not change.
type Status string

const (
	StatusNew      Status = ""
	StatusRunning  Status = "running"
	StatusFailed   Status = "failed" // never became ready
	StatusDead     Status = "dead"
	StatusLost     Status = "lost"
	StatusShutDown Status = "shut_down"
)

// Alive reports whether the kernel process is believed to be running.
func (s Status) Alive() bool { return s == StatusRunning }

// State is what the log says about one kernel.
type State struct {
	ID             string
	Spec           string
	Label          string
	Notebook       string
	Language       string
	InterruptMode  string
	Status         Status
	Process        events.KernelProcess
	DiesWithServer bool
	Reason         string
	Restarts       int
	LastSeq        uint64
	// ReattachedAt is when the server last found the kernel again after a
	// restart (the envelope time of KernelReattached).
	ReattachedAt time.Time
	// Owner is the principal that started the kernel ("" for kernels
	// started before principals existed: the admin's).
	Owner string
	// Shares maps a principal to the access it was granted ("read",
	// "execute"). Apply replaces the map on every change, never writes to
	// it: a State handed out (GetState) can be read without locks.
	Shares map[string]string
	// Restore names the checkpoint of a restore under way: the server
	// relaunched the kernel at recovery (KernelRestarted{Restore}) and no
	// KernelRestored followed yet. While it is set the kernel is held: its
	// scheduler runs nothing but the restore's load (scheduler.Submit
	// {Restore}). Derived from the stream, so an actor or server restarted
	// mid-restore still holds.
	Restore string
	// RestoreSeq is the seq of the KernelRestarted that began it.
	RestoreSeq uint64
	// Sessions are the Jupyter sessions (/api/sessions) bound to the
	// kernel, by session id: opened and closed by KernelSessionOpened /
	// KernelSessionClosed, all gone with KernelShutDown. Copy-on-write, as
	// Shares. At most MaxSessions (DecideOpenSession).
	Sessions map[string]Session
	// ProcessNode is the node whose process Process is (the envelope Node
	// of the KernelStarted or KernelRestarted that recorded it). In a
	// cluster, a process of another node is never attached to or
	// signalled: it runs on another machine.
	ProcessNode string
	// Adopted is the last KernelAdopted since Process was recorded (nil:
	// none): the node that appended it takes the kernel over, and its
	// relaunch (the KernelRestarted that follows) is still to come.
	Adopted *Adoption
}

// Adoption is a kernel taken over from another node (KernelAdopted), as
// the state knows it.
type Adoption struct {
	// By is the node that took the kernel (the record's envelope Node).
	By                    string
	From, Reason, Restore string
}

// Session is a Jupyter session bound to the kernel: a notebook, console
// or file path a frontend opened it for.
type Session struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// Apply folds one event of the kernel's stream into s. Pure.
func Apply(s State, e events.Event) State {
	switch p := e.Payload.(type) {
	case events.KernelStarted:
		s = State{ID: p.KernelID, Spec: p.Spec, Label: p.Label, Notebook: p.Notebook, Language: p.Language,
			InterruptMode: p.InterruptMode, Status: StatusRunning, Process: p.Process, DiesWithServer: p.DiesWithServer,
			Owner: p.Owner, ProcessNode: e.Node}
	case events.KernelStartFailed:
		s.ID, s.Spec, s.Status, s.Reason = p.KernelID, p.Spec, StatusFailed, p.Reason
	case events.KernelRestarted:
		s.Status, s.Process, s.Reason, s.Restore, s.RestoreSeq = StatusRunning, p.Process, "", p.Restore, 0
		s.ProcessNode, s.Adopted = e.Node, nil
		if p.Restore != "" {
			s.RestoreSeq = e.Seq
		}
		s.Restarts++
	case events.KernelAdopted:
		s.Adopted = &Adoption{By: e.Node, From: p.From, Reason: p.Reason, Restore: p.Restore}
	case events.KernelRestored:
		s.Restore, s.RestoreSeq = "", 0
	case events.KernelReattached:
		s.Status, s.Reason, s.ReattachedAt = StatusRunning, "", e.Time
	case events.KernelDied:
		s.Status, s.Reason = StatusDead, p.Reason
	case events.KernelLost:
		s.Status, s.Reason = StatusLost, p.Reason
	case events.KernelShutDown:
		s.Status, s.Reason, s.Sessions, s.Restore, s.RestoreSeq = StatusShutDown, p.Reason, nil, "", 0
	case events.KernelSessionOpened:
		sessions := make(map[string]Session, len(s.Sessions)+1)
		for k, v := range s.Sessions {
			sessions[k] = v
		}
		sessions[p.SessionID] = Session{ID: p.SessionID, Path: p.Path, Name: p.Name, Type: p.Type}
		s.Sessions = sessions
	case events.KernelSessionClosed:
		sessions := make(map[string]Session, len(s.Sessions))
		for k, v := range s.Sessions {
			if k != p.SessionID {
				sessions[k] = v
			}
		}
		s.Sessions = sessions
	case events.KernelShared:
		shares := make(map[string]string, len(s.Shares)+1)
		for k, v := range s.Shares {
			shares[k] = v
		}
		if p.Access == events.AccessNone {
			delete(shares, p.Principal)
		} else {
			shares[p.Principal] = p.Access
		}
		s.Shares = shares
	default:
		return s
	}
	s.LastSeq = e.Seq
	return s
}
