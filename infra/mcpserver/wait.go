package mcpserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// followed is what follow saw of an execution.
type followed struct {
	Execution queue.Execution
	Outputs   []queue.Output // the outputs after the starting cursor, up to the reply's byte bound
	Cursor    uint64         // pass as since to get only newer outputs
	// More: outputs after Cursor were left out to keep the reply (and the
	// server's memory) bounded; get_execution since=Cursor reads them.
	More bool
	// RestoreNotice: see ExecutionView.
	RestoreNotice string
}

// maxFollowBytes bounds the output content one reply collects. An
// execution that printed more is read in pieces through its cursor.
const maxFollowBytes = 1 << 20

// settled reports whether waiting longer cannot help: the execution finished,
// or it waits for input only the agent can give.
func settled(x queue.Execution) bool {
	return x.Status.Done() || x.Status == queue.StatusInputRequired
}

// follow reads execution id from cursor since and, for up to wait, waits
// for it to settle, woken by the backend's Changed channel (never by
// polling). New outputs are reported to p as they arrive. It returns early
// with ctx's error when the caller goes away; the execution is not touched.
func (s *Server) follow(ctx context.Context, id string, since uint64, wait time.Duration, p *progress) (followed, error) {
	f := followed{Cursor: since}
	collected := 0
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		v, err := s.backend.Execution(ctx, id, f.Cursor)
		if err != nil {
			return f, err
		}
		f.Execution, f.RestoreNotice = v.Execution, v.RestoreNotice
		f.Outputs = append(f.Outputs, v.Outputs...)
		f.Cursor = max(f.Cursor, v.Cursor)
		for _, o := range v.Outputs {
			f.Cursor = max(f.Cursor, o.Seq)
		}
		p.send(ctx, v.Outputs)
		for _, o := range v.Outputs {
			collected += len(o.Content)
		}
		if collected >= maxFollowBytes {
			// NB: stop here rather than hold more: the reply says where to
			// read on from.
			f.More = v.More || !settled(v.Execution)
			return f, nil
		}
		if v.More {
			// NB: a read returns one page; what is already there is read on
			// at once (an execute woken only at its end finds all its
			// output there), up to maxFollowBytes.
			continue
		}
		if settled(v.Execution) || timeout == nil {
			return f, nil
		}
		select {
		case <-v.Changed:
		case <-timeout:
			return f, nil
		case <-ctx.Done():
			return f, ctx.Err()
		}
	}
}

// progress sends an execute call's new output as notifications/progress,
// when the client asked for progress with a token.
type progress struct {
	srv    *server.MCPServer
	token  mcp.ProgressToken
	budget int
	count  float64
	log    *slog.Logger
}

func (s *Server) progressFor(ctx context.Context, req mcp.CallToolRequest) *progress {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil
	}
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	return &progress{srv: srv, token: req.Params.Meta.ProgressToken, budget: s.opts.OutputBudget, log: s.log}
}

// send reports outs. NB: a notification that cannot be delivered is logged
// and dropped: progress is a courtesy, the reply still carries every output.
func (p *progress) send(ctx context.Context, outs []queue.Output) {
	if p == nil || len(outs) == 0 {
		return
	}
	msg := progressText(outs)
	p.count += float64(len(outs))
	if msg == "" {
		return
	}
	msg, _ = Truncate(msg, p.budget, "")
	err := p.srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
		"progressToken": p.token,
		"progress":      p.count,
		"message":       msg,
	})
	if err != nil {
		p.log.Debug("mcp: progress notification not sent", "err", err)
	}
}

// progressText is new output as one line-oriented text: stream text as is
// (consecutive chunks of one stream merged, repeated warnings on stderr
// folded as in a reply), errors as their first line, displays by their
// text/llm+plain or else their text/plain.
func progressText(outs []queue.Output) string {
	var parts []shown // streams merged as in a reply; errors and displays as unnamed parts
	add := func(name, text string) {
		if n := len(parts); n > 0 && name != "" && parts[n-1].name == name {
			parts[n-1].text.WriteString(text)
			return
		}
		b := &strings.Builder{}
		b.WriteString(text)
		parts = append(parts, shown{msgType: "stream", name: name, text: b})
	}
	for _, o := range outs {
		switch o.MsgType {
		case "stream":
			var c struct {
				Name string `json:"name"`
				Text string `json:"text"`
			}
			if json.Unmarshal(o.Content, &c) == nil {
				add(c.Name, c.Text)
			}
		case "error":
			var c struct {
				Name  string `json:"ename"`
				Value string `json:"evalue"`
			}
			if json.Unmarshal(o.Content, &c) == nil {
				add("", "Error: "+c.Name+": "+c.Value+"\n")
			}
		case "execute_result", "display_data":
			var c struct {
				Data map[string]json.RawMessage `json:"data"`
			}
			if json.Unmarshal(o.Content, &c) != nil {
				continue
			}
			text := c.Data[mimeLLMText]
			if len(text) == 0 || string(text) == "null" {
				text = c.Data[mimeText]
			}
			if text != nil {
				add("", bundleString(text)+"\n")
			}
		}
	}
	warnings := newWarningFold(parts)
	var b strings.Builder
	for _, p := range parts {
		text := StripANSI(p.text.String())
		if p.name == "stderr" {
			text = warnings.apply(text)
		}
		b.WriteString(text)
	}
	return b.String()
}
