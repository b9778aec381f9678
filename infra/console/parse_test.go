package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// parseBodySeeds are the bodies the fuzzer starts from, kept as a test.
var parseBodySeeds = []string{
	``, ` `, `{}`, `{"confirm":true}`, `{"confirm":false}`, `{"confirm":"yes"}`, `{"confirmed":true}`,
	`{"name":"friday"}`, `{"seq":12}`, `{"seq":-1}`, `{"seq":1e30}`, `[]`, `null`, `{"confirm":true}{"confirm":true}`,
	`{"confirm":`, "\x00", `{"name":"` + strings.Repeat("a", 1000) + `"}`,
}

// checkParse asserts the contract of parseBody on one body: nil or a 400
// StatusError, never a panic, and a body with a field the type does not
// have is refused.
func checkParse(t *testing.T, body string) {
	t.Helper()
	for _, v := range []any{&ConfirmRequest{}, &SaveRequest{}, &FullTextRequest{}} {
		err := parseBody([]byte(body), v)
		if err == nil {
			continue
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Msg == "" {
			t.Fatalf("parseBody(%q) into %T: %v, want a 400 StatusError", body, v, err)
		}
	}
}

func TestParseBodySeeds(t *testing.T) {
	for _, s := range parseBodySeeds {
		checkParse(t, s)
	}
	var c ConfirmRequest
	if err := parseBody([]byte(`{"confirm":true}`), &c); err != nil || !c.Confirm {
		t.Fatalf("confirm: %v %+v", err, c)
	}
	for _, bad := range []string{`{"confirmed":true}`, `{"confirm":"yes"}`, `{"confirm":true}{}`, `{"confirm":`, `[]`} {
		if err := parseBody([]byte(bad), &ConfirmRequest{}); err == nil {
			t.Errorf("parseBody(%q) accepted", bad)
		}
	}
	var f FullTextRequest
	if err := parseBody([]byte(`{"seq":-1}`), &f); err == nil {
		t.Errorf("a negative seq was accepted")
	}
}

func FuzzParseBody(f *testing.F) {
	for _, s := range parseBodySeeds {
		f.Add(s)
	}
	f.Fuzz(checkParse)
}

// TestDecodeBodyBounds: a body over MaxBodyBytes is 413 whether or not it
// declares its length; a body that is not JSON is 415 or 400.
func TestDecodeBodyBounds(t *testing.T) {
	big := `{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	for _, chunked := range []bool{false, true} {
		req := httptest.NewRequest("POST", "/ui/api/kernels/k/checkpoints", strings.NewReader(big))
		if chunked {
			req.ContentLength = -1
		}
		err := decodeBody(httptest.NewRecorder(), req, &SaveRequest{})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusRequestEntityTooLarge || !strings.Contains(se.Msg, "too large") {
			t.Fatalf("chunked %v: %v", chunked, err)
		}
	}
	req := httptest.NewRequest("POST", "/x", strings.NewReader("confirm=true"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var se *StatusError
	if err := decodeBody(httptest.NewRecorder(), req, &ConfirmRequest{}); !errors.As(err, &se) || se.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("a form body: %v, want 415", err)
	}
}

// queryUintSeeds are query values, kept as a test.
var queryUintSeeds = []string{"", "0", "1", "18446744073709551615", "18446744073709551616", "-1", "1.5", "0x10", " 1", "１", "1e3"}

func checkQueryUint(t *testing.T, s string) {
	n, err := queryUint(s, "since", 7)
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Msg, "since") || len(se.Msg) > 300 {
			t.Fatalf("queryUint(%q): %v", s, err)
		}
		return
	}
	if s == "" && n != 7 {
		t.Fatalf("empty: %d, want the default", n)
	}
}

func TestQueryUintSeeds(t *testing.T) {
	for _, s := range queryUintSeeds {
		checkQueryUint(t, s)
	}
	for s, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": 1<<64 - 1} {
		if n, err := queryUint(s, "since", 0); err != nil || n != want {
			t.Errorf("queryUint(%q) = %d, %v", s, n, err)
		}
	}
	for _, bad := range []string{"-1", "1.5", "0x10", "abc", "18446744073709551616"} {
		if _, err := queryUint(bad, "since", 0); err == nil {
			t.Errorf("queryUint(%q) accepted", bad)
		}
	}
}

func FuzzQueryUint(f *testing.F) {
	for _, s := range queryUintSeeds {
		f.Add(s)
	}
	f.Fuzz(checkQueryUint)
}

// out is an IOPub output for the merger tests.
func out(seq uint64, msgType, content string) queue.Output {
	return queue.Output{Seq: seq, MsgType: msgType, Content: json.RawMessage(content)}
}

// TestMergerJoinsOneStreamOutput: the full text is the texts of the
// consecutive stream messages of the first one's name, from seq on, read
// over several pages; another name or kind ends it; a seq that is not a
// stream is refused, one that is no output is not found.
func TestMergerJoinsOneStreamOutput(t *testing.T) {
	outs := []queue.Output{
		out(10, "stream", `{"name":"stdout","text":"a\n"}`),
		out(11, "stream", `{"name":"stdout","text":"b\n"}`),
		out(13, "stream", `{"name":"stdout","text":"\u001b[31mc\u001b[0m"}`),
		out(14, "stream", `{"name":"stderr","text":"warn\n"}`),
		out(15, "stream", `{"name":"stdout","text":"later\n"}`),
		out(16, "display_data", `{"data":{"text/plain":"x"}}`),
	}
	m := merger{seq: 10}
	_ = m.add(outs[:2]) // page 1
	_ = m.add(outs[2:]) // page 2
	if !m.started || !m.done || m.text.String() != "a\nb\n\x1b[31mc\x1b[0m" || countLines(m.text.Bytes()) != 3 {
		t.Fatalf("merged %q (started %v done %v)", m.text.String(), m.started, m.done)
	}
	m = merger{seq: 14}
	_ = m.add(outs)
	if m.text.String() != "warn\n" {
		t.Fatalf("stderr alone: %q", m.text.String())
	}
	m = merger{seq: 16}
	var se *StatusError
	if err := m.add(outs); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("display_data: %v, want 400", err)
	}
	m = merger{seq: 12}
	if err := m.add(outs); err != nil || m.started {
		t.Fatalf("seq 12 (no output): %v started %v", err, m.started)
	}
}

// TestMergerBounded: the merged text stops at MaxFullTextBytes and says so.
func TestMergerBounded(t *testing.T) {
	line := strings.Repeat("x", 1<<20-1) + "\n"
	content, _ := json.Marshal(streamContent{Name: "stdout", Text: line})
	m := merger{seq: 1}
	for seq := uint64(1); !m.done; seq++ {
		if err := m.add([]queue.Output{{Seq: seq, MsgType: "stream", Content: content}}); err != nil {
			t.Fatal(err)
		}
		if seq > MaxFullTextBytes>>20+2 {
			t.Fatalf("not done after %d MiB", seq)
		}
	}
	if m.text.Len() != MaxFullTextBytes || !m.truncated {
		t.Fatalf("%d bytes, truncated %v", m.text.Len(), m.truncated)
	}
	// The bound inside a character: the character is left out whole.
	m = merger{seq: 1, started: true, name: "stdout"}
	m.text.WriteString(strings.Repeat("x", MaxFullTextBytes-1))
	content, _ = json.Marshal(streamContent{Name: "stdout", Text: "é"})
	if err := m.add([]queue.Output{{Seq: 2, MsgType: "stream", Content: content}}); err != nil {
		t.Fatal(err)
	}
	if m.text.Len() != MaxFullTextBytes-1 || !m.truncated || !utf8.Valid(m.text.Bytes()) {
		t.Fatalf("cut inside é: %d bytes, valid %v", m.text.Len(), utf8.Valid(m.text.Bytes()))
	}
}

func FuzzMerger(f *testing.F) {
	f.Add(uint64(1), "stream", `{"name":"stdout","text":"a"}`, "stream", `{"name":"stdout","text":"b"}`)
	f.Add(uint64(2), "stream", `{"name":"stdout","text":"a"}`, "error", `{}`)
	f.Add(uint64(1), "stream", `{"name":""}`, "stream", `not json`)
	f.Fuzz(func(t *testing.T, seq uint64, t1, c1, t2, c2 string) {
		m := merger{seq: seq}
		err := m.add([]queue.Output{out(1, t1, c1), out(2, t2, c2)})
		var se *StatusError
		if err != nil && (!errors.As(err, &se) || se.Status != http.StatusBadRequest) {
			t.Fatalf("%v", err)
		}
		if m.text.Len() > len(c1)+len(c2) {
			t.Fatalf("merged more than was given")
		}
	})
}

// TestExecutionsPage: newest first, limit bounded, before= pages back by
// queued seq, more says whether older ones remain; submitters and
// durations as the design says.
func TestExecutionsPage(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var all []queue.Execution
	for i := range 7 {
		all = append(all, queue.Execution{ID: string(rune('a' + i)), QueuedSeq: uint64(10 * (i + 1)), Status: queue.StatusOK,
			By: "alice", StartedAt: t0, FinishedAt: t0.Add(1500 * time.Millisecond)})
	}
	all[6].Status, all[6].FinishedAt = queue.StatusRunning, time.Time{}
	all[5].Origin = &events.Origin{Kind: events.OriginFrontend, Client: "JupyterLab"}
	all[4].By = ""
	ids := func(p ExecutionsPage) string {
		var s string
		for _, x := range p.Executions {
			s += x.ID
		}
		return s
	}
	now := t0.Add(3 * time.Second)
	p := executionsPage(all, 3, 0, now)
	if ids(p) != "gfe" || !p.More {
		t.Fatalf("first page: %s more %v", ids(p), p.More)
	}
	if p.Executions[0].DurationMS != 3000 || p.Executions[2].DurationMS != 1500 {
		t.Fatalf("durations: running %d, finished %d", p.Executions[0].DurationMS, p.Executions[2].DurationMS)
	}
	if p.Executions[1].Submitter != (Submitter{Kind: "frontend", Name: "alice", Client: "JupyterLab"}) ||
		p.Executions[2].Submitter != (Submitter{Kind: "agent", Name: "admin"}) || p.Executions[0].Submitter.Kind != "agent" {
		t.Fatalf("submitters: %+v", p.Executions)
	}
	p = executionsPage(all, 3, p.Executions[2].QueuedSeq, now)
	if ids(p) != "dcb" || !p.More {
		t.Fatalf("second page: %s more %v", ids(p), p.More)
	}
	p = executionsPage(all, 3, p.Executions[2].QueuedSeq, now)
	if ids(p) != "a" || p.More {
		t.Fatalf("last page: %s more %v", ids(p), p.More)
	}
	if p := executionsPage(nil, 50, 0, now); p.Executions == nil || len(p.Executions) != 0 || p.More {
		t.Fatalf("empty: %+v", p)
	}
	b, _ := json.Marshal(executionsPage(all[:1], 1, 0, now).Executions[0])
	for _, key := range []string{`"execution_id":"a"`, `"duration_ms":1500`, `"submitter":{"kind":"agent","name":"alice"}`, `"queued_seq":10`, `"status":"ok"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("execution JSON %s lacks %s", b, key)
		}
	}
}

