package mcpserver

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// recordingNotebooks is a NotebookBackend that records every call and
// refuses it: the numeric-argument tests check a refused call never gets
// this far.
type recordingNotebooks struct {
	mu    sync.Mutex
	calls []string
}

var errRecorded = errors.New("recorded")

func (r *recordingNotebooks) record(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, what)
}

func (r *recordingNotebooks) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recordingNotebooks) ReadNotebook(_ context.Context, path string) (NotebookRead, error) {
	r.record("read " + path)
	return NotebookRead{}, errRecorded
}

func (r *recordingNotebooks) ChangeNotebook(_ context.Context, c NotebookChange) (NotebookChanged, error) {
	r.record(c.Kind + " " + c.Path)
	return NotebookChanged{}, errRecorded
}

func (r *recordingNotebooks) CellsToRun(_ context.Context, path, cell string) ([]CellRun, error) {
	r.record("run " + path + " " + cell)
	return nil, errRecorded
}

// numericArg is one numeric argument of one tool: the other arguments a
// call needs, the range's words in the error, and whether it is a whole
// number.
type numericArg struct {
	tool, arg string
	base      map[string]any
	rangeText string
	integer   bool
	valid     []float64 // accepted (reaches the backend)
}

func numericArgs() []numericArg {
	// nb is what a notebook tool needs besides the numeric argument: only
	// the arguments tool takes (another is refused, args.go).
	nb := func(tool string) map[string]any {
		all := map[string]any{"path": "a.ipynb", "expected_hash": "h", "cell": "0", "source": "s"}
		out := map[string]any{}
		for _, an := range toolArguments[tool] {
			if v, ok := all[an.name]; ok {
				out[an.name] = v
			}
		}
		return out
	}
	return []numericArg{
		{tool: "execute", arg: "timeout_s", base: map[string]any{"kernel": "k1", "code": "1"},
			rangeText: "more than 0 and at most 600 seconds", valid: []float64{0.05, 600}},
		{tool: "get_execution", arg: "wait_s", base: map[string]any{"execution_id": "x"},
			rangeText: "at least 0 and at most 55 seconds", valid: []float64{0, 0.5}},
		{tool: "get_execution", arg: "since", base: map[string]any{"execution_id": "x"},
			rangeText: "at least 0 and at most 9007199254740992", integer: true, valid: []float64{0, 7}},
		{tool: "send_input", arg: "wait_s", base: map[string]any{"execution_id": "x", "value": ""},
			rangeText: "at least 0 and at most 55 seconds", valid: []float64{0}},
		{tool: "read_notebook", arg: "start", base: nb("read_notebook"),
			rangeText: "at least 0 and at most 2147483647", integer: true, valid: []float64{0, 3}},
		{tool: "read_notebook", arg: "count", base: nb("read_notebook"),
			rangeText: "at least 1 and at most 500", integer: true, valid: []float64{1, 500}},
		{tool: "insert_cell", arg: "index", base: nb("insert_cell"),
			rangeText: "at least 0 and at most 2147483647", integer: true, valid: []float64{0, 2}},
		{tool: "move_cell", arg: "to", base: nb("move_cell"),
			rangeText: "at least 0 and at most 2147483647", integer: true, valid: []float64{0, 2}},
		{tool: "run_cell", arg: "timeout_s", base: nb("run_cell"),
			rangeText: "more than 0 and at most 600 seconds", valid: []float64{1}},
		{tool: "run_all", arg: "timeout_s", base: nb("run_all"),
			rangeText: "more than 0 and at most 600 seconds", valid: []float64{1}},
	}
}

