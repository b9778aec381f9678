package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Approval policy (--policy): a YAML file of rules, each naming tools (and
// optionally code patterns and principals) and an action. The first rule
// that matches a tool call decides: deny refuses it, confirm asks the
// client's user first (an input request on MCP 2026-07-28, elicitation
// before it), allow lets it run. Calls no rule matches run as before.
// Every deny/confirm decision is a PolicyDecided event, durable before the
// call goes on (Options.Decisions).
//
// The file, as a user writes it (docs/examples/policy.yaml):
//
//	rules:
//	  - name: no-shell
//	    tools: [execute, run_cell, run_all]
//	    code: ['os\.system\(', 'subprocess']
//	    action: deny
//	    reason: shell commands are not allowed from agents
//	  - name: confirm-shutdown
//	    tools: [shutdown_kernel, restart_kernel]
//	    action: confirm
//	    reason: other people may be using this kernel

// Actions a rule may take.
const (
	PolicyActionDeny    = "deny"
	PolicyActionConfirm = "confirm"
	PolicyActionAllow   = "allow"
)

// Limits on a policy file: a file beyond them is refused with the limit.
const (
	policyMaxFileBytes  = 1 << 20
	policyMaxRules      = 1000
	policyMaxPatterns   = 100  // code patterns, tools or principals per rule
	policyMaxPatternLen = 4096 // bytes of one code pattern
	policyMaxReason     = 1000 // bytes of a reason
	// An ask shows, and an event keeps, at most policyShownLines lines of
	// the code (those the rule's patterns matched), each cut at
	// policyShownLineLen bytes.
	policyShownLines   = 20
	policyShownLineLen = 200
	// policyMaxAnswered bounds the answered-request set (replay
	// protection): beyond it, new answers are refused until old ones expire.
	policyMaxAnswered = 100_000
)

// policyCodeTools are the tools whose calls carry code a rule's code
// patterns are matched against, and what that code is.
var policyCodeTools = map[string]string{
	"execute":     "the code argument",
	"run_cell":    "the cell's source",
	"run_all":     "the sources of every code cell, joined by blank lines",
	"insert_cell": "the source argument",
	"edit_cell":   "the source argument",
}

// Policy is a --policy file's rules: which tool calls need the client's
// confirmation and which are refused. It also remembers which confirmation
// requests were answered (each is answered once). Safe for concurrent use.
type Policy struct {
	file  string
	rules []policyRule

	answers policyAnswers // replay protection (policy_answers.go)
}

// policyRule is one rule as loaded.
type policyRule struct {
	Name       string
	Line       int
	Tools      []string // names or globs (policyGlob), "*" for any
	Code       []*regexp.Regexp
	Principals []string // names or globs; empty: anyone
	tools      []*regexp.Regexp
	principals []*regexp.Regexp
	Action     string
	Reason     string
}

// PolicyError is a policy file refused at load: where and what to fix.
type PolicyError struct {
	File string
	Line int // 0: the file as a whole
	Msg  string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("policy %s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("policy %s: %s", e.File, e.Msg)
}

// LoadPolicy reads and checks a --policy file. A file with a problem is
// refused as a whole with its line and what to fix (*PolicyError).
func LoadPolicy(file string) (*Policy, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read --policy file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, policyMaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read --policy file %s: %w", file, err)
	}
	return ParsePolicy(file, data)
}

// ParsePolicy checks a policy file's content; name is how errors call it.
func ParsePolicy(name string, data []byte) (p *Policy, err error) {
	fail := func(line int, format string, v ...any) error {
		return &PolicyError{File: name, Line: line, Msg: fmt.Sprintf(format, v...)}
	}
	if len(data) > policyMaxFileBytes {
		return nil, fail(0, "the file is larger than %d bytes: a policy is a short list of rules", policyMaxFileBytes)
	}
	defer func() {
		// NB: bad input never panics the server, whatever the YAML parser does.
		if r := recover(); r != nil {
			p, err = nil, fail(0, "not a valid YAML policy file (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, "the file is empty: write a rules: list (see docs/examples/policy.yaml), or leave --policy unset")
		}
		return nil, fail(0, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, fail(more.Line, "a second YAML document (---): put every rule in one rules: list")
	} else if !errors.Is(err, io.EOF) {
		return nil, fail(0, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if bad := policyFindAlias(&doc); bad != nil {
		return nil, fail(bad.Line, "anchors and aliases (&name, *name) are not supported: write each rule out in full")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fail(doc.Line, "the file is empty: write a rules: list (see docs/examples/policy.yaml)")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "the file must be a mapping with a rules: list, found %s", policyKind(root))
	}
	p = &Policy{file: name, answers: newPolicyAnswers()}
	seenTop := map[string]bool{}
	var rulesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		if seenTop[key] {
			return nil, fail(k.Line, "%q is given twice", key)
		}
		seenTop[key] = true
		switch key {
		case "version":
			if v.Kind != yaml.ScalarNode || v.Value != "1" {
				return nil, fail(v.Line, "version must be 1 (the only policy format there is)")
			}
		case "rules":
			rulesNode = v
		default:
			return nil, fail(k.Line, "unknown key %q%s: the top level has rules (and optionally version: 1)", key, policyDidYouMean(key, []string{"rules", "version"}))
		}
	}
	if rulesNode == nil {
		return nil, fail(root.Line, "no rules: list: write one (see docs/examples/policy.yaml)")
	}
	if rulesNode.Kind == yaml.ScalarNode && rulesNode.Tag == "!!null" {
		return p, nil // rules: (none yet)
	}
	if rulesNode.Kind != yaml.SequenceNode {
		return nil, fail(rulesNode.Line, "rules must be a list (each item starting with -), found %s", policyKind(rulesNode))
	}
	if len(rulesNode.Content) > policyMaxRules {
		return nil, fail(rulesNode.Line, "%d rules: at most %d", len(rulesNode.Content), policyMaxRules)
	}
	names := map[string]int{}
	for _, rn := range rulesNode.Content {
		r, err := parsePolicyRule(rn, fail)
		if err != nil {
			return nil, err
		}
		if line, ok := names[r.Name]; ok {
			return nil, fail(rn.Line, "rule %q: the name is already used by the rule at line %d: give each rule its own name (events record it)", r.Name, line)
		}
		names[r.Name] = rn.Line
		for _, before := range p.rules {
			if before.catchAll() {
				return nil, fail(rn.Line, "rule %q can never match: rule %q (line %d) before it matches every call; move it up or remove it", r.Name, before.Name, before.Line)
			}
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

var policyRuleKeys = []string{"name", "tools", "code", "principals", "action", "reason"}

var policyNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

func parsePolicyRule(rn *yaml.Node, fail func(int, string, ...any) error) (policyRule, error) {
	r := policyRule{Line: rn.Line}
	if rn.Kind != yaml.MappingNode {
		return r, fail(rn.Line, "a rule must be a mapping (name:, tools:, action: ...), found %s", policyKind(rn))
	}
	what := func() string {
		if r.Name != "" {
			return fmt.Sprintf("rule %q", r.Name)
		}
		return "rule"
	}
	// The name first, so every later message names the rule.
	for i := 0; i+1 < len(rn.Content); i += 2 {
		if rn.Content[i].Value == "name" {
			v := rn.Content[i+1]
			s, err := policyScalar(v, "name", fail)
			if err != nil {
				return r, err
			}
			if !policyNamePattern.MatchString(s) {
				return r, fail(v.Line, "rule name %q: use 1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit", s)
			}
			r.Name = s
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(rn.Content); i += 2 {
		k, v := rn.Content[i], rn.Content[i+1]
		key := k.Value
		if seen[key] {
			return r, fail(k.Line, "%s: %q is given twice", what(), key)
		}
		seen[key] = true
		switch key {
		case "name":
		case "tools":
			list, err := policyList(v, what()+": tools", fail)
			if err != nil {
				return r, err
			}
			for _, t := range list {
				re, err := policyCheckTool(t)
				if err != nil {
					return r, fail(v.Line, "%s: %v", what(), err)
				}
				r.tools = append(r.tools, re)
			}
			r.Tools = list
		case "code":
			list, err := policyList(v, what()+": code", fail)
			if err != nil {
				return r, err
			}
			for _, c := range list {
				if c == "" {
					return r, fail(v.Line, "%s: an empty code pattern matches every call: leave code out instead", what())
				}
				if len(c) > policyMaxPatternLen {
					return r, fail(v.Line, "%s: a code pattern of %d bytes: at most %d", what(), len(c), policyMaxPatternLen)
				}
				re, err := regexp.Compile(c)
				if err != nil {
					return r, fail(v.Line, "%s: code pattern %q is not a valid Go (RE2) regular expression: %v", what(), c, policyRegexpErr(err))
				}
				r.Code = append(r.Code, re)
			}
		case "principals":
			list, err := policyList(v, what()+": principals", fail)
			if err != nil {
				return r, err
			}
			for _, pr := range list {
				re, err := policyGlob(pr)
				if err != nil {
					return r, fail(v.Line, "%s: principal pattern %q is not a valid glob (use names, or * and ? as wildcards)", what(), pr)
				}
				r.principals = append(r.principals, re)
			}
			r.Principals = list
		case "action":
			s, err := policyScalar(v, what()+": action", fail)
			if err != nil {
				return r, err
			}
			switch s {
			case PolicyActionDeny, PolicyActionConfirm, PolicyActionAllow:
				r.Action = s
			default:
				return r, fail(v.Line, "%s: action %q: use confirm, deny or allow%s", what(), s,
					policyDidYouMean(s, []string{PolicyActionConfirm, PolicyActionDeny, PolicyActionAllow}))
			}
		case "reason":
			s, err := policyScalar(v, what()+": reason", fail)
			if err != nil {
				return r, err
			}
			if len(s) > policyMaxReason {
				return r, fail(v.Line, "%s: the reason is %d bytes: at most %d (it is shown to the agent and its user)", what(), len(s), policyMaxReason)
			}
			r.Reason = s
		default:
			return r, fail(k.Line, "%s: unknown key %q%s: a rule has %s", what(), key, policyDidYouMean(key, policyRuleKeys), strings.Join(policyRuleKeys, ", "))
		}
	}
	switch {
	case r.Name == "":
		return r, fail(rn.Line, "a rule without a name: add name: (events and messages name the rule)")
	case r.Tools == nil:
		return r, fail(rn.Line, "%s: no tools: list the tools it applies to (or \"*\" for every tool)", what())
	case r.Action == "":
		return r, fail(rn.Line, "%s: no action: add action: confirm, deny or allow", what())
	}
	if len(r.Code) > 0 {
		carries := false
		for _, t := range r.tools {
			for name := range policyCodeTools {
				if t.MatchString(name) {
					carries = true
				}
			}
		}
		if !carries {
			return r, fail(rn.Line, "%s: code patterns apply only to tools that carry code (%s); none of its tools does",
				what(), strings.Join(policySortedKeys(policyCodeTools), ", "))
		}
	}
	return r, nil
}

// catchAll reports whether the rule matches every call (no rule after it
// can ever match).
func (r policyRule) catchAll() bool {
	if len(r.Code) > 0 {
		return false
	}
	// NB: a glob of only stars ("*", "**") matches every name, '/' included.
	all := func(list []string) bool {
		for _, s := range list {
			if s != "" && strings.Trim(s, "*") == "" {
				return true
			}
		}
		return false
	}
	return all(r.Tools) && (len(r.Principals) == 0 || all(r.Principals))
}

func policyScalar(v *yaml.Node, what string, fail func(int, string, ...any) error) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", fail(v.Line, "%s must be a single value, found %s", what, policyKind(v))
	}
	if v.Tag == "!!null" {
		return "", fail(v.Line, "%s is empty", what)
	}
	return v.Value, nil
}

// policyList reads a scalar or a list of scalars.
func policyList(v *yaml.Node, what string, fail func(int, string, ...any) error) ([]string, error) {
	switch {
	case v.Kind == yaml.ScalarNode:
		s, err := policyScalar(v, what, fail)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	case v.Kind == yaml.SequenceNode:
		if len(v.Content) == 0 {
			return nil, fail(v.Line, "%s is an empty list", what)
		}
		if len(v.Content) > policyMaxPatterns {
			return nil, fail(v.Line, "%s has %d entries: at most %d", what, len(v.Content), policyMaxPatterns)
		}
		out := make([]string, 0, len(v.Content))
		for _, e := range v.Content {
			s, err := policyScalar(e, what+" entry", fail)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fail(v.Line, "%s must be a value or a list of values, found %s", what, policyKind(v))
}

// policyCheckTool compiles a tool name or glob, refusing one that names no tool.
func policyCheckTool(t string) (*regexp.Regexp, error) {
	re, err := policyGlob(t)
	if err != nil {
		return nil, fmt.Errorf("tool pattern %q is not a valid glob", t)
	}
	for name := range toolScopes {
		if re.MatchString(name) {
			return re, nil
		}
	}
	return nil, fmt.Errorf("unknown tool %q%s; tools are %s (or \"*\")", t,
		policyDidYouMean(t, policySortedKeys(toolScopes)), strings.Join(policySortedKeys(toolScopes), ", "))
}

// policyGlob compiles a tools or principals glob: the syntax of path.Match
// (* any run of characters, ? one character, [a-z] a class, \ quotes),
// except that * and ? match '/' as well. NB: principals are not paths: an
// OIDC subject such as "oidc:repo:org/repo:ref:main" or
// "oidc:https://idp/u/42" must fall under "oidc:*".
func policyGlob(g string) (re *regexp.Regexp, err error) {
	defer func() {
		// NB: path.Match checked the syntax; a pattern it accepts that this
		// translation misreads is refused rather than crashing the load.
		if r := recover(); r != nil {
			re, err = nil, fmt.Errorf("unsupported glob %q", g)
		}
	}()
	if _, err := path.Match(g, ""); err != nil {
		return nil, err // path.Match's syntax check: unclosed [, bad range, trailing \
	}
	var b strings.Builder
	b.WriteString(`(?s)^`)
	rs := []rune(g)
	quote := func(r rune) string {
		if r == '-' {
			return `\-`
		}
		return regexp.QuoteMeta(string(r))
	}
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '\\':
			i++
			b.WriteString(quote(rs[i])) // path.Match refused a trailing \
		case '[':
			b.WriteString(`[`)
			i++
			if rs[i] == '^' {
				b.WriteString(`^`)
				i++
			}
			for ; rs[i] != ']'; i++ {
				if rs[i] == '\\' {
					i++
				}
				b.WriteString(quote(rs[i]))
				if i+1 < len(rs) && rs[i+1] == '-' {
					i += 2
					if rs[i] == '\\' {
						i++
					}
					b.WriteString(`-` + quote(rs[i]))
				}
			}
			b.WriteString(`]`)
		default:
			b.WriteString(quote(r))
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

func policyRegexpErr(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

func policyKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "nothing"
}

func policyFindAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return n
	}
	for _, c := range n.Content {
		if bad := policyFindAlias(c); bad != nil {
			return bad
		}
	}
	return nil
}

func policySortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// policyDidYouMean suggests the nearest of options to a misspelt word.
func policyDidYouMean(word string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if d := policyEditDistance(strings.ToLower(word), o); d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func policyEditDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Rules is how many rules the policy has (for the start-up log line).
func (p *Policy) Rules() int { return len(p.rules) }

// File is the file the policy was loaded from.
func (p *Policy) File() string { return p.file }

// policyCall is what a rule is matched against.
type policyCall struct {
	Tool      string
	Principal string
	Kernel    string
	Code      string
	HasCode   bool
}

// match returns the first rule that matches c, or nil.
func (p *Policy) match(c policyCall) *policyRule {
	for i := range p.rules {
		r := &p.rules[i]
		if !policyAnyGlob(r.tools, c.Tool) {
			continue
		}
		if len(r.principals) > 0 && !policyAnyGlob(r.principals, c.Principal) {
			continue
		}
		if len(r.Code) > 0 {
			if !c.HasCode {
				continue
			}
			hit := false
			for _, re := range r.Code {
				if re.MatchString(c.Code) {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		return r
	}
	return nil
}

func policyAnyGlob(globs []*regexp.Regexp, s string) bool {
	for _, g := range globs {
		if g.MatchString(s) {
			return true
		}
	}
	return false
}

// PolicyRecorder records a policy decision durably (a PolicyDecided event
// on the caller's policy stream) before the call goes on.
type PolicyRecorder interface {
	RecordPolicy(ctx context.Context, principal string, d events.PolicyDecided) error
}

// policyCodeShown is the part of code an ask shows and an event keeps:
// the lines where the rule's code patterns matched (or, for a rule without
// patterns, the first lines), numbered, at most policyShownLines of at most
// policyShownLineLen bytes each, after a line giving the code's size and
// saying how much is not shown. NB: a head of the code is not enough: 400
// bytes of comments would push what the rule caught out of sight, and the
// user would approve code they never saw.
func policyCodeShown(code string, r *policyRule) string {
	starts := []int{0} // byte offset where each line starts
	for i := 0; i < len(code); i++ {
		if code[i] == '\n' && i+1 < len(code) {
			starts = append(starts, i+1)
		}
	}
	lineOf := func(off int) int { return sort.SearchInts(starts, off+1) - 1 }
	var lines []int // 0-based, sorted, distinct
	more := false   // matching lines beyond the bound
	if r != nil && len(r.Code) > 0 {
		seen := map[int]bool{}
		for _, re := range r.Code {
			for _, m := range re.FindAllStringIndex(code, 4*policyShownLines) {
				for l := lineOf(m[0]); l <= lineOf(max(m[0], m[1]-1)); l++ {
					if !seen[l] {
						seen[l] = true
						lines = append(lines, l)
					}
				}
			}
		}
		sort.Ints(lines)
		if len(lines) > policyShownLines {
			lines, more = lines[:policyShownLines], true
		}
	}
	what := "matching the rule"
	if len(lines) == 0 {
		what = "first"
		for l := 0; l < len(starts) && l < policyShownLines; l++ {
			lines = append(lines, l)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "(%d bytes, %d lines; showing the %d %s", len(code), len(starts), len(lines), what)
	switch hidden := len(starts) - len(lines); {
	case more:
		fmt.Fprintf(&b, "; more lines match; %d lines are not shown)", hidden)
	case hidden > 0:
		fmt.Fprintf(&b, "; %d lines are not shown)", hidden)
	default:
		b.WriteString(")")
	}
	for _, l := range lines {
		end := len(code)
		if l+1 < len(starts) {
			end = starts[l+1] - 1
		}
		line := strings.TrimSuffix(strings.TrimSuffix(code[starts[l]:end], "\n"), "\r")
		if len(line) > policyShownLineLen {
			cut := policyShownLineLen
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			line = line[:cut] + "…"
		}
		fmt.Fprintf(&b, "\n%5d| %s", l+1, line)
	}
	return b.String()
}

func policyNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("policy nonce: %w", err))
	}
	return hex.EncodeToString(b)
}

func policyCodeSHA(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}
