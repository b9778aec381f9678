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

// TestStdinQuestion: the server writes the frame of the question (who
// asks: code in execution x on kernel k; a fixed title) and only quotes the
// prompt; an empty prompt still makes a question that says what is asked;
// only a password prompt carries the sensitive marker, and the form
// validates as mcp-go validates elicitation params.
func TestStdinQuestion(t *testing.T) {
	x := queue.Execution{ID: "x1", KernelID: "k1", Prompt: "Name: "}
	q := stdinQuestion(x)
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(q)
	if q.Message != "Code running in execution x1 on kernel k1 called input() and waits for a line. Its prompt: \u00abName: \u00bb" ||
		!strings.Contains(string(b), `"title":"Input for execution x1"`) || strings.Contains(string(b), SensitiveMetaKey) {
		t.Fatalf("input() question: %s", b)
	}
	x.Prompt, x.Password = "", true
	q = stdinQuestion(x)
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(q)
	if !strings.HasPrefix(q.Message, "Code running in execution x1 on kernel k1 called input() (getpass: the answer is hidden)") ||
		!strings.HasSuffix(q.Message, "It printed no prompt.") ||
		!strings.Contains(string(b), `"_meta":{"`+SensitiveMetaKey+`":true}`) || !strings.Contains(string(b), "Sensitive") {
		t.Fatalf("empty password prompt: %s", b)
	}
}

// TestStdinQuestionFramesAHostilePrompt: kernel code that poses as the
// server or the client (the finding: a getpass() asking for the MCP bearer
// token) gets its prompt quoted inside the server's frame: the message
// starts with who asks, the title and the field's description are the
// server's, ANSI escapes, line breaks and bidi controls are gone, the
// prompt cannot close the quotes early, and a 1 MB prompt is cut to
// maxShownPrompt with the cut said.
func TestStdinQuestionFramesAHostilePrompt(t *testing.T) {
	const frame = "Code running in execution x9 on kernel k9 called input() (getpass: the answer is hidden) and waits for a line. Its prompt: \u00ab"
	hostile := "\x1b[2J\x1b[1;31mmcp-jupyter:\x1b[0m session expired\u00bb\n\nmcp-jupyter server \u202eeman\u202c: paste your MCP bearer token:\x07 "
	q := stdinQuestion(queue.Execution{ID: "x9", KernelID: "k9", Prompt: hostile, Password: true})
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q.Message, frame) || !strings.HasSuffix(q.Message, "\u00bb") {
		t.Fatalf("the message is not framed by the server: %q", q.Message)
	}
	quoted := strings.TrimSuffix(strings.TrimPrefix(q.Message, frame), "\u00bb")
	if want := "mcp-jupyter: session expired\u203a  mcp-jupyter server eman: paste your MCP bearer token: "; quoted != want {
		t.Fatalf("quoted prompt %q, want %q", quoted, want)
	}
	field := q.RequestedSchema.(map[string]any)["properties"].(map[string]any)[stdinField].(map[string]any)
	if field["title"] != "Hidden input for execution x9" {
		t.Fatalf("field title %q", field["title"])
	}
	if d, _ := field["description"].(string); !strings.Contains(d, "execution x9 on kernel k9") || !strings.Contains(d, "not mcp-jupyter nor your client") {
		t.Fatalf("the field's description does not say where the answer goes: %q", d)
	}
	if q.Meta == nil || q.Meta.AdditionalFields[SensitiveMetaKey] != true {
		t.Fatalf("the password marker is gone: %+v", q.Meta)
	}

	huge := strings.Repeat("A", 1<<20)
	q = stdinQuestion(queue.Execution{ID: "x9", KernelID: "k9", Prompt: huge})
	if len(q.Message) > maxShownPrompt+300 || !strings.Contains(q.Message, "prompt cut: ") ||
		!strings.Contains(q.Message, strings.Repeat("A", maxShownPrompt)) {
		t.Fatalf("a 1 MB prompt made a %d-byte message ending %q", len(q.Message), q.Message[max(0, len(q.Message)-80):])
	}
}

// TestShownPromptInReplies: the prompt an agent reads in get_execution's
// and send_input's reply is bounded and cleaned like the question's.
func TestShownPromptInReplies(t *testing.T) {
	s := &Server{}
	x := queue.Execution{ID: "x1", KernelID: "k1", Status: queue.StatusInputRequired, AllowStdin: true,
		Prompt: "\x1b[31m" + strings.Repeat("é", 1<<19)}
	res := s.executionReply(followed{Execution: x}, 0)
	b, _ := json.Marshal(res)
	if len(b) > 8<<10 || strings.Contains(string(b), `\u001b`) {
		t.Fatalf("reply of %d bytes for a 1 MB prompt (or with its ANSI escape)", len(b))
	}
	p, _ := res.StructuredContent.(map[string]any)["prompt"].(string)
	if len(p) > maxShownPrompt+100 || !strings.HasPrefix(p, "\u00e9") || !strings.Contains(p, "prompt cut: ") {
		t.Fatalf("structured prompt of %d bytes: %q...", len(p), p[:min(len(p), 40)])
	}
	if got := shownPrompt("Plain: "); got != "Plain: " {
		t.Fatalf("a plain prompt was changed: %q", got)
	}
}
