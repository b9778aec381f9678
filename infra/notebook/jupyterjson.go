package notebook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// StripTransient removes what nbformat's writer never stores (its
// strip_transient): the notebook's signature and orig_nbformat metadata
// and every cell's "trusted" flag, which Jupyter frontends add on read and
// send back on save. Without it a save that changed nothing would change
// the file's hash.
func (nb *Notebook) StripTransient() error {
	for _, k := range []string{"signature", "orig_nbformat", "orig_nbformat_minor"} {
		delete(nb.Metadata, k)
	}
	for i := range nb.Cells {
		md := nb.Cells[i].Metadata
		if len(md) == 0 || !bytes.Contains(md, []byte(`"trusted"`)) {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(md, &m); err != nil {
			return fmt.Errorf("cell %s metadata: %w", nb.Cells[i].ID, err)
		}
		delete(m, "trusted")
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		nb.Cells[i].Metadata = b
	}
	return nil
}

// JupyterJSON is the notebook file b as jupyter_server's contents API shows
// it: what nbformat.reads gives, multi-line strings joined (cell sources,
// stream texts, non-JSON MIME data and attachments), everything else as
// stored.
func JupyterJSON(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var nb map[string]any
	if err := dec.Decode(&nb); err != nil {
		return nil, &FormatError{Reason: "is not JSON", Err: err}
	}
	cells, _ := nb["cells"].([]any)
	for _, c := range cells {
		cell, ok := c.(map[string]any)
		if !ok {
			continue
		}
		joinField(cell, "source")
		if att, ok := cell["attachments"].(map[string]any); ok {
			for _, a := range att {
				if bundle, ok := a.(map[string]any); ok {
					joinBundle(bundle)
				}
			}
		}
		if cell["cell_type"] != TypeCode {
			continue
		}
		outs, _ := cell["outputs"].([]any)
		for _, o := range outs {
			out, ok := o.(map[string]any)
			if !ok {
				continue
			}
			switch out["output_type"] {
			case "execute_result", "display_data":
				if data, ok := out["data"].(map[string]any); ok {
					joinBundle(data)
				}
			default:
				joinField(out, "text")
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(nb); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func joinField(m map[string]any, key string) {
	if s, ok := joinLines(m[key]); ok {
		m[key] = s
	}
}

// joinBundle joins the multi-line values of a MIME bundle, but for JSON
// MIME types, whose lists are data.
func joinBundle(data map[string]any) {
	for k, v := range data {
		if k == "application/json" || strings.HasPrefix(k, "application/") && strings.HasSuffix(k, "+json") {
			continue
		}
		if s, ok := joinLines(v); ok {
			data[k] = s
		}
	}
}

func joinLines(v any) (string, bool) {
	list, ok := v.([]any)
	if !ok {
		return "", false
	}
	var b strings.Builder
	for _, l := range list {
		s, ok := l.(string)
		if !ok {
			return "", false
		}
		b.WriteString(s)
	}
	return b.String(), true
}
