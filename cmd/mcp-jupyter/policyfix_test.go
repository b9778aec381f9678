package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestPolicyExampleFileBindsTheStdioAgent: the documented example policy,
// as shipped, protects the default setup. Over stdio the agent's client is
// the admin; the example once exempted admin first, so the agent was
// refused nothing. Run by the real binary with MCP_POLICY pointing at the
// repository's docs/examples/policy.yaml, a shell-out is refused naming
// the rule, and the refusal is one PolicyRefused event on policy/admin.
func TestPolicyExampleFileBindsTheStdioAgent(t *testing.T) {
	example, err := filepath.Abs("../../docs/examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	dataDir := testkit.TempDataDir(t)
	t.Cleanup(func() { testkit.KillKernels(t, dataDir) })
	env := append(os.Environ(), "MCP_DATA_DIR="+dataDir, "JUPYTER_PATH="+testkit.KernelSpecDir(t), "MCP_POLICY="+example)
	cl, _, stop := policyStdio(t, bin, env)
	k := startKernelTool(t, cl)
	marker := filepath.Join(t.TempDir(), "shelled-out")
	_, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "import os; os.system('true'); open(" + pyQuote(marker) + ", 'w').close()"})
	if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, `refused by rule "no-shell"`) || !strings.Contains(text, "Nothing ran") {
		t.Fatalf("the stdio agent's shell-out under the example policy: %s", text)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the refused code ran (marker: %v)", err)
	}
	stop()

	l, err := eventlog.Open(filepath.Join(dataDir, "events"), eventlog.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ds := policyDecisions(t, l, "admin")
	if got := decisionsOf(ds); strings.Join(got, " ") != "no-shell:refused" {
		t.Fatalf("decisions on policy/admin: %v, want [no-shell:refused]", got)
	}
	if ds[0].Tool != "execute" || ds[0].KernelID != k || !strings.Contains(ds[0].Code, "os.system('true')") {
		t.Fatalf("the refusal's event: %+v", ds[0])
	}
}

var stillWaits = regexp.MustCompile(`Execution (\S+) still waits in input\(\)`)

// TestPolicyInputAnswerIsSendInput: answering input() through execute's
// input request sends a line to the kernel, so the rules on send_input
// decide it. deny: refused, nothing sent, the execution still waits.
// confirm: the confirmation is asked (with the prompt again); yes sends
// the answer, no sends nothing. Real core, real kernel, mcp-go's client
// on 2026-07-28.
func TestPolicyInputAnswerIsSendInput(t *testing.T) {
	t.Run("deny", func(t *testing.T) {
		c, _, connect := policyCore(t, "rules:\n  - {name: no-answers, tools: send_input, action: deny, reason: agents do not type into prompts}\n")
		user := &answerer{answer: "yes"}
		cl, _ := connect(user)
		k := startKernelTool(t, cl)
		_, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
			"code": "w = input('word? ')\nprint('got', w)"})
		m := stillWaits.FindStringSubmatch(text)
		if !strings.HasPrefix(text, "ERROR") || !strings.Contains(text, `send_input call, refused by rule "no-answers"`) ||
			!strings.Contains(text, "Nothing was sent") || m == nil {
			t.Fatalf("an input() answer under a send_input deny rule: %s", text)
		}
		mute, _ := connect(nil) // shown the state, not asked
		sc, text := callTool(t, mute, "get_execution", map[string]any{"execution_id": m[1]})
		if sc["status"] != "input_required" || strings.Contains(text, "got typed") {
			t.Fatalf("after the refusal the execution must still wait, nothing sent: %v %s", sc, text)
		}
		if got := decisionsOf(policyDecisions(t, c.log, "admin")); strings.Join(got, " ") != "no-answers:refused" {
			t.Fatalf("decisions: %v", got)
		}
		callTool(t, mute, "interrupt_kernel", map[string]any{"kernel": k})
	})
	t.Run("confirm", func(t *testing.T) {
		c, _, connect := policyCore(t, "rules:\n  - {name: ask-answers, tools: send_input, action: confirm}\n")
		user := &answerer{answer: "yes"}
		cl, _ := connect(user)
		k := startKernelTool(t, cl)
		sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
			"code": "w = input('word? ')\nprint('got', w)"})
		if sc["status"] != "ok" || !regexp.MustCompile(`got typed-[23]`).MatchString(text) {
			t.Fatalf("a confirmed answer: %v %s", sc, text)
		}
		qs := user.questions()
		asked := 0
		for _, q := range qs[1:] {
			if strings.Contains(q.Message, "Allow send_input on kernel "+k) && strings.Contains(q.Message, `rule "ask-answers"`) &&
				strings.Contains(q.Message, "word? ") {
				asked++
			}
		}
		if len(qs) != 3 || !strings.Contains(qs[0].Message, "word? ") || asked != 1 {
			t.Fatalf("questions (want the prompt, then the confirmation with the prompt again): %+v", qs)
		}
		user.set("no")
		_, text = callTool(t, cl, "execute", map[string]any{"kernel": k, "allow_stdin": true,
			"code": "w = input('again? ')\nprint('got', w)"})
		m := stillWaits.FindStringSubmatch(text)
		if !strings.Contains(text, "was not confirmed") || !strings.Contains(text, "Nothing was sent") || m == nil {
			t.Fatalf("an answer the user did not confirm: %s", text)
		}
		mute, _ := connect(nil)
		if sc, text := callTool(t, mute, "get_execution", map[string]any{"execution_id": m[1]}); sc["status"] != "input_required" || strings.Contains(text, "got typed") {
			t.Fatalf("after no, nothing must be sent: %v %s", sc, text)
		}
		got := decisionsOf(policyDecisions(t, c.log, "admin"))
		if want := "ask-answers:asked ask-answers:confirmed ask-answers:asked ask-answers:declined"; strings.Join(got, " ") != want {
			t.Fatalf("decisions %v, want %s", got, want)
		}
		callTool(t, mute, "interrupt_kernel", map[string]any{"kernel": k})
	})
}
