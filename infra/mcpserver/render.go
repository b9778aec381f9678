package mcpserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// Jupyter MIME types the renderer treats specially.
const (
	mimeText   = "text/plain"
	mimeHTML   = "text/html"
	mimeSVG    = "image/svg+xml"
	mimePNG    = "image/png"
	mimeJPEG   = "image/jpeg"
	mimePlotly = "application/vnd.plotly.v1+json"
	// mimeLLMText is a representation written for language models (the
	// repr_llm convention); preferred over text/plain when a display
	// offers it.
	// NB: must equal jupyter.MIMELLMText (the kernels' formatter).
	mimeLLMText = "text/llm+plain"
	// llmSummaryMetadata, true in a display's metadata for mimeLLMText,
	// marks the kernel's own summary of a larger display (a DataFrame):
	// its HTML is still linked. NB: must equal jupyter.LLMSummaryMetadata.
	llmSummaryMetadata = "io.mcp-jupyter/summary"
	// mimeFullText is what a truncated output's full text is stored as.
	mimeFullText = "text/plain; charset=utf-8"
)

// renderConfig says how much of an output fits in a reply and where the rest
// goes.
type renderConfig struct {
	TextBudget  int // characters per text output
	ImageBudget int // bytes per inline image
	Assets      assetStore
}

// shown is one output as the agent sees it, after consecutive streams of the
// same name are merged and clear_output is applied.
type shown struct {
	seq     uint64 // of the output's first message
	msgType string
	name    string           // stream name
	text    *strings.Builder // stream text
	content json.RawMessage  // anything but a stream
}

