package mcpserver

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
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
	switch v := req.Params.Arguments.(type) {
	case nil:
		a.m = map[string]any{}
	case map[string]any:
		a.m = v
	default:
		// Arguments arrived as something other than an object, or were
		// decoded into another type: go through JSON.
		b, err := json.Marshal(v)
		if err == nil {
			err = json.Unmarshal(b, &a.m)
		}
		if err != nil || a.m == nil {
			a.err = fmt.Errorf("arguments must be a JSON object of named arguments")
		}
	}
	return a
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
