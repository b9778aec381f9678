package testkit

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/net/html"
)

// HTMLExternalRefs lists what an HTML document would fetch by itself: every
// src, href, action, poster, srcset, data or formaction attribute that is not
// empty, a fragment (#x), data: or about:, every <link>, <base> and
// <meta http-equiv="refresh">, and every url(...) or @import in its <style>
// elements and style attributes but data: ones. Script text is not read (the
// browser test checks what scripts fetch). A self-contained document
// (an MCP Apps view) lists nothing.
func HTMLExternalRefs(doc []byte) []string {
	var refs []string
	z := html.NewTokenizer(bytes.NewReader(doc))
	inStyle := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return refs
		case html.TextToken:
			if inStyle {
				refs = append(refs, cssRefs("<style>", string(z.Text()))...)
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "style" {
				inStyle = false
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "style":
				inStyle = true
			case "link", "base":
				refs = append(refs, fmt.Sprintf("<%s>", tok.Data))
			}
			for _, a := range tok.Attr {
				switch a.Key {
				case "src", "href", "action", "poster", "srcset", "data", "formaction", "background":
					v := strings.TrimSpace(a.Val)
					if v != "" && !strings.HasPrefix(v, "#") && !strings.HasPrefix(v, "data:") && !strings.HasPrefix(v, "about:") {
						refs = append(refs, fmt.Sprintf("<%s %s=%q>", tok.Data, a.Key, v))
					}
				case "http-equiv":
					if strings.EqualFold(a.Val, "refresh") {
						refs = append(refs, "<meta http-equiv=refresh>")
					}
				case "style":
					refs = append(refs, cssRefs("style=", a.Val)...)
				}
			}
		}
	}
}

func cssRefs(where, css string) []string {
	var refs []string
	low := strings.ToLower(css)
	for i := 0; ; {
		j := strings.Index(low[i:], "url(")
		if j < 0 {
			break
		}
		arg := strings.TrimLeft(low[i+j+4:], " \t\n'\"")
		if !strings.HasPrefix(arg, "data:") && !strings.HasPrefix(arg, "#") {
			end := min(len(arg), 60)
			refs = append(refs, where+" url("+arg[:end])
		}
		i += j + 4
	}
	if strings.Contains(low, "@import") {
		refs = append(refs, where+" @import")
	}
	return refs
}
