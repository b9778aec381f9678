package notebook

import (
	"encoding/json"
	"strings"
)

// Message is one IOPub message of an execution: its msg_type and content as
// the kernel sent them.
type Message struct {
	MsgType string
	Content json.RawMessage
}

// Outputs turns an execution's IOPub messages into nbformat 4 outputs as
// Jupyter front ends write them: consecutive stream chunks of one name
// become one output, display_data and execute_result keep their MIME bundles
// and metadata (execute_result its execution_count), error keeps ename,
// evalue and traceback, update_display_data replaces the outputs with its
// display_id, and clear_output empties the list (with wait=true, when the
// next output arrives). Other messages (status, execute_input, comms) are
// not outputs. A message whose content cannot be read is skipped.
func Outputs(msgs []Message) []json.RawMessage {
	type item struct {
		v         map[string]any
		streamBuf *strings.Builder
		displayID string
	}
	var list []item
	pendingClear := false
	for _, m := range msgs {
		var c map[string]any
		switch m.MsgType {
		case "stream", "display_data", "execute_result", "error", "update_display_data":
			if err := json.Unmarshal(m.Content, &c); err != nil || c == nil {
				continue
			}
		case "clear_output":
			var cl struct {
				Wait bool `json:"wait"`
			}
			_ = json.Unmarshal(m.Content, &cl)
			if cl.Wait {
				pendingClear = true
			} else {
				list, pendingClear = nil, false
			}
			continue
		default:
			continue
		}
		displayID := ""
		if t, ok := c["transient"].(map[string]any); ok {
			displayID, _ = t["display_id"].(string)
		}
		if m.MsgType == "update_display_data" {
			for i := range list {
				if displayID != "" && list[i].displayID == displayID {
					list[i].v["data"], list[i].v["metadata"] = orEmpty(c["data"]), orEmpty(c["metadata"])
				}
			}
			continue
		}
		if pendingClear {
			list, pendingClear = nil, false
		}
		switch m.MsgType {
		case "stream":
			name, _ := c["name"].(string)
			text, _ := c["text"].(string)
			if n := len(list); n > 0 && list[n-1].streamBuf != nil && list[n-1].v["name"] == name {
				list[n-1].streamBuf.WriteString(text)
				continue
			}
			b := &strings.Builder{}
			b.WriteString(text)
			list = append(list, item{v: map[string]any{"output_type": "stream", "name": name}, streamBuf: b})
		case "display_data":
			list = append(list, item{v: map[string]any{"output_type": "display_data",
				"data": splitBundle(c["data"]), "metadata": orEmpty(c["metadata"])}, displayID: displayID})
		case "execute_result":
			list = append(list, item{v: map[string]any{"output_type": "execute_result", "execution_count": c["execution_count"],
				"data": splitBundle(c["data"]), "metadata": orEmpty(c["metadata"])}, displayID: displayID})
		case "error":
			tb, _ := c["traceback"].([]any)
			if tb == nil {
				tb = []any{}
			}
			list = append(list, item{v: map[string]any{"output_type": "error", "ename": str(c["ename"]),
				"evalue": str(c["evalue"]), "traceback": tb}})
		}
	}
	outs := make([]json.RawMessage, 0, len(list))
	for _, it := range list {
		if it.streamBuf != nil {
			it.v["text"] = SplitLines(it.streamBuf.String())
		}
		b, err := json.Marshal(it.v)
		if err != nil {
			continue // only JSON-decoded values: cannot fail
		}
		outs = append(outs, b)
	}
	return outs
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func orEmpty(v any) any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

// splitBundle stores text/* (and SVG, JavaScript) values as lists of lines,
// as nbformat does; JSON and binary types stay as they are.
func splitBundle(v any) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		return map[string]any{}
	}
	for k, val := range m {
		s, ok := val.(string)
		if ok && (strings.HasPrefix(k, "text/") || k == "image/svg+xml" || k == "application/javascript") {
			m[k] = SplitLines(s)
		}
	}
	return m
}
