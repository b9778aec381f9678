package kernel

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Decisions on the commands of Jupyter frontends (Relay, AttachFrontend,
// OpenSession, CloseSession). Pure: the actor performs what they decide.

var (
	// ErrNotRelayed: a frontend's request the kernel actor does not relay
	// (a channel or message type off the allow-list, malformed content, a
	// msg_id already waited on).
	ErrNotRelayed = errors.New("kernel: request not relayed")
	// ErrBadSession: a session command that cannot be recorded (no id, a
	// field too long, too many sessions, an unknown session).
	ErrBadSession = errors.New("kernel: bad session")
)

// Bounds of what frontends make the kernel actor keep.
const (
	// MaxSessions bounds the Jupyter sessions open on one kernel.
	MaxSessions = 256
	// MaxFrontendsSeen bounds the frontend sessions an actor remembers
	// having recorded (FrontendAttached): past it the oldest is forgotten
	// and recorded again if it attaches again.
	MaxFrontendsSeen = 256
	// maxField bounds a session id, path, name, type, username or client
	// recorded in an event.
	maxField = 1024
)

// relayed lists, per channel, the request types a frontend may have
// relayed to the kernel, and whether the kernel answers them (a *_reply):
// comm messages have no reply. An execute_request is an execution
// (scheduler.Submit), input_reply is SendInput, interrupt and shutdown are
// the Interrupt and Shutdown commands: none is relayed.
var relayed = map[string]map[string]bool{
	ChannelShell: {
		"kernel_info_request": true, "complete_request": true, "inspect_request": true, "history_request": true,
		"is_complete_request": true, "comm_info_request": true,
		"comm_open": false, "comm_msg": false, "comm_close": false,
	},
	ChannelControl: {"kernel_info_request": true, "debug_request": true},
}

// RelayAnswered reports whether the kernel answers a relayed request of
// msgType with a *_reply (comm messages are not answered).
func RelayAnswered(msgType string) bool {
	return relayed[ChannelShell][msgType] || relayed[ChannelControl][msgType]
}

// DecideRelay validates a frontend's request to relay to the kernel.
func DecideRelay(s State, c Relay) error {
	if !s.Status.Alive() {
		return notRunning(s)
	}
	types, ok := relayed[c.Channel]
	if !ok {
		return fmt.Errorf("%w: channel %q: requests are relayed on shell or control", ErrNotRelayed, c.Channel)
	}
	if _, ok := types[c.MsgType]; !ok {
		switch c.MsgType {
		case "execute_request":
			return fmt.Errorf("%w: an execute_request is an execution: submit it (it is queued and recorded like an agent's)", ErrNotRelayed)
		case "interrupt_request", "shutdown_request":
			return fmt.Errorf("%w: %s is the kernel's Interrupt or Shutdown command, not a relayed request", ErrNotRelayed, c.MsgType)
		case "input_reply":
			return fmt.Errorf("%w: input_reply answers an execution's input request (SendInput)", ErrNotRelayed)
		}
		allowed := make([]string, 0, len(types))
		for t := range types {
			allowed = append(allowed, t)
		}
		slices.Sort(allowed)
		return fmt.Errorf("%w: %q on %s: the server relays only %s there", ErrNotRelayed, c.MsgType, c.Channel, strings.Join(allowed, ", "))
	}
	if !events.ValidID(c.MsgID) {
		return fmt.Errorf("%w: msg_id %q: the server names a relayed request with an id of its own (events.NewID)", ErrNotRelayed, clip(c.MsgID))
	}
	if len(c.Content) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c.Content, &obj); err != nil || obj == nil {
			return fmt.Errorf("%w: the content of %s must be a JSON object", ErrNotRelayed, c.MsgType)
		}
	}
	return nil
}

// DecideAttachFrontend records a frontend attaching under session, unless
// this actor recorded that session already (seen).
func DecideAttachFrontend(s State, c AttachFrontend, seen bool) ([]events.Draft, error) {
	if s.Status == StatusNew || s.Status == StatusShutDown {
		return nil, notRunning(s)
	}
	if err := fields(map[string]string{"session": c.Session}, map[string]string{"username": c.Username, "client": c.Client, "framing": c.Framing}); err != nil {
		return nil, err
	}
	if seen {
		return nil, nil
	}
	return []events.Draft{draftBy(s.ID, c.By, events.FrontendAttached{KernelID: s.ID, Session: c.Session, Username: c.Username,
		Client: c.Client, Framing: c.Framing})}, nil
}

// DecideOpenSession binds a Jupyter session to the kernel. Opening a
// session again with other fields (a rename, a move of its path) records
// it again; with the same fields it records nothing.
func DecideOpenSession(s State, c OpenSession) ([]events.Draft, error) {
	if s.Status == StatusNew || s.Status == StatusShutDown {
		return nil, notRunning(s)
	}
	if err := fields(map[string]string{"session id": c.SessionID}, map[string]string{"path": c.Path, "name": c.Name, "type": c.Type}); err != nil {
		return nil, err
	}
	old, open := s.Sessions[c.SessionID]
	if open && old == (Session{ID: c.SessionID, Path: c.Path, Name: c.Name, Type: c.Type}) {
		return nil, nil
	}
	if !open && len(s.Sessions) >= MaxSessions {
		return nil, fmt.Errorf("%w: kernel %s has %d sessions open (the limit); delete some first", ErrBadSession, s.ID, len(s.Sessions))
	}
	return []events.Draft{draftBy(s.ID, c.By, events.KernelSessionOpened{KernelID: s.ID, SessionID: c.SessionID, Path: c.Path,
		Name: c.Name, Type: c.Type})}, nil
}

// DecideCloseSession unbinds a session from the kernel.
func DecideCloseSession(s State, c CloseSession) ([]events.Draft, error) {
	if _, open := s.Sessions[c.SessionID]; !open {
		return nil, fmt.Errorf("%w: session %q is not open on kernel %s", ErrBadSession, clip(c.SessionID), s.ID)
	}
	if len(c.Reason) > maxField {
		return nil, fmt.Errorf("%w: reason longer than %d bytes", ErrBadSession, maxField)
	}
	return []events.Draft{draftBy(s.ID, c.By, events.KernelSessionClosed{KernelID: s.ID, SessionID: c.SessionID, Reason: c.Reason})}, nil
}

// fields checks the required and optional strings of a command.
func fields(required, optional map[string]string) error {
	for name, v := range required {
		if v == "" {
			return fmt.Errorf("%w: %s is empty", ErrBadSession, name)
		}
	}
	for _, m := range []map[string]string{required, optional} {
		for name, v := range m {
			if len(v) > maxField {
				return fmt.Errorf("%w: %s is longer than %d bytes", ErrBadSession, name, maxField)
			}
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// seenFrontends is the bounded set of frontend sessions an actor recorded
// (FrontendAttached), oldest first.
type seenFrontends struct {
	set   map[string]bool
	order []string
}

func (f *seenFrontends) has(session string) bool { return f.set[session] }

// add remembers session, forgetting the oldest beyond MaxFrontendsSeen.
func (f *seenFrontends) add(session string) {
	if f.set == nil {
		f.set = map[string]bool{}
	}
	if f.set[session] {
		return
	}
	if len(f.order) >= MaxFrontendsSeen {
		delete(f.set, f.order[0])
		f.order = slices.Delete(f.order, 0, 1)
	}
	f.set[session] = true
	f.order = append(f.order, session)
}
