package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// tailFilter selects events by envelope, without decoding payloads.
type tailFilter struct {
	kernel string
	stream string // "execution/<id>"
	types  map[string]bool
	// principal keeps the events that principal caused; noPrincipal, the
	// events nobody did (the server's own, and those from before
	// principals existed).
	principal   string
	noPrincipal bool
}

func (f tailFilter) match(e events.Event) bool {
	return (f.kernel == "" || e.Kernel == f.kernel) &&
		(f.stream == "" || e.Stream == f.stream) &&
		(f.types == nil || f.types[e.Type]) &&
		(f.principal == "" || e.Principal == f.principal) &&
		(!f.noPrincipal || e.Principal == "")
}

// principalFlag registers --principal on fs; its value goes into a
// tailFilter with principalFilter.
func principalFlag(fs *flag.FlagSet) *string {
	return fs.String("principal", "", `only events this principal caused ("-": only those nobody did: the server's own, and those written before principals existed)`)
}

// principalFilter sets f's principal selection from the --principal value.
func principalFilter(f tailFilter, v string) tailFilter {
	switch v {
	case "":
	case "-":
		f.noPrincipal = true
	default:
		f.principal = v
	}
	return f
}

func runEventsTail(ctx context.Context, args []string, sio eventsIO) error {
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs)
	follow := fs.Bool("f", false, "follow: keep printing new events as they become durable")
	kernel := fs.String("kernel", "", "only events about this kernel")
	execution := fs.String("execution", "", "only events of this execution")
	types := fs.String("type", "", "only events of these types (comma-separated)")
	principal := principalFlag(fs)
	since := fs.String("since", "", "start at this sequence or time")
	last := fs.Uint64("n", 0, "start this many events before the end (0: from the start)")
	asJSON := fs.Bool("json", false, "JSON Lines (the public JSON form of each event)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("events tail: unexpected argument %q (flags only)", pos[0])
	}
	filter := principalFilter(tailFilter{kernel: events.CanonicalID(*kernel)}, *principal)
	if *execution != "" {
		filter.stream = events.ExecutionStream(strings.TrimPrefix(*execution, "execution/"))
	}
	if *types != "" {
		filter.types = map[string]bool{}
		for _, t := range strings.Split(*types, ",") {
			t = strings.TrimSpace(t)
			if !events.Known(t) {
				return fmt.Errorf("events tail --type %q: unknown event type (known: %s)", t, strings.Join(events.Types(), ", "))
			}
			filter.types[t] = true
		}
	}
	src, err := openSource(ctx, ef)
	if err != nil {
		return err
	}
	defer src.Close()
	from := src.First()
	switch {
	case *since != "" && *last != 0:
		return errors.New("events tail: give --since or -n, not both")
	case *since != "":
		if from, err = resolveSince(src, *since, *follow); err != nil {
			return fmt.Errorf("events tail: %w", err)
		}
	case *last != 0 && src.Last() >= *last:
		from = max(from, src.Last()-*last+1)
	}
	out := newBufferedOut(sio.stdout)
	defer out.Flush()
	var line []byte
	visit := func(e events.Event) error {
		if !filter.match(e) {
			return nil
		}
		if *asJSON {
			line = appendEventJSON(line[:0], e)
		} else {
			line = appendEventLine(line[:0], &e)
		}
		line = append(line, '\n')
		_, err := out.Write(line)
		return err
	}
	if !*follow {
		return src.Scan(ctx, from, 0, visit)
	}
	// Following: flush whenever the log goes quiet, so a person sees each
	// event as it comes.
	err = src.FollowRaw(ctx, from-1, func(e events.Event) error {
		if err := visit(e); err != nil {
			return err
		}
		if e.Seq >= src.Last() {
			return out.Flush()
		}
		return nil
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// resolveSince finds where tail starts. Following, a time past the last
// event or the next sequence is fine: tail waits for it.
func resolveSince(src source, s string, follow bool) (uint64, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && follow && n == src.Last()+1 {
		return n, nil
	}
	seq, err := resolvePoint(src, "--since", s, false)
	if err != nil && follow && strings.Contains(err.Error(), "time out of range: the last event") {
		return src.Last() + 1, nil
	}
	return seq, err
}

// appendEventJSON appends the public JSON form of e, byte for byte what
// e.MarshalJSON gives for an event read from the log, without reflection.
func appendEventJSON(b []byte, e events.Event) []byte {
	if e.Raw == nil {
		j, err := e.MarshalJSON()
		if err != nil {
			return fmt.Appendf(b, `{"seq":%d,"error":%q}`, e.Seq, err.Error())
		}
		return append(b, j...)
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, events.TimeFormat)
	b = append(b, `","stream":`...)
	b = appendJSONString(b, e.Stream)
	if e.Kernel != "" {
		b = append(b, `,"kernel":`...)
		b = appendJSONString(b, e.Kernel)
	}
	if e.Node != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, e.Node)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, uint64(e.Version), 10)
	if e.Principal != "" {
		b = append(b, `,"principal":`...)
		b = appendJSONString(b, e.Principal)
	}
	b = append(b, `,"payload":`...)
	b = append(b, e.Raw...)
	return append(b, '}')
}

