package mcpserver

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestExamplePolicyLoadsAndDecides: the example in docs/examples loads, and
// its rules decide as its comments say (first match wins).
func TestExamplePolicyLoadsAndDecides(t *testing.T) {
	p, err := LoadPolicy("../../docs/examples/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		call policyCall
		rule string // "" : no rule
	}{
		// The admin is the stdio client and the data dir's token: the agent,
		// in the default setup. The example must not exempt it.
		{policyCall{Tool: "execute", Principal: "admin", Code: "import os; os.system('ls')", HasCode: true}, "no-shell"},
		{policyCall{Tool: "shutdown_kernel", Principal: "admin"}, "confirm-kernel-lifecycle"},
		{policyCall{Tool: "execute", Principal: "alice", Code: "import os\nos.system('ls')", HasCode: true}, "no-shell"},
		{policyCall{Tool: "execute", Principal: "alice", Code: "x = 1\n  !ls -l", HasCode: true}, "no-shell"},
		{policyCall{Tool: "run_all", Principal: "alice", Code: "import subprocess", HasCode: true}, "no-shell"},
		{policyCall{Tool: "execute", Principal: "alice", Code: "%pip install numpy", HasCode: true}, "confirm-installs"},
		{policyCall{Tool: "execute", Principal: "alice", Code: "print(1+1)", HasCode: true}, ""},
		{policyCall{Tool: "shutdown_kernel", Principal: "alice"}, "confirm-kernel-lifecycle"},
		{policyCall{Tool: "delete_checkpoint", Principal: "oidc:xyz"}, "no-deleting-checkpoints"},
		{policyCall{Tool: "list_kernels", Principal: "alice"}, ""},
		// A code rule never matches a call that carries no code.
		{policyCall{Tool: "run_cell", Principal: "alice"}, ""},
	}
	for _, c := range cases {
		got := ""
		if r := p.match(c.call); r != nil {
			got = r.Name
		}
		if got != c.rule {
			t.Errorf("%s by %s with %q: rule %q, want %q", c.call.Tool, c.call.Principal, c.call.Code, got, c.rule)
		}
	}
}

