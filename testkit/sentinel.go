package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Sentinel holds an execution in the kernel until the test releases it, so
// a test knows for certain that the execution is still running (across a
// server restart, a crashed actor, …) instead of hoping a sleep is long
// enough.
type Sentinel struct {
	t    testing.TB
	Path string
}

// NewSentinel returns a sentinel file path that does not exist yet.
func NewSentinel(t testing.TB) *Sentinel {
	t.Helper()
	return &Sentinel{t: t, Path: filepath.Join(t.TempDir(), "release")}
}

// Code returns Python that prints "waiting" (flushed), blocks until the
// sentinel is released, then runs after.
func (s *Sentinel) Code(after string) string {
	return fmt.Sprintf("import os as _os, time as _time\nprint('waiting', flush=True)\nwhile not _os.path.exists(%q):\n    _time.sleep(0.01)\n%s", s.Path, after)
}

// Release lets the held execution go on.
func (s *Sentinel) Release() {
	s.t.Helper()
	if err := os.WriteFile(s.Path, nil, 0o644); err != nil {
		s.t.Fatalf("release sentinel: %v", err)
	}
}

// WaitEvent waits until the log holds an event about kernelID with seq >
// after that match accepts, and returns it.
func (s *Stack) WaitEvent(kernelID string, after uint64, match func(events.Event) bool, timeout time.Duration) events.Event {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		changed := s.Log.Changed() // NB: before reading, so no commit is missed
		var found *events.Event
		err := s.Log.ReadKernel(t0(), kernelID, after, func(e events.Event) error {
			after = e.Seq
			if found == nil && match(e) {
				found = &e
			}
			return nil
		})
		if err != nil {
			s.t.Fatalf("read kernel %s: %v", kernelID, err)
		}
		if found != nil {
			return *found
		}
		select {
		case <-changed:
		case <-deadline:
			s.t.Fatalf("no matching event about kernel %s after %v", kernelID, timeout)
		}
	}
}

// WaitOutput waits until execution id has printed text (on any stream).
func (s *Stack) WaitOutput(kernelID, id, text string, timeout time.Duration) {
	s.t.Helper()
	s.WaitEvent(kernelID, 0, func(e events.Event) bool {
		p, ok := e.Payload.(events.IOPubMessageReceived)
		return ok && p.ExecutionID == id && p.MsgType == "stream" && containsText(p.Content, text)
	}, timeout)
}

// Count returns how many events of type typ the execution's stream holds.
func (s *Stack) Count(id, typ string) int {
	s.t.Helper()
	n := 0
	if err := s.Log.ReadStream(t0(), events.ExecutionStream(id), 0, func(e events.Event) error {
		if e.Type == typ {
			n++
		}
		return nil
	}); err != nil {
		s.t.Fatalf("read execution %s: %v", id, err)
	}
	return n
}

func t0() context.Context { return context.Background() }

func containsText(content []byte, text string) bool {
	var c struct {
		Text string `json:"text"`
	}
	return json.Unmarshal(content, &c) == nil && strings.Contains(c.Text, text)
}