// appendJSONString quotes s as encoding/json does (HTML-safe).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendEventLine appends the one-line form for people:
//
//	seq time                        type                     stream  summary
func appendEventLine(b []byte, e *events.Event) []byte {
	n := len(b)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = pad(b, n, 8, true)
	b = append(b, ' ')
	b = e.Time.UTC().AppendFormat(b, events.TimeFormat)
	b = append(b, ' ')
	n = len(b)
	b = append(b, e.Type...)
	b = pad(b, n, 24, false)
	b = append(b, ' ')
	b = append(b, e.Stream...)
	if e.Principal != "" {
		b = append(b, " by "...)
		b = append(b, e.Principal...)
	}
	if s := summary(e); s != "" {
		b = append(b, "  "...)
		b = append(b, s...)
	}
	return b
}

// pad pads b[from:] to width with spaces, on the left when right-aligned.
func pad(b []byte, from, width int, right bool) []byte {
	w := len(b) - from
	if w >= width {
		return b
	}
	if !right {
		for ; w < width; w++ {
			b = append(b, ' ')
		}
		return b
	}
	b = append(b, make([]byte, width-w)...)
	copy(b[from+width-w:], b[from:from+w])
	for i := from; i < from+width-w; i++ {
		b[i] = ' '
	}
	return b
}

// iopubContent is what a one-line summary shows of an IOPub message.
type iopubContent struct {
	ExecutionState string         `json:"execution_state"`
	Name           string         `json:"name"`
	Text           string         `json:"text"`
	Ename          string         `json:"ename"`
	Evalue         string         `json:"evalue"`
	Data           map[string]any `json:"data"`
	Code           string         `json:"code"`
	Traceback      []string       `json:"traceback"`
}

// summary is the payload in a few words. An undecodable payload says so
// (verify tells the whole story).
func summary(e *events.Event) string {
	if err := e.DecodePayload(); err != nil {
		return "(" + err.Error() + ")"
	}
	switch p := e.Payload.(type) {
	case events.ServerStarted:
		return fmt.Sprintf("pid %d version %s", p.Pid, p.Version)
	case events.ServerStopped:
		return p.Reason
	case events.KernelStarted:
		return fmt.Sprintf("spec %s pid %d %s", p.Spec, p.Process.Pid, p.Label)
	case events.KernelShared:
		return fmt.Sprintf("with %s: %s", p.Principal, p.Access)
	case events.KernelStartFailed:
		return "spec " + p.Spec + ": " + clip(p.Reason, 100)
	case events.KernelRestarted:
		return fmt.Sprintf("pid %d", p.Process.Pid)
	case events.KernelDied:
		if p.ExitCode != nil {
			return fmt.Sprintf("%s (exit %d)", p.Reason, *p.ExitCode)
		}
		return p.Reason
	case events.KernelLost:
		return p.Reason
	case events.KernelShutDown:
		return p.Reason
	case events.ExecutionQueued:
		return "kernel " + p.KernelID + " code " + quoteClip(p.Code, 60)
	case events.ExecutionStarted:
		return "msg " + p.MsgID
	case events.ExecutionFinished:
		if p.ErrorName != "" {
			return fmt.Sprintf("%s [%d] %s: %s", p.Status, p.ExecutionCount, p.ErrorName, clip(p.ErrorValue, 80))
		}
		return fmt.Sprintf("%s [%d]", p.Status, p.ExecutionCount)
	case events.ExecutionCancelled:
		return p.Reason
	case events.ExecutionLost:
		return p.Reason
	case events.ExecutionInputRequested:
		return "prompt " + quoteClip(p.Prompt, 60)
	case events.IOPubMessageReceived:
		return p.MsgType + " " + iopubSummary(p.MsgType, p.Content)
	case events.IOPubGapRecorded:
		return fmt.Sprintf("%d messages dropped: %s", p.Dropped, p.Reason)
	case events.ExecutionOutputLost:
		if p.Messages == 0 {
			return "an unknown number of output messages lost: " + p.Reason
		}
		return fmt.Sprintf("%d output messages lost: %s", p.Messages, p.Reason)
	}
	return clip(string(e.Raw), 100)
}

func iopubSummary(msgType string, content []byte) string {
	var c iopubContent
	if err := json.Unmarshal(content, &c); err != nil {
		return clip(string(content), 80)
	}
	switch msgType {
	case "status":
		return c.ExecutionState
	case "stream":
		return c.Name + " " + quoteClip(c.Text, 80)
	case "error":
		return c.Ename + ": " + clip(c.Evalue, 80)
	case "execute_input":
		return quoteClip(c.Code, 60)
	case "execute_result", "display_data", "update_display_data":
		if t, ok := c.Data["text/plain"].(string); ok {
			return quoteClip(t, 80)
		}
		var kinds []string
		for k := range c.Data {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		return strings.Join(kinds, ",")
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func quoteClip(s string, n int) string { return strconv.Quote(clip(s, n)) }