// TestPathIDs: an id the API cannot hold is 400 saying what an id is;
// a hostile one is clipped in the message.
func TestPathIDs(t *testing.T) {
	for id, ok := range map[string]bool{"01jabc": true, "a-b_c": true, "a.b": false, "a b": false, strings.Repeat("x", 129): false, "": false} {
		req := httptest.NewRequest("GET", "/ui/api/executions/x", nil)
		req.SetPathValue("id", id)
		_, err := pathID(req, "execution")
		if (err == nil) != ok {
			t.Errorf("pathID(%q): %v", id, err)
		}
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("message not clipped: %d bytes", len(err.Error()))
		}
	}
}

// TestEchoedValuesClipped: what a caller sent and an error message repeats
// (an unknown API path, a Content-Type, an unknown body field, a
// checkpoint name to overwrite) is clipped, so a hostile request cannot
// make the answer as large as itself.
func TestEchoedValuesClipped(t *testing.T) {
	long := strings.Repeat("x", 4000)
	const bound = 600 // the longest message's own words plus a clipped value
	check := func(what string, err error) {
		t.Helper()
		var se *StatusError
		if !errors.As(err, &se) {
			t.Fatalf("%s: %v, want a StatusError", what, err)
		}
		if len(se.Msg) > bound || !strings.Contains(se.Msg, "xxxx…") {
			t.Errorf("%s: a %d-byte message, want the value clipped under %d: %.200q", what, len(se.Msg), bound, se.Msg)
		}
	}
	req := httptest.NewRequest("POST", "/ui/api/kernels/k/restart", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "text/"+long)
	check("Content-Type", decodeBody(httptest.NewRecorder(), req, &ConfirmRequest{}))
	check("unknown field", parseBody([]byte(`{"`+long+`":true}`), &ConfirmRequest{}))

	rec := httptest.NewRecorder()
	New(Options{}).API().ServeHTTP(rec, httptest.NewRequest("GET", "/ui/api/"+long, nil))
	var e struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != http.StatusNotFound {
		t.Fatalf("unknown path: %d %s", rec.Code, rec.Body)
	}
	check("unknown path", Errorf(rec.Code, "%s", e.Error))
}

