package mcpserver

import (
	"encoding/json"
	"fmt"
	"math"

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

// num reads a number argument, def when absent.
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
		a.fail("argument %q must be a finite number", name)
		return def
	}
	return f
}

// uint reads a non-negative integer argument, def when absent.
func (a *args) uint(name string, def uint64) uint64 {
	if _, ok := a.m[name]; !ok {
		return def
	}
	f := a.num(name, float64(def))
	if f < 0 || f != math.Trunc(f) || f > 1<<53 {
		a.fail("argument %q must be a non-negative integer, got %v", name, f)
		return def
	}
	return uint64(f)
}

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
