package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// MaxFullTextBytes bounds the text one fulltext request merges and
// stores: beyond it the asset holds the first MaxFullTextBytes and the
// answer says truncated.
const MaxFullTextBytes = 64 << 20

// MaxFullTextsAtOnce bounds the fulltext requests merging at once (each
// holds up to MaxFullTextBytes); a further one waits for a slot, as long
// as its request lasts.
const MaxFullTextsAtOnce = 2

// FullTextRequest is POST /ui/api/executions/{id}/fulltext's body.
type FullTextRequest struct {
	// Seq is the first seq of a stream output (Output.seq).
	Seq uint64 `json:"seq"`
}

// FullText is its answer: the asset holding the merged text.
type FullText struct {
	Asset     string `json:"asset"` // sha256
	URL       string `json:"url"`   // /assets/<sha256>: fetch it with the bearer header
	Bytes     int    `json:"bytes"`
	Lines     int    `json:"lines"`
	Truncated bool   `json:"truncated,omitempty"`
}

// streamContent is the part of an IOPub stream message's content read here.
type streamContent struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

func (h *Handler) fullText(w http.ResponseWriter, r *http.Request, slots chan struct{}) {
	id, err := pathID(r, "execution")
	if err != nil {
		respondError(w, err)
		return
	}
	var req FullTextRequest
	if err := decodeBody(w, r, &req); err != nil {
		respondError(w, err)
		return
	}
	if req.Seq == 0 {
		respondError(w, Errorf(http.StatusBadRequest, `give "seq": the seq of the stream output's first message, as GET /ui/api/executions/%s lists it`, id))
		return
	}
	select {
	case slots <- struct{}{}:
		defer func() { <-slots }()
	case <-r.Context().Done():
		respondError(w, Errorf(http.StatusServiceUnavailable, "the server is busy storing other full texts: retry"))
		return
	}
	m := merger{seq: req.Seq}
	var kernelID string
	for since := req.Seq - 1; ; {
		v, err := h.opts.Source.Execution(r.Context(), id, since)
		if err != nil {
			respondError(w, err)
			return
		}
		kernelID = v.Execution.KernelID
		if err := m.add(v.Outputs); err != nil {
			respondError(w, err)
			return
		}
		if m.done || !v.More || v.Cursor <= since {
			break
		}
		since = v.Cursor
	}
	if !m.started {
		respondError(w, Errorf(http.StatusNotFound, "execution %s has no output at seq %d: GET /ui/api/executions/%s lists its outputs and their seqs", id, req.Seq, id))
		return
	}
	text := m.text.Bytes()
	sum, err := h.opts.Source.StoreText(r.Context(), id, kernelID, text)
	if err != nil {
		respondError(w, err)
		return
	}
	respondJSON(w, http.StatusOK, FullText{Asset: sum, URL: "/assets/" + sum, Bytes: len(text), Lines: countLines(text), Truncated: m.truncated})
}

// merger joins the texts of consecutive stream messages of one name,
// starting at seq, as a Jupyter frontend shows them as one output.
type merger struct {
	seq       uint64
	name      string
	started   bool
	done      bool // a message of another kind or name ended the output
	truncated bool
	text      bytes.Buffer
}

// add takes the next outputs (seq ascending, all after seq-1).
func (m *merger) add(outs []queue.Output) error {
	for _, o := range outs {
		if m.done {
			return nil
		}
		if !m.started && o.Seq != m.seq {
			if o.Seq > m.seq {
				m.done = true // NB: nothing at seq: the caller answers 404
			}
			continue
		}
		var c streamContent
		if o.MsgType != "stream" || json.Unmarshal(o.Content, &c) != nil || c.Name == "" {
			if !m.started {
				return Errorf(http.StatusBadRequest, "the output at seq %d is a %s message, not stream text: only stream outputs (print, stderr) have a full text to store", m.seq, o.MsgType)
			}
			m.done = true
			return nil
		}
		if !m.started {
			m.started, m.name = true, c.Name
		} else if c.Name != m.name {
			m.done = true
			return nil
		}
		if left := MaxFullTextBytes - m.text.Len(); len(c.Text) > left {
			cut := left
			for cut > 0 && !utf8.RuneStart(c.Text[cut]) {
				cut-- // NB: never half a character
			}
			m.text.WriteString(c.Text[:cut])
			m.truncated, m.done = true, true
			return nil
		}
		m.text.WriteString(c.Text)
	}
	return nil
}

// countLines counts text's lines, a last one without a newline included.
func countLines(text []byte) int {
	n := bytes.Count(text, []byte{'\n'})
	if len(text) > 0 && text[len(text)-1] != '\n' {
		n++
	}
	return n
}
