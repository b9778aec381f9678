package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// policyTestLog is a real event log whose clock the test sets.
func policyTestLog(t *testing.T, now *atomic.Int64) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(filepath.Join(t.TempDir(), "events"), eventlog.Options{Node: "test-node",
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestPolicyRetentionKeepsOnlyAnswers: beyond the usual retention, the
// policy streams keep only what replay protection reads back: the
// confirmed and declined decisions of the last window; questions,
// refusals and old answers follow the usual retention.
func TestPolicyRetentionKeepsOnlyAnswers(t *testing.T) {
	var clock atomic.Int64
	l := policyTestLog(t, &clock)
	ctx := context.Background()
	rec := policyRecorder{log: l}
	now := time.Now()
	type decided struct {
		ago      time.Duration
		decision string
		keep     bool
	}
	cases := []decided{
		{2 * time.Hour, events.PolicyConfirmed, false}, // answered long ago: its state expired
		{policyAnswerWindow + time.Minute, events.PolicyDeclined, false},
		{time.Minute, events.PolicyAsked, false},
		{time.Minute, events.PolicyRefused, false},
		{time.Minute, events.PolicyUnconfirmable, false},
		{time.Minute, events.PolicyConfirmed, true},
		{2 * time.Minute, events.PolicyDeclined, true},
	}
	for i, c := range cases {
		clock.Store(now.Add(-c.ago).UnixNano())
		if err := rec.RecordPolicy(ctx, "alice", events.PolicyDecided{Tool: "execute", Rule: "r", Action: "confirm",
			Decision: c.decision, Code: "x = 1", CodeSHA256: "00", Request: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	keeper := keepRecentPolicyDecisions()
	i := 0
	err := l.ReadStreams(ctx, "policy/", 0, func(e events.Event) error {
		c := cases[i]
		i++
		if got := keeper.Keep(e); got != c.keep {
			t.Errorf("%s %s ago: kept %v, want %v", c.decision, c.ago, got, c.keep)
		}
		raw := e // NB: retention may see the record undecoded
		raw.Payload = nil
		if got := keeper.Keep(raw); got != c.keep {
			t.Errorf("%s %s ago, undecoded: kept %v, want %v", c.decision, c.ago, got, c.keep)
		}
		return nil
	})
	if err != nil || i != len(cases) {
		t.Fatalf("read %d of %d decisions: %v", i, len(cases), err)
	}
}

// TestPolicyEventLineWithoutCode: the Info line of a PolicyDecided names
// the decision and the code's SHA-256 and size, never the code (which may
// hold a secret the agent sent), as ExecutionQueued's line does not.
func TestPolicyEventLineWithoutCode(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	l := policyTestLog(t, &clock)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out syncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var cursor atomic.Uint64
	done := make(chan error, 1)
	go func() { done <- logEvents(ctx, l, 0, &cursor, logger) }()
	code := "API_KEY = 's3cr3t-value'\nrequests.get(url, headers={'k': API_KEY})"
	if err := (policyRecorder{log: l}).RecordPolicy(ctx, "alice", events.PolicyDecided{Tool: "execute", Rule: "net",
		Action: "confirm", Decision: events.PolicyAsked, Code: code, CodeSHA256: "abc123", CodeBytes: len(code), Request: "n1"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 20*time.Second, "the PolicyDecided line", func() (bool, string) {
		s := out.String()
		return strings.Contains(s, `"msg":"PolicyDecided"`), s
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, want := range []string{`"component":"policy"`, `"decision":"asked"`, `"rule":"net"`, `"code_sha256":"abc123"`,
		`"code_bytes":` + strconv.Itoa(len(code)), `"principal":"alice"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the line lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "s3cr3t") || strings.Contains(line, "API_KEY") {
		t.Fatalf("the line carries the code: %s", line)
	}
}

// TestPolicyConfirmationStateLivesMinutes: the requestState a real client
// gets with a confirmation question (MCP 2026-07-28, mcp-go's client) is
// accepted for mcpserver.PolicyAnswerTTL, not the day an input() prompt's
// state lives.
func TestPolicyConfirmationStateLivesMinutes(t *testing.T) {
	_, _, connect := policyCore(t, testPolicy)
	cl, rec := connect(&answerer{answer: "no"})
	before := time.Now()
	callTool(t, cl, "execute", map[string]any{"kernel": "no-such-kernel", "code": "SECRET = 1"})
	answered := rec.lastAnswered(t)
	state, _ := answered["requestState"].(string)
	body, _, _ := strings.Cut(state, ".")
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("the requestState %q: %v", state, err)
	}
	var sealed struct {
		Expires int64 `json:"e"`
		Sealed  int64 `json:"at"`
	}
	if err := json.Unmarshal(raw, &sealed); err != nil {
		t.Fatalf("the requestState's body %s: %v", raw, err)
	}
	if sealed.Sealed < before.Unix()-1 || sealed.Expires-sealed.Sealed != int64(mcpserver.PolicyAnswerTTL/time.Second) {
		t.Fatalf("the confirmation's state: sealed at %d (call at %d), expires %d s later; want %s", sealed.Sealed, before.Unix(),
			sealed.Expires-sealed.Sealed, mcpserver.PolicyAnswerTTL)
	}
}
