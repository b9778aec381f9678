package kernels

import (
	"bytes"
	"testing"
)

// TestIndexMsgTypeIsBytesIndex: the fast search finds what bytes.Index
// finds, at every cut of payloads with stray 'y's, partial keys and a key
// inside the content.
func TestIndexMsgTypeIsBytesIndex(t *testing.T) {
	for _, s := range []string{``, `y`, `"msg_type":"`, `xx"msg_type":"s`, `yyyyy"msg_type":"`, `"msg_typ"msg_type":"x`,
		`{"a":"y","msg_type":"status"}`, `"msg_type"`, `{"kernel_id":"k","content":{"msg_type":"status"}}`,
		`{"kernel_id":"ky","msg_id":"y-1","msg_type":"stream","content":{"msg_type":"status"}}`} {
		for cut := 0; cut <= len(s); cut++ {
			if got, want := indexMsgType([]byte(s[:cut])), bytes.Index([]byte(s[:cut]), msgTypeKey); got != want {
				t.Errorf("indexMsgType(%q) = %d, want %d", s[:cut], got, want)
			}
		}
	}
}