// TestNumericArgumentsCheckedBeforeConversion: through the real mcp-go
// client, every numeric argument of every tool refuses values outside its
// range (1e10 and 1e308 seconds used to overflow time.Duration into a
// negative number and pass), negative values and fractions where a whole
// number is meant, with an error naming the argument, the range and the
// value; nothing reaches the backend. The table must cover every numeric
// argument the tools advertise.
func TestNumericArgumentsCheckedBeforeConversion(t *testing.T) {
	b := newFakeBackend()
	nbs := &recordingNotebooks{}
	srv := New(b, Options{})
	srv.AddNotebookTools(nbs)
	// NB: registered so that the table below must cover their numeric
	// arguments too; these tests never call them.
	srv.AddAssetTools(nil)
	srv.AddCheckpointTools(nil)
	c := clientFor(t, srv)

	table := numericArgs()
	covered := map[string]bool{}
	for _, na := range table {
		covered[na.tool+"."+na.arg] = true
	}
	tools, err := c.ListTools(asAdmin(context.Background()), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, tl := range tools.Tools {
		for name, p := range tl.InputSchema.Properties {
			typ, _ := p.(map[string]any)["type"].(string)
			if (typ == "number" || typ == "integer") && !covered[tl.Name+"."+name] {
				missing = append(missing, tl.Name+"."+name)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("numeric arguments not in the table (add them): %v", missing)
	}

	for _, na := range table {
		bad := []float64{1e10, 1e308, -1e308, -1, math.MaxInt64, 1e19}
		if na.integer {
			bad = append(bad, 2.5, 0.000001)
		}
		for _, v := range bad {
			if na.tool == "get_execution" && na.arg == "since" && v == 1e10 {
				v = maxSafeInt + 2 // 1e10 is a valid cursor; the first refused one is past 2^53
			}
			if na.integer && v == 0.000001 && strings.HasPrefix(na.rangeText, "at least 1") {
				continue // below the range: covered by -1
			}
			args := map[string]any{na.arg: v}
			for k, x := range na.base {
				args[k] = x
			}
			before, beforeNB := len(b.order), nbs.count()
			res := call(t, c, na.tool, args)
			txt := textOf(res)
			if !res.IsError {
				t.Errorf("%s(%s=%g) accepted: %.200s", na.tool, na.arg, v, txt)
				continue
			}
			for _, want := range []string{`"` + na.arg + `"`, na.rangeText, fmtNum(v)} {
				if !strings.Contains(txt, want) {
					t.Errorf("%s(%s=%g): the error lacks %q: %s", na.tool, na.arg, v, want, txt)
				}
			}
			if len(b.order) != before || nbs.count() != beforeNB {
				t.Errorf("%s(%s=%g) reached the backend", na.tool, na.arg, v)
			}
		}
		// A value in range is not refused for its range.
		for _, v := range na.valid {
			args := map[string]any{na.arg: v}
			for k, x := range na.base {
				args[k] = x
			}
			if txt := textOf(call(t, c, na.tool, args)); strings.Contains(txt, `"`+na.arg+`" must be`) {
				t.Errorf("%s(%s=%g) refused in range: %s", na.tool, na.arg, v, txt)
			}
		}
		// The wrong type names the argument too.
		args := map[string]any{na.arg: "5"}
		for k, x := range na.base {
			args[k] = x
		}
		wantError(t, call(t, c, na.tool, args), `"`+na.arg+`" must be a number`)
	}
	stillUp(t, c)
}

// TestArgsParserRefusesNonFinite: values only an in-process caller can send
// (NaN, ±Inf do not survive JSON) are refused by the parser itself.
func TestArgsParserRefusesNonFinite(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), math.Inf(-1), float32(math.Inf(1))} {
		a := &args{m: map[string]any{"wait_s": v}}
		if d := a.duration("wait_s", 0, span{lo: 0, hi: 55, unit: "seconds"}); a.err == nil || d != 0 {
			t.Errorf("wait_s=%v: got %v, err %v", v, d, a.err)
		} else if !strings.Contains(a.err.Error(), `"wait_s" must be a finite number`) {
			t.Errorf("wait_s=%v: %v", v, a.err)
		}
	}
}

// checkParsed is what FuzzArgsNumbers asserts for one value: the parser
// either refuses with an error naming the argument, or returns a value in
// range that converted without overflow.
func checkParsed(t *testing.T, v float64) {
	r := span{lo: 0, loOpen: true, hi: 600, unit: "seconds"}
	a := &args{m: map[string]any{"timeout_s": v}}
	d := a.duration("timeout_s", 25*time.Second, r)
	if a.err != nil {
		if !strings.Contains(a.err.Error(), `"timeout_s"`) {
			t.Fatalf("%v: error does not name the argument: %v", v, a.err)
		}
		if d != 25*time.Second {
			t.Fatalf("%v: refused but returned %v, not the default", v, d)
		}
		return
	}
	if d <= 0 || d > 600*time.Second {
		t.Fatalf("%v: accepted as %v, outside (0, 600s]", v, d)
	}
	ri := span{lo: 0, hi: maxIndex}
	a = &args{m: map[string]any{"index": v}}
	n := a.integer("index", -1, ri)
	if a.err == nil && (n < 0 || n > maxIndex || float64(n) != v) {
		t.Fatalf("%v: integer accepted as %d", v, n)
	}
}

// FuzzArgsNumbers: no float64 makes the parser accept an out-of-range
// duration or integer (the seeds run in every `go test`).
func FuzzArgsNumbers(f *testing.F) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1e-300, 0.05, 1, 25, 600, 600.0000001, 1e10, 1e308, -1e308,
		math.MaxInt64, math.MaxFloat64, math.SmallestNonzeroFloat64, 9.3e9, 2.5, math.NaN(), math.Inf(1)} {
		f.Add(v)
	}
	f.Fuzz(checkParsed)
}

// clientFor is the real in-process mcp-go client of srv, initialised.
func clientFor(t testing.TB, srv *Server) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(srv.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c)
	return c
}
