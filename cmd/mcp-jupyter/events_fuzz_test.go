package main

import (
	"bytes"
	"testing"
)

// FuzzImportLine: any line of an import file either decodes into an event
// whose re-export decodes to the same event, or is refused with an error —
// never a panic.
func FuzzImportLine(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"time":"2026-11-27T12:00:00.000001Z","stream":"kernel/k","kernel":"k","node":"n","type":"KernelStarted","version":1,"payload":{"kernel_id":"k","spec":"python3","process":{"pid":1,"start_time":0,"conn_file":""}}}`,
		`{"seq":2,"time":"2026-11-27T12:00:00Z","stream":"execution/x","type":"ExecutionQueued","version":1,"payload":{"execution_id":"x","kernel_id":"k","code":"<&>\u2028"}}`,
		`{"seq":3,"time":"2026-11-27T12:00:00Z","stream":"execution/x","type":"ExecutionFinished","version":9,"payload":{}}`,
		`{"seq":4,"time":"yesterday","type":"ServerStopped","version":1,"payload":{}}`,
		`{"seq":5,"time":"2026-11-27T12:00:00Z","stream":"s","type":"Nope","version":1,"payload":{}}`,
		`{"seq":6,"time":"2026-11-27T12:00:00Z","stream":"execution/x","type":"ExecutionLost","version":1,"payload":[1]}`,
		`{"seq":`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	fs := &fileSource{path: "fuzz"}
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := fs.decodeLine(line, 1)
		if err != nil {
			return
		}
		again, err := fs.decodeLine(appendEventJSON(nil, e), 1)
		if err != nil {
			t.Fatalf("re-export of %q does not decode: %v", line, err)
		}
		if again.Seq != e.Seq || again.Type != e.Type || again.Stream != e.Stream || !bytes.Equal(again.Raw, e.Raw) || !again.Time.Equal(e.Time) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
	})
}
