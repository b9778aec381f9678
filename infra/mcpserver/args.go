package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// args reads a tool call's arguments. The first problem is kept and later
// reads return zero values, so a handler reads everything, then checks err
// once. Every message names the argument and says what is expected.
type args struct {
	m   map[string]any
	err error
}

func newArgs(req mcp.CallToolRequest) *args {
	a := &args{}
	a.m, a.err = rawArgs(req.Params.Arguments)
	if a.err != nil {
		return a
	}
	// NB: every reader of a call's arguments sees them under their
	// documented names (checkArguments already did this for the handlers;
	// a middleware outside it, or argsDigest, reads them here), so an alias
	// can neither slip past a check nor make a retry look like another call.
	m, err := specFromTable(req.Params.Name).canonical(a.m, false)
	if err != nil {
		a.err = err
		return a
	}
	a.m = m
	return a
}

// rawArgs is a call's arguments as a map, whatever the transport decoded
// them into.
func rawArgs(v any) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return v, nil
	}
	// Arguments arrived as something other than an object, or were decoded
	// into another type: go through JSON.
	var m map[string]any
	b, err := json.Marshal(v)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil || m == nil {
		return map[string]any{}, fmt.Errorf("arguments must be a JSON object of named arguments")
	}
	return m, nil
}

func (a *args) fail(format string, v ...any) {
	if a.err == nil {
		a.err = fmt.Errorf(format, v...)
	}
}

// str reads a string argument; a required one must be present and non-empty.
func (a *args) str(name string, required bool, hint string) string {
	v, ok := a.m[name]
	if !ok || v == nil {
		if required {
			a.fail("missing required argument %q: %s", name, hint)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		a.fail("argument %q must be a string (%s), got %s", name, hint, jsonType(v))
		return ""
	}
	if required && s == "" {
		a.fail("argument %q is empty: %s", name, hint)
	}
	return s
}

// num reads a number argument as the float64 it arrived as, def when
// absent. It refuses what is not a finite number; callers go through
// number, integer or duration, which check the range before any conversion.
func (a *args) num(name string, def float64) float64 {
	v, ok := a.m[name]
	if !ok || v == nil {
		return def
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			a.fail("argument %q must be a number, got %q", name, n.String())
			return def
		}
	default:
		a.fail("argument %q must be a number, got %s", name, jsonType(v))
		return def
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		a.fail("argument %q must be a finite number, got %v", name, f)
		return def
	}
	return f
}

// span is the range a numeric argument must fall in, checked on the float64
// before any conversion (NB: converting 1e10 seconds to a time.Duration
// overflows into a negative number, which an after-the-fact check passes).
type span struct {
	lo, hi float64
	loOpen bool   // lo itself is refused: "more than lo"
	unit   string // said after the bounds: "seconds"; "" for counts
	hint   string // what to do instead, appended to the error
}

func (r span) contains(f float64) bool {
	if r.loOpen {
		return f > r.lo && f <= r.hi
	}
	return f >= r.lo && f <= r.hi
}

func (r span) String() string {
	lo := "at least " + fmtNum(r.lo)
	if r.loOpen {
		lo = "more than " + fmtNum(r.lo)
	}
	s := lo + " and at most " + fmtNum(r.hi)
	if r.unit != "" {
		s += " " + r.unit
	}
	return s
}

func (r span) suffix() string {
	if r.hint == "" {
		return ""
	}
	return "; " + r.hint
}