// foldOutputs applies Jupyter's display semantics to an execution's IOPub
// messages: stream chunks of one name that follow each other become one
// output, and clear_output empties what came before it (with wait=true, only
// when the next output arrives, as a notebook front end does).
func foldOutputs(outs []queue.Output) []shown {
	var list []shown
	pendingClear := false
	for _, o := range outs {
		switch o.MsgType {
		case "stream", "execute_result", "display_data", "error":
		case "clear_output":
			var c struct {
				Wait bool `json:"wait"`
			}
			_ = json.Unmarshal(o.Content, &c)
			if c.Wait {
				pendingClear = true
			} else {
				list, pendingClear = nil, false
			}
			continue
		default:
			continue // status, execute_input, comm traffic: not outputs
		}
		if pendingClear {
			list, pendingClear = nil, false
		}
		if o.MsgType != "stream" {
			list = append(list, shown{seq: o.Seq, msgType: o.MsgType, content: o.Content})
			continue
		}
		var s struct {
			Name string `json:"name"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(o.Content, &s); err != nil {
			list = append(list, shown{seq: o.Seq, msgType: "unreadable", content: o.Content})
			continue
		}
		if n := len(list); n > 0 && list[n-1].msgType == "stream" && list[n-1].name == s.Name {
			list[n-1].text.WriteString(s.Text)
			continue
		}
		b := &strings.Builder{}
		b.WriteString(s.Text)
		list = append(list, shown{seq: o.Seq, msgType: "stream", name: s.Name, text: b})
	}
	return list
}

// Whole-reply limits, in multiples of the per-output budgets: many small
// outputs must not add up to a reply no agent can read.
const (
	replyTextBudgets  = 4
	replyImageBudgets = 2
)

// renderOutputs turns an execution's IOPub messages into MCP content: text
// within the budget (the full text stored and linked), errors without
// terminal colours, small PNG/JPEG inline, and rich or large displays stored
// and linked. It never fails: an output it cannot store is cut and says so.
// When the outputs together exceed the reply limits, the rest is left out
// with a note giving the cursor to read it from.
func renderOutputs(outs []queue.Output, cfg renderConfig) []mcp.Content {
	var cs []mcp.Content
	list := foldOutputs(outs)
	warnings := newWarningFold(list)
	textLeft, imageLeft := replyTextBudgets*cfg.TextBudget, replyImageBudgets*cfg.ImageBudget
	for i, s := range list {
		if textLeft <= 0 {
			cs = append(cs, mcp.NewTextContent(fmt.Sprintf("… %d more outputs not shown (this reply is full). "+
				"Call get_execution with since=%d to read them.", len(list)-i, s.seq-1)))
			break
		}
		c := cfg
		c.Assets.origin.OutputIndex = i
		// NB: once the inline-image allowance is spent, images are linked.
		c.ImageBudget = min(cfg.ImageBudget, max(imageLeft, 0))
		before := len(cs)
		cs = append(cs, renderShown(s, c, warnings)...)
		for _, c := range cs[before:] {
			switch c := c.(type) {
			case mcp.TextContent:
				textLeft -= utf8.RuneCountInString(c.Text)
			case mcp.ImageContent:
				imageLeft -= base64.StdEncoding.DecodedLen(len(c.Data))
			}
		}
	}
	return cs
}

// renderShown renders one folded output; stderr has its repeated warnings
// folded.
func renderShown(s shown, cfg renderConfig, warnings warningFold) []mcp.Content {
	switch s.msgType {
	case "stream":
		label := ""
		if s.name != "stdout" {
			label = "[" + s.name + "]\n"
		}
		text := StripANSI(s.text.String())
		if s.name == "stderr" {
			text = warnings.apply(text)
			if text == "" {
				return nil // every line was a repeat shown earlier in the reply
			}
		}
		return renderText(label, text, cfg)
	case "error":
		return renderError(s.content, cfg)
	case "execute_result", "display_data":
		return renderBundle(s.msgType, s.content, cfg)
	}
	return []mcp.Content{mcp.NewTextContent("(an output that could not be decoded was skipped)")}
}

// renderText is label+text within the budget; a cut text is stored whole and
// linked.
func renderText(label, text string, cfg renderConfig) []mcp.Content {
	if _, truncated := Truncate(text, cfg.TextBudget, ""); !truncated {
		return []mcp.Content{mcp.NewTextContent(label + text)}
	}
	uri, err := cfg.Assets.put([]byte(text), mimeFullText)
	if err != nil {
		cut, _ := Truncate(text, cfg.TextBudget, "(not stored: "+err.Error()+")")
		return []mcp.Content{mcp.NewTextContent(label + cut)}
	}
	cut, _ := Truncate(text, cfg.TextBudget, uri)
	return []mcp.Content{
		mcp.NewTextContent(label + cut),
		mcp.NewResourceLink(uri, "full output", fmt.Sprintf("The full text (%d bytes) of the output cut above.", len(text)), mimeFullText),
	}
}

func renderError(content json.RawMessage, cfg renderConfig) []mcp.Content {
	var e struct {
		Name      string   `json:"ename"`
		Value     string   `json:"evalue"`
		Traceback []string `json:"traceback"`
	}
	if err := json.Unmarshal(content, &e); err != nil {
		return []mcp.Content{mcp.NewTextContent("(an error output that could not be decoded was skipped)")}
	}
	return renderText("", formatError(e.Name, e.Value, e.Traceback), cfg)
}

// formatError is an error as an agent reads it: the exception on the first
// line, then the traceback without terminal colours.
func formatError(name, value string, traceback []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Error: %s: %s", name, StripANSI(value))
	if len(traceback) > 0 {
		b.WriteString("\n")
		b.WriteString(StripANSI(strings.Join(traceback, "\n")))
	}
	return b.String()
}

// renderBundle renders a display_data or execute_result. Its text is the
// text/llm+plain when the display offers one (written for models: a
// DataFrame's shape, dtypes and first rows rather than pandas' wide table),
// else its text/plain. Images come inline or linked; SVG, HTML and Plotly
// are linked — but not the HTML of an object that describes itself in
// text/llm+plain, unless that text is marked as the kernel's summary of a
// larger display (llmSummaryMetadata), as a DataFrame's is.
func renderBundle(msgType string, content json.RawMessage, cfg renderConfig) []mcp.Content {
	var d struct {
		Data           map[string]json.RawMessage `json:"data"`
		Metadata       map[string]json.RawMessage `json:"metadata"`
		ExecutionCount *int                       `json:"execution_count"`
	}
	if err := json.Unmarshal(content, &d); err != nil {
		return []mcp.Content{mcp.NewTextContent("(a display output that could not be decoded was skipped)")}
	}
	text := d.Data[mimeText]
	llm, hasLLM := d.Data[mimeLLMText]
	if hasLLM {
		text = llm
	}
	var cs []mcp.Content
	for _, mime := range []string{mimePNG, mimeJPEG} {
		if raw, ok := d.Data[mime]; ok {
			cs = append(cs, renderImage(mime, raw, cfg))
		}
	}
	for _, mime := range []string{mimeSVG, mimeHTML, mimePlotly} {
		raw, ok := d.Data[mime]
		if !ok || (mime == mimeHTML && hasLLM && !isLLMSummary(d.Metadata[mimeLLMText])) {
			continue
		}
		body := []byte(bundleString(raw))
		if mime == mimePlotly {
			body = raw // a JSON object, stored as such
		}
		cs = append(cs, linkAsset(body, mime, cfg))
	}
	label := ""
	if msgType == "execute_result" && d.ExecutionCount != nil {
		label = fmt.Sprintf("Out[%d]: ", *d.ExecutionCount)
	}
	switch {
	case text != nil:
		cs = append(cs, renderText(label, StripANSI(bundleString(text)), cfg)...)
	case len(cs) == 0:
		// Nothing we know how to show: fall back to the first textual type.
		mimes := make([]string, 0, len(d.Data))
		for m := range d.Data {
			mimes = append(mimes, m)
		}
		sort.Strings(mimes)
		for _, m := range mimes {
			if isTextMIME(m) {
				cs = append(cs, renderText(label+"("+m+")\n", bundleString(d.Data[m]), cfg)...)
				break
			}
		}
		if len(cs) == 0 && len(mimes) > 0 {
			cs = append(cs, mcp.NewTextContent(fmt.Sprintf("(a display of type %s that cannot be shown as text)", strings.Join(mimes, ", "))))
		}
	}
	return cs
}

// isLLMSummary reports whether a display's metadata for text/llm+plain marks
// the text as the kernel's summary of a larger display.
func isLLMSummary(md json.RawMessage) bool {
	var m map[string]any
	if len(md) == 0 || json.Unmarshal(md, &m) != nil {
		return false
	}
	return m[llmSummaryMetadata] == true
}

// renderImage is a PNG or JPEG inline when it fits the image budget, and
// stored and linked otherwise.
func renderImage(mime string, raw json.RawMessage, cfg renderConfig) mcp.Content {
	// NB: nbformat allows line breaks in base64 data; MCP clients may not.
	b64 := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' {
			return -1
		}
		return r
	}, bundleString(raw))
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return mcp.NewTextContent(fmt.Sprintf("(an %s output with invalid base64 data was skipped)", mime))
	}
	if len(data) <= cfg.ImageBudget {
		return mcp.NewImageContent(b64, mime)
	}
	return linkAsset(data, mime, cfg)
}

// linkAsset stores body and returns a link to it.
func linkAsset(body []byte, mime string, cfg renderConfig) mcp.Content {
	uri, err := cfg.Assets.put(body, mime)
	if err != nil {
		return mcp.NewTextContent(fmt.Sprintf("(a %s output of %d bytes could not be stored: %v)", mime, len(body), err))
	}
	return mcp.NewResourceLink(uri, assetName(mime),
		fmt.Sprintf("%s output, %d bytes: too large or too rich to show inline; read the resource to get it.", mime, len(body)), mime)
}

func assetName(mime string) string {
	switch mime {
	case mimeHTML:
		return "HTML output"
	case mimeSVG:
		return "SVG image"
	case mimePlotly:
		return "Plotly figure"
	case mimePNG, mimeJPEG:
		return "image"
	}
	return "output"
}

// bundleString reads a MIME bundle value: a JSON string, or (as nbformat
// stores it) a list of lines. Anything else is returned as raw JSON.
func bundleString(raw json.RawMessage) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		return strings.Join(lines, "")
	}
	return string(raw)
}