// TestPolicyRefusesBadFiles: each mistake is refused with its line and
// what to fix.
func TestPolicyRefusesBadFiles(t *testing.T) {
	cases := []struct {
		name, file string
		line       int
		want       string
	}{
		{"empty", "", 0, "the file is empty"},
		{"comments only", "# nothing\n", 0, "the file is empty"},
		{"not yaml", "rules: [\n", 0, "not valid YAML"},
		{"top is a list", "- name: x\n", 1, "must be a mapping with a rules: list"},
		{"no rules", "version: 1\n", 1, "no rules: list"},
		{"misspelt top key", "rule:\n  - name: a\n", 1, `unknown key "rule" (did you mean "rules"?)`},
		{"bad version", "version: 2\nrules: []\n", 1, "version must be 1"},
		{"rules not a list", "rules: deny\n", 1, "rules must be a list"},
		{"rule not a mapping", "rules:\n  - deny\n", 2, "a rule must be a mapping"},
		{"no name", "rules:\n  - tools: execute\n    action: deny\n", 2, "a rule without a name"},
		{"bad name", "rules:\n  - name: '-x'\n    tools: execute\n    action: deny\n", 2, `rule name "-x"`},
		{"no tools", "rules:\n  - name: a\n    action: deny\n", 2, `rule "a": no tools`},
		{"unknown tool", "rules:\n  - name: a\n    tools: [exec]\n    action: deny\n", 3, `unknown tool "exec"`},
		{"unknown tool near", "rules:\n  - name: a\n    tools: executes\n    action: deny\n", 3, `did you mean "execute"?`},
		{"no action", "rules:\n  - name: a\n    tools: execute\n", 2, `rule "a": no action`},
		{"bad action", "rules:\n  - name: a\n    tools: execute\n    action: denny\n", 4, `action "denny": use confirm, deny or allow (did you mean "deny"?)`},
		{"empty action", "rules:\n  - name: a\n    tools: execute\n    action:\n", 4, "action is empty"},
		{"unknown key", "rules:\n  - name: a\n    tools: execute\n    action: deny\n    reasons: x\n", 5, `unknown key "reasons" (did you mean "reason"?)`},
		{"bad regexp", "rules:\n  - name: a\n    tools: execute\n    code: 'os.system('\n    action: deny\n", 4, "not a valid Go (RE2) regular expression"},
		{"perl regexp", "rules:\n  - name: a\n    tools: execute\n    code: '(?<=x)y'\n    action: deny\n", 4, "not a valid Go (RE2)"},
		{"empty pattern", "rules:\n  - name: a\n    tools: execute\n    code: ''\n    action: deny\n", 4, "empty code pattern"},
		{"code on codeless tool", "rules:\n  - name: a\n    tools: shutdown_kernel\n    code: x\n    action: deny\n", 2, "code patterns apply only to tools that carry code"},
		{"empty list", "rules:\n  - name: a\n    tools: []\n    action: deny\n", 3, "tools is an empty list"},
		{"nested list", "rules:\n  - name: a\n    tools: [[execute]]\n    action: deny\n", 3, "must be a single value"},
		{"duplicate key", "rules:\n  - name: a\n    tools: execute\n    tools: run_cell\n    action: deny\n", 4, `"tools" is given twice`},
		{"duplicate name", "rules:\n  - name: a\n    tools: execute\n    action: deny\n  - name: a\n    tools: run_cell\n    action: deny\n", 5, "already used by the rule at line 2"},
		{"unreachable", "rules:\n  - name: all\n    tools: '*'\n    action: confirm\n  - name: b\n    tools: execute\n    action: deny\n", 5, `rule "b" can never match`},
		{"unreachable after **", "rules:\n  - name: all\n    tools: '**'\n    principals: '*'\n    action: confirm\n  - name: b\n    tools: execute\n    action: deny\n", 6, `rule "b" can never match`},
		{"alias", "rules:\n  - &r\n    name: a\n    tools: execute\n    action: deny\n  - *r\n", 2, "anchors and aliases"},
		{"two documents", "rules: []\n---\nrules: []\n", 2, "a second YAML document"},
		{"bad principal glob", "rules:\n  - name: a\n    tools: execute\n    principals: '['\n    action: deny\n", 4, "not a valid glob"},
		{"bad tool glob", "rules:\n  - name: a\n    tools: 'run_['\n    action: deny\n", 3, "not a valid glob"},
		{"long reason", "rules:\n  - name: a\n    tools: execute\n    action: deny\n    reason: " + strings.Repeat("x", policyMaxReason+1) + "\n", 5, "the reason is"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePolicy("p.yaml", []byte(c.file))
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("accepted (%v) or not a *PolicyError: %v", p, err)
			}
			if pe.Line != c.line || !strings.Contains(pe.Msg, c.want) {
				t.Fatalf("got line %d %q\nwant line %d containing %q", pe.Line, pe.Error(), c.line, c.want)
			}
			if c.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("policy p.yaml:%d: ", c.line)) {
				t.Fatalf("error %q does not start with the file and line", err)
			}
		})
	}
}

// TestPolicyFileLimits: a file over the size limit, or with too many rules,
// is refused naming the limit (LoadPolicy reads no more than the limit).
func TestPolicyFileLimits(t *testing.T) {
	big := t.TempDir() + "/big.yaml"
	if err := os.WriteFile(big, []byte("rules: []\n"+strings.Repeat("#", policyMaxFileBytes)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a file over the limit: %v", err)
	}
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := 0; i <= policyMaxRules; i++ {
		fmt.Fprintf(&b, "  - {name: r%d, tools: execute, code: 'x%d', action: deny}\n", i, i)
	}
	if _, err := ParsePolicy("many.yaml", []byte(b.String())); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d", policyMaxRules)) {
		t.Fatalf("too many rules: %v", err)
	}
	if _, err := LoadPolicy(t.TempDir() + "/missing.yaml"); err == nil || !strings.Contains(err.Error(), "read --policy file") {
		t.Fatalf("a missing file: %v", err)
	}
}