// TestOverwriteNeedsConfirm: saving over a checkpoint's name with
// overwrite but without confirm is 400 saying to confirm, and the Steerer
// is never asked (the saved checkpoint stays as it was).
func TestOverwriteNeedsConfirm(t *testing.T) {
	s := &countingSteerer{}
	api := New(Options{Steerer: s}).API()
	for body, want := range map[string]int{
		`{"name":"friday","overwrite":true}`:                 http.StatusBadRequest,
		`{"name":"friday","overwrite":true,"confirm":false}`: http.StatusBadRequest,
		`{"name":"friday","overwrite":true,"confirm":true}`:  http.StatusOK,
		`{"name":"friday"}`:                                  http.StatusOK,
	} {
		req := httptest.NewRequest("POST", "/ui/api/kernels/k1/checkpoints", strings.NewReader(body))
		req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{Name: "alice", Scopes: auth.DefaultScopes}))
		rec := httptest.NewRecorder()
		before := s.saves
		api.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("%s: %d %s, want %d", body, rec.Code, rec.Body, want)
		}
		if want == http.StatusBadRequest && (s.saves != before || !strings.Contains(rec.Body.String(), `\"confirm\": true`)) {
			t.Fatalf("%s: %s; saves %d -> %d", body, rec.Body, before, s.saves)
		}
	}
}

// countingSteerer counts the saves it is asked for.
type countingSteerer struct {
	Steerer
	saves int
}

func (s *countingSteerer) SaveCheckpoint(ctx context.Context, kernelID, name string, overwrite bool) (Checkpoint, error) {
	s.saves++
	return Checkpoint{Name: name}, nil
}
