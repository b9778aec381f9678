package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

func runEventsShow(ctx context.Context, args []string, sio eventsIO) error {
	fs := flag.NewFlagSet("events show", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs)
	principal := principalFlag(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("events show: give one sequence number or execution id")
	}
	filter := principalFilter(tailFilter{}, *principal)
	src, err := openSource(ctx, ef)
	if err != nil {
		return err
	}
	defer src.Close()
	out := newBufferedOut(sio.stdout)
	defer out.Flush()
	arg := pos[0]
	var mark uint64
	id := strings.TrimPrefix(arg, "execution/")
	if seq, err := strconv.ParseUint(arg, 10, 64); err == nil {
		if seq < src.First() || seq > src.Last() {
			return fmt.Errorf("events show %d: sequence out of range: the log holds events %d..%d", seq, src.First(), src.Last())
		}
		e, err := src.Get(seq)
		if err != nil {
			return fmt.Errorf("events show %d: %w", seq, err)
		}
		if events.StreamKind(e.Stream) != "execution" {
			if !filter.match(e) {
				return fmt.Errorf("events show %d: %s", seq, causedBy(e, *principal))
			}
			return showEvent(out, e)
		}
		id, mark = events.StreamID(e.Stream), seq
	}
	var story []events.Event
	err = src.ReadStream(ctx, events.ExecutionStream(id), 0, func(e events.Event) error {
		e.Raw = append([]byte(nil), e.Raw...)
		story = append(story, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("events show %s: %w", arg, err)
	}
	if len(story) == 0 {
		hint := "list executions with `mcp-jupyter events tail --type ExecutionQueued`"
		var isKernel bool
		_ = src.ReadStream(ctx, events.KernelStream(id), 0, func(events.Event) error { isKernel = true; return eventlog.ErrStop })
		if isKernel {
			hint = "that is a kernel id: try `mcp-jupyter events tail --kernel " + id + "`"
		}
		return fmt.Errorf("events show %s: no execution with that id in the log (events %d..%d); %s", arg, src.First(), src.Last(), hint)
	}
	kept := story[:0:0]
	for _, e := range story {
		if filter.match(e) {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		return fmt.Errorf("events show %s: none of its %d events: it was %s", arg, len(story), causedBy(story[0], *principal))
	}
	return showExecution(out, kept, mark)
}

// causedBy says who caused e, for a --principal that selected nothing.
func causedBy(e events.Event, want string) string {
	who := "caused by nobody (the server's own, or from before principals existed)"
	if e.Principal != "" {
		who = fmt.Sprintf("caused by %q", e.Principal)
	}
	return fmt.Sprintf("event %d (%s) was %s, not --principal %s", e.Seq, e.Type, who, want)
}

// showEvent prints one event in full.
func showEvent(w io.Writer, e events.Event) error {
	j, err := e.MarshalJSON()
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		return err
	}
	pretty, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event %d: %s on %s\n%s\n", e.Seq, e.Type, e.Stream, pretty)
	return err
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[a-zA-Z]")

// showExecution tells one execution's story: each step with the time since
// it was queued and since the step before, outputs in order.
func showExecution(w io.Writer, story []events.Event, mark uint64) error {
	first := story[0]
	fmt.Fprintf(w, "execution %s", events.StreamID(first.Stream))
	if first.Kernel != "" {
		fmt.Fprintf(w, " on kernel %s", first.Kernel)
	}
	if first.Principal != "" {
		fmt.Fprintf(w, " by %s", first.Principal)
	}
	fmt.Fprintf(w, "\n")
	var queued, started, ended time.Time
	prev := first.Time
	for i := range story {
		e := &story[i]
		if err := e.DecodePayload(); err != nil {
			return err
		}
		marker := "  "
		if e.Seq == mark {
			marker = "->"
		}
		fmt.Fprintf(w, "%s %s  +%8.3fs  Δ%7.3fs  seq %-8d ", marker, e.Time.Format(events.TimeFormat),
			e.Time.Sub(first.Time).Seconds(), e.Time.Sub(prev).Seconds(), e.Seq)
		prev = e.Time
		var detail []string
		switch p := e.Payload.(type) {
		case events.ExecutionQueued:
			queued = e.Time
			fmt.Fprintf(w, "queued\n")
			detail = strings.Split(strings.TrimRight(p.Code, "\n"), "\n")
		case events.ExecutionStarted:
			started = e.Time
			fmt.Fprintf(w, "started (execute_request %s)\n", p.MsgID)
		case events.ExecutionFinished:
			ended = e.Time
			fmt.Fprintf(w, "finished: %s", p.Status)
			if p.ExecutionCount != 0 {
				fmt.Fprintf(w, " [%d]", p.ExecutionCount)
			}
			if p.ErrorName != "" {
				fmt.Fprintf(w, " %s: %s", p.ErrorName, p.ErrorValue)
			}
			fmt.Fprintln(w)
		case events.ExecutionInterrupted:
			ended = e.Time
			fmt.Fprintf(w, "interrupted (KeyboardInterrupt)\n")
		case events.ExecutionCancelled:
			ended = e.Time
			fmt.Fprintf(w, "cancelled before it started: %s\n", p.Reason)
		case events.ExecutionLost:
			ended = e.Time
			fmt.Fprintf(w, "lost: %s\n", p.Reason)
		case events.ExecutionInputRequested:
			fmt.Fprintf(w, "waiting for input: %q\n", p.Prompt)
		case events.ExecutionInputSent:
			fmt.Fprintf(w, "input sent\n")
		case events.IOPubMessageReceived:
			fmt.Fprintf(w, "%s", p.MsgType)
			detail = iopubDetail(w, p)
		default:
			fmt.Fprintf(w, "%s %s\n", e.Type, summary(e))
		}
		for _, l := range detail {
			fmt.Fprintf(w, "      | %s\n", l)
		}
	}
	switch {
	case !ended.IsZero() && !started.IsZero():
		fmt.Fprintf(w, "took %.3fs: %.3fs waiting in the queue, %.3fs running\n",
			ended.Sub(queued).Seconds(), started.Sub(queued).Seconds(), ended.Sub(started).Seconds())
	case !ended.IsZero():
		fmt.Fprintf(w, "ended %.3fs after it was queued, without starting\n", ended.Sub(queued).Seconds())
	default:
		fmt.Fprintf(w, "no outcome recorded yet (still queued or running as of event %d)\n", story[len(story)-1].Seq)
	}
	return nil
}

// iopubDetail finishes the step line of an IOPub message and returns the
// output's lines.
func iopubDetail(w io.Writer, p events.IOPubMessageReceived) []string {
	var c iopubContent
	if err := json.Unmarshal(p.Content, &c); err != nil {
		fmt.Fprintln(w)
		return []string{string(p.Content)}
	}
	lines := func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
	switch p.MsgType {
	case "status":
		fmt.Fprintf(w, " %s\n", c.ExecutionState)
	case "stream":
		fmt.Fprintf(w, " %s\n", c.Name)
		return lines(c.Text)
	case "error":
		fmt.Fprintf(w, " %s: %s\n", c.Ename, c.Evalue)
		var out []string
		for _, t := range c.Traceback {
			out = append(out, lines(ansi.ReplaceAllString(t, ""))...)
		}
		return out
	case "execute_input":
		fmt.Fprintln(w)
	case "execute_result", "display_data", "update_display_data":
		fmt.Fprintln(w)
		if t, ok := c.Data["text/plain"].(string); ok {
			return lines(t)
		}
		return []string{iopubSummary(p.MsgType, p.Content)}
	default:
		fmt.Fprintln(w)
	}
	return nil
}
