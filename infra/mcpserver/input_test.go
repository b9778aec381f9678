package mcpserver

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// TestStdinAnswer: the line of an accepted answer, whatever Go type its
// content arrived as; anything else is refused with what to send.
func TestStdinAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content any
		want    string
		err     string
	}{
		{"wire map", map[string]any{"value": "kiwi"}, "kiwi", ""},
		{"handler map", map[string]string{"value": ""}, "", ""},
		{"raw json", json.RawMessage(`{"value":"a b"}`), "a b", ""},
		{"missing", map[string]any{"other": "x"}, "", `has no field "value"`},
		{"not a string", map[string]any{"value": 42}, "", "not a string"},
		{"no content", nil, "", `has no field "value"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stdinAnswer(&mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
				Action: mcp.ElicitationResponseActionAccept, Content: tc.content}})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "send_input") && !strings.Contains(err.Error(), "nothing was sent") {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestStdinQuestion: the prompt is the message and the field's title; an
// empty prompt still makes a question that says what is asked; only a
// password prompt carries the sensitive marker, and the form validates
// as mcp-go validates elicitation params.
func TestStdinQuestion(t *testing.T) {
	x := queue.Execution{ID: "x1", KernelID: "k1", Prompt: "Name: "}
	q := stdinQuestion(x)
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(q)
	if q.Message != "Name: " || !strings.Contains(string(b), `"title":"Name:"`) || strings.Contains(string(b), SensitiveMetaKey) {
		t.Fatalf("input() question: %s", b)
	}
	x.Prompt, x.Password = "", true
	q = stdinQuestion(x)
	b, _ = json.Marshal(q)
	if !strings.Contains(q.Message, "x1") || !strings.Contains(q.Message, "input()") ||
		!strings.Contains(string(b), `"_meta":{"`+SensitiveMetaKey+`":true}`) || !strings.Contains(string(b), "Sensitive") {
		t.Fatalf("empty password prompt: %s", b)
	}
}