// TestPolicyPrincipalsAndGlobs: principals and tool globs narrow a rule.
func TestPolicyPrincipalsAndGlobs(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(`
rules:
  - name: agents-no-notebook-edits
    tools: ['*_cell', create_notebook]
    principals: ['agent-*', 'oidc:*']
    action: deny
  - name: empty-rules-ok
    tools: list_kernels
    action: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tool, who string
		hit       bool
	}{
		{"edit_cell", "agent-7", true}, {"run_cell", "oidc:abc", true}, {"create_notebook", "agent-1", true},
		{"edit_cell", "alice", false}, {"execute", "agent-7", false},
		// OIDC subjects hold '/': a principal is not a path, * crosses it.
		{"run_cell", "oidc:repo:org/repo:ref:refs/heads/main", true}, {"edit_cell", "oidc:https://idp.example/u/42", true},
		{"edit_cell", "agent-team/7", true}, {"edit_cell", "xoidc:a/b", false},
	} {
		r := p.match(policyCall{Tool: c.tool, Principal: c.who})
		if (r != nil && r.Action == PolicyActionDeny) != c.hit {
			t.Errorf("%s by %s: %v, want hit=%v", c.tool, c.who, r, c.hit)
		}
	}
	if p, err := ParsePolicy("p.yaml", []byte("rules:\n")); err != nil || p.Rules() != 0 {
		t.Fatalf("an empty rules list: %v %v", p, err)
	}
}

// TestPolicyAnswerCountsOnce: a nonce is answered once; the set is bounded
// and forgets what expired.
func TestPolicyAnswerCountsOnce(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte("rules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	ttl := func(at time.Time) (time.Time, time.Time) { return at, at.Add(PolicyAnswerTTL) }
	s1, e1 := ttl(now)
	if err := p.claimAnswer("alice", "n1", s1, e1, now); err != nil {
		t.Fatal(err)
	}
	if err := p.claimAnswer("alice", "n1", s1, e1, now.Add(time.Minute)); !errors.Is(err, ErrPolicyAnswered) {
		t.Fatalf("a second answer: %v", err)
	}
	p.releaseAnswer("n1") // its decision could not be recorded
	if err := p.claimAnswer("alice", "n1", s1, e1, now); err != nil {
		t.Fatalf("after release: %v", err)
	}
	p.answers.maxTotal = 2
	s2, e2 := ttl(now.Add(5 * time.Minute))
	if err := p.claimAnswer("bob", "n2", s2, e2, now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := p.claimAnswer("carol", "n3", s2, e2, now.Add(5*time.Minute)); !errors.Is(err, errPolicyAnswersFull) {
		t.Fatalf("a full set must refuse (never forget a live nonce): %v", err)
	}
	later := now.Add(PolicyAnswerTTL + time.Minute) // n1 expired, n2 not
	s3, e3 := ttl(later)
	if err := p.claimAnswer("carol", "n3", s3, e3, later); err != nil {
		t.Fatalf("after n1 expired: %v", err)
	}
	if len(p.answers.byNonce) != 2 {
		t.Fatalf("answered set holds %d, bound 2", len(p.answers.byNonce))
	}
	if err := p.claimAnswer("bob", "n2", s2, e2, later); !errors.Is(err, ErrPolicyAnswered) {
		t.Fatalf("n2 is still live: %v", err)
	}
	// A state not sealed by an ask (the 24 h state of a call that ran) or
	// sealed for longer than a confirmation lives is never claimed.
	if err := p.claimAnswer("bob", "n4", time.Unix(0, 0), later.Add(24*time.Hour), later); !errors.Is(err, errPolicyNotAnAsk) {
		t.Fatalf("a state without a seal time: %v", err)
	}
	if err := p.claimAnswer("bob", "n4", later, later.Add(24*time.Hour), later); !errors.Is(err, errPolicyNotAnAsk) {
		t.Fatalf("a day-long state: %v", err)
	}
}

// TestPolicyGlob: tools and principals globs read like path.Match, except
// that * and ? match '/' too.
func TestPolicyGlob(t *testing.T) {
	for _, c := range []struct {
		glob, name string
		want       bool
	}{
		{"oidc:*", "oidc:repo:org/repo:ref:refs/heads/main", true},
		{"oidc:*", "oidc:https://idp/u/42", true},
		{"oidc:*/42", "oidc:https://idp/u/42", true},
		{"a?c", "a/c", true},
		{"*", "a/b/c", true},
		{"*_cell", "run_cell", true},
		{"*_cell", "run_all", false},
		{"agent-[0-9]", "agent-7", true},
		{"agent-[^0-9]", "agent-7", false},
		{"agent-[a\\-z]", "agent--", true},
		{"agent-[a\\-z]", "agent-m", false},
		{"a\\*b", "a*b", true},
		{"a\\*b", "axb", false},
		{"a.b", "axb", false},
		{"(x)+", "(x)+", true},
		{"é*", "é/ü", true},
		{"admin", "admin2", false},
		{"admin", "xadmin", false},
	} {
		re, err := policyGlob(c.glob)
		if err != nil {
			t.Fatalf("%q: %v", c.glob, err)
		}
		if got := re.MatchString(c.name); got != c.want {
			t.Errorf("%q against %q: %v, want %v", c.glob, c.name, got, c.want)
		}
	}
	for _, bad := range []string{"[", "a\\", "[z-a", "[]"} {
		if _, err := policyGlob(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzPolicyGlob: policyGlob accepts what path.Match accepts, never
// panics, and agrees with path.Match on names without '/'.
func FuzzPolicyGlob(f *testing.F) {
	for _, s := range []string{"*", "oidc:*", "a?c", "[a-z]*", "[^a]", "\\*", "[\\]]", "[]a]", "é[é-ü]", "[a-]", "x[", "a\\"} {
		f.Add(s, "abc")
	}
	f.Fuzz(func(t *testing.T, glob, name string) {
		re, err := policyGlob(glob)
		_, perr := path.Match(glob, "")
		if (err == nil) != (perr == nil) && perr != nil {
			t.Fatalf("%q: accepted though path.Match refuses it (%v)", glob, perr)
		}
		if err != nil || strings.Contains(name, "/") || !utf8.ValidString(name) || !utf8.ValidString(glob) {
			return
		}
		if ok, _ := path.Match(glob, name); ok != re.MatchString(name) {
			t.Fatalf("%q against %q: %v, path.Match %v", glob, name, re.MatchString(name), ok)
		}
	})
}

// FuzzParsePolicy: no input panics or hangs the parser, and whatever it
// accepts is a policy every call can be matched against.
func FuzzParsePolicy(f *testing.F) {
	if ex, err := os.ReadFile("../../docs/examples/policy.yaml"); err == nil {
		f.Add(string(ex))
	}
	for _, s := range []string{
		"", "rules: []", "rules:\n", "version: 1\nrules: []\n",
		"rules:\n  - name: a\n    tools: execute\n    code: 'os\\.system'\n    action: deny\n",
		"rules:\n  - {name: a, tools: ['*'], principals: ['agent-*'], action: confirm, reason: why}\n",
		"rules:\n  - &r {name: a, tools: execute, action: deny}\n  - *r\n",
		"rules: [{name: a, tools: '*', action: allow}, {name: b, tools: execute, action: deny}]",
		"a: &a [*a, *a]\nrules: []\n", "rules: !!binary aGVsbG8=", "rules:\n  - name: ü\n    tools: execute\n    action: deny\n",
		"rules:\n  - name: a\n    tools: execute\n    code: '(?i)\\bimport\\s+os'\n    action: confirm\n",
		"\ufeffrules: []", "rules: [\n", "{", "--- |\n  x\n", "rules:\n  - name: a\n    tools: [execute, run_*]\n    action: deny\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		p, err := ParsePolicy("fuzz.yaml", []byte(file))
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Msg == "" {
				t.Fatalf("error %v is not a *PolicyError with a message", err)
			}
			return
		}
		names := map[string]bool{}
		for _, r := range p.rules {
			if r.Name == "" || len(r.Tools) == 0 || names[r.Name] {
				t.Fatalf("accepted a rule without a name or tools, or a duplicate: %+v", r)
			}
			names[r.Name] = true
			switch r.Action {
			case PolicyActionDeny, PolicyActionConfirm, PolicyActionAllow:
			default:
				t.Fatalf("accepted action %q", r.Action)
			}
		}
		for tool := range toolScopes {
			p.match(policyCall{Tool: tool, Principal: "alice", Code: file, HasCode: true})
		}
		again, err := ParsePolicy("fuzz.yaml", []byte(file))
		if err != nil || again.Rules() != p.Rules() {
			t.Fatalf("not deterministic: %v", err)
		}
	})
}