// fmtNum writes whole numbers in full (2147483647, not 2.147483647e+09)
// and others in the shortest form that reads back the same.
func fmtNum(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// number reads a number argument within r, def when absent.
func (a *args) number(name string, def float64, r span) float64 {
	if v, ok := a.m[name]; !ok || v == nil {
		return def
	}
	f := a.num(name, def)
	if a.err != nil {
		return def
	}
	if !r.contains(f) {
		a.fail("argument %q must be %s, got %s%s", name, r, fmtNum(f), r.suffix())
		return def
	}
	return f
}

// duration reads a number of seconds within r as a time.Duration, def when
// absent. The range is checked before the conversion, so the result never
// overflows.
func (a *args) duration(name string, def time.Duration, r span) time.Duration {
	if v, ok := a.m[name]; !ok || v == nil {
		return def
	}
	f := a.number(name, 0, r)
	if a.err != nil {
		return def
	}
	d := time.Duration(f * float64(time.Second))
	if r.loOpen && d <= time.Duration(r.lo*float64(time.Second)) {
		// NB: 1e-300 is more than 0 but rounds to no time at all.
		a.fail("argument %q must be %s, got %s, which is less than a nanosecond%s", name, r, fmtNum(f), r.suffix())
		return def
	}
	return d
}

// integer reads a whole-number argument within r, def when absent. The
// range is checked on the float64, then the fraction: 2.5 is refused, never
// rounded.
func (a *args) integer(name string, def int64, r span) int64 {
	if v, ok := a.m[name]; !ok || v == nil {
		return def
	}
	f := a.number(name, 0, r)
	if a.err != nil {
		return def
	}
	if f != math.Trunc(f) {
		a.fail("argument %q must be a whole number %s, got %s", name, r, fmtNum(f))
		return def
	}
	return int64(f)
}

// uint reads a non-negative whole number up to 2^53 (a cursor, a count
// without a smaller bound), def when absent, checked as integer does.
func (a *args) uint(name string, def uint64) uint64 {
	if v, ok := a.m[name]; !ok || v == nil {
		return def
	}
	n := a.integer(name, 0, span{lo: 0, hi: maxSafeInt})
	if a.err != nil {
		return def
	}
	return uint64(n)
}

// maxSafeInt is the largest integer a JSON number (a float64) holds exactly.
const maxSafeInt = 1 << 53

// maxIndex bounds cell indexes and counts: far beyond any notebook, and an
// int on every platform.
const maxIndex = math.MaxInt32

// boolean reads a boolean argument, def when absent.
func (a *args) boolean(name string, def bool) bool {
	v, ok := a.m[name]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		a.fail("argument %q must be true or false, got %s", name, jsonType(v))
		return def
	}
	return b
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, float32, int, int64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Argument names as agents guess them. A call's arguments are read under
// the names the tool's schema documents; the aliases of toolArguments and
// other spellings of either (kernelId, KernelID, kernel-id for kernel_id)
// are accepted silently. The same thing named twice with different values,
// and a name the tool does not take, are errors that name what was sent
// and list what the tool takes: an ignored argument would leave the agent
// believing it had an effect.

// argSpec is what one tool's arguments may be called.
type argSpec struct {
	tool string
	// names are the documented names: required ones first (schema order),
	// then the table's order, then any other the schema has, sorted.
	names    []string
	required map[string]bool
	// byFold maps the folded form of every documented name and alias to
	// its documented name.
	byFold map[string]string
}

// foldArgName is the spelling-free form of an argument name: lower case,
// without '_' and '-' ("kernelId", "kernel-id", "KERNEL_ID": "kernelid").
func foldArgName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range strings.ToLower(name) {
		if r != '_' && r != '-' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// specFromTable is the spec of tool as toolArguments lists it (the
// documented names and their aliases), for readers that have no schema at
// hand (newArgs). A tool missing from the table has an empty spec: its
// arguments are read under the names they arrived with.
func specFromTable(tool string) argSpec {
	sp := argSpec{tool: tool, byFold: map[string]string{}}
	for _, an := range toolArguments[tool] {
		sp.add(an.name)
	}
	sp.addAliases()
	return sp
}

// specFromSchema is tool's spec from its registered schema (the truth of
// what it takes) and the aliases toolArguments gives for those names. An
// alias that is a documented name of the tool stays that name.
func specFromSchema(t mcp.Tool) argSpec {
	sp := argSpec{tool: t.Name, byFold: map[string]string{}, required: map[string]bool{}}
	for _, r := range t.InputSchema.Required {
		if _, ok := t.InputSchema.Properties[r]; ok {
			sp.required[r] = true
			sp.add(r)
		}
	}
	for _, an := range toolArguments[t.Name] {
		if _, ok := t.InputSchema.Properties[an.name]; ok {
			sp.add(an.name)
		}
	}
	rest := make([]string, 0, len(t.InputSchema.Properties))
	for name := range t.InputSchema.Properties {
		if _, ok := sp.byFold[foldArgName(name)]; !ok {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		sp.add(name)
	}
	sp.addAliases()
	return sp
}

// add makes name a documented name (once).
func (sp *argSpec) add(name string) {
	f := foldArgName(name)
	if _, ok := sp.byFold[f]; ok {
		return
	}
	sp.byFold[f] = name
	sp.names = append(sp.names, name)
}

// addAliases adds the table's aliases of the documented names; a fold
// already taken (a documented name, or an earlier alias) keeps its owner.
func (sp *argSpec) addAliases() {
	documented := make(map[string]bool, len(sp.names))
	for _, n := range sp.names {
		documented[n] = true
	}
	for _, an := range toolArguments[sp.tool] {
		if !documented[an.name] {
			continue
		}
		for _, alias := range an.aliases {
			if f := foldArgName(alias); sp.byFold[f] == "" {
				sp.byFold[f] = an.name
			}
		}
	}
}

// canonical returns raw with every argument under its documented name.
// Names given for the same argument must carry the same value (null counts
// as not given). strict refuses the names the tool does not take; without
// it they are kept as they are (for readers whose spec may lag the schema).
// raw is never modified.
func (sp argSpec) canonical(raw map[string]any, strict bool) (map[string]any, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	// given: the names sent for each documented name, in sorted order so
	// that errors do not depend on map order.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	given := map[string][]string{}
	var unknown []string
	changed := false
	for _, k := range keys {
		name, ok := sp.byFold[foldArgName(k)]
		switch {
		case !ok && strict:
			unknown = append(unknown, k)
			continue
		case !ok:
			name = k
		}
		if name != k {
			changed = true
		}
		given[name] = append(given[name], k)
	}
	if len(unknown) > 0 {
		return raw, sp.unknownError(unknown)
	}
	if !changed {
		return raw, nil
	}
	out := make(map[string]any, len(given))
	for name, sent := range given {
		var value any
		from := ""
		for _, k := range sent {
			v := raw[k]
			if v == nil {
				continue
			}
			if from != "" && !reflect.DeepEqual(value, v) {
				return raw, sp.conflictError(name, from, k)
			}
			if from == "" {
				value, from = v, k
			}
		}
		out[name] = value
	}
	return out, nil
}

// conflictError: a and b both name argument name, with different values.
func (sp argSpec) conflictError(name, a, b string) error {
	if b == name {
		a, b = b, a
	}
	return fmt.Errorf("arguments %q and %q both give %s, with different values: give it once, as %q", a, b, sp.describe(name), name)
}

// describe says which argument name is, for messages.
func (sp argSpec) describe(name string) string {
	return "the " + strings.ReplaceAll(strings.TrimSuffix(strings.TrimSuffix(name, "_id"), "_s"), "_", " ")
}

// unknownError names the arguments the tool does not take, suggests the
// nearest name for a near miss, and lists what it takes.
func (sp argSpec) unknownError(unknown []string) error {
	var b strings.Builder
	if len(unknown) == 1 {
		fmt.Fprintf(&b, "unknown argument %q", unknown[0])
	} else {
		b.WriteString("unknown arguments ")
		for i, k := range unknown {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", k)
		}
	}
	var hints []string
	for _, k := range unknown {
		if near := sp.nearest(k); near != "" {
			hints = append(hints, fmt.Sprintf("%q for %q", near, k))
		}
	}
	if len(hints) > 0 {
		fmt.Fprintf(&b, " (did you mean %s?)", strings.Join(hints, ", "))
	}
	b.WriteString(": ")
	b.WriteString(sp.takes())
	return errors.New(b.String())
}

// takes lists the tool's arguments for an error message.
func (sp argSpec) takes() string {
	if len(sp.names) == 0 {
		return sp.tool + " takes no arguments; call it with {}"
	}
	parts := make([]string, len(sp.names))
	for i, n := range sp.names {
		parts[i] = n
		if sp.required[n] {
			parts[i] += " (required)"
		}
	}
	return sp.tool + " takes " + strings.Join(parts, ", ")
}

// nearest is the documented name of the name or alias closest to k, if
// close enough to be a slip (a few edits, relative to its length).
func (sp argSpec) nearest(k string) string {
	fk := foldArgName(k)
	if len(fk) > 64 {
		return "" // not a slip; and keeps the distance cheap
	}
	best, bestDist := "", 0
	folds := make([]string, 0, len(sp.byFold))
	for f := range sp.byFold {
		folds = append(folds, f)
	}
	sort.Strings(folds) // the same answer on every run
	for _, f := range folds {
		d := editDistance(fk, f)
		longer := max(len([]rune(fk)), len([]rune(f)))
		if d > 3 || 3*d > longer {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = sp.byFold[f], d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// checkArguments is the tool-handler middleware that reads every call's
// argument names against the called tool's schema: aliases become the
// documented names (the handler, and every middleware inside this one, see
// only those), and a call naming an argument the tool does not take, or
// one argument twice with different values, is refused before anything
// runs.
func (s *Server) checkArguments(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		st := s.mcp.GetTool(req.Params.Name)
		if st == nil {
			return next(ctx, req)
		}
		raw, err := rawArgs(req.Params.Arguments)
		if err != nil {
			return failed(req.Params.Name, err), nil
		}
		m, err := specFromSchema(st.Tool).canonical(raw, true)
		if err != nil {
			return failed(req.Params.Name, err), nil
		}
		req.Params.Arguments = m
		return next(ctx, req)
	}
}
